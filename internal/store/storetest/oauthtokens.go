package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// racers is how many callers race for one single-use artifact.
const racers = 20

func authCodesCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	c := authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base())
	mustTx(t, s, tn, func(tx store.Tx) error { return tx.AuthCodes().Create(ctx, c) })
	if c.TenantID != tn {
		t.Errorf("Create set TenantID %q, want %q", c.TenantID, tn)
	}
	wantEqual(t, "Get", getAuthCode(t, s, tn, c.Hash), storedAuthCode(c))

	// A code outside a browser session, with no scopes and no AMR.
	bare := authCodeFixture(p.client.ID, p.user.ID, "", base())
	bare.Scopes, bare.AMR, bare.Nonce = nil, nil, ""
	newAuthCode(t, s, tn, bare)
	wantEqual(t, "Get of a bare code", getAuthCode(t, s, tn, bare.Hash), storedAuthCode(bare))

	mustView(t, s, tn, func(tx store.Tx) error {
		_, err := tx.AuthCodes().Get(ctx, sha("no such code"))
		wantErr(t, "Get of an unknown code", err, store.ErrNotFound)
		return nil
	})
}

func authCodesCreateConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	c := newAuthCode(t, s, tn, authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base()))
	mustTx(t, s, tn, func(tx store.Tx) error {
		dup := authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base())
		dup.Hash = c.Hash
		wantErr(t, "Create with a taken hash", tx.AuthCodes().Create(ctx, dup), store.ErrConflict)
		noUser := authCodeFixture(p.client.ID, ciam.UserID(ciam.NewID()), "", base())
		wantErr(t, "Create for an unknown user", tx.AuthCodes().Create(ctx, noUser), store.ErrNotFound)
		noClient := authCodeFixture("no-such-client", p.user.ID, "", base())
		wantErr(t, "Create for an unknown client", tx.AuthCodes().Create(ctx, noClient), store.ErrNotFound)
		// The transaction is still usable.
		return tx.AuthCodes().Create(ctx, authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base()))
	})
}

// authCodesConsumeOnce redeems a code, then replays it: the replay is
// ErrConflict and the transaction that saw it can still revoke what the
// code issued, as a token endpoint does.
func authCodesConsumeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	c := newAuthCode(t, s, tn, authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base()))
	rt := newRefresh(t, s, tn, refreshFixture(p.client.ID, p.user.ID, p.session.ID, "family-1", base()))
	at := base().Add(10 * time.Second)
	mustTx(t, s, tn, func(tx store.Tx) error { return tx.AuthCodes().Consume(ctx, c.Hash, at) })
	c.ConsumedAt = at
	wantEqual(t, "Get after Consume", getAuthCode(t, s, tn, c.Hash), storedAuthCode(c))

	mustTx(t, s, tn, func(tx store.Tx) error {
		wantErr(t, "second Consume", tx.AuthCodes().Consume(ctx, c.Hash, at.Add(time.Second)), store.ErrConflict)
		n, err := tx.RefreshTokens().RevokeFamily(ctx, "family-1", at.Add(time.Second))
		wantCount(t, "RevokeFamily after a replay", n, err, 1)
		return nil
	})
	if got := getAuthCode(t, s, tn, c.Hash); !got.ConsumedAt.Equal(stored(at)) {
		t.Errorf("the replay moved ConsumedAt to %v", got.ConsumedAt)
	}
	if got := getRefresh(t, s, tn, rt.Hash); got.RevokedAt.IsZero() {
		t.Errorf("the revocation after a replay did not commit")
	}
	err := s.Tx(ctx, tn, func(tx store.Tx) error { return tx.AuthCodes().Consume(ctx, sha("no such code"), at) })
	wantErr(t, "Consume of an unknown code", err, store.ErrNotFound)
}

func authCodesConcurrentConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	c := newAuthCode(t, s, p.tenant.ID, authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base()))
	errs := collect(racers, func(i int) error {
		return s.Tx(ctx, p.tenant.ID, func(tx store.Tx) error {
			return tx.AuthCodes().Consume(ctx, c.Hash, base().Add(time.Duration(i+1)*time.Millisecond))
		})
	})
	wantOneWinner(t, "concurrent Consume", errs)
	if got := getAuthCode(t, s, p.tenant.ID, c.Hash); got.ConsumedAt.IsZero() {
		t.Errorf("no Consume was recorded")
	}
}

func authCodesDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	cutoff := base().Add(time.Hour)
	mk := func(expires time.Time) *ciam.AuthCode {
		c := authCodeFixture(p.client.ID, p.user.ID, p.session.ID, expires.Add(-time.Minute))
		return newAuthCode(t, s, tn, c)
	}
	expired, atCutoff, live := mk(cutoff.Add(-time.Second)), mk(cutoff), mk(cutoff.Add(time.Second))
	var n int
	mustTx(t, s, tn, func(tx store.Tx) (err error) {
		n, err = tx.AuthCodes().DeleteExpired(ctx, cutoff)
		return err
	})
	wantCount(t, "DeleteExpired", n, nil, 1)
	mustView(t, s, tn, func(tx store.Tx) error {
		_, err := tx.AuthCodes().Get(ctx, expired.Hash)
		wantErr(t, "Get of a deleted code", err, store.ErrNotFound)
		for _, kept := range []*ciam.AuthCode{atCutoff, live} {
			if _, err := tx.AuthCodes().Get(ctx, kept.Hash); err != nil {
				t.Errorf("Get of a kept code: %v", err)
			}
		}
		return nil
	})
}

func refreshCreateByHash(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	rt := refreshFixture(p.client.ID, p.user.ID, p.session.ID, "family-1", base())
	mustTx(t, s, tn, func(tx store.Tx) error { return tx.RefreshTokens().Create(ctx, rt) })
	if rt.TenantID != tn {
		t.Errorf("Create set TenantID %q, want %q", rt.TenantID, tn)
	}
	got := getRefresh(t, s, tn, rt.Hash)
	wantEqual(t, "ByHash", got, storedRefresh(rt))
	if !got.Live(base()) {
		t.Errorf("a new token is not live")
	}

	detached := refreshFixture(p.client.ID, p.user.ID, "", "family-2", base())
	detached.Scopes, detached.AMR = nil, nil
	newRefresh(t, s, tn, detached)
	wantEqual(t, "ByHash of a token without a session", getRefresh(t, s, tn, detached.Hash), storedRefresh(detached))

	mustTx(t, s, tn, func(tx store.Tx) error {
		_, err := tx.RefreshTokens().ByHash(ctx, sha("no such token"))
		wantErr(t, "ByHash of an unknown token", err, store.ErrNotFound)
		sameID := refreshFixture(p.client.ID, p.user.ID, "", "family-3", base())
		sameID.ID = rt.ID
		wantErr(t, "Create with a taken id", tx.RefreshTokens().Create(ctx, sameID), store.ErrConflict)
		sameHash := refreshFixture(p.client.ID, p.user.ID, "", "family-3", base())
		sameHash.Hash = rt.Hash
		wantErr(t, "Create with a taken hash", tx.RefreshTokens().Create(ctx, sameHash), store.ErrConflict)
		noUser := refreshFixture(p.client.ID, ciam.UserID(ciam.NewID()), "", "family-3", base())
		wantErr(t, "Create for an unknown user", tx.RefreshTokens().Create(ctx, noUser), store.ErrNotFound)
		noClient := refreshFixture("no-such-client", p.user.ID, "", "family-3", base())
		wantErr(t, "Create for an unknown client", tx.RefreshTokens().Create(ctx, noClient), store.ErrNotFound)
		// The transaction is still usable.
		return tx.RefreshTokens().Create(ctx, refreshFixture(p.client.ID, p.user.ID, "", "family-3", base()))
	})
}

func refreshRotateOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	rt := newRefresh(t, s, tn, refreshFixture(p.client.ID, p.user.ID, p.session.ID, "family-1", base()))
	at, idle := base().Add(time.Hour), base().Add(3*time.Hour)
	first, second := sha("second generation"), sha("third generation")
	mustTx(t, s, tn, func(tx store.Tx) error { return tx.RefreshTokens().Rotate(ctx, rt.ID, rt.Hash, first, at, idle) })
	// The row moved to the new hash: same id and family, new times.
	want := storedRefresh(rt)
	want.Hash, want.CreatedAt, want.IdleExpiresAt = first, stored(at), stored(idle)
	wantEqual(t, "ByHash of the new hash", getRefresh(t, s, tn, first), want)
	mustView(t, s, tn, func(tx store.Tx) error {
		_, err := tx.RefreshTokens().ByHash(ctx, rt.Hash)
		wantErr(t, "ByHash of the spent hash", err, store.ErrNotFound)
		fam, client, err := tx.RefreshTokens().SpentFamily(ctx, rt.Hash)
		if err != nil || fam != "family-1" || client != p.client.ID {
			t.Errorf("SpentFamily of the spent hash = %q, %q, %v; want family-1, %q", fam, client, err, p.client.ID)
		}
		_, _, err = tx.RefreshTokens().SpentFamily(ctx, first)
		wantErr(t, "SpentFamily of the current hash", err, store.ErrNotFound)
		return nil
	})
	// Rotating from the spent hash again is a conflict and changes nothing;
	// the next rotation goes on from the current hash.
	err := s.Tx(ctx, tn, func(tx store.Tx) error {
		return tx.RefreshTokens().Rotate(ctx, rt.ID, rt.Hash, sha("other"), at.Add(time.Minute), idle)
	})
	wantErr(t, "Rotate from a spent hash", err, store.ErrConflict)
	wantEqual(t, "ByHash after the refused Rotate", getRefresh(t, s, tn, first), want)
	mustTx(t, s, tn, func(tx store.Tx) error {
		return tx.RefreshTokens().Rotate(ctx, rt.ID, first, second, at.Add(time.Minute), idle)
	})
	mustTx(t, s, tn, func(tx store.Tx) error {
		n, err := tx.RefreshTokens().RevokeFamily(ctx, "family-1", at.Add(2*time.Minute))
		wantCount(t, "RevokeFamily", n, err, 1)
		wantErr(t, "Rotate of a revoked token", tx.RefreshTokens().Rotate(ctx, rt.ID, second, sha("x"), at.Add(time.Hour), idle), store.ErrConflict)
		wantErr(t, "Rotate of an unknown token", tx.RefreshTokens().Rotate(ctx, "no-such-token", second, sha("y"), at, idle), store.ErrNotFound)
		return nil
	})
	if got := getRefresh(t, s, tn, second); got.RevokedAt.IsZero() || got.Live(at) {
		t.Errorf("the revoked family's token: %+v", got)
	}
}

func refreshConcurrentRotate(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	rt := newRefresh(t, s, p.tenant.ID, refreshFixture(p.client.ID, p.user.ID, p.session.ID, "family-1", base()))
	errs := collect(racers, func(i int) error {
		return s.Tx(ctx, p.tenant.ID, func(tx store.Tx) error {
			at := base().Add(time.Duration(i+1) * time.Millisecond)
			return tx.RefreshTokens().Rotate(ctx, rt.ID, rt.Hash, sha(fmt.Sprint("racer ", i)), at, at.Add(time.Hour))
		})
	})
	wantOneWinner(t, "concurrent Rotate", errs)
	winners := 0
	for i := range racers {
		mustView(t, s, p.tenant.ID, func(tx store.Tx) error {
			if _, err := tx.RefreshTokens().ByHash(ctx, sha(fmt.Sprint("racer ", i))); err == nil {
				winners++
			}
			return nil
		})
	}
	if winners != 1 {
		t.Errorf("%d racers' hashes are current, want 1", winners)
	}
}

func refreshRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn, u1, c1, s1 := p.tenant.ID, p.user.ID, p.client.ID, p.session.ID
	u2 := newUser(t, s, tn, "grace@example.com").ID
	s2 := newSession(t, s, tn, u2, base()).ID
	c2 := newClient(t, s, tn, "other-app").ID

	placeholder := refreshFixture(c1, u1, s1, "f1", base())
	tokens := map[string]*ciam.RefreshToken{
		"f1 second row":       placeholder,
		"f1 live":             refreshFixture(c1, u1, s1, "f1", base().Add(time.Minute)),
		"f2 u1 c2 s1":         refreshFixture(c2, u1, s1, "f2", base()),
		"f3 u1 c1 no session": refreshFixture(c1, u1, "", "f3", base()),
		"f4 u2 c1 s2":         refreshFixture(c1, u2, s2, "f4", base()),
		"f5 u2 c1 no session": refreshFixture(c1, u2, "", "f5", base()),
		"f6 u1 c1 s1 revoked": refreshFixture(c1, u1, s1, "f6", base()),
	}
	tokens["f6 u1 c1 s1 revoked"].RevokedAt = base()
	mustTx(t, s, tn, func(tx store.Tx) error {
		for _, rt := range tokens {
			if err := tx.RefreshTokens().Create(ctx, rt); err != nil {
				return err
			}
		}
		return nil
	})

	at := base().Add(time.Hour)
	revoked := func(what string, want int, fn func(tx store.Tx) (int, error)) {
		t.Helper()
		var n int
		mustTx(t, s, tn, func(tx store.Tx) (err error) {
			n, err = fn(tx)
			return err
		})
		wantCount(t, what, n, nil, want)
	}
	familyRevoked := func(family string) bool {
		var ok bool
		mustView(t, s, tn, func(tx store.Tx) (err error) {
			ok, err = tx.RefreshTokens().FamilyRevoked(ctx, family)
			return err
		})
		return ok
	}
	if familyRevoked("f1") || familyRevoked("unknown-family") || !familyRevoked("f6") {
		t.Errorf("FamilyRevoked before revocations: f1 %v, unknown %v, f6 %v; want false, false, true",
			familyRevoked("f1"), familyRevoked("unknown-family"), familyRevoked("f6"))
	}

	revoked("RevokeFamily(f1)", 2, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeFamily(ctx, "f1", at) })
	revoked("RevokeFamily(f1) again", 0, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeFamily(ctx, "f1", at) })
	if !familyRevoked("f1") || familyRevoked("f2") {
		t.Errorf("FamilyRevoked after RevokeFamily(f1): f1 %v, f2 %v", familyRevoked("f1"), familyRevoked("f2"))
	}
	// f1 is revoked already and f6 was revoked at creation: only f3 is left of u1 and c1.
	revoked("RevokeGrant(u1, c1)", 1, func(tx store.Tx) (int, error) {
		return tx.RefreshTokens().RevokeGrant(ctx, u1, c1, at.Add(time.Minute))
	})
	revoked("RevokeSession(\"\")", 0, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeSession(ctx, "", at) })
	revoked("RevokeSession(s1)", 1, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeSession(ctx, s1, at) })
	revoked("RevokeUser(u1)", 0, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeUser(ctx, u1, "", at) })
	// Keeping s2: the token without a session goes, s2's stays; then it goes too.
	revoked("RevokeUser(u2, keep s2)", 1, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeUser(ctx, u2, s2, at) })
	if got := getRefresh(t, s, tn, tokens["f4 u2 c1 s2"].Hash); !got.RevokedAt.IsZero() {
		t.Errorf("RevokeUser(u2, keep s2) revoked s2's token")
	}
	if got := getRefresh(t, s, tn, tokens["f5 u2 c1 no session"].Hash); got.RevokedAt.IsZero() {
		t.Errorf("RevokeUser(u2, keep s2) kept the token without a session")
	}
	revoked("RevokeUser(u2)", 1, func(tx store.Tx) (int, error) { return tx.RefreshTokens().RevokeUser(ctx, u2, "", at) })

	for name, rt := range tokens {
		got := getRefresh(t, s, tn, rt.Hash)
		if got.RevokedAt.IsZero() {
			t.Errorf("%s: not revoked", name)
		}
	}
	// A revocation never moves an earlier one.
	if got := getRefresh(t, s, tn, tokens["f1 live"].Hash); !got.RevokedAt.Equal(stored(at)) {
		t.Errorf("f1 RevokedAt = %v, want %v", got.RevokedAt, stored(at))
	}
	if got := getRefresh(t, s, tn, tokens["f6 u1 c1 s1 revoked"].Hash); !got.RevokedAt.Equal(stored(base())) {
		t.Errorf("f6 RevokedAt = %v, want %v", got.RevokedAt, stored(base()))
	}
}

func refreshDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	cutoff := base().Add(60 * 24 * time.Hour)
	mk := func(family string, expires time.Time) *ciam.RefreshToken {
		rt := refreshFixture(p.client.ID, p.user.ID, p.session.ID, family, base())
		rt.ExpiresAt = expires
		return newRefresh(t, s, tn, rt)
	}
	ended := []*ciam.RefreshToken{mk("ended", cutoff.Add(-time.Second)), mk("ended", cutoff.Add(-time.Second))}
	kept := []*ciam.RefreshToken{mk("at-cutoff", cutoff), mk("later", cutoff.Add(time.Second))}
	// Spent hashes go with their family's end.
	spentEnded, spentKept := ended[0].Hash, kept[0].Hash
	mustTx(t, s, tn, func(tx store.Tx) error {
		if err := tx.RefreshTokens().Rotate(ctx, ended[0].ID, spentEnded, sha("ended next"), base(), base()); err != nil {
			return err
		}
		return tx.RefreshTokens().Rotate(ctx, kept[0].ID, spentKept, sha("kept next"), base(), base())
	})
	ended[0].Hash, kept[0].Hash = sha("ended next"), sha("kept next")
	var n int
	mustTx(t, s, tn, func(tx store.Tx) (err error) {
		n, err = tx.RefreshTokens().DeleteExpired(ctx, cutoff)
		return err
	})
	wantCount(t, "DeleteExpired", n, nil, 2)
	mustView(t, s, tn, func(tx store.Tx) error {
		for _, rt := range ended {
			_, err := tx.RefreshTokens().ByHash(ctx, rt.Hash)
			wantErr(t, "ByHash of a deleted token", err, store.ErrNotFound)
		}
		for _, rt := range kept {
			if _, err := tx.RefreshTokens().ByHash(ctx, rt.Hash); err != nil {
				t.Errorf("ByHash of a kept token: %v", err)
			}
		}
		_, _, err := tx.RefreshTokens().SpentFamily(ctx, spentEnded)
		wantErr(t, "SpentFamily of an ended family", err, store.ErrNotFound)
		if _, _, err := tx.RefreshTokens().SpentFamily(ctx, spentKept); err != nil {
			t.Errorf("SpentFamily of a kept family: %v", err)
		}
		return nil
	})
}

func refreshAccessState(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	disabled := newUser(t, s, tn, "grace@example.com")
	mustTx(t, s, tn, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, disabled.ID)
		if err != nil {
			return err
		}
		u.Status = ciam.UserDisabled
		if err := tx.Users().Update(ctx, u); err != nil {
			return err
		}
		live := refreshFixture(p.client.ID, p.user.ID, p.session.ID, "live", base())
		gone := refreshFixture(p.client.ID, p.user.ID, p.session.ID, "gone", base())
		gone.RevokedAt = base()
		if err := tx.RefreshTokens().Create(ctx, live); err != nil {
			return err
		}
		return tx.RefreshTokens().Create(ctx, gone)
	})
	other := newOAuthParty(t, s, "globex")
	for _, c := range []struct {
		tenant ciam.TenantID
		family string
		user   ciam.UserID
		client ciam.ClientID
		want   store.AccessState
	}{
		{tn, "live", p.user.ID, p.client.ID, store.AccessState{UserStatus: ciam.UserActive, ClientExists: true}},
		{tn, "gone", p.user.ID, p.client.ID, store.AccessState{FamilyRevoked: true, UserStatus: ciam.UserActive, ClientExists: true}},
		{tn, "", "", p.client.ID, store.AccessState{ClientExists: true}},
		{tn, "unknown", disabled.ID, p.client.ID, store.AccessState{UserStatus: ciam.UserDisabled, ClientExists: true}},
		{tn, "", "nobody", "no-client", store.AccessState{}},
		// Another tenant sees none of acme's rows (only its own client "app").
		{other.tenant.ID, "gone", p.user.ID, p.client.ID, store.AccessState{ClientExists: true}},
		{other.tenant.ID, "gone", p.user.ID, "other-app", store.AccessState{}},
	} {
		mustView(t, s, c.tenant, func(tx store.Tx) error {
			got, err := tx.RefreshTokens().AccessState(ctx, c.family, c.user, c.client)
			if err != nil {
				return err
			}
			if got.UserStatus != "" {
				if got.User == nil || got.User.ID != c.user || got.User.Status != got.UserStatus || got.User.TenantID != c.tenant {
					t.Errorf("AccessState(%q, %q, %q).User = %+v, want the user's row", c.family, c.user, c.client, got.User)
				}
			} else if got.User != nil {
				t.Errorf("AccessState(%q, %q, %q).User = %+v, want nil", c.family, c.user, c.client, got.User)
			}
			got.User = nil
			wantEqual(t, fmt.Sprintf("AccessState(%q, %q, %q)", c.family, c.user, c.client), got, c.want)
			return nil
		})
	}
}
