package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func grantsPutGetList(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn, u := p.tenant.ID, p.user.ID
	other := newUser(t, s, tn, "grace@example.com").ID
	early := newClient(t, s, tn, "aaa-early").ID // sorts before "app"
	late := newClient(t, s, tn, "zzz-late").ID

	g1 := grantFixture(u, late, base(), "openid", "email")
	g2 := grantFixture(u, p.client.ID, base().Add(time.Minute), "openid")
	g3 := grantFixture(u, early, base(), "openid", "profile")
	g4 := grantFixture(other, p.client.ID, base())
	for _, g := range []*ciam.Grant{g1, g2, g3, g4} {
		putGrant(t, s, tn, g)
	}
	if g1.TenantID != tn {
		t.Errorf("Put set TenantID %q, want %q", g1.TenantID, tn)
	}
	mustView(t, s, tn, func(tx store.Tx) error {
		got, err := tx.Grants().Get(ctx, u, p.client.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get", got, storedGrant(g2))
		got, err = tx.Grants().Get(ctx, other, p.client.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get of a grant without scopes", got, storedGrant(g4))
		list, err := tx.Grants().ListByUser(ctx, u)
		if err != nil {
			return err
		}
		wantEqual(t, "ListByUser", list, []*ciam.Grant{storedGrant(g3), storedGrant(g2), storedGrant(g1)})
		_, err = tx.Grants().Get(ctx, other, late)
		wantErr(t, "Get of a grant never given", err, store.ErrNotFound)
		list, err = tx.Grants().ListByUser(ctx, ciam.UserID(ciam.NewID()))
		if err != nil || len(list) != 0 {
			t.Errorf("ListByUser of an unknown user = %d grants, %v; want none", len(list), err)
		}
		return nil
	})
	mustTx(t, s, tn, func(tx store.Tx) error {
		err := tx.Grants().Put(ctx, grantFixture(ciam.UserID(ciam.NewID()), p.client.ID, base()))
		wantErr(t, "Put for an unknown user", err, store.ErrNotFound)
		err = tx.Grants().Put(ctx, grantFixture(u, "no-such-client", base()))
		wantErr(t, "Put for an unknown client", err, store.ErrNotFound)
		// The transaction is still usable.
		return tx.Grants().Put(ctx, grantFixture(other, late, base()))
	})
}

// grantsUpsert replaces a grant: the scopes and UpdatedAt change, CreatedAt
// stays the first grant's.
func grantsUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	first := putGrant(t, s, tn, grantFixture(p.user.ID, p.client.ID, base(), "openid"))
	later := base().Add(24 * time.Hour)
	again := grantFixture(p.user.ID, p.client.ID, later, "openid", "email", "offline_access")
	putGrant(t, s, tn, again)
	if !again.CreatedAt.Equal(stored(first.CreatedAt)) {
		t.Errorf("Put of an existing grant left CreatedAt %v, want the stored %v", again.CreatedAt, stored(first.CreatedAt))
	}
	want := &ciam.Grant{TenantID: tn, UserID: p.user.ID, ClientID: p.client.ID,
		Scopes: []string{"openid", "email", "offline_access"}, CreatedAt: stored(base()), UpdatedAt: stored(later)}
	mustView(t, s, tn, func(tx store.Tx) error {
		got, err := tx.Grants().Get(ctx, p.user.ID, p.client.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get after the second Put", got, want)
		list, err := tx.Grants().ListByUser(ctx, p.user.ID)
		if err != nil || len(list) != 1 {
			t.Errorf("ListByUser after two Puts = %d grants, %v; want 1", len(list), err)
		}
		return nil
	})
}

func grantsDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	tn := p.tenant.ID
	other := newClient(t, s, tn, "other-app")
	putGrant(t, s, tn, grantFixture(p.user.ID, p.client.ID, base(), "openid"))
	kept := putGrant(t, s, tn, grantFixture(p.user.ID, other.ID, base(), "openid"))
	mustTx(t, s, tn, func(tx store.Tx) error { return tx.Grants().Delete(ctx, p.user.ID, p.client.ID) })
	mustTx(t, s, tn, func(tx store.Tx) error {
		_, err := tx.Grants().Get(ctx, p.user.ID, p.client.ID)
		wantErr(t, "Get of a deleted grant", err, store.ErrNotFound)
		wantErr(t, "second Delete", tx.Grants().Delete(ctx, p.user.ID, p.client.ID), store.ErrNotFound)
		list, err := tx.Grants().ListByUser(ctx, p.user.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "ListByUser after Delete", list, []*ciam.Grant{storedGrant(kept)})
		return nil
	})
}

func useNonce(t *testing.T, s store.Store, tenant ciam.TenantID, ns, value string, now, expires time.Time) error {
	return s.Tx(t.Context(), tenant, func(tx store.Tx) error { return tx.Nonces().Use(t.Context(), ns, value, now, expires) })
}

func noncesUseOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme").ID
	now := base()
	expires := now.Add(5 * time.Minute)
	if err := useNonce(t, s, tn, "jti", "v1", now, expires); err != nil {
		t.Fatalf("first Use: %v", err)
	}
	mustTx(t, s, tn, func(tx store.Tx) error {
		wantErr(t, "second Use", tx.Nonces().Use(ctx, "jti", "v1", now.Add(time.Minute), now.Add(time.Hour)), store.ErrConflict)
		// The transaction is still usable, and namespaces are apart.
		return tx.Nonces().Use(ctx, "otp", "v1", now, expires)
	})
	wantErr(t, "Use at the expiry", useNonce(t, s, tn, "jti", "v1", expires, expires.Add(time.Hour)), store.ErrConflict)
	err := s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error {
		return tx.Nonces().Use(ctx, "jti", "v1", now, expires)
	})
	wantErr(t, "Use in an unknown tenant", err, store.ErrNotFound)
}

// noncesExpiredReusable uses a value again after it expired: it is
// recorded anew, with the new expiry.
func noncesExpiredReusable(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme").ID
	expires := base().Add(5 * time.Minute)
	if err := useNonce(t, s, tn, "jti", "v1", base(), expires); err != nil {
		t.Fatal(err)
	}
	later := expires.Add(time.Microsecond)
	if err := useNonce(t, s, tn, "jti", "v1", later, later.Add(5*time.Minute)); err != nil {
		t.Fatalf("Use after the expiry: %v", err)
	}
	wantErr(t, "Use before the new expiry", useNonce(t, s, tn, "jti", "v1", later.Add(time.Minute), later.Add(time.Hour)), store.ErrConflict)
	if err := useNonce(t, s, tn, "jti", "v1", later.Add(6*time.Minute), later.Add(time.Hour)); err != nil {
		t.Errorf("Use after the new expiry: %v", err)
	}
}

func noncesConcurrentUse(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme").ID
	now := base()
	errs := collect(racers, func(i int) error { return useNonce(t, s, tn, "jti", "fresh", now, now.Add(time.Minute)) })
	wantOneWinner(t, "concurrent Use of a new value", errs)

	// Racing to reuse one expired value also has one winner.
	later := now.Add(time.Hour)
	errs = collect(racers, func(i int) error { return useNonce(t, s, tn, "jti", "fresh", later, later.Add(time.Minute)) })
	wantOneWinner(t, "concurrent Use of an expired value", errs)
}

func noncesDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme").ID
	cutoff := base().Add(time.Hour)
	for value, expires := range map[string]time.Time{
		"expired": cutoff.Add(-time.Second), "at-cutoff": cutoff, "later": cutoff.Add(time.Second),
	} {
		if err := useNonce(t, s, tn, "jti", value, base(), expires); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	mustTx(t, s, tn, func(tx store.Tx) (err error) {
		n, err = tx.Nonces().DeleteExpired(ctx, cutoff)
		return err
	})
	wantCount(t, "DeleteExpired", n, nil, 1)
	// What is left is still taken at the cutoff.
	for _, value := range []string{"at-cutoff", "later"} {
		wantErr(t, "Use of a kept value", useNonce(t, s, tn, "jti", value, cutoff, cutoff.Add(time.Hour)), store.ErrConflict)
	}
}
