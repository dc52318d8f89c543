package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsValidate(t *testing.T) {
	c, err := load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "localhost:8080" || s.publicURL.String() != "http://localhost:8080" || s.Database != "sqlite:./gatehouse-data/gatehouse.db" {
		t.Fatalf("defaults: %+v", s.fileConfig)
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	os.WriteFile(path, []byte("addr: ':9000'\npublic_url: https://id.example.com\nlog_format: json\n"), 0o600)
	c, err := load(path, []string{"GATEHOUSE_ADDR=127.0.0.1:9100", "PATH=/bin", "GATEHOUSE_TEST_POSTGRES=x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9100" || c.PublicURL != "https://id.example.com" || c.LogFormat != "json" {
		t.Fatalf("layers: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("addr: ':9000'\npublic_ulr: https://typo.example.com\n"), 0o600)
	if _, err := load(unknown, nil); err == nil || !strings.Contains(err.Error(), "public_ulr") {
		t.Fatalf("unknown key not reported: %v", err)
	}
	if _, err := load("", []string{"GATEHOUSE_ADRR=:1"}); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_ADRR") {
		t.Fatalf("unknown env not reported: %v", err)
	}
	c := defaults()
	c.Addr = "nohostport"
	c.PublicURL = "http://id.example.com"
	c.Database = "mysql://x"
	c.LogLevel = "loud"
	c.LogFormat = "xml"
	c.TrustedProxies = []string{"not-an-ip"}
	_, err := c.validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"addr", "plain http is only allowed for localhost", "database", "log_level", "log_format", "trusted_proxies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problem %q not reported in:\n%v", want, err)
		}
	}
	c = defaults()
	c.PublicURL = "https://id.example.com/base?x=1"
	if _, err := c.validate(); err == nil {
		t.Error("public URL with path and query accepted")
	}
	for _, ops := range []string{"nohostport", defaults().Addr} {
		c = defaults()
		c.OpsAddr = ops
		if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "ops_addr") {
			t.Errorf("ops_addr %q: %v", ops, err)
		}
	}
	c = defaults()
	c.OpsAddr = "127.0.0.1:9090"
	if _, err := c.validate(); err != nil {
		t.Errorf("a valid ops_addr refused: %v", err)
	}
}

func TestConfigMail(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile := write("smtp-password", "s3cret from file\n")
	tplDir := filepath.Join(dir, "templates")
	if err := os.Mkdir(tplDir, 0o700); err != nil {
		t.Fatal(err)
	}

	// Without a mail section: no relay, nothing to report.
	c, err := load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.validate(); err != nil || s.mail.Enabled() {
		t.Fatalf("defaults: %v %+v", err, s.mail)
	}

	t.Run("yaml", func(t *testing.T) {
		path := write("mail.yaml", `mail:
  host: smtp.example.com
  port: 465
  tls: tls
  username: gatehouse
  password: from-yaml
  from: "Example <no-reply@example.com>"
  helo: id.example.com
  timeout: 45s
  template_dir: `+tplDir+`
`)
		c, err := load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.validate()
		if err != nil {
			t.Fatal(err)
		}
		m := s.mail
		if m.Host != "smtp.example.com" || m.Port != 465 || m.TLS != "tls" || m.Username != "gatehouse" || m.Password != "from-yaml" ||
			m.From != "Example <no-reply@example.com>" || m.HELO != "id.example.com" || m.Timeout != 45*time.Second || m.TemplateDir != tplDir {
			t.Fatalf("mail from YAML: %+v", m)
		}
	})

	t.Run("env", func(t *testing.T) {
		path := write("mail-env.yaml", "mail:\n  host: smtp.file.example\n  from: file@example.com\n")
		c, err := load(path, []string{
			"GATEHOUSE_MAIL_HOST=smtp.env.example", "GATEHOUSE_MAIL_PORT=2525", "GATEHOUSE_MAIL_TLS=starttls",
			"GATEHOUSE_MAIL_USERNAME=envuser", "GATEHOUSE_MAIL_PASSWORD=envpass", "GATEHOUSE_MAIL_FROM=env@example.com",
			"GATEHOUSE_MAIL_HELO=helo.example", "GATEHOUSE_MAIL_TIMEOUT=10s", "GATEHOUSE_MAIL_TEMPLATE_DIR=" + tplDir,
		})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.validate()
		if err != nil {
			t.Fatal(err)
		}
		m := s.mail
		if m.Host != "smtp.env.example" || m.Port != 2525 || m.TLS != "starttls" || m.Username != "envuser" || m.Password != "envpass" ||
			m.From != "env@example.com" || m.HELO != "helo.example" || m.Timeout != 10*time.Second || m.TemplateDir != tplDir {
			t.Fatalf("mail from the environment: %+v", m)
		}
	})

	t.Run("password file", func(t *testing.T) {
		// From the environment...
		c, err := load("", []string{"GATEHOUSE_MAIL_HOST=smtp.example.com", "GATEHOUSE_MAIL_USERNAME=u", "GATEHOUSE_MAIL_FROM=a@example.com", "GATEHOUSE_MAIL_PASSWORD_FILE=" + pwFile})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.validate()
		if err != nil || s.mail.Password != "s3cret from file" {
			t.Fatalf("GATEHOUSE_MAIL_PASSWORD_FILE: %v %q", err, s.mail.Password)
		}
		// ...and from the file's password_file.
		path := write("mail-pwfile.yaml", "mail:\n  host: smtp.example.com\n  username: u\n  from: a@example.com\n  password_file: "+pwFile+"\n")
		if c, err = load(path, nil); err != nil {
			t.Fatal(err)
		}
		if s, err = c.validate(); err != nil || s.mail.Password != "s3cret from file" {
			t.Fatalf("password_file: %v %q", err, s.mail.Password)
		}
		c.Mail.PasswordFile = filepath.Join(dir, "missing")
		if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "mail.password_file") {
			t.Fatalf("missing password file: %v", err)
		}
	})

	t.Run("password and password_file", func(t *testing.T) {
		path := write("mail-both.yaml", "mail:\n  host: smtp.example.com\n  username: u\n  from: a@example.com\n  password: p\n  password_file: "+pwFile+"\n")
		c, err := load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.validate()
		if err == nil || !strings.Contains(err.Error(), "mail.password and mail.password_file") {
			t.Fatalf("both in the file: %v", err)
		}
		c, err = load("", []string{"GATEHOUSE_MAIL_HOST=smtp.example.com", "GATEHOUSE_MAIL_USERNAME=u", "GATEHOUSE_MAIL_FROM=a@example.com",
			"GATEHOUSE_MAIL_PASSWORD=p", "GATEHOUSE_MAIL_PASSWORD_FILE=" + pwFile})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = c.validate(); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_MAIL_PASSWORD, GATEHOUSE_MAIL_PASSWORD_FILE") {
			t.Fatalf("both in the environment: %v", err)
		}
	})

	t.Run("problems reported with the others", func(t *testing.T) {
		c, err := load("", []string{"GATEHOUSE_MAIL_HOST=smtp.example.com", "GATEHOUSE_MAIL_TLS=ssl", "GATEHOUSE_MAIL_FROM=not an address", "GATEHOUSE_LOG_FORMAT=xml"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.validate()
		if err == nil {
			t.Fatal("invalid mail settings accepted")
		}
		for _, want := range []string{"mail.tls", "ssl", "mail.from", "log_format"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("problem %q not reported in:\n%v", want, err)
			}
		}
	})

	t.Run("relay settings without a host", func(t *testing.T) {
		c := defaults()
		c.Mail.TLS, c.Mail.Port = "ssl", 25
		if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "mail.host") || !strings.Contains(err.Error(), "mail.port, mail.tls") {
			t.Fatalf("relay settings without host: %v", err)
		}
		c = defaults()
		c.Mail.From, c.Mail.TemplateDir = "Example <no-reply@example.com>", tplDir
		if _, err := c.validate(); err != nil {
			t.Fatalf("from and template_dir without host: %v", err)
		}
		c.Mail.From = "nope"
		c.Mail.TemplateDir = filepath.Join(dir, "missing")
		if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "mail.from") || !strings.Contains(err.Error(), "mail.template_dir") {
			t.Fatalf("bad from and template_dir without host: %v", err)
		}
	})

	t.Run("unknown and malformed", func(t *testing.T) {
		path := write("mail-typo.yaml", "mail:\n  hots: smtp.example.com\n")
		if _, err := load(path, nil); err == nil || !strings.Contains(err.Error(), "hots") {
			t.Fatalf("unknown mail key: %v", err)
		}
		_, err := load("", []string{"GATEHOUSE_MAIL_PORT=smtp", "GATEHOUSE_MAIL_TIMEOUT=forever", "GATEHOUSE_MAIL_PASS=x"})
		for _, want := range []string{"GATEHOUSE_MAIL_PORT", "GATEHOUSE_MAIL_TIMEOUT", "GATEHOUSE_MAIL_PASS is not a Gatehouse setting"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s not reported: %v", want, err)
			}
		}
	})
}

func TestConfigRedisURL(t *testing.T) {
	c := defaults()
	c.RedisURL = "redis://:secret@127.0.0.1:6380/2"
	s, err := c.validate()
	if err != nil {
		t.Fatalf("a valid redis_url refused: %v", err)
	}
	if s.redis == nil || s.redis.Addr != "127.0.0.1:6380" || s.redis.DB != 2 || s.redis.Password != "secret" {
		t.Errorf("redis options: %+v", s.redis)
	}
	c.RedisURL = "http://127.0.0.1:6379"
	if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "redis_url") {
		t.Errorf("redis_url with another scheme: %v", err)
	}
}
