package postgres_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the admin connection

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/store/storetest"
)

const dsnEnv = "GATEHOUSE_TEST_POSTGRES"

// At most this many stores are open at once, each with at most storeConns
// connections, so that a machine with many cores stays under PostgreSQL's
// default max_connections (100).
const (
	maxOpenStores = 8
	storeConns    = 4
)

// testDSN returns the database to test against, or skips the test.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("set %s=postgres://user@host:5432/db?sslmode=disable to run against PostgreSQL", dsnEnv)
	}
	return dsn
}

// adminDB opens a connection for creating and dropping test schemas.
func adminDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// freshSchema names a new schema and drops it when t ends.
func freshSchema(t *testing.T, admin *sql.DB) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "gatehouse_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA IF EXISTS " + pgx.Identifier{schema}.Sanitize() + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	admin := adminDB(t, dsn)
	open := make(chan struct{}, maxOpenStores)
	storetest.Run(t, func(t *testing.T) store.Store {
		open <- struct{}{}
		t.Cleanup(func() { <-open }) // runs last, after the store is closed and its schema dropped
		db, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: freshSchema(t, admin), MaxConns: storeConns})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentOpen opens one new schema from several nodes at once: the
// migration lock lets one of them migrate, and every node starts.
func TestConcurrentOpen(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, adminDB(t, dsn))
	const nodes = 4
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			db, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema, MaxConns: storeConns})
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			ok, err := db.System().MigrationsCurrent(t.Context())
			if err == nil && !ok {
				err = errors.New("migrations not current")
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
