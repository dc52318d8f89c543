package session_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

type fixture struct {
	st   store.Store
	m    *session.Manager
	t    *ciam.Tenant
	u    *ciam.User
	now  time.Time
	ctx  context.Context
	tick func(time.Duration)
}

func setup(t *testing.T) *fixture {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, ctx: ctx, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.tick = func(d time.Duration) { f.now = f.now.Add(d) }
	f.m = &session.Manager{Store: st, Now: func() time.Time { return f.now }, TouchEvery: time.Minute}
	f.t = &ciam.Tenant{ID: ciam.TenantID(ciam.NewID()), Slug: "s1", DisplayName: "S", PrimaryColor: "#000000", MFAPolicy: ciam.MFAOff,
		SessionIdle: time.Hour, SessionAbsolute: 3 * time.Hour, CreatedAt: f.now, UpdatedAt: f.now}
	f.u = &ciam.User{ID: ciam.UserID(ciam.NewID()), TenantID: f.t.ID, Email: "s@example.com", Status: ciam.UserActive, CreatedAt: f.now, UpdatedAt: f.now, PIIKey: audit.NewPIIKey()}
	err = st.Tx(ctx, f.t.ID, func(tx store.Tx) error {
		if err := tx.Tenant().Create(ctx, f.t); err != nil {
			return err
		}
		return tx.Users().Create(ctx, f.u)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) start(t *testing.T) (*ciam.Session, string) {
	s, tok := f.m.New(f.t, f.u.ID, []string{"pwd"}, audit.Meta{IP: "192.0.2.1", UserAgent: "test"})
	if err := f.st.Tx(f.ctx, f.t.ID, func(tx store.Tx) error { return tx.Sessions().Create(f.ctx, s) }); err != nil {
		t.Fatal(err)
	}
	return s, tok
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	f := setup(t)
	_, tok := f.start(t)
	for i := 0; i < 4; i++ { // used every 50 minutes: the idle window moves
		f.tick(50 * time.Minute)
		if _, err := f.m.Lookup(f.ctx, f.t, tok); err != nil && i < 3 {
			t.Fatalf("lookup %d: %v", i, err)
		} else if i == 3 && err == nil {
			t.Fatal("session outlived its absolute lifetime")
		}
	}
	_, tok = f.start(t)
	f.tick(61 * time.Minute)
	if _, err := f.m.Lookup(f.ctx, f.t, tok); ciam.CodeOf(err) != "session_expired" {
		t.Fatalf("idle session: %v", err)
	}
	if _, err := f.m.Lookup(f.ctx, f.t, "not-a-token"); ciam.CodeOf(err) != "session_expired" {
		t.Fatalf("unknown token: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	f := setup(t)
	s1, tok1 := f.start(t)
	s2, tok2 := f.start(t)
	other := &ciam.User{ID: "someone-else"}
	if err := f.m.Revoke(f.ctx, f.t, other, s1.ID, "test", audit.Meta{}); ciam.KindOf(err) != ciam.NotFound {
		t.Fatalf("revoking another user's session: %v", err)
	}
	if err := f.m.Revoke(f.ctx, f.t, f.u, s1.ID, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Revoke(f.ctx, f.t, f.u, s1.ID, "test", audit.Meta{}); ciam.KindOf(err) != ciam.NotFound {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := f.m.Lookup(f.ctx, f.t, tok1); err == nil {
		t.Fatal("revoked session still works")
	}
	if _, err := f.m.Lookup(f.ctx, f.t, tok2); err != nil {
		t.Fatalf("the other session ended too: %v", err)
	}
	_, tok3 := f.start(t)
	if n, err := f.m.RevokeOthers(f.ctx, f.t, f.u, s2.ID, "test", audit.Meta{}); err != nil || n != 1 {
		t.Fatalf("revoke others: %d %v", n, err)
	}
	if _, err := f.m.Lookup(f.ctx, f.t, tok3); err == nil {
		t.Fatal("session survived revoke-others")
	}
	// Logout twice is fine.
	if err := f.m.End(f.ctx, f.t, s2, audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.End(f.ctx, f.t, s2, audit.Meta{}); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	if n, err := f.m.List(f.ctx, f.t, f.u.ID); err != nil || len(n) != 0 {
		t.Fatalf("live sessions after logout: %d %v", len(n), err)
	}
}

func TestCookieName(t *testing.T) {
	if session.CookieName("acme", true) != "__Host-gatehouse_s_acme" || session.CookieName("acme", false) != "gatehouse_s_acme" {
		t.Fatal("cookie names")
	}
}
