// Package session manages browser sessions: issuing the opaque cookie secret,
// storing only its hash, idle and absolute expiry, the device list a user
// sees, and revocation one by one or all at once. It does not set cookies;
// the hosted pages do.
package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Manager issues, checks and ends sessions.
type Manager struct {
	Store store.Store
	Now   func() time.Time
	// TouchEvery limits how often use of a session is written back (last seen
	// and the idle expiry); reads in between cost no write.
	TouchEvery time.Duration
}

// CookieName is the name of tenant slug's session cookie. Each tenant has its
// own, since __Host- cookies must have Path=/; the prefix (and Secure) need
// an https public URL, so the plain-http localhost quick start goes without.
func CookieName(slug string, secure bool) string {
	if secure {
		return "__Host-gatehouse_s_" + slug
	}
	return "gatehouse_s_" + slug
}

// HashToken returns what the store keeps of a cookie secret.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// New builds a session for user in tenant t authenticated with amr at now,
// and the cookie secret that names it. The caller stores it in its own
// transaction, next to the login's audit event.
func (m *Manager) New(t *ciam.Tenant, user ciam.UserID, amr []string, meta audit.Meta) (*ciam.Session, string) {
	now := m.Now().UTC()
	token := ciam.NewSecret()
	ua := meta.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
	}
	s := &ciam.Session{
		ID: ciam.SessionID(ciam.NewID()), TenantID: t.ID, UserID: user, TokenHash: HashToken(token),
		CreatedAt: now, AuthTime: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(t.SessionIdle), ExpiresAt: now.Add(t.SessionAbsolute),
		IP: meta.IP, UserAgent: ua, AMR: amr, ACR: ciam.ACRSingleFactor,
	}
	return s, token
}

// ErrNoSession is returned by Lookup for a missing, expired or revoked session.
var ErrNoSession = ciam.Errorf(ciam.Unauthenticated, "session_expired", "Your session has ended. Please log in again.")

// Lookup returns the live session named by token in tenant t.
func (m *Manager) Lookup(ctx context.Context, t *ciam.Tenant, token string) (*ciam.Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoSession
	}
	var s *ciam.Session
	err := m.Store.Read(ctx, t.ID, func(tx store.Tx) error {
		var err error
		s, err = tx.Sessions().ByTokenHash(ctx, HashToken(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	now := m.Now().UTC()
	if !s.Active(now) {
		return nil, ErrNoSession
	}
	if now.Sub(s.LastSeenAt) >= m.TouchEvery {
		idle := now.Add(t.SessionIdle)
		if idle.After(s.ExpiresAt) {
			idle = s.ExpiresAt
		}
		err := m.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
			return tx.Sessions().Touch(ctx, s.ID, now, idle)
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("touch session: %w", err)
		}
		s.LastSeenAt, s.IdleExpiresAt = now, idle
	}
	return s, nil
}

// List returns the user's live sessions, newest first.
func (m *Manager) List(ctx context.Context, t *ciam.Tenant, user ciam.UserID) ([]*ciam.Session, error) {
	var out []*ciam.Session
	err := m.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		out, err = tx.Sessions().ListActive(ctx, user, m.Now().UTC())
		return err
	})
	return out, err
}

// Revoke ends one of the user's sessions. Ending a session that is already
// over, or one of another user, is a NotFound error and changes nothing.
func (m *Manager) Revoke(ctx context.Context, t *ciam.Tenant, u *ciam.User, id ciam.SessionID, actor string, meta audit.Meta) error {
	now := m.Now().UTC()
	err := m.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Sessions().Revoke(ctx, u.ID, id, now); err != nil {
			return err
		}
		if err := NotifyEnded(ctx, tx, u.ID, []ciam.SessionID{id}, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.SessionRevoked, actor, string(id), ciam.OutcomeSuccess, u, meta, "", nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ciam.Errorf(ciam.NotFound, "session_not_found", "That session has already ended.")
	}
	return err
}

// RevokeOthers ends every session of the user except keep and returns how many it ended.
func (m *Manager) RevokeOthers(ctx context.Context, t *ciam.Tenant, u *ciam.User, keep ciam.SessionID, actor string, meta audit.Meta) (int, error) {
	now := m.Now().UTC()
	var n int
	err := m.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		ended, err := tx.Sessions().RevokeAll(ctx, u.ID, keep, now)
		if n = len(ended); err != nil || n == 0 {
			return err
		}
		if err := NotifyEnded(ctx, tx, u.ID, ended, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.SessionRevoked, actor, "others", ciam.OutcomeSuccess, u, meta, "", map[string]string{"count": fmt.Sprint(n)})
	})
	return n, err
}

// End is logout: it revokes the session s and records it.
func (m *Manager) End(ctx context.Context, t *ciam.Tenant, s *ciam.Session, meta audit.Meta) error {
	now := m.Now().UTC()
	return m.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, s.UserID)
		if err != nil {
			return err
		}
		if err := tx.Sessions().Revoke(ctx, s.UserID, s.ID, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil // already over: logging out twice is fine
			}
			return err
		}
		if err := NotifyEnded(ctx, tx, s.UserID, []ciam.SessionID{s.ID}, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.Logout, string(u.ID), string(s.ID), ciam.OutcomeSuccess, u, meta, "", nil)
	})
}

// Sweep deletes sessions that ended more than a day before now.
func (m *Manager) Sweep(ctx context.Context, t ciam.TenantID) (int, error) {
	var n int
	err := m.Store.Tx(ctx, t, func(tx store.Tx) error {
		var err error
		n, err = tx.Sessions().DeleteExpired(ctx, m.Now().UTC().Add(-24*time.Hour))
		return err
	})
	return n, err
}
