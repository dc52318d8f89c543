package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// sqliteSeed writes with multi-row INSERTs on one connection of the
// modernc.org/sqlite driver (registered as "sqlite" by store/sqlite), with
// synchronous=OFF and foreign-key checks off while it loads: the rows are
// consistent by construction, and `gatehouse audit verify` checks them after.
type sqliteSeed struct {
	db   *sql.DB
	path string
}

func openSQLiteSeed(path string) (*sqliteSeed, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	for _, p := range []string{
		"PRAGMA busy_timeout = 10000",
		"PRAGMA journal_mode = WAL",
		"PRAGMA synchronous = OFF",
		"PRAGMA foreign_keys = OFF",
		"PRAGMA cache_size = -262144", // 256 MiB
		"PRAGMA temp_store = MEMORY",
	} {
		if _, err := db.Exec(p); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite seed: %s: %w", p, err)
		}
	}
	return &sqliteSeed{db: db, path: path}, nil
}

func (s *sqliteSeed) tenantHead(ctx context.Context, slug string) (ciam.TenantID, int64, []byte, error) {
	return queryHead(ctx, s.db, "?", slug)
}

func queryHead(ctx context.Context, db *sql.DB, ph, slug string) (ciam.TenantID, int64, []byte, error) {
	var (
		id   string
		seq  sql.NullInt64
		hash []byte
	)
	err := db.QueryRowContext(ctx, `SELECT t.id, h.seq, h.hash FROM tenants t
		LEFT JOIN audit_heads h ON h.tenant_id = t.id WHERE t.slug = `+ph, slug).Scan(&id, &seq, &hash)
	if err != nil {
		return "", 0, nil, fmt.Errorf("tenant %s: %w", slug, err)
	}
	return ciam.TenantID(id), seq.Int64, hash, nil
}

// sqliteMaxVars is SQLite's default SQLITE_MAX_VARIABLE_NUMBER (32766).
const sqliteMaxVars = 32766

func (s *sqliteSeed) write(ctx context.Context, b *batch) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range []struct {
		name string
		cols []string
		rows [][]any
	}{
		{"tenants", tenantCols, b.tenants},
		{"users", userCols, b.users},
		{"passwords", passwordCols, b.passwords},
		{"audit_events", eventCols, b.events},
		{"audit_heads", headCols, b.heads},
	} {
		per := min(500, sqliteMaxVars/len(t.cols))
		args := make([]any, 0, per*len(t.cols))
		for i := 0; i < len(t.rows); i += per {
			chunk := t.rows[i:min(i+per, len(t.rows))]
			args = args[:0]
			for _, r := range chunk {
				args = append(args, r...)
			}
			if _, err := tx.ExecContext(ctx, multiInsert(t.name, t.cols, len(chunk), false), args...); err != nil {
				return fmt.Errorf("insert %s: %w", t.name, err)
			}
		}
	}
	for _, h := range b.headUpdates {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_heads SET seq = ?, hash = ? WHERE tenant_id = ?`, h...); err != nil {
			return fmt.Errorf("update audit head: %w", err)
		}
	}
	return tx.Commit()
}

func (s *sqliteSeed) finish(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func (s *sqliteSeed) sizeMB(context.Context) (float64, error) {
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			total += fi.Size()
		}
	}
	return float64(total) / 1e6, nil
}

func (s *sqliteSeed) close() { s.db.Close() }

// postgresSeed writes with COPY on one pgx connection whose search_path is
// the run's schema.
type postgresSeed struct {
	conn   *pgx.Conn
	schema string
}

func pgConfig(dsn, schema string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres DSN: %w", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	return cfg, nil
}

func openPostgresSeed(ctx context.Context, dsn, schema string) (*postgresSeed, error) {
	cfg, err := pgConfig(dsn, schema)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &postgresSeed{conn: conn, schema: schema}, nil
}

func (s *postgresSeed) tenantHead(ctx context.Context, slug string) (ciam.TenantID, int64, []byte, error) {
	var (
		id   string
		seq  *int64
		hash []byte
	)
	err := s.conn.QueryRow(ctx, `SELECT t.id, h.seq, h.hash FROM tenants t
		LEFT JOIN audit_heads h ON h.tenant_id = t.id WHERE t.slug = $1`, slug).Scan(&id, &seq, &hash)
	if err != nil {
		return "", 0, nil, fmt.Errorf("tenant %s: %w", slug, err)
	}
	if seq == nil {
		return ciam.TenantID(id), 0, nil, nil
	}
	return ciam.TenantID(id), *seq, hash, nil
}

func (s *postgresSeed) write(ctx context.Context, b *batch) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, t := range []struct {
		name string
		cols []string
		rows [][]any
	}{
		{"tenants", tenantCols, b.tenants},
		{"users", userCols, b.users},
		{"passwords", passwordCols, b.passwords},
		{"audit_events", eventCols, b.events},
		{"audit_heads", headCols, b.heads},
	} {
		if len(t.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
	}
	for _, h := range b.headUpdates {
		if _, err := tx.Exec(ctx, `UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3`, h...); err != nil {
			return fmt.Errorf("update audit head: %w", err)
		}
	}
	return tx.Commit(ctx)
}

// finish gathers planner statistics, as autovacuum would soon after a bulk load.
func (s *postgresSeed) finish(ctx context.Context) error {
	_, err := s.conn.Exec(ctx, "ANALYZE tenants, users, passwords, sessions, audit_heads, audit_events")
	return err
}

func (s *postgresSeed) sizeMB(ctx context.Context) (float64, error) {
	var n int64
	err := s.conn.QueryRow(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1 AND c.relkind = 'r'`, s.schema).Scan(&n)
	return float64(n) / 1e6, err
}

func (s *postgresSeed) close() { s.conn.Close(context.Background()) }

// dropSchema removes a run's schema and everything in it.
func dropSchema(ctx context.Context, dsn, schema string) error {
	cfg, err := pgConfig(dsn, "")
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// withSearchPath returns dsn with the schema as the search_path of every
// connection, through the libpq "options" parameter that pgx passes on.
func withSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("-postgres must be a postgres:// URL (gatehouse accepts only that form)")
	}
	q := u.Query()
	opt := "-csearch_path=" + schema
	if old := q.Get("options"); old != "" {
		opt = old + " " + opt
	}
	q.Set("options", opt)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
