package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
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
