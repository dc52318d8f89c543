package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Tenant isolation of the OAuth provider's state: tenant B neither sees nor
// changes tenant A's rows, and the same ids are free in B.

// far is a time after everything the cases create has expired.
func far() time.Time { return base().Add(1000 * 24 * time.Hour) }

func isolationClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newOAuthParty(t, s, "tenant-a")
	b := newTenant(t, s, "tenant-b")
	c := a.client
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Clients().Get(ctx, c.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		list, err := tx.Clients().List(ctx, "", 0)
		if err != nil || len(list) != 0 {
			t.Errorf("List from B = %d clients, %v; want none", len(list), err)
		}
		hijack := *c
		hijack.RedirectURIs = []string{"https://evil.example.com/cb"}
		wantErr(t, "Update from B", tx.Clients().Update(ctx, &hijack), store.ErrNotFound)
		hijack.TenantID = ""
		wantErr(t, "Update from B without a tenant", tx.Clients().Update(ctx, &hijack), store.ErrNotFound)
		wantErr(t, "Delete from B", tx.Clients().Delete(ctx, c.ID), store.ErrNotFound)
		return nil
	})
	// The same id is free in B.
	twin := newClient(t, s, b.ID, c.ID)
	if twin.TenantID != b.ID {
		t.Errorf("B's client has tenant %q", twin.TenantID)
	}
	wantEqual(t, "A's client", getClient(t, s, a.tenant.ID, c.ID), storedClient(c))
}

func isolationSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	k := signingKeyFixture("k1", base())
	k.RetiredAt, k.ExpiresAt = base().Add(time.Hour), base().Add(2*time.Hour)
	live := signingKeyFixture("k2", base())
	mustTx(t, s, a.ID, func(tx store.Tx) error {
		if err := tx.SigningKeys().Create(ctx, k); err != nil {
			return err
		}
		return tx.SigningKeys().Create(ctx, live)
	})
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		ks, err := tx.SigningKeys().List(ctx, base())
		if err != nil || len(ks) != 0 {
			t.Errorf("List from B = %d keys, %v; want none", len(ks), err)
		}
		wantErr(t, "Retire from B", tx.SigningKeys().Retire(ctx, live.ID, base(), base().Add(time.Hour)), store.ErrNotFound)
		n, err := tx.SigningKeys().DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 0)
		// The same kid is free in B.
		return tx.SigningKeys().Create(ctx, signingKeyFixture(live.ID, base()))
	})
	wantEqual(t, "A's keys", listKeys(t, s, a.ID, base()), []*ciam.SigningKey{storedSigningKey(k), storedSigningKey(live)})
}

func isolationAuthCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newOAuthParty(t, s, "tenant-a")
	b := newTenant(t, s, "tenant-b")
	c := newAuthCode(t, s, a.tenant.ID, authCodeFixture(a.client.ID, a.user.ID, a.session.ID, base()))
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.AuthCodes().Get(ctx, c.Hash)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		wantErr(t, "Consume from B", tx.AuthCodes().Consume(ctx, c.Hash, base()), store.ErrNotFound)
		n, err := tx.AuthCodes().DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 0)
		// B cannot issue a code for A's user or client.
		err = tx.AuthCodes().Create(ctx, authCodeFixture(a.client.ID, a.user.ID, a.session.ID, base()))
		wantErr(t, "Create from B for A's user and client", err, store.ErrNotFound)
		return nil
	})
	wantEqual(t, "A's code", getAuthCode(t, s, a.tenant.ID, c.Hash), storedAuthCode(c))
	// A can still redeem it, once.
	mustTx(t, s, a.tenant.ID, func(tx store.Tx) error { return tx.AuthCodes().Consume(ctx, c.Hash, base()) })
}

func isolationRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newOAuthParty(t, s, "tenant-a")
	b := newTenant(t, s, "tenant-b")
	rt := newRefresh(t, s, a.tenant.ID, refreshFixture(a.client.ID, a.user.ID, a.session.ID, "family-1", base()))
	gone := newRefresh(t, s, a.tenant.ID, refreshFixture(a.client.ID, a.user.ID, a.session.ID, "family-2", base()))
	mustTx(t, s, a.tenant.ID, func(tx store.Tx) error {
		_, err := tx.RefreshTokens().RevokeFamily(ctx, gone.FamilyID, base())
		return err
	})
	at := base().Add(time.Minute)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		r := tx.RefreshTokens()
		_, err := r.ByHash(ctx, rt.Hash)
		wantErr(t, "ByHash from B", err, store.ErrNotFound)
		wantErr(t, "Rotate from B", r.Rotate(ctx, rt.ID, rt.Hash, sha("b's next"), at, at.Add(time.Hour)), store.ErrNotFound)
		_, _, err = r.SpentFamily(ctx, rt.Hash)
		wantErr(t, "SpentFamily from B", err, store.ErrNotFound)
		n, err := r.RevokeFamily(ctx, rt.FamilyID, at)
		wantCount(t, "RevokeFamily from B", n, err, 0)
		n, err = r.RevokeGrant(ctx, a.user.ID, a.client.ID, at)
		wantCount(t, "RevokeGrant from B", n, err, 0)
		n, err = r.RevokeSession(ctx, a.session.ID, at)
		wantCount(t, "RevokeSession from B", n, err, 0)
		n, err = r.RevokeUser(ctx, a.user.ID, "", at)
		wantCount(t, "RevokeUser from B", n, err, 0)
		revoked, err := r.FamilyRevoked(ctx, gone.FamilyID)
		if err != nil || revoked {
			t.Errorf("FamilyRevoked from B of A's revoked family = %v, %v; want false", revoked, err)
		}
		n, err = r.DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 0)
		err = r.Create(ctx, refreshFixture(a.client.ID, a.user.ID, "", "family-3", base()))
		wantErr(t, "Create from B for A's user and client", err, store.ErrNotFound)
		return nil
	})
	got := getRefresh(t, s, a.tenant.ID, rt.Hash)
	wantEqual(t, "A's token", got, storedRefresh(rt))
	if !got.Live(at) {
		t.Errorf("A's token is no longer live")
	}
}

func isolationGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newOAuthParty(t, s, "tenant-a")
	b := newTenant(t, s, "tenant-b")
	g := putGrant(t, s, a.tenant.ID, grantFixture(a.user.ID, a.client.ID, base(), "openid"))
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Grants().Get(ctx, a.user.ID, a.client.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		list, err := tx.Grants().ListByUser(ctx, a.user.ID)
		if err != nil || len(list) != 0 {
			t.Errorf("ListByUser from B = %d grants, %v; want none", len(list), err)
		}
		wantErr(t, "Delete from B", tx.Grants().Delete(ctx, a.user.ID, a.client.ID), store.ErrNotFound)
		err = tx.Grants().Put(ctx, grantFixture(a.user.ID, a.client.ID, base(), "openid", "admin"))
		wantErr(t, "Put from B for A's user and client", err, store.ErrNotFound)
		return nil
	})
	mustView(t, s, a.tenant.ID, func(tx store.Tx) error {
		got, err := tx.Grants().Get(ctx, a.user.ID, a.client.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "A's grant", got, storedGrant(g))
		return nil
	})
}

func isolationNonces(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	expires := base().Add(time.Hour)
	if err := useNonce(t, s, a.ID, "jti", "v1", base(), expires); err != nil {
		t.Fatal(err)
	}
	// B has its own values: the same one is free there, and B's cleanup
	// leaves A's alone.
	if err := useNonce(t, s, b.ID, "jti", "v1", base(), base().Add(time.Minute)); err != nil {
		t.Errorf("Use in B of a value used in A: %v", err)
	}
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		n, err := tx.Nonces().DeleteExpired(ctx, far())
		wantCount(t, "DeleteExpired from B", n, err, 1)
		return nil
	})
	wantErr(t, "Use in A after B's cleanup", useNonce(t, s, a.ID, "jti", "v1", base(), expires), store.ErrConflict)
}

// timeOAuthUTCRoundTrip writes every time of the OAuth entities in a zone
// other than UTC, with nanoseconds: each reads back in UTC, to the microsecond.
func timeOAuthUTCRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-3", -3*3600)
	local := time.Date(2031, 5, 6, 4, 8, 9, 987654321, zone)
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	c := clientFixture("zoned")
	c.SecretRotatedAt, c.CreatedAt, c.UpdatedAt = local, local, local
	k := signingKeyFixture("zoned", local)
	k.ActiveAt, k.RetiredAt, k.ExpiresAt = local, local, local.Add(time.Hour)
	code := authCodeFixture(p.client.ID, p.user.ID, p.session.ID, local)
	code.AuthTime, code.ExpiresAt = local, local
	rt := refreshFixture(p.client.ID, p.user.ID, p.session.ID, "f", local)
	rt.AuthTime, rt.IdleExpiresAt, rt.ExpiresAt = local, local, local
	g := grantFixture(p.user.ID, p.client.ID, local, "openid")
	mustTx(t, s, tn, func(tx store.Tx) error {
		if err := tx.Clients().Create(ctx, c); err != nil {
			return err
		}
		if err := tx.SigningKeys().Create(ctx, k); err != nil {
			return err
		}
		if err := tx.AuthCodes().Create(ctx, code); err != nil {
			return err
		}
		if err := tx.RefreshTokens().Create(ctx, rt); err != nil {
			return err
		}
		return tx.Grants().Put(ctx, g)
	})
	mustTx(t, s, tn, func(tx store.Tx) error {
		if err := tx.AuthCodes().Consume(ctx, code.Hash, local); err != nil {
			return err
		}
		if err := tx.RefreshTokens().Rotate(ctx, rt.ID, rt.Hash, sha("next"), local, local); err != nil {
			return err
		}
		_, err := tx.RefreshTokens().RevokeFamily(ctx, "f", local)
		return err
	})

	check := func(what string, got time.Time) {
		t.Helper()
		if got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", what, got.Location())
		}
		if want := local.Truncate(time.Microsecond); !got.Equal(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	gc := getClient(t, s, tn, c.ID)
	check("client SecretRotatedAt", gc.SecretRotatedAt)
	check("client CreatedAt", gc.CreatedAt)
	check("client UpdatedAt", gc.UpdatedAt)
	ks := listKeys(t, s, tn, local)
	if len(ks) != 1 {
		t.Fatalf("%d keys", len(ks))
	}
	check("key CreatedAt", ks[0].CreatedAt)
	check("key ActiveAt", ks[0].ActiveAt)
	check("key RetiredAt", ks[0].RetiredAt)
	check("key ExpiresAt", ks[0].ExpiresAt.Add(-time.Hour))
	gcode := getAuthCode(t, s, tn, code.Hash)
	check("code AuthTime", gcode.AuthTime)
	check("code CreatedAt", gcode.CreatedAt)
	check("code ExpiresAt", gcode.ExpiresAt)
	check("code ConsumedAt", gcode.ConsumedAt)
	grt := getRefresh(t, s, tn, sha("next"))
	check("token AuthTime", grt.AuthTime)
	check("token CreatedAt", grt.CreatedAt)
	check("token IdleExpiresAt", grt.IdleExpiresAt)
	check("token ExpiresAt", grt.ExpiresAt)
	check("token RevokedAt", grt.RevokedAt)
	mustView(t, s, tn, func(tx store.Tx) error {
		gg, err := tx.Grants().Get(ctx, p.user.ID, p.client.ID)
		if err != nil {
			return err
		}
		check("grant CreatedAt", gg.CreatedAt)
		check("grant UpdatedAt", gg.UpdatedAt)
		return nil
	})
}

// oauthUntrustedText stores what OAuth requests and dynamic registration
// let outsiders choose, with invalid UTF-8 and NUL bytes: every write
// succeeds on every dialect and reads back as the write left it.
func oauthUntrustedText(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	const bad = "x\xff\x00y"
	c := clientFixture("registered")
	c.Name, c.RedirectURIs, c.Scopes = "App "+bad, []string{"https://app.example.com/" + bad}, []string{"openid", bad}
	c.BackchannelLogoutURI, c.JWKS = bad, bad
	code := authCodeFixture(p.client.ID, p.user.ID, p.session.ID, base())
	code.RedirectURI, code.Nonce, code.CodeChallenge, code.Scopes = bad, bad, bad, []string{bad}
	rt := refreshFixture(p.client.ID, p.user.ID, p.session.ID, "f", base())
	rt.Scopes, rt.ACR = []string{bad}, bad
	g := grantFixture(p.user.ID, p.client.ID, base(), bad)
	mustTx(t, s, tn, func(tx store.Tx) error {
		if err := tx.Clients().Create(ctx, c); err != nil {
			return err
		}
		if err := tx.AuthCodes().Create(ctx, code); err != nil {
			return err
		}
		if err := tx.RefreshTokens().Create(ctx, rt); err != nil {
			return err
		}
		if err := tx.Grants().Put(ctx, g); err != nil {
			return err
		}
		return tx.Nonces().Use(ctx, "jti", bad, base(), base().Add(time.Hour))
	})
	wantEqual(t, "client", getClient(t, s, tn, c.ID), storedClient(c))
	wantEqual(t, "code", getAuthCode(t, s, tn, code.Hash), storedAuthCode(code))
	wantEqual(t, "refresh token", getRefresh(t, s, tn, rt.Hash), storedRefresh(rt))
	mustView(t, s, tn, func(tx store.Tx) error {
		got, err := tx.Grants().Get(ctx, p.user.ID, p.client.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "grant", got, storedGrant(g))
		return nil
	})
	wantErr(t, "second Use of the value", useNonce(t, s, tn, "jti", bad, base(), base().Add(time.Hour)), store.ErrConflict)
}
