package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

var _ store.Store = (*DB)(nil)

// Transaction retries on transient failures.
const (
	maxAttempts  = 6
	retryBackoff = 2 * time.Millisecond // doubled after each attempt, with jitter
)

// Config is what New needs. store/sqlite and store/postgres fill it in.
type Config struct {
	Dialect Dialect
	// Writer runs Tx transactions, cross-tenant writes and migrations.
	Writer *sql.DB
	// Reader runs View transactions and cross-tenant reads. Nil means Writer.
	Reader *sql.DB
	// Migrations holds the dialect's goose migration files at its root.
	Migrations fs.FS
	// GooseDialect names the dialect for goose, e.g. goose.DialectSQLite3.
	GooseDialect goose.Dialect
	// GooseOptions are extra provider options, such as a migration locker.
	GooseOptions []goose.ProviderOption
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	writer  *sql.DB
	reader  *sql.DB
	ph      Placeholder
	goose   *goose.Provider

	stmts     sync.Map // stmtKey -> *sql.Stmt, with Dialect.PrepareStatements
	preparing sync.Map // stmtKey -> true while or once it is being prepared
	prepared  atomic.Int64
	// bg counts the background preparations; Close cancels them through
	// stop and waits, so no connection outlives Close.
	bg      sync.WaitGroup
	bgMu    sync.Mutex
	stopped bool
	stop    context.CancelFunc
	bgCtx   context.Context

	migrated  atomic.Bool // migrations were found current once; they stay current
	closeOnce sync.Once
	closeErr  error
}

// New wraps open database handles. DB.Close closes them.
func New(cfg Config) (*DB, error) {
	if cfg.Writer == nil || cfg.Dialect.Classify == nil || cfg.Migrations == nil {
		return nil, errors.New("sqlstore: Writer, Dialect.Classify and Migrations are required")
	}
	reader := cfg.Reader
	if reader == nil {
		reader = cfg.Writer
	}
	opts := append([]goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}, cfg.GooseOptions...)
	p, err := goose.NewProvider(cfg.GooseDialect, cfg.Writer, cfg.Migrations, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	bgCtx, stop := context.WithCancel(context.Background())
	return &DB{
		dialect: cfg.Dialect,
		writer:  cfg.Writer,
		reader:  reader,
		ph:      cfg.Dialect.Placeholder,
		goose:   p,
		bgCtx:   bgCtx,
		stop:    stop,
	}, nil
}

// Dialect returns the dialect the store was opened with.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database handles. It is safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.bgMu.Lock()
		db.stopped = true
		db.bgMu.Unlock()
		db.stop()
		db.bg.Wait()
		db.stmts.Range(func(_, v any) bool {
			v.(*sql.Stmt).Close()
			return true
		})
		err := db.writer.Close()
		if db.reader != db.writer {
			err = errors.Join(err, db.reader.Close())
		}
		db.closeErr = err
	})
	return db.closeErr
}

// Tx runs fn in a read-write transaction scoped to tenant, retrying
// transient failures. Do not call Tx from inside fn: on SQLite the single
// writer connection is taken and the nested call would wait forever.
func (db *DB) Tx(ctx context.Context, tenant ciam.TenantID, fn func(store.Tx) error) error {
	return db.run(ctx, db.writer, &db.dialect.WriteTx, tenant, fn)
}

// View runs fn in a read-only transaction scoped to tenant.
func (db *DB) View(ctx context.Context, tenant ciam.TenantID, fn func(store.Tx) error) error {
	return db.run(ctx, db.reader, &db.dialect.ReadTx, tenant, fn)
}

// Read runs fn with tenant's repositories on the reader pool outside any
// transaction: each statement sees what was committed when it ran, and no
// snapshot spans two of them. It saves a BEGIN and a COMMIT (two round
// trips on PostgreSQL) for the hot paths that read one row.
func (db *DB) Read(ctx context.Context, tenant ciam.TenantID, fn func(store.Tx) error) error {
	if tenant == "" {
		return errors.New("sqlstore: read without a tenant")
	}
	return retryTransient(ctx, func() error {
		return fn(&tx{db: db, tx: db.reader, tenant: tenant, readOnly: true, pool: db.reader})
	})
}

// Write runs fn with its statements on the writer pool, each committing by
// itself; the tx refuses a second write.
func (db *DB) Write(ctx context.Context, tenant ciam.TenantID, fn func(store.Tx) error) error {
	if tenant == "" {
		return errors.New("sqlstore: write without a tenant")
	}
	return retryTransient(ctx, func() error {
		return fn(&tx{db: db, tx: db.writer, tenant: tenant, single: true, pool: db.writer})
	})
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, tenant ciam.TenantID, fn func(store.Tx) error) error {
	if tenant == "" {
		return errors.New("sqlstore: transaction without a tenant")
	}
	return retryTransient(ctx, func() error { return db.attempt(ctx, pool, opts, tenant, fn) })
}

// retryTransient runs attempt until it succeeds, fails for a reason a retry
// cannot cure, or has failed maxAttempts times, with jittered exponential
// backoff in between.
func retryTransient(ctx context.Context, attempt func() error) error {
	backoff := retryBackoff
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || n == maxAttempts || !isTransient(err) {
			return err
		}
		d := backoff/2 + rand.N(backoff/2+1) // between half and all of backoff
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		backoff *= 2
	}
}

func (db *DB) attempt(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, tenant ciam.TenantID, fn func(store.Tx) error) error {
	stx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return db.wrap(err, "begin transaction")
	}
	done := false
	defer func() {
		if !done {
			_ = stx.Rollback() // fn returned an error or panicked
		}
	}()
	if err := fn(&tx{db: db, tx: stx, tenant: tenant, pool: pool}); err != nil {
		return err
	}
	done = true
	if err := stx.Commit(); err != nil {
		return db.wrap(err, "commit")
	}
	return nil
}

// tx is one transaction scoped to one tenant, or for Read the reader pool
// itself, each statement on its own.
type tx struct {
	db       *DB
	tx       queryer
	tenant   ciam.TenantID
	readOnly bool    // Read: statements that write are refused
	single   bool    // Write: one write statement, committing by itself
	writes   int     // write statements run, in Write
	pool     *sql.DB // the pool the transaction came from
}

// queryer is what *sql.Tx and *sql.DB have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errReadOnly is returned for a write attempted in Read.
var errReadOnly = errors.New("sqlstore: a write inside Read")

// errSecondWrite is returned for a second write attempted in Write.
var errSecondWrite = errors.New("sqlstore: a second write inside Write; use Tx")

// countWrite admits the one write statement of Write.
func (t *tx) countWrite() error {
	if !t.single {
		return nil
	}
	if t.writes > 0 {
		return errSecondWrite
	}
	t.writes++
	return nil
}

func (t *tx) Tenant() store.Tenants              { return tenants{t} }
func (t *tx) Users() store.Users                 { return users{t} }
func (t *tx) Passwords() store.Passwords         { return passwords{t} }
func (t *tx) Sessions() store.Sessions           { return sessions{t} }
func (t *tx) Audit() store.AuditLog              { return auditLog{t} }
func (t *tx) Clients() store.Clients             { return clients{t} }
func (t *tx) SigningKeys() store.SigningKeys     { return signingKeys{t} }
func (t *tx) AuthCodes() store.AuthCodes         { return authCodes{t} }
func (t *tx) RefreshTokens() store.RefreshTokens { return refreshTokens{t} }
func (t *tx) Grants() store.Grants               { return grants{t} }
func (t *tx) Nonces() store.Nonces               { return nonces{t} }
func (t *tx) Outbox() store.Outbox               { return outbox{t} }
func (t *tx) EmailTokens() store.EmailTokens     { return emailTokens{t} }
func (t *tx) Passkeys() store.Passkeys           { return passkeys{t} }
func (t *tx) TOTP() store.TOTP                   { return totp{t} }
func (t *tx) RecoveryCodes() store.RecoveryCodes { return recoveryCodes{t} }
func (t *tx) AuthFlows() store.AuthFlows         { return authFlows{t} }

func (t *tx) exec(ctx context.Context, q query, args ...any) (sql.Result, error) {
	if t.readOnly {
		return nil, errReadOnly
	}
	if err := t.countWrite(); err != nil {
		return nil, err
	}
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q.text[t.db.ph], args...)
}

func (t *tx) row(ctx context.Context, q query, args ...any) *sql.Row {
	if t.readOnly && !q.read {
		panic(errReadOnly) // a programming error, like a write through a nil Tx
	}
	if !q.read {
		if err := t.countWrite(); err != nil {
			panic(err) // a programming error: two writes in Write
		}
	}
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q.text[t.db.ph], args...)
}

func (t *tx) rows(ctx context.Context, q query, args ...any) (*sql.Rows, error) {
	if t.readOnly && !q.read {
		return nil, errReadOnly
	}
	if !q.read {
		if err := t.countWrite(); err != nil {
			return nil, err
		}
	}
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q.text[t.db.ph], args...)
}

// stmtKey names a prepared statement of one pool.
type stmtKey struct {
	pool *sql.DB
	text string
}

// maxPrepared bounds the statements kept prepared (queries built at run
// time, such as IN lists, could otherwise grow it without end).
const maxPrepared = 512

// stmt returns q prepared for this transaction (or, in Read, for the
// pool), or nil to run q unprepared. database/sql keeps a pool statement
// prepared on each connection it was used on, and a transaction reuses the
// one of its connection. A statement not prepared yet is prepared in the
// background: preparing on the pool needs a free connection, and SQLite's
// one writer connection is the one this transaction holds.
func (t *tx) stmt(ctx context.Context, q query) *sql.Stmt {
	if !t.db.dialect.PrepareStatements || !q.cached {
		return nil
	}
	k := stmtKey{t.pool, q.text[t.db.ph]}
	v, ok := t.db.stmts.Load(k)
	if !ok {
		t.db.prepareLater(k)
		return nil
	}
	st := v.(*sql.Stmt)
	if stx, inTx := t.tx.(*sql.Tx); inTx {
		return stx.StmtContext(ctx, st)
	}
	return st
}

// PreparedStatements reports how many statements are kept prepared.
func (db *DB) PreparedStatements() int64 { return db.prepared.Load() }

// prepareLater prepares k's statement on its pool once a connection is free.
func (db *DB) prepareLater(k stmtKey) {
	if db.prepared.Load() >= maxPrepared {
		return
	}
	if _, busy := db.preparing.LoadOrStore(k, true); busy {
		return
	}
	db.bgMu.Lock()
	defer db.bgMu.Unlock()
	if db.stopped {
		return
	}
	db.bg.Add(1)
	go func() {
		defer db.bg.Done()
		ctx, cancel := context.WithTimeout(db.bgCtx, 30*time.Second)
		defer cancel()
		st, err := k.pool.PrepareContext(ctx, k.text)
		if err != nil {
			db.preparing.Delete(k) // try again on a later use
			return
		}
		if _, loaded := db.stmts.LoadOrStore(k, st); loaded {
			st.Close()
			return
		}
		db.prepared.Add(1)
	}()
}

// execUpdate runs a statement that may violate a unique key. Where a failed
// statement aborts the transaction it runs inside a savepoint, so that the
// caller can carry on after ErrConflict on every dialect.
func (t *tx) execUpdate(ctx context.Context, q query, args ...any) (sql.Result, error) {
	if !t.db.dialect.ErrorAbortsTx || t.readOnly || t.single {
		return t.exec(ctx, q, args...)
	}
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT sqlstore_update"); err != nil {
		return nil, err
	}
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sqlstore_update"); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, err
	}
	if _, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT sqlstore_update"); err != nil {
		return nil, err
	}
	return res, nil
}

// transientError marks a failure that a retry of the transaction may cure.
// It keeps the driver error out of the chain.
type transientError struct{ msg string }

func (e *transientError) Error() string { return e.msg }

func isTransient(err error) bool {
	var te *transientError
	return errors.As(err, &te)
}

// wrap translates a driver error. what says what was being done; it must not
// name personal data such as an email address.
func (db *DB) wrap(err error, what string, args ...any) error {
	if err == nil {
		return nil
	}
	if len(args) > 0 {
		what = fmt.Sprintf(what, args...)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		return unavailable(what, err)
	}
	switch db.dialect.Classify(err) {
	case ClassUnique:
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	case ClassForeignKey:
		return fmt.Errorf("%s: referenced row: %w", what, store.ErrNotFound)
	case ClassTransient:
		return &transientError{msg: fmt.Sprintf("sqlstore: %s: %v", what, err)}
	case ClassUnavailable:
		return unavailable(what, err)
	}
	return fmt.Errorf("sqlstore: %s: %v", what, err)
}

// unavailable classifies a lost or unusable database for the caller: the
// request gets a 503 and may be tried again, and readiness reports it.
func unavailable(what string, err error) error {
	return &ciam.Error{Kind: ciam.Unavailable, Code: "database_unavailable",
		Msg: "The service is temporarily unavailable. Please try again in a moment.",
		Err: fmt.Errorf("sqlstore: %s: %v", what, err)}
}

// conflictf returns a store.ErrConflict with context.
func conflictf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, store.ErrConflict)...)
}

// notFoundf returns a store.ErrNotFound with context.
func notFoundf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
}

// checkTenant reports whether an entity's tenant, when set, is the
// transaction's.
func (t *tx) checkTenant(id ciam.TenantID) bool { return id == "" || id == t.tenant }

func (t *tx) wrongTenant(kind string, id ciam.TenantID) error {
	return fmt.Errorf("sqlstore: %s of tenant %s written in a transaction of tenant %s", kind, id, t.tenant)
}

// rowsAffected returns n, translating the error.
func (t *tx) rowsAffected(res sql.Result, what string, args ...any) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.db.wrap(err, what, args...)
	}
	return n, nil
}
