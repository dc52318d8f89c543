package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver, for the admin connection
	"github.com/pressly/goose/v3"

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

// TestConformance runs the suite with at most maxOpenStores stores open at
// once, each in a schema of its own. Migrating a schema costs far more than
// a case, so a schema is migrated once and handed to one case after another,
// emptied in between: what each case gets is an empty, migrated store.
func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	admin := adminDB(t, dsn)
	schemas := make(chan string, maxOpenStores)
	for range maxOpenStores {
		schemas <- "" // not created yet
	}
	parent := t
	storetest.Run(t, func(t *testing.T) store.Store {
		schema := <-schemas
		t.Cleanup(func() { schemas <- schema }) // runs last, after the store is closed
		if schema == "" {
			schema = freshSchema(parent, admin) // dropped when the whole suite ends
		} else {
			emptySchema(t, admin, schema)
		}
		db, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema, MaxConns: storeConns})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// emptySchema deletes every row of a migrated schema except goose's
// bookkeeping, so that it reads as freshly migrated. It deletes referencing
// tables before the tables they reference, in one transaction: for the few
// rows a case leaves, that is much cheaper than TRUNCATE.
func emptySchema(t *testing.T, admin *sql.DB, schema string) {
	t.Helper()
	ctx := t.Context()
	tables := map[string]bool{}   // table -> still to empty
	refs := map[string][]string{} // table -> the tables that reference it
	err := query(ctx, admin, func(rows *sql.Rows) error {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		tables[name] = true
		return nil
	}, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename NOT LIKE 'goose%'`, schema)
	if err == nil {
		err = query(ctx, admin, func(rows *sql.Rows) error {
			var child, parent string
			if err := rows.Scan(&child, &parent); err != nil {
				return err
			}
			if child != parent {
				refs[parent] = append(refs[parent], child)
			}
			return nil
		}, `SELECT c.relname, p.relname FROM pg_constraint k
			JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
			JOIN pg_namespace n ON n.oid = k.connamespace
			WHERE k.contype = 'f' AND n.nspname = $1`, schema)
	}
	if err != nil {
		t.Fatalf("empty schema %s: %v", schema, err)
	}
	var order []string
	for len(order) < len(tables) {
		progress := false
		for name, pending := range tables {
			free := pending
			for _, child := range refs[name] {
				free = free && !tables[child]
			}
			if free {
				order = append(order, name)
				tables[name] = false
				progress = true
			}
		}
		if !progress {
			t.Fatalf("empty schema %s: foreign keys form a cycle", schema)
		}
	}
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, name := range order {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+pgx.Identifier{schema, name}.Sanitize()); err != nil {
			t.Fatalf("empty %s.%s: %v", schema, name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// query runs q and calls fn for each row.
func query(ctx context.Context, db *sql.DB, fn func(*sql.Rows) error, q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
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

// TestUpgradeFromSeededData migrates a schema holding rows of schema
// version 1 to the latest version.
func TestUpgradeFromSeededData(t *testing.T) {
	dsn := testDSN(t)
	admin := adminDB(t, dsn)
	schema := freshSchema(t, admin)
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	raw := stdlib.OpenDB(*cfg)
	defer raw.Close()
	storetest.Upgrade(t, raw, goose.DialectPostgres, postgres.Migrations(), func(t *testing.T) store.Store {
		db, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema, MaxConns: storeConns})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
