package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// cli runs the command line in-process against a database in dir.
func cli(t *testing.T, db string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--database", db), nil, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestCLITenantsAndUsers(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "cli.db")

	out, errOut, code := cli(t, db, "", "tenant", "create", "acme", "--name", "Acme Inc", "--signup", "closed", "--listed", "--primary-color", "#0a7d4f", "--output", "json")
	if code != 0 {
		t.Fatalf("tenant create: %d %s", code, errOut)
	}
	var tj tenantJSON
	if err := json.Unmarshal([]byte(out), &tj); err != nil || tj.Slug != "acme" || tj.SignupOpen || !tj.Listed || tj.PrimaryColor != "#0a7d4f" || tj.PasswordMinLength != 15 {
		t.Fatalf("tenant create output: %v %+v", err, tj)
	}
	if _, errOut, code := cli(t, db, "", "tenant", "create", "acme"); code == 0 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("duplicate tenant: %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, db, "", "tenant", "create", "Bad_Slug"); code == 0 || !strings.Contains(errOut, "slug") {
		t.Fatalf("bad slug: %d %s", code, errOut)
	}
	out, errOut, code = cli(t, db, "", "tenant", "update", "acme", "--password-min-length", "10", "--session-idle", "2h", "--session-absolute", "48h", "--require-verified-email", "--mfa-policy", "optional", "--output", "json")
	if code != 0 {
		t.Fatalf("tenant update: %d %s", code, errOut)
	}
	json.Unmarshal([]byte(out), &tj)
	if tj.PasswordMinLength != 10 || tj.SessionIdle != "2h0m0s" || !tj.RequireVerifiedEmail || tj.MFAPolicy != "optional" || len(tj.Warnings) == 0 {
		t.Fatalf("tenant update output: %+v", tj)
	}
	if _, errOut, code := cli(t, db, "", "tenant", "update", "acme", "--session-idle", "10s"); code == 0 || !strings.Contains(errOut, "idle") {
		t.Fatalf("bad idle lifetime accepted: %s", errOut)
	}
	out, _, code = cli(t, db, "", "tenant", "list", "--output", "json")
	var tl []tenantJSON
	if code != 0 || json.Unmarshal([]byte(out), &tl) != nil || len(tl) != 3 {
		t.Fatalf("tenant list: %s", out)
	}

	out, errOut, code = cli(t, db, "a sufficiently long secret\n", "user", "create", "--tenant", "acme", "--email", "Ada@Example.com", "--name", "Ada", "--password-stdin", "--output", "json")
	if code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	var uj userJSON
	if json.Unmarshal([]byte(out), &uj) != nil || uj.Email != "ada@example.com" || uj.Status != "active" {
		t.Fatalf("user create output: %s", out)
	}
	if _, errOut, code := cli(t, db, "short\n", "user", "create", "--tenant", "acme", "--email", "b@example.com", "--password-stdin"); code == 0 || !strings.Contains(errOut, "at least 10") {
		t.Fatalf("short password accepted: %s", errOut)
	}
	if _, errOut, code := cli(t, db, "", "user", "create", "--tenant", "acme", "--email", "ADA@example.com"); code == 0 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("duplicate user: %s", errOut)
	}
	if _, errOut, code := cli(t, db, "", "user", "create", "--tenant", "nope", "--email", "x@example.com"); code == 0 || !strings.Contains(errOut, "no tenant") {
		t.Fatalf("unknown tenant: %s", errOut)
	}
	out, _, code = cli(t, db, "", "user", "disable", "--tenant", "acme", "ada@example.com", "--output", "json")
	if code != 0 || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("disable: %s", out)
	}
	out, _, _ = cli(t, db, "", "user", "list", "--tenant", "acme", "--output", "json")
	var ul []userJSON
	if json.Unmarshal([]byte(out), &ul) != nil || len(ul) != 1 || ul[0].Status != "disabled" {
		t.Fatalf("user list: %s", out)
	}
	if out, _, code := cli(t, db, "", "user", "enable", "--tenant", "acme", uj.ID); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("enable by id: %s", out)
	}
	out, errOut, code = cli(t, db, "", "audit", "verify", "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "events verified") {
		t.Fatalf("audit verify: %s %s", out, errOut)
	}
	if out, _, code := cli(t, db, "", "version"); code != 0 || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("version: %s", out)
	}
	if out, _, code := cli(t, db, "", "migrate"); code != 0 || !strings.Contains(out, "current") {
		t.Fatalf("migrate: %s", out)
	}
}

func TestCLIConfigProblemsReported(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"tenant", "list"}, []string{"GATEHOUSE_LOG_FORMAT=xml", "GATEHOUSE_DATABASE=mysql://x"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "log_format") || !strings.Contains(errb.String(), "database") {
		t.Fatalf("config problems: %d %s", code, errb.String())
	}
}

func TestCLITenantMailSettings(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "cli.db")
	db := "sqlite:" + dbPath
	const secret = "smtp secret 42"
	pwFile := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := cli(t, db, "", "tenant", "create", "acme", "--email-verify-ttl", "48h", "--login-link-ttl", "5m", "--output", "json")
	if code != 0 {
		t.Fatalf("tenant create: %d %s", code, errOut)
	}
	var tj tenantJSON
	if err := json.Unmarshal([]byte(out), &tj); err != nil || tj.EmailVerifyTTL != "48h0m0s" || tj.PasswordResetTTL != "30m0s" || tj.LoginLinkTTL != "5m0s" || tj.Mail != (tenantMailJSON{}) {
		t.Fatalf("tenant create output: %v %+v", err, tj)
	}

	out, errOut, code = cli(t, db, "", "tenant", "update", "acme", "--password-reset-ttl", "1h", "--smtp-host", "smtp.acme.example", "--smtp-port", "2525",
		"--smtp-tls", "starttls", "--smtp-username", "acme", "--smtp-password-file", pwFile, "--smtp-from", "Acme <no-reply@acme.example>", "--output", "json")
	if code != 0 {
		t.Fatalf("tenant update: %d %s", code, errOut)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "sealed") {
		t.Fatalf("the SMTP password shows in the output: %s", out)
	}
	tj = tenantJSON{}
	json.Unmarshal([]byte(out), &tj)
	want := tenantMailJSON{Host: "smtp.acme.example", Port: 2525, TLS: "starttls", Username: "acme", PasswordSet: true, From: "Acme <no-reply@acme.example>"}
	if tj.Mail != want || tj.PasswordResetTTL != "1h0m0s" || tj.EmailVerifyTTL != "48h0m0s" {
		t.Fatalf("tenant update output: %+v", tj)
	}

	// get and list show the same, without the password.
	out, errOut, code = cli(t, db, "", "tenant", "get", "acme", "--output", "json")
	tj = tenantJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &tj) != nil || tj.Mail != want || tj.LoginLinkTTL != "5m0s" || strings.Contains(out, secret) {
		t.Fatalf("tenant get: %d %s %s", code, out, errOut)
	}
	if !strings.Contains(out, `"password_set": true`) {
		t.Fatalf("tenant get lacks password_set: %s", out)
	}
	out, _, code = cli(t, db, "", "tenant", "get", "acme")
	if code != 0 || !strings.Contains(out, "smtp.acme.example") || !strings.Contains(out, "login link ttl") || strings.Contains(out, secret) {
		t.Fatalf("tenant get text: %s", out)
	}
	if _, errOut, code := cli(t, db, "", "tenant", "get", "nope"); code == 0 || !strings.Contains(errOut, "no tenant") {
		t.Fatalf("tenant get unknown: %s", errOut)
	}
	out, _, code = cli(t, db, "", "tenant", "list", "--output", "json")
	var tl []tenantJSON
	if code != 0 || json.Unmarshal([]byte(out), &tl) != nil || strings.Contains(out, secret) {
		t.Fatalf("tenant list: %s", out)
	}
	for _, l := range tl {
		if l.Slug == "acme" && l.Mail != want {
			t.Fatalf("tenant list mail: %+v", l.Mail)
		}
	}

	// The password is stored sealed under the key beside the database, the
	// one serve uses.
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.System().TenantBySlug(context.Background(), "acme")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Mail.SealedPassword) == 0 || bytes.Contains(stored.Mail.SealedPassword, []byte(secret)) {
		t.Fatalf("stored password: %q", stored.Mail.SealedPassword)
	}
	kek, err := keys.LoadOrCreateKEK(filepath.Join(dir, "gatehouse.key"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := keys.Open(kek, "tenant smtp password\x00"+string(stored.ID), stored.Mail.SealedPassword); err != nil || string(plain) != secret {
		t.Fatalf("open the stored password: %q %v", plain, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--login-link-ttl", "2h"}, "login link lifetime"},
		{[]string{"--email-verify-ttl", "30s"}, "verification lifetime"},
		{[]string{"--password-reset-ttl", "48h"}, "reset lifetime"},
		{[]string{"--smtp-tls", "ssl"}, "none, starttls or tls"},
		{[]string{"--smtp-port", "70000"}, "port"},
		{[]string{"--smtp-from", "not an address"}, "sender"},
		{[]string{"--smtp-host", "smtp.other.example"}, "password again"},
		{[]string{"--smtp-password-file", filepath.Join(dir, "missing")}, "--smtp-password-file"},
		{[]string{"--smtp-password", secret}, "unknown flag"},
	} {
		if _, errOut, code := cli(t, db, "", append([]string{"tenant", "update", "acme"}, c.args...)...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %s", c.args, code, errOut)
		}
	}

	// An empty password file and empty values clear the override.
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	out, errOut, code = cli(t, db, "", "tenant", "update", "acme", "--smtp-host", "", "--smtp-port", "0", "--smtp-tls", "", "--smtp-username", "",
		"--smtp-password-file", empty, "--smtp-from", "", "--email-verify-ttl", "0", "--output", "json")
	tj = tenantJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &tj) != nil || tj.Mail != (tenantMailJSON{}) || tj.EmailVerifyTTL != "24h0m0s" {
		t.Fatalf("clear the override: %d %s %s", code, out, errOut)
	}
}

func TestCLITenantReauthAndPasskeys(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "cli.db")

	// Defaults: the public URL (http://localhost:8080) decides.
	out, errOut, code := cli(t, db, "", "tenant", "create", "acme", "--output", "json")
	var tj tenantJSON
	if code != 0 || json.Unmarshal([]byte(out), &tj) != nil {
		t.Fatalf("tenant create: %d %s %s", code, out, errOut)
	}
	if tj.ReauthTTL != "10m0s" || tj.Passkeys.RPID != "" || tj.Passkeys.Origins == nil || len(tj.Passkeys.Origins) != 0 || tj.Passkeys.UserVerification != "preferred" {
		t.Fatalf("defaults: %+v", tj)
	}

	out, errOut, code = cli(t, db, "", "tenant", "update", "acme", "--reauth-ttl", "5m", "--passkey-rp-id", "acme.example",
		"--passkey-origin", "https://login.acme.example", "--passkey-origin", "https://www.acme.example/", "--passkey-user-verification", "required", "--output", "json")
	if code != 0 {
		t.Fatalf("tenant update: %d %s", code, errOut)
	}
	tj = tenantJSON{}
	json.Unmarshal([]byte(out), &tj)
	want := tenantPasskeysJSON{RPID: "acme.example", Origins: []string{"https://login.acme.example", "https://www.acme.example"}, UserVerification: "required"}
	if tj.ReauthTTL != "5m0s" || !reflect.DeepEqual(tj.Passkeys, want) {
		t.Fatalf("tenant update output: %+v", tj)
	}
	if !strings.Contains(out, `"reauth_ttl": "5m0s"`) || !strings.Contains(out, `"rp_id": "acme.example"`) || !strings.Contains(out, `"user_verification": "required"`) {
		t.Fatalf("JSON names: %s", out)
	}

	// get shows the same; other changes keep them.
	if _, errOut, code := cli(t, db, "", "tenant", "update", "acme", "--name", "Acme"); code != 0 {
		t.Fatalf("unrelated update: %s", errOut)
	}
	out, errOut, code = cli(t, db, "", "tenant", "get", "acme", "--output", "json")
	tj = tenantJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &tj) != nil || tj.ReauthTTL != "5m0s" || !reflect.DeepEqual(tj.Passkeys, want) {
		t.Fatalf("tenant get: %d %s %s", code, out, errOut)
	}
	out, _, code = cli(t, db, "", "tenant", "get", "acme")
	for _, s := range []string{"reauth ttl", "5m0s", "passkey rp id", "acme.example", "https://login.acme.example https://www.acme.example", "passkey user verification", "required"} {
		if code != 0 || !strings.Contains(out, s) {
			t.Fatalf("tenant get text lacks %q: %s", s, out)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--reauth-ttl", "30s"}, "recent login lifetime"},
		{[]string{"--reauth-ttl", "25h"}, "recent login lifetime"},
		{[]string{"--passkey-user-verification", "discouraged"}, "preferred or required"},
		{[]string{"--passkey-origin", "https://login.acme.example/login"}, "without a path"},
		{[]string{"--passkey-origin", "login.acme.example"}, "http(s) origin"},
		{[]string{"--passkey-origin", "http://login.acme.example"}, "https"},
		{[]string{"--passkey-rp-id", "https://acme.example"}, "domain name"},
		{[]string{"--passkey-rp-id", "other.example"}, "RP ID"},
	} {
		if _, errOut, code := cli(t, db, "", append([]string{"tenant", "update", "acme"}, c.args...)...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %s", c.args, code, errOut)
		}
	}
	out, _, _ = cli(t, db, "", "tenant", "get", "acme", "--output", "json")
	tj = tenantJSON{}
	if json.Unmarshal([]byte(out), &tj) != nil || tj.ReauthTTL != "5m0s" || !reflect.DeepEqual(tj.Passkeys, want) {
		t.Fatalf("a refused change was stored: %s", out)
	}

	// Empty values (and --reauth-ttl 0) go back to the defaults.
	out, errOut, code = cli(t, db, "", "tenant", "update", "acme", "--reauth-ttl", "0", "--passkey-rp-id", "", "--passkey-origin", "",
		"--passkey-user-verification", "", "--output", "json")
	tj = tenantJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &tj) != nil || tj.ReauthTTL != "10m0s" || !reflect.DeepEqual(tj.Passkeys, tenantPasskeysJSON{Origins: []string{}, UserVerification: "preferred"}) {
		t.Fatalf("back to the defaults: %d %s %s", code, out, errOut)
	}
	if strings.Contains(out, "rp_id") {
		t.Fatalf("empty rp_id shown: %s", out)
	}
}
