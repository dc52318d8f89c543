package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-id/gatehouse/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "data", "gatehouse.db")})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// migratedTemplate creates a migrated, empty database file to copy: copying
// is much faster than migrating, most of all under the race detector.
func migratedTemplate(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.db")
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	template := migratedTemplate(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		if err := os.WriteFile(path, template, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestNoLockedErrors runs 256 goroutines of interleaved write transactions
// and reads: with one writer connection and WAL readers, none may fail with
// "database is locked" (SQLITE_BUSY) or anything else.
func TestNoLockedErrors(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	tn := &ciam.Tenant{ID: ciam.TenantID(ciam.NewID()), Slug: "load", MFAPolicy: ciam.MFAOff, CreatedAt: now, UpdatedAt: now}
	if err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) }); err != nil {
		t.Fatal(err)
	}

	const workers, rounds = 256, 1
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				u := &ciam.User{
					ID: ciam.UserID(ciam.NewID()), Email: fmt.Sprintf("w%d-r%d@example.com", w, r),
					Status: ciam.UserActive, CreatedAt: now, UpdatedAt: now,
				}
				sess := &ciam.Session{
					ID: ciam.SessionID(ciam.NewID()), UserID: u.ID, TokenHash: []byte(ciam.NewSecret()),
					CreatedAt: now, AuthTime: now, LastSeenAt: now,
					IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
				}
				err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
					if err := tx.Users().Create(ctx, u); err != nil {
						return err
					}
					if err := tx.Sessions().Create(ctx, sess); err != nil {
						return err
					}
					return tx.Audit().Append(ctx, &ciam.AuditEvent{Time: now, Type: "user.signup", TargetID: string(u.ID)})
				})
				if err != nil {
					fail(fmt.Errorf("write: %w", err))
					continue
				}
				err = s.View(ctx, tn.ID, func(tx store.Tx) error {
					if _, err := tx.Users().Get(ctx, u.ID); err != nil {
						return err
					}
					if _, err := tx.Sessions().ByTokenHash(ctx, sess.TokenHash); err != nil {
						return err
					}
					_, err := tx.Audit().List(ctx, store.AuditFilter{Limit: 10})
					return err
				})
				if err != nil {
					fail(fmt.Errorf("read: %w", err))
				}
				if _, err := s.System().TenantBySlug(ctx, "load"); err != nil {
					fail(fmt.Errorf("system read: %w", err))
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("... and %d more", len(errs)-10)
			break
		}
		if msg := err.Error(); strings.Contains(msg, "locked") || strings.Contains(msg, "BUSY") {
			t.Errorf("lock error: %v", err)
		} else {
			t.Errorf("error: %v", err)
		}
	}
	var n int
	if err := s.View(context.Background(), tn.ID, func(tx store.Tx) error {
		es, err := tx.Audit().List(ctx, store.AuditFilter{AfterSeq: workers*rounds - 1})
		n = len(es)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the audit chain does not end at %d", workers*rounds)
	}
}

func TestOpenCreatesDirectoriesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "gatehouse.db")
	ctx := t.Context()
	for range 2 {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := db.System().MigrationsCurrent(ctx)
		if err != nil || !ok {
			t.Errorf("MigrationsCurrent = %v, %v", ok, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSkipMigrate(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "g.db"), SkipMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, err := db.System().MigrationsCurrent(ctx); err != nil || ok {
		t.Fatalf("MigrationsCurrent before Migrate = %v, %v; want false", ok, err)
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 {
		t.Fatalf("Migrate = %v, %v", applied, err)
	}
	if ok, err := db.System().MigrationsCurrent(ctx); err != nil || !ok {
		t.Fatalf("MigrationsCurrent after Migrate = %v, %v; want true", ok, err)
	}
	cur, latest, err := db.MigrationVersions(ctx)
	if err != nil || cur != latest {
		t.Fatalf("MigrationVersions = %d, %d, %v", cur, latest, err)
	}
	if applied, err := db.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", applied, err)
	}
}

// TestUpgradeFromSeededData migrates a database holding rows of schema
// version 1 to the latest version.
func TestUpgradeFromSeededData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	raw, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_foreign_keys=1&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	storetest.Upgrade(t, raw, goose.DialectSQLite3, sqlite.Migrations(), func(t *testing.T) store.Store {
		db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestPreparedStatements runs the same statements many times, in write
// transactions (whose one connection preparing on the pool would deadlock
// on), in views and in reads, concurrently: they end up prepared, and every
// result stays right.
func TestPreparedStatements(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tn := &ciam.Tenant{ID: ciam.TenantID(ciam.NewID()), Slug: "acme", DisplayName: "Acme", PrimaryColor: "#000000",
		MFAPolicy: ciam.MFAOff, SessionIdle: time.Hour, SessionAbsolute: 2 * time.Hour, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				u := &ciam.User{ID: ciam.UserID(ciam.NewID()), Email: fmt.Sprintf("u%d-%d@example.com", w, i), Status: ciam.UserActive, CreatedAt: time.Now(), UpdatedAt: time.Now()}
				if err := db.Tx(ctx, tn.ID, func(tx store.Tx) error {
					if err := tx.Users().Create(ctx, u); err != nil {
						return err
					}
					_, err := tx.Users().Get(ctx, u.ID) // a read inside the write transaction
					return err
				}); err != nil {
					errs <- err
					return
				}
				for _, read := range []func(context.Context, ciam.TenantID, func(store.Tx) error) error{db.View, db.Read} {
					if err := read(ctx, tn.ID, func(tx store.Tx) error {
						got, err := tx.Users().ByEmail(ctx, u.Email)
						if err == nil && got.ID != u.ID {
							err = fmt.Errorf("ByEmail(%s) = %s, want %s", u.Email, got.ID, u.ID)
						}
						return err
					}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := db.PreparedStatements(); n < 3 {
		t.Errorf("%d statements kept prepared, want at least the insert and the two lookups", n)
	}
	users, err := func() (n int, err error) {
		err = db.View(ctx, tn.ID, func(tx store.Tx) error {
			us, err := tx.Users().List(ctx, store.UserFilter{Limit: 1000})
			n = len(us)
			return err
		})
		return
	}()
	if err != nil || users != 320 {
		t.Errorf("%d users, %v; want 320", users, err)
	}
}
