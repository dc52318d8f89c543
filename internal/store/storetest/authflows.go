package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Kinds of flows: the store keeps a flow's kind as it is given.
const (
	kindMFA          = "mfa"
	kindPasskeyLogin = "passkey_login"
	kindPasskeyAdd   = "passkey_create"
	kindTOTPEnrol    = "totp_enrol"
)

func authFlowFixture(kind string, user ciam.UserID, created time.Time) *ciam.AuthFlow {
	id := ciam.NewID()
	return &ciam.AuthFlow{
		ID: id, Kind: kind, BrowserHash: sha("browser " + id), UserID: user,
		Data:      `{"challenge":"` + id + `"}`,
		CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute),
	}
}

func addAuthFlow(t *testing.T, s store.Store, tenant ciam.TenantID, f *ciam.AuthFlow) *ciam.AuthFlow {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.AuthFlows().Create(t.Context(), f) })
	return f
}

func getAuthFlow(t *testing.T, s store.Store, tenant ciam.TenantID, id string) *ciam.AuthFlow {
	t.Helper()
	var f *ciam.AuthFlow
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		f, err = tx.AuthFlows().Get(t.Context(), id)
		return err
	})
	return f
}

// storedAuthFlow is f as a store reads it back.
func storedAuthFlow(f *ciam.AuthFlow) *ciam.AuthFlow {
	c := *f
	c.BrowserHash = nilIfEmpty(f.BrowserHash)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = stored(f.CreatedAt), stored(f.ExpiresAt), storedOpt(f.UsedAt)
	return &c
}

func authFlowsCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	ss := newSession(t, s, tn.ID, u.ID, base())
	mfa := authFlowFixture(kindMFA, u.ID, base())
	mfa.SessionID, mfa.Attempts = ss.ID, 2
	mfa.Data = "data\x00with nul"
	addAuthFlow(t, s, tn.ID, mfa)
	if mfa.TenantID != tn.ID {
		t.Errorf("Create set TenantID %q, want %q", mfa.TenantID, tn.ID)
	}
	want := storedAuthFlow(mfa)
	want.Data = "data\uFFFDwith nul"
	wantEqual(t, "Get", getAuthFlow(t, s, tn.ID, mfa.ID), want)

	// A passkey login knows no user yet; a flow's user need not exist.
	anon := addAuthFlow(t, s, tn.ID, authFlowFixture(kindPasskeyLogin, "", base()))
	wantEqual(t, "Get of a flow without a user", getAuthFlow(t, s, tn.ID, anon.ID), storedAuthFlow(anon))
	done := authFlowFixture(kindTOTPEnrol, "no-such-user", base())
	done.UsedAt = base().Add(time.Second)
	addAuthFlow(t, s, tn.ID, done)
	wantEqual(t, "Get of a used flow", getAuthFlow(t, s, tn.ID, done.ID), storedAuthFlow(done))

	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.AuthFlows().Get(ctx, "nope")
		wantErr(t, "Get of an unknown id", err, store.ErrNotFound)
		dup := authFlowFixture(kindPasskeyAdd, u.ID, base())
		dup.ID = mfa.ID
		wantErr(t, "Create with a taken id", tx.AuthFlows().Create(ctx, dup), store.ErrConflict)
		// The transaction is still usable.
		return tx.AuthFlows().Create(ctx, authFlowFixture(kindPasskeyAdd, u.ID, base()))
	})
	wantEqual(t, "Get after the refused Create", getAuthFlow(t, s, tn.ID, mfa.ID), want)
	unknown := ciam.TenantID(ciam.NewID())
	err := s.Tx(ctx, unknown, func(tx store.Tx) error {
		return tx.AuthFlows().Create(ctx, authFlowFixture(kindPasskeyLogin, "", base()))
	})
	wantErr(t, "Create in an unknown tenant", err, store.ErrNotFound)
}

func authFlowsConsumeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	f := addAuthFlow(t, s, tn.ID, authFlowFixture(kindMFA, "u", base()))
	at := base().Add(time.Minute)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Consume(ctx, f.ID, at) })
	got := getAuthFlow(t, s, tn.ID, f.ID)
	if !got.UsedAt.Equal(stored(at)) || got.Live(at) {
		t.Errorf("after Consume: UsedAt %v, live %v; want %v and not live", got.UsedAt, got.Live(at), stored(at))
	}
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Consume(ctx, f.ID, at) })
	wantErr(t, "second Consume", err, store.ErrConflict)
	if got := getAuthFlow(t, s, tn.ID, f.ID); !got.UsedAt.Equal(stored(at)) {
		t.Errorf("the refused Consume moved UsedAt to %v", got.UsedAt)
	}
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Consume(ctx, "nope", at) })
	wantErr(t, "Consume of an unknown id", err, store.ErrNotFound)

	expired := addAuthFlow(t, s, tn.ID, authFlowFixture(kindPasskeyLogin, "", base()))
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Consume(ctx, expired.ID, expired.ExpiresAt) })
	wantErr(t, "Consume at the expiry", err, store.ErrConflict)
	if got := getAuthFlow(t, s, tn.ID, expired.ID); !got.UsedAt.IsZero() {
		t.Errorf("a refused Consume changed the flow: %+v", got)
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		return tx.AuthFlows().Consume(ctx, expired.ID, expired.ExpiresAt.Add(-time.Microsecond))
	})
}

func authFlowsConcurrentConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	f := addAuthFlow(t, s, tn.ID, authFlowFixture(kindMFA, "u", base()))
	errs := collect(racers, func(i int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.AuthFlows().Consume(ctx, f.ID, base().Add(time.Duration(i+1)*time.Millisecond))
		})
	})
	wantOneWinner(t, "concurrent Consume", errs)
	if got := getAuthFlow(t, s, tn.ID, f.ID); got.UsedAt.IsZero() {
		t.Errorf("no Consume was recorded")
	}
}

func authFlowsAttemptLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	f := addAuthFlow(t, s, tn.ID, authFlowFixture(kindMFA, "u", base()))
	at := base().Add(time.Second)
	// 12 racing attempts against a limit of 5: exactly 5 are counted.
	errs := collect(12, func(int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Attempt(ctx, f.ID, 5, at) })
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racing Attempt: %v", err)
		}
	}
	if ok != 5 {
		t.Errorf("%d attempts counted, want 5", ok)
	}
	if got := getAuthFlow(t, s, tn.ID, f.ID); got.Attempts != 5 || !got.UsedAt.IsZero() {
		t.Errorf("after the attempts: Attempts %d UsedAt %v, want 5 and unused", got.Attempts, got.UsedAt)
	}
	// A higher limit admits more on the same flow.
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Attempt(ctx, f.ID, 6, at) })

	used := addAuthFlow(t, s, tn.ID, authFlowFixture(kindMFA, "u", base()))
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Consume(ctx, used.ID, at) })
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Attempt(ctx, used.ID, 5, at) })
	wantErr(t, "Attempt on a used flow", err, store.ErrConflict)
	fresh := addAuthFlow(t, s, tn.ID, authFlowFixture(kindTOTPEnrol, "u", base()))
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Attempt(ctx, fresh.ID, 5, fresh.ExpiresAt) })
	wantErr(t, "Attempt on an expired flow", err, store.ErrConflict)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.AuthFlows().Attempt(ctx, "nope", 5, at) })
	wantErr(t, "Attempt on an unknown id", err, store.ErrNotFound)
	if got := getAuthFlow(t, s, tn.ID, fresh.ID); got.Attempts != 0 {
		t.Errorf("a refused Attempt counted: %d", got.Attempts)
	}
}

func authFlowsDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	cutoff := base().Add(time.Hour)
	gone := addAuthFlow(t, s, tn.ID, authFlowFixture(kindPasskeyLogin, "", cutoff.Add(-6*time.Minute)))
	edge := addAuthFlow(t, s, tn.ID, authFlowFixture(kindPasskeyLogin, "", cutoff.Add(-5*time.Minute))) // expires at the cutoff
	live := addAuthFlow(t, s, tn.ID, authFlowFixture(kindMFA, "u", cutoff))
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		n, err := tx.AuthFlows().DeleteExpired(ctx, cutoff)
		wantCount(t, "DeleteExpired", n, err, 1)
		return nil
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.AuthFlows().Get(ctx, gone.ID)
		wantErr(t, "Get of a deleted flow", err, store.ErrNotFound)
		for _, kept := range []*ciam.AuthFlow{edge, live} {
			if _, err := tx.AuthFlows().Get(ctx, kept.ID); err != nil {
				t.Errorf("Get of a kept flow: %v", err)
			}
		}
		return nil
	})
}

func isolationAuthFlows(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	f := addAuthFlow(t, s, a.ID, authFlowFixture(kindMFA, "u", base()))
	at := base().Add(time.Second)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.AuthFlows().Get(ctx, f.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		wantErr(t, "Consume from B", tx.AuthFlows().Consume(ctx, f.ID, at), store.ErrNotFound)
		wantErr(t, "Attempt from B", tx.AuthFlows().Attempt(ctx, f.ID, 5, at), store.ErrNotFound)
		n, err := tx.AuthFlows().DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 0)
		// The same id may exist in another tenant.
		same := authFlowFixture(kindPasskeyLogin, "", base())
		same.ID = f.ID
		return tx.AuthFlows().Create(ctx, same)
	})
	wantEqual(t, "A's flow", getAuthFlow(t, s, a.ID, f.ID), storedAuthFlow(f))
	if got := getAuthFlow(t, s, b.ID, f.ID); got.TenantID != b.ID || got.Kind != kindPasskeyLogin {
		t.Errorf("B's flow with A's id: %+v", got)
	}
}
