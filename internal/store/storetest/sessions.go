package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// storedSession is s as a store reads it back.
func storedSession(s *ciam.Session) *ciam.Session {
	c := *s
	c.CreatedAt, c.AuthTime, c.LastSeenAt = stored(s.CreatedAt), stored(s.AuthTime), stored(s.LastSeenAt)
	c.IdleExpiresAt, c.ExpiresAt = stored(s.IdleExpiresAt), stored(s.ExpiresAt)
	if !s.RevokedAt.IsZero() {
		c.RevokedAt = stored(s.RevokedAt)
	}
	return &c
}

func sessionIDs(ss []*ciam.Session) []ciam.SessionID {
	out := []ciam.SessionID{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func sessionsCreateLookup(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	ss := sessionFixture(u.ID, base())
	ss.AMR = []string{"pwd", "otp"}
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, ss) })
	if ss.TenantID != tn.ID {
		t.Errorf("Create set TenantID %q, want %q", ss.TenantID, tn.ID)
	}
	want := storedSession(ss)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().ByTokenHash(ctx, ss.TokenHash)
		if err != nil {
			return err
		}
		wantEqual(t, "ByTokenHash", got, want)
		got, err = tx.Sessions().Get(ctx, ss.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get", got, want)
		_, err = tx.Sessions().ByTokenHash(ctx, []byte("no such token"))
		wantErr(t, "ByTokenHash of an unknown token", err, store.ErrNotFound)
		_, err = tx.Sessions().Get(ctx, ciam.SessionID(ciam.NewID()))
		wantErr(t, "Get of an unknown id", err, store.ErrNotFound)
		return nil
	})
}

func sessionsCreateConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	first := newSession(t, s, tn.ID, u.ID, base())

	sameToken := sessionFixture(u.ID, base())
	sameToken.TokenHash = first.TokenHash
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, sameToken) })
	wantErr(t, "Create with a taken token hash", err, store.ErrConflict)

	sameID := sessionFixture(u.ID, base())
	sameID.ID = first.ID
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, sameID) })
	wantErr(t, "Create with a taken id", err, store.ErrConflict)

	orphan := sessionFixture(ciam.UserID(ciam.NewID()), base())
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, orphan) })
	wantErr(t, "Create for an unknown user", err, store.ErrNotFound)
}

func sessionsTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	ss := newSession(t, s, tn.ID, u.ID, base())

	seen := base().Add(30 * time.Minute)
	idle := seen.Add(time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Touch(ctx, ss.ID, seen, idle) })
	get := func() *ciam.Session {
		var got *ciam.Session
		mustView(t, s, tn.ID, func(tx store.Tx) (err error) {
			got, err = tx.Sessions().Get(ctx, ss.ID)
			return err
		})
		return got
	}
	got := get()
	if !got.LastSeenAt.Equal(stored(seen)) || !got.IdleExpiresAt.Equal(stored(idle)) {
		t.Errorf("after Touch: last seen %v, idle expiry %v; want %v, %v", got.LastSeenAt, got.IdleExpiresAt, stored(seen), stored(idle))
	}

	// A late, concurrent Touch never shortens the idle expiry.
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Touch(ctx, ss.ID, seen.Add(time.Second), idle.Add(-time.Minute))
	})
	if got := get(); !got.IdleExpiresAt.Equal(stored(idle)) {
		t.Errorf("Touch moved the idle expiry back to %v", got.IdleExpiresAt)
	}

	// No Touch after the idle expiry, after the absolute expiry, or after revocation.
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Touch(ctx, ss.ID, idle.Add(time.Second), idle.Add(time.Hour))
	})
	wantErr(t, "Touch after the idle expiry", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Touch(ctx, ss.ID, ss.ExpiresAt, ss.ExpiresAt.Add(time.Hour))
	})
	wantErr(t, "Touch at the absolute expiry", err, store.ErrNotFound)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, ss.ID, seen) })
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Touch(ctx, ss.ID, seen.Add(time.Second), idle)
	})
	wantErr(t, "Touch of a revoked session", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Touch(ctx, ciam.SessionID(ciam.NewID()), seen, idle)
	})
	wantErr(t, "Touch of an unknown session", err, store.ErrNotFound)
}

func sessionsListActive(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	other := newUser(t, s, tn.ID, "grace@example.com")
	now := base().Add(48 * time.Hour)

	older := newSession(t, s, tn.ID, u.ID, now.Add(-20*time.Minute))
	newer := newSession(t, s, tn.ID, u.ID, now.Add(-10*time.Minute))
	newSession(t, s, tn.ID, u.ID, now.Add(-25*time.Hour))             // past its absolute expiry
	newSession(t, s, tn.ID, u.ID, now.Add(-2*time.Hour))              // idle for too long
	newSession(t, s, tn.ID, u.ID, now.Add(-time.Hour))                // idle expiry is exactly now
	revoked := newSession(t, s, tn.ID, u.ID, now.Add(-5*time.Minute)) // revoked below
	newSession(t, s, tn.ID, other.ID, now.Add(-time.Minute))          // another user's
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, revoked.ID, now) })

	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().ListActive(ctx, u.ID, now)
		if err != nil {
			return err
		}
		wantEqual(t, "ListActive ids", sessionIDs(got), []ciam.SessionID{newer.ID, older.ID})
		if len(got) == 2 {
			wantEqual(t, "ListActive[0]", got[0], storedSession(newer))
		}
		return nil
	})
}

func sessionsRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	other := newUser(t, s, tn.ID, "grace@example.com")
	ss := newSession(t, s, tn.ID, u.ID, base())
	at := base().Add(time.Minute)

	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, other.ID, ss.ID, at) })
	wantErr(t, "Revoke of another user's session", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Revoke(ctx, u.ID, ciam.SessionID(ciam.NewID()), at)
	})
	wantErr(t, "Revoke of an unknown session", err, store.ErrNotFound)

	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, ss.ID, at) })
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, ss.ID, at) })
	wantErr(t, "second Revoke", err, store.ErrNotFound)

	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().Get(ctx, ss.ID)
		if err != nil {
			return err
		}
		if !got.RevokedAt.Equal(stored(at)) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, stored(at))
		}
		if got.Active(at) {
			t.Errorf("a revoked session is active")
		}
		return nil
	})

	expired := newSession(t, s, tn.ID, u.ID, base())
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Sessions().Revoke(ctx, u.ID, expired.ID, expired.ExpiresAt.Add(time.Second))
	})
	wantErr(t, "Revoke of an expired session", err, store.ErrNotFound)
}

func sessionsRevokeAll(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	other := newUser(t, s, tn.ID, "grace@example.com")
	now := base().Add(30 * time.Minute)
	keep := newSession(t, s, tn.ID, u.ID, base())
	s1 := newSession(t, s, tn.ID, u.ID, base().Add(time.Minute))
	s2 := newSession(t, s, tn.ID, u.ID, base().Add(2*time.Minute))
	gone := newSession(t, s, tn.ID, u.ID, base().Add(3*time.Minute))
	newSession(t, s, tn.ID, u.ID, base().Add(-2*time.Hour)) // expired
	otherS := newSession(t, s, tn.ID, other.ID, base())
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, gone.ID, now) })

	var ended []ciam.SessionID
	mustTx(t, s, tn.ID, func(tx store.Tx) (err error) {
		ended, err = tx.Sessions().RevokeAll(ctx, u.ID, keep.ID, now)
		return err
	})
	slices.Sort(ended)
	want := []ciam.SessionID{s1.ID, s2.ID}
	slices.Sort(want)
	wantEqual(t, "RevokeAll(keep) ended", ended, want)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		live, err := tx.Sessions().ListActive(ctx, u.ID, now)
		if err != nil {
			return err
		}
		wantEqual(t, "live after RevokeAll(keep)", sessionIDs(live), []ciam.SessionID{keep.ID})
		live, err = tx.Sessions().ListActive(ctx, other.ID, now)
		if err != nil {
			return err
		}
		wantEqual(t, "the other user's sessions", sessionIDs(live), []ciam.SessionID{otherS.ID})
		return nil
	})
	mustTx(t, s, tn.ID, func(tx store.Tx) (err error) {
		ended, err = tx.Sessions().RevokeAll(ctx, u.ID, "", now)
		return err
	})
	wantEqual(t, "RevokeAll(no keep) ended", ended, []ciam.SessionID{keep.ID})
	mustTx(t, s, tn.ID, func(tx store.Tx) (err error) {
		ended, err = tx.Sessions().RevokeAll(ctx, u.ID, "", now)
		return err
	})
	wantEqual(t, "RevokeAll with nothing live ended", ended, []ciam.SessionID{})
}

func sessionsDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	cutoff := base().Add(48 * time.Hour)

	live := newSession(t, s, tn.ID, u.ID, cutoff.Add(-10*time.Minute))
	absolute := newSession(t, s, tn.ID, u.ID, cutoff.Add(-25*time.Hour))
	idle := newSession(t, s, tn.ID, u.ID, cutoff.Add(-2*time.Hour))
	oldRevoked := newSession(t, s, tn.ID, u.ID, cutoff.Add(-30*time.Minute))
	newRevoked := newSession(t, s, tn.ID, u.ID, cutoff.Add(-30*time.Minute))
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.Sessions().Revoke(ctx, u.ID, oldRevoked.ID, cutoff.Add(-time.Minute)); err != nil {
			return err
		}
		return tx.Sessions().Revoke(ctx, u.ID, newRevoked.ID, cutoff.Add(time.Minute))
	})

	var n int
	mustTx(t, s, tn.ID, func(tx store.Tx) (err error) {
		n, err = tx.Sessions().DeleteExpired(ctx, cutoff)
		return err
	})
	if n != 3 {
		t.Errorf("DeleteExpired removed %d sessions, want 3", n)
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		for _, gone := range []*ciam.Session{absolute, idle, oldRevoked} {
			_, err := tx.Sessions().Get(ctx, gone.ID)
			wantErr(t, "Get of a deleted session", err, store.ErrNotFound)
		}
		for _, kept := range []*ciam.Session{live, newRevoked} {
			if _, err := tx.Sessions().Get(ctx, kept.ID); err != nil {
				t.Errorf("Get of a kept session: %v", err)
			}
		}
		return nil
	})
}

// sessionsUntrustedText stores a session whose user agent holds invalid
// UTF-8 and NUL bytes, as a request header can: Create succeeds on every
// dialect and the session reads back as Create left it.
func sessionsUntrustedText(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	ss := sessionFixture(u.ID, base())
	ss.UserAgent = "curl\xff/8\x00.0"
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, ss) })
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().Get(ctx, ss.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get", got, storedSession(ss))
		return nil
	})
}

func getSession(t *testing.T, s store.Store, tenant ciam.TenantID, id ciam.SessionID) *ciam.Session {
	t.Helper()
	var got *ciam.Session
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		got, err = tx.Sessions().Get(t.Context(), id)
		return err
	})
	return got
}

func sessionsReauthenticate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	ss := newSession(t, s, tn.ID, u.ID, base())
	at := base().Add(30 * time.Minute)
	newHash := sha("rotated " + string(ss.ID))
	reauth := func(id ciam.SessionID, oldHash, newHash []byte, at time.Time) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Sessions().Reauthenticate(ctx, id, oldHash, newHash, at, []string{"pwd", "otp", "mfa"}, "urn:gatehouse:aal2")
		})
	}
	wantErr(t, "Reauthenticate", reauth(ss.ID, ss.TokenHash, newHash, at), nil)
	want := storedSession(ss)
	want.TokenHash, want.AuthTime = newHash, stored(at)
	want.AMR, want.ACR = []string{"pwd", "otp", "mfa"}, "urn:gatehouse:aal2"
	wantEqual(t, "Get after Reauthenticate", getSession(t, s, tn.ID, ss.ID), want)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Sessions().ByTokenHash(ctx, ss.TokenHash)
		wantErr(t, "ByTokenHash of the old hash", err, store.ErrNotFound)
		got, err := tx.Sessions().ByTokenHash(ctx, newHash)
		if err != nil || got.ID != ss.ID {
			t.Errorf("ByTokenHash of the new hash = %+v, %v", got, err)
		}
		return nil
	})

	// From the old hash again: a racing rotation, a conflict that changes nothing.
	wantErr(t, "Reauthenticate from the old hash", reauth(ss.ID, ss.TokenHash, sha("other"), at.Add(time.Minute)), store.ErrConflict)
	wantEqual(t, "Get after the refused Reauthenticate", getSession(t, s, tn.ID, ss.ID), want)
	// A new hash that another session holds is a conflict that leaves the
	// transaction usable.
	other := newSession(t, s, tn.ID, u.ID, base())
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		err := tx.Sessions().Reauthenticate(ctx, ss.ID, newHash, other.TokenHash, at, []string{"pwd"}, "")
		wantErr(t, "Reauthenticate to a taken hash", err, store.ErrConflict)
		return tx.Sessions().Touch(ctx, ss.ID, at, at.Add(time.Hour))
	})

	// Not live at at: not found, whatever the hash.
	wantErr(t, "Reauthenticate of an unknown session", reauth(ciam.SessionID(ciam.NewID()), newHash, sha("x"), at), store.ErrNotFound)
	idle := newSession(t, s, tn.ID, u.ID, base())
	wantErr(t, "Reauthenticate at the idle expiry", reauth(idle.ID, idle.TokenHash, sha("y"), idle.IdleExpiresAt), store.ErrNotFound)
	wantErr(t, "Reauthenticate after the idle expiry with a stale hash", reauth(idle.ID, sha("stale"), sha("y"), idle.IdleExpiresAt), store.ErrNotFound)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Touch(ctx, other.ID, at, other.ExpiresAt.Add(time.Hour)) })
	wantErr(t, "Reauthenticate at the absolute expiry", reauth(other.ID, other.TokenHash, sha("z"), other.ExpiresAt), store.ErrNotFound)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Revoke(ctx, u.ID, ss.ID, at.Add(time.Minute)) })
	wantErr(t, "Reauthenticate of a revoked session", reauth(ss.ID, newHash, sha("w"), at.Add(2*time.Minute)), store.ErrNotFound)
	wantEqual(t, "the idle session after the refused Reauthenticate", getSession(t, s, tn.ID, idle.ID), storedSession(idle))
}

func sessionsConcurrentReauthenticate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	ss := newSession(t, s, tn.ID, u.ID, base())
	hash := func(i int) []byte { return sha(fmt.Sprint("racer ", i)) }
	errs := collect(racers, func(i int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Sessions().Reauthenticate(ctx, ss.ID, ss.TokenHash, hash(i), base().Add(time.Minute), []string{"pwd", "otp"}, "")
		})
	})
	wantOneWinner(t, "concurrent Reauthenticate", errs)
	got := getSession(t, s, tn.ID, ss.ID)
	for i, err := range errs {
		if err == nil && !bytes.Equal(got.TokenHash, hash(i)) {
			t.Errorf("the session holds %x, not the winner's hash", got.TokenHash)
		}
	}
}
