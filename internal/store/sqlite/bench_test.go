package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// benchStore opens a store with one tenant, one user and one session.
func benchStore(b *testing.B) (store.Store, *ciam.Tenant, *ciam.User, *ciam.Session) {
	b.Helper()
	ctx := b.Context()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	tn := &ciam.Tenant{ID: ciam.TenantID(ciam.NewID()), Slug: "bench", CreatedAt: now, UpdatedAt: now}
	u := &ciam.User{ID: ciam.UserID(ciam.NewID()), Email: "b@example.com", Status: ciam.UserActive, CreatedAt: now, UpdatedAt: now}
	ss := &ciam.Session{ID: ciam.SessionID(ciam.NewID()), UserID: u.ID, TokenHash: []byte("token"),
		CreatedAt: now, AuthTime: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)}
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		if err := tx.Tenant().Create(ctx, tn); err != nil {
			return err
		}
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		return tx.Sessions().Create(ctx, ss)
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, tn, u, ss
}

// BenchmarkSessionLookup is the per-request read: a session by token hash.
func BenchmarkSessionLookup(b *testing.B) {
	s, tn, _, ss := benchStore(b)
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			err := s.View(ctx, tn.ID, func(tx store.Tx) error {
				_, err := tx.Sessions().ByTokenHash(ctx, ss.TokenHash)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSessionTouch is a small write transaction.
func BenchmarkSessionTouch(b *testing.B) {
	s, tn, _, ss := benchStore(b)
	ctx := b.Context()
	seen := ss.LastSeenAt
	for b.Loop() {
		seen = seen.Add(time.Microsecond)
		err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Sessions().Touch(ctx, ss.ID, seen, seen.Add(time.Hour))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditAppend is a login's bookkeeping: record the login and append its event.
func BenchmarkAuditAppend(b *testing.B) {
	s, tn, u, _ := benchStore(b)
	ctx := b.Context()
	at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			if err := tx.Users().RecordLogin(ctx, u.ID, at); err != nil {
				return err
			}
			return tx.Audit().Append(ctx, &ciam.AuditEvent{Time: at, Type: "login.success", ActorID: string(u.ID)})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
