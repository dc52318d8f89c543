package postgres_test

import (
	"io/fs"
	"reflect"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// TestMigrationParity checks that both dialects have one migration history:
// the same files, so the same version numbers.
func TestMigrationParity(t *testing.T) {
	names := func(fsys fs.FS) []string {
		t.Helper()
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	pg, lite := names(postgres.Migrations()), names(sqlite.Migrations())
	if len(pg) == 0 {
		t.Fatal("no PostgreSQL migrations embedded")
	}
	if !reflect.DeepEqual(pg, lite) {
		t.Errorf("migration files differ:\n postgres %v\n sqlite   %v", pg, lite)
	}
}
