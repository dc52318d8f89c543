package mail_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
)

func TestConfigYAML(t *testing.T) {
	src := `
host: smtp.example.com
port: 587
tls: starttls
username: gatehouse
password: s3cret
from: "Example <no-reply@example.com>"
helo: id.example.com
timeout: 15s
template_dir: /etc/gatehouse/mail
`
	var c mail.Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := mail.Config{Host: "smtp.example.com", Port: 587, TLS: mail.TLSStartTLS, Username: "gatehouse", Password: "s3cret",
		From: "Example <no-reply@example.com>", HELO: "id.example.com", Timeout: 15 * time.Second, TemplateDir: "/etc/gatehouse/mail"}
	if c != want {
		t.Errorf("decoded %+v\nwant    %+v", c, want)
	}
	if err := c.Validate("mail"); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := mail.Config{Host: "smtp.example.com", From: "no-reply@example.com"}
	if err := ok.Validate("mail"); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		name string
		cfg  mail.Config
		want string // in the error
	}{
		{"empty", mail.Config{}, "mail.host: required"},
		{"no from", mail.Config{Host: "smtp.example.com"}, "mail.from: required"},
		{"host with port", mail.Config{Host: "smtp.example.com:587", From: "a@example.com"}, "mail.host:"},
		{"bad port", mail.Config{Host: "h", Port: 70000, From: "a@example.com"}, "mail.port:"},
		{"bad tls", mail.Config{Host: "h", TLS: "ssl", From: "a@example.com"}, `mail.tls: "ssl": want none, starttls or tls`},
		{"user without password", mail.Config{Host: "h", Username: "u", From: "a@example.com"}, "mail.password:"},
		{"password in clear", mail.Config{Host: "smtp.example.com", TLS: mail.TLSNone, Username: "u", Password: "p", From: "a@example.com"}, "clear text"},
		{"bad from", mail.Config{Host: "h", From: "not an address"}, "mail.from:"},
		{"from without domain", mail.Config{Host: "h", From: "root@"}, "mail.from:"},
		{"negative timeout", mail.Config{Host: "h", From: "a@example.com", Timeout: -time.Second}, "mail.timeout:"},
		{"header injection", mail.Config{Host: "h", From: "a@example.com\r\nBcc: x@example.com"}, "mail.from:"},
	} {
		err := c.cfg.Validate("mail")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// Every problem at once.
	err := mail.Config{Port: -1, TLS: "x", Timeout: -1}.Validate("")
	for _, k := range []string{"host:", "port:", "tls:", "from:", "timeout:"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("missing %q in %v", k, err)
		}
	}
	// Credentials in clear text are fine to a relay on this machine.
	local := mail.Config{Host: "127.0.0.1", Port: 1025, TLS: mail.TLSNone, Username: "u", Password: "p", From: "a@example.com"}
	if err := local.Validate("mail"); err != nil {
		t.Error(err)
	}
}

func TestConfigMerge(t *testing.T) {
	base := mail.Config{Host: "smtp.example.com", Port: 587, TLS: mail.TLSStartTLS, Username: "deploy", Password: "deploy-secret",
		From: "no-reply@example.com", Timeout: 20 * time.Second, TemplateDir: "/etc/mail"}

	// Same relay, another sender: everything else is kept.
	got := base.Merge(mail.Config{From: "Acme <no-reply@acme.test>"})
	want := base
	want.From = "Acme <no-reply@acme.test>"
	if got != want {
		t.Errorf("merge from: %+v", got)
	}
	// Same relay with the tenant's own account.
	got = base.Merge(mail.Config{Host: "SMTP.example.com", Username: "acme", Password: "acme-secret", Timeout: time.Minute})
	if got.Username != "acme" || got.Password != "acme-secret" || got.Port != 587 || got.Timeout != time.Minute || got.Host != "smtp.example.com" {
		t.Errorf("merge account: %+v", got)
	}
	// Another relay never inherits the deployment's credentials or port.
	got = base.Merge(mail.Config{Host: "mail.acme.test"})
	if got.Host != "mail.acme.test" || got.Username != "" || got.Password != "" || got.Port != 0 || got.TLS != "" {
		t.Errorf("merge other relay: %+v", got)
	}
	if got.From != base.From || got.Timeout != base.Timeout || got.TemplateDir != base.TemplateDir {
		t.Errorf("merge other relay lost the sender, timeout or templates: %+v", got)
	}
	if base.Merge(mail.Config{}) != base {
		t.Error("an empty override changed the config")
	}
}

func TestFromFor(t *testing.T) {
	tn := &ciam.Tenant{DisplayName: "Acme\r\nBcc: x@example.com"}
	if got := (mail.Config{From: "no-reply@example.com"}).FromFor(tn); got != `"Acme Bcc: x@example.com" <no-reply@example.com>` {
		t.Errorf("FromFor = %q", got)
	}
	if got := (mail.Config{From: "Platform <no-reply@example.com>"}).FromFor(tn); got != `"Platform" <no-reply@example.com>` && got != "Platform <no-reply@example.com>" {
		t.Errorf("FromFor kept no configured name: %q", got)
	}
}
