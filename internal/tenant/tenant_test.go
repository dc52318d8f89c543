package tenant_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func setup(t *testing.T) (*tenant.Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "t.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	rand.Read(kek)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &tenant.Service{Store: st, Now: func() time.Time { return now }, KEK: kek}, ctx
}

func ptr[T any](v T) *T { return &v }

func TestMailTTLs(t *testing.T) {
	svc, ctx := setup(t)
	tn, err := svc.Create(ctx, "acme", tenant.Settings{EmailVerifyTTL: ptr(48 * time.Hour)}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if tn.VerifyTTL() != 48*time.Hour || tn.ResetTTL() != ciam.DefaultPasswordResetTTL || tn.LoginTTL() != ciam.DefaultLoginLinkTTL {
		t.Fatalf("after create: %s %s %s", tn.VerifyTTL(), tn.ResetTTL(), tn.LoginTTL())
	}
	for _, c := range []struct {
		name string
		s    tenant.Settings
		code string // empty: accepted
	}{
		{"verify min", tenant.Settings{EmailVerifyTTL: ptr(time.Minute)}, ""},
		{"verify max", tenant.Settings{EmailVerifyTTL: ptr(7 * 24 * time.Hour)}, ""},
		{"verify too short", tenant.Settings{EmailVerifyTTL: ptr(30 * time.Second)}, "invalid_email_verify_ttl"},
		{"verify too long", tenant.Settings{EmailVerifyTTL: ptr(7*24*time.Hour + time.Second)}, "invalid_email_verify_ttl"},
		{"verify negative", tenant.Settings{EmailVerifyTTL: ptr(-time.Hour)}, "invalid_email_verify_ttl"},
		{"reset min", tenant.Settings{PasswordResetTTL: ptr(5 * time.Minute)}, ""},
		{"reset max", tenant.Settings{PasswordResetTTL: ptr(24 * time.Hour)}, ""},
		{"reset too short", tenant.Settings{PasswordResetTTL: ptr(4 * time.Minute)}, "invalid_password_reset_ttl"},
		{"reset too long", tenant.Settings{PasswordResetTTL: ptr(25 * time.Hour)}, "invalid_password_reset_ttl"},
		{"login min", tenant.Settings{LoginLinkTTL: ptr(time.Minute)}, ""},
		{"login max", tenant.Settings{LoginLinkTTL: ptr(time.Hour)}, ""},
		{"login too short", tenant.Settings{LoginLinkTTL: ptr(59 * time.Second)}, "invalid_login_link_ttl"},
		{"login too long", tenant.Settings{LoginLinkTTL: ptr(61 * time.Minute)}, "invalid_login_link_ttl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := svc.BySlug(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.Update(ctx, "acme", c.s, "test", audit.Meta{})
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if ciam.KindOf(err) != ciam.Invalid || ciam.CodeOf(err) != c.code {
				t.Fatalf("got %v (%v), want %s", got, err, c.code)
			}
			after, _ := svc.BySlug(ctx, "acme")
			if after.EmailVerifyTTL != before.EmailVerifyTTL || after.PasswordResetTTL != before.PasswordResetTTL || after.LoginLinkTTL != before.LoginLinkTTL {
				t.Fatal("a refused change was stored")
			}
		})
	}
	// 0 goes back to the default.
	tn, err = svc.Update(ctx, "acme", tenant.Settings{EmailVerifyTTL: ptr(time.Duration(0)), PasswordResetTTL: ptr(time.Duration(0)), LoginLinkTTL: ptr(time.Duration(0))}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if tn.EmailVerifyTTL != 0 || tn.VerifyTTL() != ciam.DefaultEmailVerifyTTL || tn.ResetTTL() != ciam.DefaultPasswordResetTTL || tn.LoginTTL() != ciam.DefaultLoginLinkTTL {
		t.Fatalf("reset to defaults: %+v", tn)
	}
	// Stored, not only returned.
	if _, err := svc.Update(ctx, "acme", tenant.Settings{LoginLinkTTL: ptr(15 * time.Minute)}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.ByID(ctx, tn.ID); err != nil || got.LoginLinkTTL != 15*time.Minute {
		t.Fatalf("stored login TTL: %v %v", got, err)
	}
}

func TestMailOverrideValidation(t *testing.T) {
	svc, ctx := setup(t)
	if _, err := svc.Create(ctx, "acme", tenant.Settings{}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	// Empty strings clear the override.
	empty, zero := "", 0
	cleared := tenant.Settings{MailHost: &empty, MailPort: &zero, MailTLS: &empty, MailUsername: &empty, MailPassword: &empty, MailFrom: &empty}
	for _, c := range []struct {
		name string
		s    tenant.Settings
		code string
	}{
		{"host and from", tenant.Settings{MailHost: ptr("smtp.acme.example"), MailFrom: ptr("Acme <no-reply@acme.example>")}, ""},
		{"bare from", tenant.Settings{MailFrom: ptr("no-reply@acme.example")}, ""},
		{"ip host", tenant.Settings{MailHost: ptr("192.0.2.25")}, ""},
		{"ipv6 host", tenant.Settings{MailHost: ptr("2001:db8::25")}, ""},
		{"port and tls", tenant.Settings{MailPort: ptr(465), MailTLS: ptr("tls")}, ""},
		{"starttls", tenant.Settings{MailTLS: ptr("starttls")}, ""},
		{"none on loopback", tenant.Settings{MailHost: ptr("localhost"), MailTLS: ptr("none"), MailUsername: ptr("u"), MailPassword: ptr("p")}, ""},
		{"host with port", tenant.Settings{MailHost: ptr("smtp.acme.example:587")}, "invalid_mail_host"},
		{"host with space", tenant.Settings{MailHost: ptr("smtp acme")}, "invalid_mail_host"},
		{"host with newline", tenant.Settings{MailHost: ptr("smtp\nacme")}, "invalid_mail_host"},
		{"port negative", tenant.Settings{MailPort: ptr(-1)}, "invalid_mail_port"},
		{"port too big", tenant.Settings{MailPort: ptr(65536)}, "invalid_mail_port"},
		{"tls unknown", tenant.Settings{MailTLS: ptr("ssl")}, "invalid_mail_tls"},
		{"from not an address", tenant.Settings{MailFrom: ptr("not an address")}, "invalid_mail_from"},
		{"from without domain", tenant.Settings{MailFrom: ptr("no-reply@")}, "invalid_mail_from"},
		{"from with header injection", tenant.Settings{MailFrom: ptr("a@acme.example\r\nBcc: x@evil.example")}, "invalid_mail_from"},
		{"username without password", tenant.Settings{MailHost: ptr("smtp2.acme.example"), MailUsername: ptr("acme")}, "mail_credentials_incomplete"},
		{"none with credentials over the network", tenant.Settings{MailHost: ptr("smtp3.acme.example"), MailTLS: ptr("none"), MailUsername: ptr("u"), MailPassword: ptr("p")}, "mail_tls_required"},
		{"password with newline", tenant.Settings{MailHost: ptr("smtp4.acme.example"), MailUsername: ptr("u"), MailPassword: ptr("p\r\nQUIT")}, "invalid_mail_password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := svc.Update(ctx, "acme", cleared, "test", audit.Meta{}); err != nil {
				t.Fatal(err)
			}
			before, _ := svc.BySlug(ctx, "acme")
			got, err := svc.Update(ctx, "acme", c.s, "test", audit.Meta{})
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if ciam.KindOf(err) != ciam.Invalid || ciam.CodeOf(err) != c.code {
				t.Fatalf("got %v (%v), want %s", got, err, c.code)
			}
			if after, _ := svc.BySlug(ctx, "acme"); after.Mail.Host != before.Mail.Host || after.Mail.TLS != before.Mail.TLS || after.Mail.Username != before.Mail.Username {
				t.Fatal("a refused change was stored")
			}
		})
	}
	tn, err := svc.Update(ctx, "acme", tenant.Settings{MailHost: ptr("smtp.acme.example"), MailPort: ptr(2525), MailTLS: ptr("tls"), MailUsername: ptr("u"), MailPassword: ptr("p"), MailFrom: ptr("a@acme.example")}, "test", audit.Meta{})
	if err != nil || tn.Mail.IsZero() {
		t.Fatalf("set the override: %+v %v", tn, err)
	}
	if tn, err = svc.Update(ctx, "acme", cleared, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if !tn.Mail.IsZero() {
		t.Fatalf("override not cleared: %+v", tn.Mail)
	}
}

func TestMailPasswordSealed(t *testing.T) {
	svc, ctx := setup(t)
	const secret = "correct horse battery staple"
	tn, err := svc.Create(ctx, "acme", tenant.Settings{
		MailHost: ptr("smtp.acme.example"), MailUsername: ptr("acme"), MailPassword: ptr(secret), MailFrom: ptr("no-reply@acme.example"),
	}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := svc.ByID(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := stored.Mail
	if m.Host != "smtp.acme.example" || m.Username != "acme" || m.From != "no-reply@acme.example" || len(m.SealedPassword) == 0 {
		t.Fatalf("stored override: %+v", m)
	}
	if bytes.Contains(m.SealedPassword, []byte(secret)) {
		t.Fatal("the SMTP password is stored in clear")
	}
	// The context is notify's (tenantPasswordContext): what notify opens.
	plain, err := keys.Open(svc.KEK, "tenant smtp password\x00"+string(tn.ID), m.SealedPassword)
	if err != nil || string(plain) != secret {
		t.Fatalf("open the sealed password: %q %v", plain, err)
	}
	other := make([]byte, 32)
	if _, err := keys.Open(other, "tenant smtp password\x00"+string(tn.ID), m.SealedPassword); err == nil {
		t.Fatal("the sealed password opens with another key")
	}
	if _, err := keys.Open(svc.KEK, "tenant smtp password\x00other", m.SealedPassword); err == nil {
		t.Fatal("the sealed password opens for another tenant")
	}

	// Other changes keep the password.
	if tn, err = svc.Update(ctx, "acme", tenant.Settings{MailPort: ptr(2525)}, "test", audit.Meta{}); err != nil || !bytes.Equal(tn.Mail.SealedPassword, m.SealedPassword) {
		t.Fatalf("port change: %v", err)
	}
	// A new host needs the password again: the stored one is never sent elsewhere.
	if _, err := svc.Update(ctx, "acme", tenant.Settings{MailHost: ptr("smtp.evil.example")}, "test", audit.Meta{}); ciam.CodeOf(err) != "mail_password_required" {
		t.Fatalf("host change kept the old password: %v", err)
	}
	if _, err := svc.Update(ctx, "acme", tenant.Settings{MailHost: ptr("SMTP.acme.example")}, "test", audit.Meta{}); err != nil {
		t.Fatalf("same host in other case: %v", err)
	}
	tn, err = svc.Update(ctx, "acme", tenant.Settings{MailHost: ptr("smtp2.acme.example"), MailPassword: ptr("new password")}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := keys.Open(svc.KEK, "tenant smtp password\x00"+string(tn.ID), tn.Mail.SealedPassword); err != nil || string(plain) != "new password" {
		t.Fatalf("new password: %q %v", plain, err)
	}
	// Clearing the password needs the user name cleared too.
	if _, err := svc.Update(ctx, "acme", tenant.Settings{MailPassword: ptr("")}, "test", audit.Meta{}); ciam.CodeOf(err) != "mail_credentials_incomplete" {
		t.Fatalf("password cleared without the user name: %v", err)
	}
	tn, err = svc.Update(ctx, "acme", tenant.Settings{MailUsername: ptr(""), MailPassword: ptr("")}, "test", audit.Meta{})
	if err != nil || tn.Mail.Username != "" || tn.Mail.SealedPassword != nil {
		t.Fatalf("clear credentials: %+v %v", tn, err)
	}

	// Without a KEK the password is refused, not stored in clear.
	noKEK := &tenant.Service{Store: svc.Store, Now: svc.Now}
	if _, err := noKEK.Update(ctx, "acme", tenant.Settings{MailUsername: ptr("u"), MailPassword: ptr("p")}, "test", audit.Meta{}); err == nil {
		t.Fatal("password accepted without a key-encryption key")
	}
}

func TestReauthTTL(t *testing.T) {
	svc, ctx := setup(t)
	tn, err := svc.Create(ctx, "acme", tenant.Settings{}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if tn.ReauthTTL != 0 || tn.ReauthWindow() != ciam.DefaultReauthTTL {
		t.Fatalf("default: %s %s", tn.ReauthTTL, tn.ReauthWindow())
	}
	for _, c := range []struct {
		name string
		d    time.Duration
		ok   bool
	}{
		{"min", time.Minute, true},
		{"max", 24 * time.Hour, true},
		{"too short", 59 * time.Second, false},
		{"too long", 24*time.Hour + time.Second, false},
		{"negative", -time.Minute, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := svc.BySlug(ctx, "acme")
			got, err := svc.Update(ctx, "acme", tenant.Settings{ReauthTTL: ptr(c.d)}, "test", audit.Meta{})
			if c.ok {
				if err != nil || got.ReauthWindow() != c.d {
					t.Fatalf("refused: %v %v", got, err)
				}
				return
			}
			if e := ciam.As(err); e == nil || e.Kind != ciam.Invalid || e.Code != "invalid_reauth_ttl" || e.Field != "reauth_ttl" {
				t.Fatalf("got %v, want invalid_reauth_ttl on reauth_ttl", err)
			}
			if after, _ := svc.BySlug(ctx, "acme"); after.ReauthTTL != before.ReauthTTL {
				t.Fatal("a refused change was stored")
			}
		})
	}
	// Stored, not only returned; 0 goes back to the default.
	if _, err := svc.Update(ctx, "acme", tenant.Settings{ReauthTTL: ptr(3 * time.Minute)}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.ByID(ctx, tn.ID); err != nil || got.ReauthTTL != 3*time.Minute {
		t.Fatalf("stored reauth TTL: %v %v", got, err)
	}
	tn, err = svc.Update(ctx, "acme", tenant.Settings{ReauthTTL: ptr(time.Duration(0))}, "test", audit.Meta{})
	if err != nil || tn.ReauthTTL != 0 || tn.ReauthWindow() != ciam.DefaultReauthTTL {
		t.Fatalf("reset to default: %v %v", tn, err)
	}
}

func TestPasskeySettings(t *testing.T) {
	svc, ctx := setup(t)
	svc.PublicURL = "https://id.example.com"
	tn, err := svc.Create(ctx, "acme", tenant.Settings{
		PasskeyRPID: ptr("Acme.Example."), PasskeyOrigins: ptr([]string{"https://Login.Acme.Example:443/", "https://login.acme.example"}), PasskeyUserVerification: ptr(ciam.UVRequired),
	}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	want := ciam.TenantPasskeys{RPID: "acme.example", Origins: []string{"https://login.acme.example"}, UserVerification: ciam.UVRequired}
	stored, err := svc.ByID(ctx, tn.ID)
	if err != nil || !equalPasskeys(stored.Passkeys, want) || !equalPasskeys(tn.Passkeys, want) {
		t.Fatalf("stored passkeys: %+v %v", stored, err)
	}

	none := []string{}
	for _, c := range []struct {
		name  string
		s     tenant.Settings
		code  string // empty: accepted
		field string
	}{
		{"rp id of the public URL", tenant.Settings{PasskeyRPID: ptr("id.example.com"), PasskeyOrigins: &none}, "", ""},
		{"parent of the public URL", tenant.Settings{PasskeyRPID: ptr("example.com"), PasskeyOrigins: &none}, "", ""},
		{"preferred", tenant.Settings{PasskeyUserVerification: ptr(ciam.UVPreferred)}, "", ""},
		{"two origins", tenant.Settings{PasskeyOrigins: ptr([]string{"https://a.acme.example", "https://b.acme.example:8443"})}, "", ""},
		{"uv unknown", tenant.Settings{PasskeyUserVerification: ptr("discouraged")}, "invalid_passkey_user_verification", "passkey_user_verification"},
		{"rp id with scheme", tenant.Settings{PasskeyRPID: ptr("https://acme.example")}, "invalid_passkey_rp_id", "passkey_rp_id"},
		{"rp id with space", tenant.Settings{PasskeyRPID: ptr("acme example")}, "invalid_passkey_rp_id", "passkey_rp_id"},
		{"origin with path", tenant.Settings{PasskeyOrigins: ptr([]string{"https://login.acme.example/login"})}, "invalid_passkey_origin", "passkey_origins"},
		{"origin without scheme", tenant.Settings{PasskeyOrigins: ptr([]string{"login.acme.example"})}, "invalid_passkey_origin", "passkey_origins"},
		{"origin ftp", tenant.Settings{PasskeyOrigins: ptr([]string{"ftp://login.acme.example"})}, "invalid_passkey_origin", "passkey_origins"},
		{"origin with query", tenant.Settings{PasskeyOrigins: ptr([]string{"https://login.acme.example?x=1"})}, "invalid_passkey_origin", "passkey_origins"},
		{"origin empty", tenant.Settings{PasskeyOrigins: ptr([]string{""})}, "invalid_passkey_origin", "passkey_origins"},
		{"too many origins", tenant.Settings{PasskeyOrigins: ptr(manyOrigins(tenant.MaxPasskeyOrigins + 1))}, "invalid_passkey_origins", "passkey_origins"},
		// What only the public URL tells: passkey.Validate.
		{"origin over http", tenant.Settings{PasskeyOrigins: ptr([]string{"http://login.acme.example"})}, "passkey_config_invalid", "passkey_origins"},
		{"rp id of no origin", tenant.Settings{PasskeyRPID: ptr("other.example"), PasskeyOrigins: &none}, "passkey_config_invalid", "passkey_rp_id"},
		{"rp id a top-level domain", tenant.Settings{PasskeyRPID: ptr("example")}, "passkey_config_invalid", "passkey_rp_id"},
		{"rp id of a dropped origin", tenant.Settings{PasskeyOrigins: &none}, "passkey_config_invalid", "passkey_rp_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := svc.Update(ctx, "acme", tenant.Settings{PasskeyRPID: ptr("acme.example"), PasskeyOrigins: ptr([]string{"https://login.acme.example"}), PasskeyUserVerification: ptr("required")}, "test", audit.Meta{}); err != nil {
				t.Fatal(err)
			}
			before, _ := svc.BySlug(ctx, "acme")
			got, err := svc.Update(ctx, "acme", c.s, "test", audit.Meta{})
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e := ciam.As(err); e == nil || e.Kind != ciam.Invalid || e.Code != c.code || e.Field != c.field {
				t.Fatalf("got %v (%v), want %s on %s", got, err, c.code, c.field)
			}
			if after, _ := svc.BySlug(ctx, "acme"); !equalPasskeys(after.Passkeys, before.Passkeys) {
				t.Fatal("a refused change was stored")
			}
		})
	}

	// Empty values go back to the defaults, which need no check.
	tn, err = svc.Update(ctx, "acme", tenant.Settings{PasskeyRPID: ptr(""), PasskeyOrigins: &none, PasskeyUserVerification: ptr("")}, "test", audit.Meta{})
	if err != nil || !tn.Passkeys.IsZero() {
		t.Fatalf("clear: %+v %v", tn, err)
	}
	if got, err := svc.ByID(ctx, tn.ID); err != nil || !got.Passkeys.IsZero() {
		t.Fatalf("stored after clear: %+v %v", got, err)
	}
	// "preferred" is the default and stored as such.
	if tn, err = svc.Update(ctx, "acme", tenant.Settings{PasskeyUserVerification: ptr(ciam.UVPreferred)}, "test", audit.Meta{}); err != nil || !tn.Passkeys.IsZero() {
		t.Fatalf("preferred: %+v %v", tn, err)
	}
	// A public URL that cannot run passkeys refuses settings other than the
	// defaults, but other changes do not re-check stored passkey settings.
	if _, err := svc.Update(ctx, "acme", tenant.Settings{PasskeyUserVerification: ptr(ciam.UVRequired)}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	svc.PublicURL = "http://127.0.0.1:8080"
	if _, err := svc.Update(ctx, "acme", tenant.Settings{PasskeyRPID: ptr("example.com")}, "test", audit.Meta{}); ciam.CodeOf(err) != "passkey_config_invalid" {
		t.Fatalf("passkeys on a public URL that cannot run them: %v", err)
	}
	if _, err := svc.Update(ctx, "acme", tenant.Settings{DisplayName: ptr("Acme")}, "test", audit.Meta{}); err != nil {
		t.Fatalf("unrelated change: %v", err)
	}
	if tn, err = svc.Update(ctx, "acme", tenant.Settings{PasskeyUserVerification: ptr("")}, "test", audit.Meta{}); err != nil || !tn.Passkeys.IsZero() {
		t.Fatalf("back to the defaults: %+v %v", tn, err)
	}
	// Without a public URL only the shape is checked.
	svc.PublicURL = ""
	if _, err := svc.Update(ctx, "acme", tenant.Settings{PasskeyRPID: ptr("other.example")}, "test", audit.Meta{}); err != nil {
		t.Fatalf("no public URL: %v", err)
	}
}

func equalPasskeys(a, b ciam.TenantPasskeys) bool {
	return a.RPID == b.RPID && a.UserVerification == b.UserVerification && slices.Equal(a.Origins, b.Origins)
}

func manyOrigins(n int) []string {
	var o []string
	for i := range n {
		o = append(o, fmt.Sprintf("https://o%d.acme.example", i))
	}
	return o
}
