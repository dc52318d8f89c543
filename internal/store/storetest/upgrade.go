package storetest

import (
	"database/sql"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Upgrade checks the migration history against data written before it.
// raw is a connection to an empty database and migrations the dialect's
// files: Upgrade migrates raw to version 1, writes rows there with SQL of
// that version, then opens the store with open, which must migrate to the
// latest version. The rows must read back unchanged and work with the
// tables that later migrations add. Last it migrates down to version 1 and
// up again, which checks the Down sections.
func Upgrade(t *testing.T, raw *sql.DB, dialect goose.Dialect, migrations fs.FS, open func(t *testing.T) store.Store) {
	ctx := t.Context()
	p, err := goose.NewProvider(dialect, raw, migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}

	at := time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
	tn := &ciam.Tenant{
		ID: "seeded-tenant", Slug: "seeded", DisplayName: "Seeded Tenant", PrimaryColor: "#123456",
		SignupOpen: true, PasswordMinLength: 12, MFAPolicy: ciam.MFAOptional, RequireVerifiedEmail: true,
		SessionIdle: ciam.DefaultSessionIdle, SessionAbsolute: ciam.DefaultSessionAbsolute,
		CreatedAt: at, UpdatedAt: at.Add(time.Hour), Version: 3,
	}
	u := &ciam.User{
		ID: "seeded-user", TenantID: tn.ID, Email: "seeded@example.com", EmailVerified: true, Name: "Seeded User",
		Locale: "en", Status: ciam.UserActive, CreatedAt: at, UpdatedAt: at, LastLoginAt: at.Add(time.Minute), Version: 2,
	}
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZA$aGFzaA"
	// Version 1's SQL, spelled out: it must not change when the store's
	// queries do. It is the same on every dialect.
	seed := []string{
		fmt.Sprintf(`INSERT INTO tenants (id, slug, display_name, logo_url, primary_color, signup_open, listed,
			is_system, password_min_length, mfa_policy, require_verified_email, session_idle_ns, session_absolute_ns,
			created_at, updated_at, version)
			VALUES ('%s', '%s', '%s', '', '%s', TRUE, FALSE, FALSE, %d, '%s', TRUE, %d, %d, %d, %d, %d)`,
			tn.ID, tn.Slug, tn.DisplayName, tn.PrimaryColor, tn.PasswordMinLength, tn.MFAPolicy,
			int64(tn.SessionIdle), int64(tn.SessionAbsolute), tn.CreatedAt.UnixMicro(), tn.UpdatedAt.UnixMicro(), tn.Version),
		fmt.Sprintf(`INSERT INTO users (tenant_id, id, email, email_verified, name, locale, status, created_at,
			updated_at, last_login_at, version, pii_key)
			VALUES ('%s', '%s', '%s', TRUE, '%s', '%s', '%s', %d, %d, %d, %d, NULL)`,
			u.TenantID, u.ID, u.Email, u.Name, u.Locale, u.Status, u.CreatedAt.UnixMicro(), u.UpdatedAt.UnixMicro(),
			u.LastLoginAt.UnixMicro(), u.Version),
		fmt.Sprintf(`INSERT INTO passwords (tenant_id, user_id, hash, updated_at) VALUES ('%s', '%s', '%s', %d)`,
			tn.ID, u.ID, hash, at.UnixMicro()),
	}
	for _, q := range seed {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed version 1: %v", err)
		}
	}

	// Version 4: a refresh token family with one rotated generation, as
	// rows were written before tokens rotated in place (version 5).
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatalf("migrate to version 4: %v", err)
	}
	rotatedHash, liveHash := sha("v4 rotated"), sha("v4 live")
	v4 := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO clients (tenant_id, id, name, is_public, first_party, secret_hash, secret_rotated_at, token_auth_method,
			jwks, redirect_uris, post_logout_uris, grant_types, scopes, audiences, id_token_alg, access_token_ttl_ns,
			refresh_idle_ttl_ns, refresh_max_ttl_ns, refresh_with_session, backchannel_logout_uri, created_at, updated_at, version)
			VALUES (?, 'v4-app', 'App', TRUE, TRUE, NULL, NULL, 'none', '', '[]', '[]', '["refresh_token"]', '[]', '[]', 'ES256',
			0, 0, 0, FALSE, '', ?, ?, 1)`, []any{string(tn.ID), at.UnixMicro(), at.UnixMicro()}},
		{`INSERT INTO refresh_tokens (tenant_id, id, hash, family_id, client_id, user_id, session_id, scopes, auth_time, acr, amr,
			created_at, idle_expires_at, expires_at, rotated_at, revoked_at)
			VALUES (?, 'rt-1', ?, 'fam-v4', 'v4-app', ?, NULL, '[]', ?, '', '[]', ?, ?, ?, ?, NULL)`,
			[]any{string(tn.ID), rotatedHash, string(u.ID), at.UnixMicro(), at.UnixMicro(), at.Add(time.Hour).UnixMicro(), at.Add(48 * time.Hour).UnixMicro(), at.Add(time.Minute).UnixMicro()}},
		{`INSERT INTO refresh_tokens (tenant_id, id, hash, family_id, client_id, user_id, session_id, scopes, auth_time, acr, amr,
			created_at, idle_expires_at, expires_at, rotated_at, revoked_at)
			VALUES (?, 'rt-2', ?, 'fam-v4', 'v4-app', ?, NULL, '[]', ?, '', '[]', ?, ?, ?, NULL, NULL)`,
			[]any{string(tn.ID), liveHash, string(u.ID), at.UnixMicro(), at.Add(time.Minute).UnixMicro(), at.Add(2 * time.Hour).UnixMicro(), at.Add(48 * time.Hour).UnixMicro()}},
	}
	for _, x := range v4 {
		q := x.q
		if dialect == goose.DialectPostgres {
			for i := 1; strings.Contains(q, "?"); i++ {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
			}
		}
		if _, err := raw.ExecContext(ctx, q, x.args...); err != nil {
			t.Fatalf("seed version 4: %v", err)
		}
	}

	check := func(s store.Store) {
		t.Helper()
		got, err := s.System().TenantBySlug(ctx, tn.Slug)
		if err != nil {
			t.Fatalf("seeded tenant: %v", err)
		}
		wantEqual(t, "seeded tenant", got, tn)
		mustView(t, s, tn.ID, func(tx store.Tx) error {
			got, err := tx.Users().Get(ctx, u.ID)
			if err != nil {
				return err
			}
			wantEqual(t, "seeded user", got, u)
			h, err := tx.Passwords().Get(ctx, u.ID)
			if err != nil {
				return err
			}
			if h != hash {
				t.Errorf("seeded password hash = %q", h)
			}
			return nil
		})
	}

	s := open(t)
	if ok, err := s.System().MigrationsCurrent(ctx); err != nil || !ok {
		t.Fatalf("MigrationsCurrent after the upgrade = %v, %v", ok, err)
	}
	check(s)
	// Version 5 moved the rotated generation to the spent hashes: it is
	// still recognised as reuse of its family, and the live one still works.
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.RefreshTokens().ByHash(ctx, rotatedHash)
		wantErr(t, "ByHash of the rotated version 4 token", err, store.ErrNotFound)
		fam, client, err := tx.RefreshTokens().SpentFamily(ctx, rotatedHash)
		if err != nil || fam != "fam-v4" || client != "v4-app" {
			t.Errorf("SpentFamily of the rotated version 4 token = %q, %q, %v", fam, client, err)
		}
		live, err := tx.RefreshTokens().ByHash(ctx, liveHash)
		if err != nil || live.ID != "rt-2" || !live.Live(at.Add(30*time.Minute)) {
			t.Errorf("the live version 4 token: %+v, %v", live, err)
		}
		return nil
	})
	// The seeded user and tenant work with what later versions added.
	c := clientFixture("after-upgrade")
	g := grantFixture(u.ID, c.ID, at, "openid")
	rt := refreshFixture(c.ID, u.ID, "", "family", at)
	pk := passkeyFixture(u.ID, at)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.Clients().Create(ctx, c); err != nil {
			return err
		}
		if err := tx.Grants().Put(ctx, g); err != nil {
			return err
		}
		if err := tx.Passkeys().Create(ctx, pk); err != nil {
			return err
		}
		if err := tx.TOTP().Put(ctx, totpFixture(u.ID, at)); err != nil {
			return err
		}
		if err := tx.RecoveryCodes().Replace(ctx, u.ID, recoveryHashes("seeded ", 2), at); err != nil {
			return err
		}
		return tx.RefreshTokens().Create(ctx, rt)
	})
	wantEqual(t, "refresh token of the seeded user", getRefresh(t, s, tn.ID, rt.Hash), storedRefresh(rt))
	wantEqual(t, "passkey of the seeded user", passkeyByCredential(t, s, tn.ID, pk.CredentialID), storedPasskey(pk))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Down to version 1 and up again: the seeded rows stay, the later
	// tables are recreated empty.
	if _, err := p.DownTo(ctx, 1); err != nil {
		t.Fatalf("migrate down to version 1: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	s = open(t)
	defer s.Close()
	check(s)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Clients().Get(ctx, c.ID)
		wantErr(t, "client after down and up", err, store.ErrNotFound)
		_, err = tx.Passkeys().ByCredentialID(ctx, pk.CredentialID)
		wantErr(t, "passkey after down and up", err, store.ErrNotFound)
		_, err = tx.TOTP().Get(ctx, u.ID)
		wantErr(t, "TOTP authenticator after down and up", err, store.ErrNotFound)
		return nil
	})
}
