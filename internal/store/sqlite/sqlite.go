// Package sqlite opens the Gatehouse store on an embedded SQLite database
// (modernc.org/sqlite, no cgo) and owns the SQLite migrations. The store is
// sqlstore's; this package supplies the connections and the dialect.
//
// One database file is opened twice: a writer pool of exactly one
// connection, whose transactions begin with BEGIN IMMEDIATE, runs Tx and
// every other write; a pool of read-only connections runs View. With WAL
// journaling readers never wait for the writer, and since writes queue in
// database/sql for the single writer connection instead of racing for
// SQLite's lock, concurrent use does not fail with "database is locked".
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded SQLite migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Config says which database to open.
type Config struct {
	// Path is the database file. Missing parent directories are created.
	Path string
	// Readers is the number of read-only connections; zero means
	// max(4, GOMAXPROCS).
	Readers int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process (such as a CLI command on the same file); zero means 10s.
	BusyTimeout time.Duration
	// SkipMigrate opens the database without applying pending migrations;
	// call Migrate on the result to apply them.
	SkipMigrate bool
}

// Dialect is the SQLite dialect for sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:        "sqlite",
		Placeholder: sqlstore.Question,
		Classify:    classify,
		// A failed statement leaves the SQLite transaction usable.
		ErrorAbortsTx: false,
		// The writer's DSN makes every transaction BEGIN IMMEDIATE; a
		// read-only one is a plain deferred BEGIN on a reader.
		WriteTx: sql.TxOptions{},
		ReadTx:  sql.TxOptions{ReadOnly: true},
		// modernc.org/sqlite parses every statement it is not given prepared.
		PrepareStatements: true,
	}
}

// Open opens (creating if needed) and, unless cfg.SkipMigrate, migrates the
// database at cfg.Path.
func Open(ctx context.Context, cfg Config) (*sqlstore.DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives from it, are readable by the owner only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	readers := cfg.Readers
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}
	common := url.Values{
		"_busy_timeout": {strconv.FormatInt(busy.Milliseconds(), 10)},
		"_foreign_keys": {"1"},
	}

	wq := cloneValues(common)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_synchronous", "NORMAL")
	wq.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", dsn(path, wq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The first connection switches the file to WAL before any reader opens it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Set("_query_only", "1")
	reader, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	reader.SetConnMaxLifetime(0)
	reader.SetConnMaxIdleTime(0)

	db, err := sqlstore.New(sqlstore.Config{
		Dialect:      Dialect(),
		Writer:       writer,
		Reader:       reader,
		Migrations:   Migrations(),
		GooseDialect: goose.DialectSQLite3,
	})
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if !cfg.SkipMigrate {
		if _, err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return db, nil
}

func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// classify maps a modernc.org/sqlite error to its sqlstore class.
func classify(err error) sqlstore.ErrorClass {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.ClassOther
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.ClassUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ClassForeignKey
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return sqlstore.ClassTransient
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM:
		// the disk failed, filled up, or the file went away
		return sqlstore.ClassUnavailable
	}
	return sqlstore.ClassOther
}
