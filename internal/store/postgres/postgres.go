// Package postgres opens the Gatehouse store on PostgreSQL through pgx's
// database/sql driver and owns the PostgreSQL migrations (the same version
// numbers and file names as store/sqlite's). The store is sqlstore's; this
// package supplies the connection pool and the dialect.
//
// Transactions run at READ COMMITTED: writes are conditional updates and
// audit appends lock the tenant's chain head row, so no stronger isolation
// is needed, and serialization failures and deadlocks (40001, 40P01), which
// PostgreSQL-compatible distributed databases raise more often, are retried.
// Views run at REPEATABLE READ, READ ONLY, for one consistent snapshot.
// No advisory locks are used: concurrent migrators take goose's lock table.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded PostgreSQL migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Config says which database to open.
type Config struct {
	// DSN is a libpq-style URL or key/value string, e.g.
	// postgres://user@host:5432/db?sslmode=verify-full.
	DSN string
	// Schema, when set, is created if needed and becomes the search_path of
	// every connection, so that several deployments (or tests) can share one
	// database.
	Schema string
	// MaxConns bounds the pool; zero means 20.
	MaxConns int
	// SkipMigrate opens the database without applying pending migrations;
	// call Migrate on the result to apply them.
	SkipMigrate bool
	// Logger, if set, receives goose's migration log.
	Logger *slog.Logger
}

// Dialect is the PostgreSQL dialect for sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Placeholder:   sqlstore.Dollar,
		Classify:      classify,
		ErrorAbortsTx: true,
		ModifyingCTE:  true,
		WriteTx:       sql.TxOptions{Isolation: sql.LevelReadCommitted},
		ReadTx:        sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	}
}

// Open connects and, unless cfg.SkipMigrate, migrates the database.
func Open(ctx context.Context, cfg Config) (*sqlstore.DB, error) {
	pcfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err)
	}
	if cfg.Schema != "" {
		pcfg.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	conns := cfg.MaxConns
	if conns <= 0 {
		conns = 20
	}
	db := stdlib.OpenDB(*pcfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if cfg.Schema != "" {
		if err := createSchema(ctx, db, cfg.Schema); err != nil {
			db.Close()
			return nil, err
		}
	}

	locker, err := lock.NewPostgresTableLocker(
		lock.WithTableLockTimeout(time.Second, 300), // wait up to 5 minutes for another migrator
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithLocker(locker)}
	if cfg.Logger != nil {
		opts = append(opts, goose.WithSlog(cfg.Logger), goose.WithVerbose(true))
	}
	s, err := sqlstore.New(sqlstore.Config{
		Dialect:      Dialect(),
		Writer:       db,
		Migrations:   Migrations(),
		GooseDialect: goose.DialectPostgres,
		GooseOptions: opts,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !cfg.SkipMigrate {
		if _, err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	return s, nil
}

// createSchema creates schema unless it exists. Checking first means a
// role without CREATE on the database can use a schema made for it.
func createSchema(ctx context.Context, db *sql.DB, schema string) error {
	var exists bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists)
	if err != nil {
		return fmt.Errorf("postgres: look up schema: %w", err)
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P06" || pgErr.Code == "23505") {
		err = nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("postgres: create schema: %w", err)
	}
	return nil
}

// classify maps a PostgreSQL error to its sqlstore class.
func classify(err error) sqlstore.ErrorClass {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		if connectionLost(err) {
			return sqlstore.ClassUnavailable
		}
		return sqlstore.ClassOther
	}
	if strings.HasPrefix(e.Code, "08") || strings.HasPrefix(e.Code, "53") || e.Code == "57P01" || e.Code == "57P02" || e.Code == "57P03" {
		// connection exception, insufficient resources, shutdown, cannot connect now
		return sqlstore.ClassUnavailable
	}
	switch e.Code {
	case "23505": // unique_violation
		return sqlstore.ClassUnique
	case "23503": // foreign_key_violation
		return sqlstore.ClassForeignKey
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return sqlstore.ClassTransient
	}
	return sqlstore.ClassOther
}

// connectionLost reports whether err means the server could not be reached or
// the connection broke.
func connectionLost(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection refused") || strings.Contains(msg, "failed to connect")
}
