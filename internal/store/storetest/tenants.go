package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func systemPing(t *testing.T, s store.Store) {
	if err := s.System().Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func systemMigrationsCurrent(t *testing.T, s store.Store) {
	for range 2 { // the second answer may come from a cache
		ok, err := s.System().MigrationsCurrent(t.Context())
		if err != nil || !ok {
			t.Fatalf("MigrationsCurrent = %v, %v; want true", ok, err)
		}
	}
}

func systemTenantsPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, i := range []int{3, 1, 4, 0, 2} {
		newTenant(t, s, slugN("page", i))
	}
	slugs := func(ts []*ciam.Tenant) []string {
		out := []string{}
		for _, tn := range ts {
			out = append(out, tn.Slug)
		}
		return out
	}
	var got []string
	after := ""
	for range 4 {
		page, err := s.System().Tenants(ctx, after, 2)
		if err != nil {
			t.Fatalf("Tenants: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("Tenants(limit 2) returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, slugs(page)...)
		after = page[len(page)-1].Slug
	}
	wantEqual(t, "paged slugs", got, []string{"page-00", "page-01", "page-02", "page-03", "page-04"})

	all, err := s.System().Tenants(ctx, "", 0)
	if err != nil {
		t.Fatalf("Tenants(limit 0): %v", err)
	}
	wantEqual(t, "default limit", slugs(all), got)
}

func systemListedTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, c := range []struct {
		slug           string
		listed, system bool
	}{{"zeta", true, false}, {"alpha", true, false}, {"hidden", false, false}, {"platform", true, true}} {
		tn := tenantFixture(c.slug)
		tn.Listed, tn.System = c.listed, c.system
		mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) })
	}
	got, err := s.System().ListedTenants(ctx)
	if err != nil {
		t.Fatalf("ListedTenants: %v", err)
	}
	var slugs []string
	for _, tn := range got {
		slugs = append(slugs, tn.Slug)
	}
	wantEqual(t, "listed slugs", slugs, []string{"alpha", "zeta"})
}

func tenantsCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := &ciam.Tenant{
		ID:                   ciam.TenantID(ciam.NewID()),
		Slug:                 "acme",
		DisplayName:          "Acme Corp",
		LogoURL:              "https://acme.example/logo.svg",
		PrimaryColor:         "#112233",
		SignupOpen:           true,
		Listed:               true,
		System:               false,
		PasswordMinLength:    12,
		MFAPolicy:            ciam.MFARequired,
		RequireVerifiedEmail: true,
		SessionIdle:          90*time.Minute + 1,
		SessionAbsolute:      14 * 24 * time.Hour,
		ReauthTTL:            5*time.Minute + 1,
		Passkeys:             ciam.TenantPasskeys{RPID: "acme.example", Origins: []string{"https://login.acme.example"}, UserVerification: ciam.UVRequired},
		CreatedAt:            base(),
		UpdatedAt:            base().Add(time.Second),
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) })
	if tn.Version == 0 {
		t.Errorf("Create left Version 0")
	}
	want := *tn
	want.CreatedAt, want.UpdatedAt = stored(tn.CreatedAt), stored(tn.UpdatedAt)

	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Tenant().Get(ctx)
		if err != nil {
			return err
		}
		wantEqual(t, "Get", got, &want)
		return nil
	})
	got, err := s.System().TenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatalf("TenantBySlug: %v", err)
	}
	wantEqual(t, "TenantBySlug", got, &want)
}

func tenantsDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := newTenant(t, s, "acme")

	sameSlug := tenantFixture("acme")
	err := s.Tx(ctx, sameSlug.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, sameSlug) })
	wantErr(t, "Create with a taken slug", err, store.ErrConflict)

	sameID := tenantFixture("other")
	sameID.ID = first.ID
	err = s.Tx(ctx, sameID.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, sameID) })
	wantErr(t, "Create with a taken id", err, store.ErrConflict)

	if _, err := s.System().TenantBySlug(ctx, "other"); err == nil {
		t.Errorf("the conflicting tenant was stored")
	}
}

func tenantsCreateOtherTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := tenantFixture("acme")
	err := s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) })
	if err == nil {
		t.Fatalf("Create of a tenant other than the transaction's succeeded")
	}
	_, err = s.System().TenantBySlug(ctx, "acme")
	wantErr(t, "TenantBySlug after refused Create", err, store.ErrNotFound)
}

func tenantsNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.View(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error {
		_, err := tx.Tenant().Get(ctx)
		return err
	})
	wantErr(t, "Get of an unknown tenant", err, store.ErrNotFound)
	_, err = s.System().TenantBySlug(ctx, "nobody")
	wantErr(t, "TenantBySlug of an unknown slug", err, store.ErrNotFound)

	ghost := tenantFixture("ghost")
	ghost.Version = 1
	err = s.Tx(ctx, ghost.ID, func(tx store.Tx) error { return tx.Tenant().Update(ctx, ghost) })
	wantErr(t, "Update of an unknown tenant", err, store.ErrNotFound)
}

func tenantsUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	v := tn.Version
	tn.Slug = "acme-2"
	tn.DisplayName = "Acme Two"
	tn.SignupOpen = true
	tn.PasswordMinLength = 9
	tn.EmailVerifyTTL, tn.PasswordResetTTL, tn.LoginLinkTTL = 2*time.Hour, 15*time.Minute, 5*time.Minute
	tn.ReauthTTL = 3 * time.Minute
	tn.Passkeys = ciam.TenantPasskeys{RPID: "acme.test", Origins: []string{"https://a.acme.test", "https://b.acme.test"}}
	tn.Mail = ciam.TenantMail{Host: "smtp.acme.test", Port: 2525, TLS: "tls", Username: "u", SealedPassword: []byte{1, 2, 3}, From: "Acme <no-reply@acme.test>"}
	tn.UpdatedAt = base().Add(time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Update(ctx, tn) })
	if tn.Version != v+1 {
		t.Errorf("Version after Update = %d, want %d", tn.Version, v+1)
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Tenant().Get(ctx)
		if err != nil {
			return err
		}
		wantEqual(t, "Get after Update", got, tn)
		return nil
	})
	if _, err := s.System().TenantBySlug(ctx, "acme"); err == nil {
		t.Errorf("the old slug still resolves")
	}
}

func tenantsStaleUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	stale := *tn
	tn.DisplayName = "first"
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Update(ctx, tn) })

	stale.DisplayName = "second"
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Tenant().Update(ctx, &stale) })
	wantErr(t, "Update with a stale version", err, store.ErrConflict)
	got, err := s.System().TenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "first" || got.Version != tn.Version {
		t.Errorf("after stale Update: %q v%d, want %q v%d", got.DisplayName, got.Version, "first", tn.Version)
	}
}

func tenantsUpdateSlugTaken(t *testing.T, s store.Store) {
	ctx := t.Context()
	newTenant(t, s, "acme")
	tn := newTenant(t, s, "globex")
	v := tn.Version
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		taken := *tn
		taken.Slug = "acme"
		wantErr(t, "Update to a taken slug", tx.Tenant().Update(ctx, &taken), store.ErrConflict)
		// The transaction is still usable after the conflict.
		tn.DisplayName = "Globex"
		return tx.Tenant().Update(ctx, tn)
	})
	if err != nil {
		t.Fatalf("Tx after a conflict: %v", err)
	}
	got, err := s.System().TenantBySlug(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "Globex" || got.Version != v+1 {
		t.Errorf("got %q v%d, want %q v%d", got.DisplayName, got.Version, "Globex", v+1)
	}
}
