package storetest

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func emailTokenFixture(user ciam.UserID, purpose string, created time.Time) *ciam.EmailToken {
	id := ciam.NewID()
	link := sha256.Sum256([]byte("link " + id))
	code := sha256.Sum256([]byte("code " + id))
	return &ciam.EmailToken{
		ID: id, UserID: user, Purpose: purpose, Email: "ann@example.com",
		LinkHash: link[:], CodeHash: code[:], Data: "",
		CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
}

func addEmailToken(t *testing.T, s store.Store, tenant ciam.TenantID, et *ciam.EmailToken) *ciam.EmailToken {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.EmailTokens().Create(t.Context(), et) })
	return et
}

func getEmailToken(t *testing.T, s store.Store, tenant ciam.TenantID, id string) *ciam.EmailToken {
	t.Helper()
	var et *ciam.EmailToken
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		et, err = tx.EmailTokens().Get(t.Context(), id)
		return err
	})
	return et
}

func storedEmailToken(et *ciam.EmailToken) *ciam.EmailToken {
	c := *et
	c.CreatedAt, c.ExpiresAt, c.UsedAt = stored(et.CreatedAt), stored(et.ExpiresAt), storedOpt(et.UsedAt)
	c.CodeHash, c.BrowserHash = nilIfEmpty(et.CodeHash), nilIfEmpty(et.BrowserHash)
	return &c
}

func emailTokensCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	bound := emailTokenFixture(u.ID, ciam.PurposeLogin, base())
	bound.BrowserHash = []byte("0123456789abcdef0123456789abcdef")
	bound.Data = "data\x00with nul"
	addEmailToken(t, s, tn.ID, bound)
	want := storedEmailToken(bound)
	want.Data = "data\uFFFDwith nul"
	wantEqual(t, "Get", getEmailToken(t, s, tn.ID, bound.ID), want)

	linkOnly := emailTokenFixture(u.ID, ciam.PurposePasswordReset, base())
	linkOnly.CodeHash = nil
	addEmailToken(t, s, tn.ID, linkOnly)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.EmailTokens().ByLinkHash(ctx, linkOnly.LinkHash)
		if err != nil {
			return err
		}
		wantEqual(t, "ByLinkHash", got, storedEmailToken(linkOnly))
		_, err = tx.EmailTokens().ByLinkHash(ctx, []byte("nope"))
		wantErr(t, "ByLinkHash of an unknown hash", err, store.ErrNotFound)
		_, err = tx.EmailTokens().Get(ctx, "nope")
		wantErr(t, "Get of an unknown id", err, store.ErrNotFound)
		_, err = tx.EmailTokens().Latest(ctx, u.ID, ciam.PurposeEmailChange)
		wantErr(t, "Latest with none", err, store.ErrNotFound)
		return nil
	})

	// A taken id or link hash is a conflict that leaves the transaction usable;
	// an unknown user is not found.
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		dup := emailTokenFixture(u.ID, ciam.PurposeVerifyEmail, base())
		dup.ID = bound.ID
		wantErr(t, "Create with a taken id", tx.EmailTokens().Create(ctx, dup), store.ErrConflict)
		dup = emailTokenFixture(u.ID, ciam.PurposeVerifyEmail, base())
		dup.LinkHash = linkOnly.LinkHash
		wantErr(t, "Create with a taken link hash", tx.EmailTokens().Create(ctx, dup), store.ErrConflict)
		wantErr(t, "Create for an unknown user", tx.EmailTokens().Create(ctx, emailTokenFixture("nobody", ciam.PurposeVerifyEmail, base())), store.ErrNotFound)
		return tx.EmailTokens().Create(ctx, emailTokenFixture(u.ID, ciam.PurposeVerifyEmail, base()))
	})
}

func emailTokensSupersede(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ann := newUser(t, s, tn.ID, "ann@example.com")
	bob := newUser(t, s, tn.ID, "bob@example.com")
	first := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposePasswordReset, base()))
	other := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposeVerifyEmail, base()))
	bobs := addEmailToken(t, s, tn.ID, emailTokenFixture(bob.ID, ciam.PurposePasswordReset, base()))
	second := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposePasswordReset, base().Add(time.Minute)))

	if got := getEmailToken(t, s, tn.ID, first.ID); !got.UsedAt.Equal(stored(second.CreatedAt)) {
		t.Errorf("superseded token UsedAt = %v, want %v", got.UsedAt, stored(second.CreatedAt))
	}
	for _, et := range []*ciam.EmailToken{second, other, bobs} {
		if got := getEmailToken(t, s, tn.ID, et.ID); !got.UsedAt.IsZero() {
			t.Errorf("token %s of %s/%s ended by another's Create", et.ID, et.UserID, et.Purpose)
		}
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.EmailTokens().Latest(ctx, ann.ID, ciam.PurposePasswordReset)
		if err != nil {
			return err
		}
		if got.ID != second.ID {
			t.Errorf("Latest = %s, want %s", got.ID, second.ID)
		}
		return nil
	})
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, first.ID, base().Add(2*time.Minute)) })
	wantErr(t, "Consume of a superseded token", err, store.ErrConflict)
}

func emailTokensConsumeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	et := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposeLogin, base()))
	at := base().Add(time.Minute)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, et.ID, at) })
	if got := getEmailToken(t, s, tn.ID, et.ID); !got.UsedAt.Equal(stored(at)) {
		t.Errorf("UsedAt = %v, want %v", got.UsedAt, stored(at))
	}
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, et.ID, at) })
	wantErr(t, "second Consume", err, store.ErrConflict)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, "nope", at) })
	wantErr(t, "Consume of an unknown id", err, store.ErrNotFound)

	expired := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposeVerifyEmail, base()))
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, expired.ID, expired.ExpiresAt) })
	wantErr(t, "Consume at the expiry", err, store.ErrConflict)
	if got := getEmailToken(t, s, tn.ID, expired.ID); !got.UsedAt.IsZero() {
		t.Errorf("a refused Consume changed the token: %+v", got)
	}
}

func emailTokensConcurrentConsume(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	et := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposePasswordReset, base()))
	errs := collect(16, func(int) error {
		return s.Tx(t.Context(), tn.ID, func(tx store.Tx) error {
			return tx.EmailTokens().Consume(t.Context(), et.ID, base().Add(time.Second))
		})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racing Consume: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d racing Consumes succeeded, want exactly 1", ok)
	}
}

func emailTokensAttemptLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	et := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposeLogin, base()))
	at := base().Add(time.Second)
	// 12 racing attempts against a limit of 5: exactly 5 are counted.
	errs := collect(12, func(int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Attempt(ctx, et.ID, 5, at) })
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
	if got := getEmailToken(t, s, tn.ID, et.ID); got.Attempts != 5 || !got.UsedAt.IsZero() {
		t.Errorf("after the attempts: Attempts %d UsedAt %v, want 5 and unused", got.Attempts, got.UsedAt)
	}

	used := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposeVerifyEmail, base()))
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Consume(ctx, used.ID, at) })
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Attempt(ctx, used.ID, 5, at) })
	wantErr(t, "Attempt on a used token", err, store.ErrConflict)
	fresh := addEmailToken(t, s, tn.ID, emailTokenFixture(u.ID, ciam.PurposeEmailChange, base()))
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Attempt(ctx, fresh.ID, 5, fresh.ExpiresAt) })
	wantErr(t, "Attempt on an expired token", err, store.ErrConflict)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.EmailTokens().Attempt(ctx, "nope", 5, at) })
	wantErr(t, "Attempt on an unknown id", err, store.ErrNotFound)
}

func emailTokensRevokeCountDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ann := newUser(t, s, tn.ID, "ann@example.com")
	bob := newUser(t, s, tn.ID, "bob@example.com")
	reset := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposePasswordReset, base()))
	login := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposeLogin, base()))
	verify := addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposeVerifyEmail, base()))
	bobs := addEmailToken(t, s, tn.ID, emailTokenFixture(bob.ID, ciam.PurposePasswordReset, base()))
	at := base().Add(time.Minute)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		n, err := tx.EmailTokens().Revoke(ctx, ann.ID, []string{ciam.PurposePasswordReset, ciam.PurposeLogin}, at)
		wantCount(t, "Revoke", n, err, 2)
		n, err = tx.EmailTokens().Revoke(ctx, ann.ID, []string{ciam.PurposePasswordReset}, at)
		wantCount(t, "Revoke again", n, err, 0)
		return nil
	})
	for _, et := range []*ciam.EmailToken{reset, login} {
		if got := getEmailToken(t, s, tn.ID, et.ID); !got.UsedAt.Equal(stored(at)) {
			t.Errorf("revoked %s token UsedAt = %v", et.Purpose, got.UsedAt)
		}
	}
	for _, et := range []*ciam.EmailToken{verify, bobs} {
		if got := getEmailToken(t, s, tn.ID, et.ID); !got.UsedAt.IsZero() {
			t.Errorf("token %s/%s ended by another's Revoke", et.UserID, et.Purpose)
		}
	}

	addEmailToken(t, s, tn.ID, emailTokenFixture(ann.ID, ciam.PurposeVerifyEmail, base().Add(10*time.Minute)))
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		n, err := tx.EmailTokens().CountSince(ctx, ann.ID, ciam.PurposeVerifyEmail, base())
		wantCount(t, "CountSince base", n, err, 2)
		n, err = tx.EmailTokens().CountSince(ctx, ann.ID, ciam.PurposeVerifyEmail, base().Add(time.Second))
		wantCount(t, "CountSince later", n, err, 1)
		n, err = tx.EmailTokens().CountSince(ctx, bob.ID, ciam.PurposeVerifyEmail, base())
		wantCount(t, "CountSince of another user", n, err, 0)
		return nil
	})
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		n, err := tx.EmailTokens().DeleteExpired(ctx, base().Add(time.Hour+time.Minute))
		wantCount(t, "DeleteExpired", n, err, 4)
		return nil
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.EmailTokens().Get(ctx, reset.ID)
		wantErr(t, "Get after DeleteExpired", err, store.ErrNotFound)
		return nil
	})
}

func isolationEmailTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newTenant(t, s, "acme")
	b := newTenant(t, s, "globex")
	u := newUser(t, s, a.ID, "ann@example.com")
	et := addEmailToken(t, s, a.ID, emailTokenFixture(u.ID, ciam.PurposePasswordReset, base()))
	at := base().Add(time.Second)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.EmailTokens().Get(ctx, et.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		_, err = tx.EmailTokens().ByLinkHash(ctx, et.LinkHash)
		wantErr(t, "ByLinkHash from B", err, store.ErrNotFound)
		_, err = tx.EmailTokens().Latest(ctx, u.ID, ciam.PurposePasswordReset)
		wantErr(t, "Latest from B", err, store.ErrNotFound)
		wantErr(t, "Consume from B", tx.EmailTokens().Consume(ctx, et.ID, at), store.ErrNotFound)
		wantErr(t, "Attempt from B", tx.EmailTokens().Attempt(ctx, et.ID, 5, at), store.ErrNotFound)
		n, err := tx.EmailTokens().Revoke(ctx, u.ID, []string{ciam.PurposePasswordReset}, at)
		wantCount(t, "Revoke from B", n, err, 0)
		n, err = tx.EmailTokens().CountSince(ctx, u.ID, ciam.PurposePasswordReset, base())
		wantCount(t, "CountSince from B", n, err, 0)
		n, err = tx.EmailTokens().DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 0)
		wantErr(t, "Create for A's user in B", tx.EmailTokens().Create(ctx, emailTokenFixture(u.ID, ciam.PurposeLogin, base())), store.ErrNotFound)
		return nil
	})
	if got := getEmailToken(t, s, a.ID, et.ID); !got.UsedAt.IsZero() || got.Attempts != 0 {
		t.Errorf("A's token changed: %+v", got)
	}
}
