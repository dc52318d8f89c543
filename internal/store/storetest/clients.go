package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func clientsCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	c := clientFixture("web")
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Clients().Create(ctx, c) })
	if c.TenantID != tn.ID || c.Version != 1 {
		t.Errorf("Create set TenantID %q, Version %d; want %q, 1", c.TenantID, c.Version, tn.ID)
	}
	wantEqual(t, "Get", getClient(t, s, tn.ID, c.ID), storedClient(c))

	// A public client: no secret, empty lists and durations.
	pub := &ciam.Client{ID: "spa", Name: "SPA", Public: true, FirstParty: true, TokenAuthMethod: ciam.AuthNone,
		RedirectURIs: []string{}, CreatedAt: base(), UpdatedAt: base()}
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Clients().Create(ctx, pub) })
	got := getClient(t, s, tn.ID, pub.ID)
	wantEqual(t, "Get of a public client", got, storedClient(pub))
	if got.SecretHash != nil || got.RedirectURIs != nil || !got.SecretRotatedAt.IsZero() {
		t.Errorf("public client reads back with secret %x, redirect URIs %#v, rotated %v", got.SecretHash, got.RedirectURIs, got.SecretRotatedAt)
	}

	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Clients().Get(ctx, "no-such-client")
		wantErr(t, "Get of an unknown id", err, store.ErrNotFound)
		return nil
	})
}

func clientsCreateConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	other := newTenant(t, s, "other")
	first := newClient(t, s, tn.ID, "web")

	// A taken id is ErrConflict and leaves the transaction usable.
	second := clientFixture(first.ID)
	second.Name = "impostor"
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "Create with a taken id", tx.Clients().Create(ctx, second), store.ErrConflict)
		return tx.Clients().Create(ctx, clientFixture("web-2"))
	})
	if got := getClient(t, s, tn.ID, first.ID); got.Name != first.Name {
		t.Errorf("the first client's name became %q", got.Name)
	}

	claims := clientFixture("claims-other-tenant")
	claims.TenantID = other.ID
	if err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Clients().Create(ctx, claims) }); err == nil {
		t.Errorf("Create of a client of another tenant succeeded")
	}
	err := s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error { return tx.Clients().Create(ctx, clientFixture("x")) })
	wantErr(t, "Create in an unknown tenant", err, store.ErrNotFound)
}

func clientsListPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	var want []ciam.ClientID
	for _, i := range []int{3, 0, 4, 1, 2} {
		newClient(t, s, tn.ID, ciam.ClientID(slugN("client", i)))
	}
	for i := range 5 {
		want = append(want, ciam.ClientID(slugN("client", i)))
	}
	ids := func(cs []*ciam.Client) []ciam.ClientID {
		out := []ciam.ClientID{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		var (
			after ciam.ClientID
			pages [][]ciam.ClientID
		)
		for range 4 {
			page, err := tx.Clients().List(ctx, after, 2)
			if err != nil {
				return err
			}
			pages = append(pages, ids(page))
			if len(page) > 0 {
				after = page[len(page)-1].ID
			}
		}
		wantEqual(t, "pages of 2", pages, [][]ciam.ClientID{want[0:2], want[2:4], want[4:5], {}})
		all, err := tx.Clients().List(ctx, "", 0)
		if err != nil {
			return err
		}
		wantEqual(t, "List with the default limit", ids(all), want)
		if len(all) == 5 {
			wantEqual(t, "List[0]", all[0], storedClient(clientFixtureStored(tn.ID, want[0])))
		}
		return nil
	})
}

// clientFixtureStored is clientFixture(id) as Create leaves it in tenant.
func clientFixtureStored(tenant ciam.TenantID, id ciam.ClientID) *ciam.Client {
	c := clientFixture(id)
	c.TenantID, c.Version = tenant, 1
	return c
}

func clientsUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	c := newClient(t, s, tn.ID, "web")
	c.Name = "Renamed"
	c.SecretHash = sha("rotated secret")
	c.SecretRotatedAt = base().Add(time.Hour)
	c.TokenAuthMethod = ciam.AuthPrivateKeyJWT
	c.JWKS = `{"keys":[{"kty":"EC"}]}`
	c.RedirectURIs = []string{"https://new.example.com/cb"}
	c.PostLogoutURIs = nil
	c.GrantTypes = []string{ciam.GrantClientCredentials}
	c.Scopes = []string{"api:read"}
	c.Audiences = []string{"https://api.example.com", "https://other.example.com"}
	c.IDTokenAlg = ciam.AlgEdDSA
	c.AccessTokenTTL, c.RefreshIdleTTL, c.RefreshMaxTTL = 5*time.Minute, time.Hour, 2*time.Hour
	c.RefreshWithSession, c.FirstParty = false, true
	c.BackchannelLogoutURI = ""
	c.UpdatedAt = base().Add(2 * time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Clients().Update(ctx, c) })
	if c.Version != 2 {
		t.Errorf("Version after Update = %d, want 2", c.Version)
	}
	got := getClient(t, s, tn.ID, c.ID)
	wantEqual(t, "Get after Update", got, storedClient(c))
	if !got.CreatedAt.Equal(stored(base())) {
		t.Errorf("Update moved CreatedAt to %v", got.CreatedAt)
	}

	// Back to a public client: the secret goes.
	got.Public, got.SecretHash, got.SecretRotatedAt, got.TokenAuthMethod = true, nil, time.Time{}, ciam.AuthNone
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Clients().Update(ctx, got) })
	wantEqual(t, "Get after the second Update", getClient(t, s, tn.ID, c.ID), storedClient(got))
}

func clientsStaleUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	c := newClient(t, s, tn.ID, "web")
	stale := *c
	c.Name = "first writer"
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Clients().Update(ctx, c) })
	stale.Name = "second writer"
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Clients().Update(ctx, &stale) })
	wantErr(t, "Update of a stale version", err, store.ErrConflict)
	if stale.Version != 1 {
		t.Errorf("a failed Update changed Version to %d", stale.Version)
	}
	if got := getClient(t, s, tn.ID, c.ID); got.Name != "first writer" || got.Version != 2 {
		t.Errorf("after the stale Update: %q v%d", got.Name, got.Version)
	}
	missing := clientFixture("missing")
	missing.Version = 1
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Clients().Update(ctx, missing) })
	wantErr(t, "Update of an unknown client", err, store.ErrNotFound)
}

// clientsDeleteCascades deletes a client: its codes, refresh tokens and
// grants go with it, another client's stay.
func clientsDeleteCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn, u := p.tenant.ID, p.user.ID
	kept := newClient(t, s, tn, "kept")
	type issued struct {
		code  *ciam.AuthCode
		token *ciam.RefreshToken
	}
	issue := func(c ciam.ClientID) issued {
		putGrant(t, s, tn, grantFixture(u, c, base(), "openid"))
		return issued{
			code:  newAuthCode(t, s, tn, authCodeFixture(c, u, p.session.ID, base())),
			token: newRefresh(t, s, tn, refreshFixture(c, u, p.session.ID, ciam.NewID(), base())),
		}
	}
	gone, stays := issue(p.client.ID), issue(kept.ID)

	mustTx(t, s, tn, func(tx store.Tx) error { return tx.Clients().Delete(ctx, p.client.ID) })
	mustView(t, s, tn, func(tx store.Tx) error {
		_, err := tx.Clients().Get(ctx, p.client.ID)
		wantErr(t, "Get of a deleted client", err, store.ErrNotFound)
		_, err = tx.AuthCodes().Get(ctx, gone.code.Hash)
		wantErr(t, "Get of a deleted client's code", err, store.ErrNotFound)
		_, err = tx.RefreshTokens().ByHash(ctx, gone.token.Hash)
		wantErr(t, "ByHash of a deleted client's token", err, store.ErrNotFound)
		_, err = tx.Grants().Get(ctx, u, p.client.ID)
		wantErr(t, "Get of a deleted client's grant", err, store.ErrNotFound)

		if _, err := tx.Clients().Get(ctx, kept.ID); err != nil {
			t.Errorf("Get of the other client: %v", err)
		}
		if _, err := tx.AuthCodes().Get(ctx, stays.code.Hash); err != nil {
			t.Errorf("Get of the other client's code: %v", err)
		}
		if _, err := tx.RefreshTokens().ByHash(ctx, stays.token.Hash); err != nil {
			t.Errorf("ByHash of the other client's token: %v", err)
		}
		gs, err := tx.Grants().ListByUser(ctx, u)
		if err != nil || len(gs) != 1 || gs[0].ClientID != kept.ID {
			t.Errorf("grants after Delete = %+v, %v; want the other client's", gs, err)
		}
		return nil
	})
	err := s.Tx(ctx, tn, func(tx store.Tx) error { return tx.Clients().Delete(ctx, p.client.ID) })
	wantErr(t, "second Delete", err, store.ErrNotFound)
	// The id is free again.
	newClient(t, s, tn, p.client.ID)
}

func signingKeysCreateList(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	now := base().Add(48 * time.Hour)
	// Created out of order: List orders by creation.
	newer := signingKeyFixture("k-newer", base().Add(2*time.Hour))
	older := signingKeyFixture("k-older", base())
	middle := signingKeyFixture("k-middle", base().Add(time.Hour))
	middle.RetiredAt, middle.ExpiresAt = base().Add(3*time.Hour), now // published up to and at its expiry
	expired := signingKeyFixture("k-expired", base().Add(-time.Hour))
	expired.RetiredAt, expired.ExpiresAt = base(), now.Add(-time.Microsecond)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		for _, k := range []*ciam.SigningKey{newer, older, middle, expired} {
			if err := tx.SigningKeys().Create(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if older.TenantID != tn.ID {
		t.Errorf("Create set TenantID %q, want %q", older.TenantID, tn.ID)
	}
	ks := listKeys(t, s, tn.ID, now)
	wantEqual(t, "List ids", signingKeyIDs(ks), []string{"k-older", "k-middle", "k-newer"})
	if len(ks) == 3 {
		wantEqual(t, "List[0]", ks[0], storedSigningKey(older))
		wantEqual(t, "List[1]", ks[1], storedSigningKey(middle))
	}
	wantEqual(t, "List after the middle key expired", signingKeyIDs(listKeys(t, s, tn.ID, now.Add(time.Microsecond))),
		[]string{"k-older", "k-newer"})

	dup := signingKeyFixture("k-older", base())
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.SigningKeys().Create(ctx, dup) })
	wantErr(t, "Create with a taken id", err, store.ErrConflict)
	err = s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error {
		return tx.SigningKeys().Create(ctx, signingKeyFixture("k", base()))
	})
	wantErr(t, "Create in an unknown tenant", err, store.ErrNotFound)
}

func signingKeysRetire(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	k := signingKeyFixture("k1", base())
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.SigningKeys().Create(ctx, k) })
	retired, expires := base().Add(24*time.Hour), base().Add(48*time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.SigningKeys().Retire(ctx, "k1", retired, expires) })
	ks := listKeys(t, s, tn.ID, retired)
	if len(ks) != 1 {
		t.Fatalf("List after Retire = %d keys, want 1", len(ks))
	}
	k.RetiredAt, k.ExpiresAt = retired, expires
	wantEqual(t, "the retired key", ks[0], storedSigningKey(k))

	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "second Retire", tx.SigningKeys().Retire(ctx, "k1", retired.Add(time.Hour), expires.Add(time.Hour)), store.ErrNotFound)
		wantErr(t, "Retire of an unknown key", tx.SigningKeys().Retire(ctx, "nope", retired, expires), store.ErrNotFound)
		return nil
	})
	if ks := listKeys(t, s, tn.ID, expires.Add(time.Second)); len(ks) != 0 {
		t.Errorf("List after the retired key expired = %v", signingKeyIDs(ks))
	}
	// The second Retire changed nothing.
	wantEqual(t, "after the second Retire", listKeys(t, s, tn.ID, retired), []*ciam.SigningKey{storedSigningKey(k)})
}

func signingKeysDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	now := base().Add(72 * time.Hour)
	mk := func(id string, expires time.Time) *ciam.SigningKey {
		k := signingKeyFixture(id, base())
		if !expires.IsZero() {
			k.RetiredAt, k.ExpiresAt = base().Add(time.Hour), expires
		}
		return k
	}
	keys := []*ciam.SigningKey{
		mk("live", time.Time{}), mk("expired", now.Add(-time.Second)), mk("at-now", now), mk("later", now.Add(time.Second)),
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.SigningKeys().Create(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	mustTx(t, s, tn.ID, func(tx store.Tx) (err error) {
		n, err = tx.SigningKeys().DeleteExpired(ctx, now)
		return err
	})
	wantCount(t, "DeleteExpired", n, nil, 1)
	// Listing long before anything expires shows what is left.
	wantEqual(t, "keys left", signingKeyIDs(listKeys(t, s, tn.ID, base())), []string{"at-now", "later", "live"})
}
