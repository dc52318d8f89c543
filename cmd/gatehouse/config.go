package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/mail"
)

// fileConfig is the configuration file format (YAML). Every key can also be
// set with a GATEHOUSE_* environment variable and most with a flag; flags win
// over the environment, which wins over the file.
type fileConfig struct {
	Addr string `yaml:"addr"`
	// OpsAddr, when set, is a second listener for /healthz, /readyz and
	// /metrics, which then leave the public listener (but for the two
	// health checks, which say nothing).
	OpsAddr         string   `yaml:"ops_addr"`
	PublicURL       string   `yaml:"public_url"`
	Database        string   `yaml:"database"`
	LogLevel        string   `yaml:"log_level"`
	LogFormat       string   `yaml:"log_format"`
	TrustedProxies  []string `yaml:"trusted_proxies"`
	BodyLimit       int64    `yaml:"body_limit"`
	HashConcurrency int      `yaml:"hash_concurrency"`
	// RedisURL, when set, shares the failed-login counters of every server
	// process through Redis (redis://[user:password@]host:port/db, or
	// rediss:// for TLS).
	RedisURL        string        `yaml:"redis_url"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ReadTimeout     time.Duration `yaml:"read_timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	// KeyEncryptionKey (base64 of 32 bytes) seals signing keys at rest.
	KeyEncryptionKey string `yaml:"key_encryption_key"`
	// KeyFile holds the key-encryption key, created on first start when
	// missing. With SQLite it defaults to gatehouse.key beside the database.
	KeyFile string `yaml:"key_file"`
	// Mail is the outbound mail relay. Without a host, mail stays in the
	// local outbox and its links are written to the log.
	Mail mailConfig `yaml:"mail"`
}

// mailConfig is the mail section: mail.Config's keys plus password_file.
type mailConfig struct {
	mail.Config `yaml:",inline"`
	// PasswordFile holds the SMTP password (one line); exclusive with password.
	PasswordFile string `yaml:"password_file"`
}

func defaults() fileConfig {
	return fileConfig{
		Addr:            "localhost:8080",
		PublicURL:       "http://localhost:8080",
		Database:        "sqlite:./gatehouse-data/gatehouse.db",
		LogLevel:        "info",
		LogFormat:       "text",
		BodyLimit:       64 << 10,
		ShutdownTimeout: 20 * time.Second,
		ReadTimeout:     15 * time.Second,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     120 * time.Second,
	}
}

// envKeys maps each environment variable to the setter of its field.
func envKeys(c *fileConfig) map[string]func(string) error {
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration like 30s or 2m: %q", v)
			}
			*p = d
			return nil
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	return map[string]func(string) error{
		"GATEHOUSE_ADDR":       str(&c.Addr),
		"GATEHOUSE_OPS_ADDR":   str(&c.OpsAddr),
		"GATEHOUSE_REDIS_URL":  str(&c.RedisURL),
		"GATEHOUSE_PUBLIC_URL": str(&c.PublicURL),
		"GATEHOUSE_DATABASE":   str(&c.Database),
		"GATEHOUSE_DATABASE_FILE": func(v string) error {
			b, err := os.ReadFile(v)
			if err != nil {
				return fmt.Errorf("read the database DSN file: %w", err)
			}
			c.Database = strings.TrimSpace(string(b))
			return nil
		},
		"GATEHOUSE_KEY_ENCRYPTION_KEY": str(&c.KeyEncryptionKey),
		"GATEHOUSE_KEY_ENCRYPTION_KEY_FILE": func(v string) error {
			b, err := os.ReadFile(v)
			if err != nil {
				return fmt.Errorf("read the key-encryption key file: %w", err)
			}
			c.KeyEncryptionKey = strings.TrimSpace(string(b))
			return nil
		},
		"GATEHOUSE_KEY_FILE":   str(&c.KeyFile),
		"GATEHOUSE_LOG_LEVEL":  str(&c.LogLevel),
		"GATEHOUSE_LOG_FORMAT": str(&c.LogFormat),
		"GATEHOUSE_TRUSTED_PROXIES": func(v string) error {
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
			return nil
		},
		"GATEHOUSE_BODY_LIMIT": func(v string) error {
			_, err := fmt.Sscan(v, &c.BodyLimit)
			return err
		},
		"GATEHOUSE_HASH_CONCURRENCY": func(v string) error {
			_, err := fmt.Sscan(v, &c.HashConcurrency)
			return err
		},
		"GATEHOUSE_SHUTDOWN_TIMEOUT": dur(&c.ShutdownTimeout),
		"GATEHOUSE_READ_TIMEOUT":     dur(&c.ReadTimeout),
		"GATEHOUSE_WRITE_TIMEOUT":    dur(&c.WriteTimeout),
		"GATEHOUSE_IDLE_TIMEOUT":     dur(&c.IdleTimeout),

		"GATEHOUSE_MAIL_HOST": str(&c.Mail.Host),
		"GATEHOUSE_MAIL_PORT": func(v string) error {
			_, err := fmt.Sscan(v, &c.Mail.Port)
			return err
		},
		"GATEHOUSE_MAIL_TLS":           func(v string) error { c.Mail.TLS = mail.TLSMode(v); return nil },
		"GATEHOUSE_MAIL_USERNAME":      str(&c.Mail.Username),
		"GATEHOUSE_MAIL_PASSWORD":      str(&c.Mail.Password),
		"GATEHOUSE_MAIL_PASSWORD_FILE": str(&c.Mail.PasswordFile),
		"GATEHOUSE_MAIL_FROM":          str(&c.Mail.From),
		"GATEHOUSE_MAIL_HELO":          str(&c.Mail.HELO),
		"GATEHOUSE_MAIL_TIMEOUT":       dur(&c.Mail.Timeout),
		"GATEHOUSE_MAIL_TEMPLATE_DIR":  str(&c.Mail.TemplateDir),
	}
}

// envIgnored are GATEHOUSE_* variables that are not configuration keys.
var envIgnored = map[string]bool{"GATEHOUSE_CONFIG": true}

// load reads the file (if any), then the environment, reporting every problem.
func load(path string, environ []string) (fileConfig, error) {
	c := defaults()
	var errs []error
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config file %s: %w (see the configuration reference in README.md)", path, err)
		}
	}
	setters := envKeys(&c)
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "GATEHOUSE_") || envIgnored[k] || strings.HasPrefix(k, "GATEHOUSE_TEST_") {
			continue
		}
		set, ok := setters[k]
		if !ok {
			errs = append(errs, fmt.Errorf("environment variable %s is not a Gatehouse setting; remove it or fix its name", k))
			continue
		}
		if err := set(v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", k, err))
		}
	}
	return c, errors.Join(errs...)
}

// settings are the validated values.
type settings struct {
	fileConfig
	publicURL *url.URL
	proxies   []netip.Prefix
	level     slog.Level
	// mail is the mail section with the password read from its file.
	mail mail.Config
	// redis is RedisURL parsed; nil when it is not set.
	redis *redis.Options
}

// validate checks every value and reports all problems together, each with
// what to change.
func (c fileConfig) validate() (*settings, error) {
	s := &settings{fileConfig: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: want host:port, for example localhost:8080 or :8080", c.Addr)
	}
	if c.RedisURL != "" {
		opt, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			bad("redis_url: %v; want redis://host:6379/0 (or rediss:// for TLS)", err)
		}
		s.redis = opt
	}
	if c.OpsAddr != "" {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			bad("ops_addr %q: want host:port, for example 127.0.0.1:9090", c.OpsAddr)
		} else if c.OpsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") { // :0 picks a free port each
			bad("ops_addr %q: must differ from addr", c.OpsAddr)
		}
	}
	u, err := url.Parse(c.PublicURL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		bad("public_url %q: want an absolute http(s) URL such as https://id.example.com", c.PublicURL)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil || (u.Path != "" && u.Path != "/"):
		bad("public_url %q: must have no path, query, fragment or user info", c.PublicURL)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		bad("public_url %q: plain http is only allowed for localhost; use https", c.PublicURL)
	default:
		u.Path = ""
		s.publicURL = u
	}
	if !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		bad("database: want sqlite:PATH or a postgres:// DSN")
	} else if c.Database == "sqlite:" {
		bad("database: sqlite: needs a file path, for example sqlite:./gatehouse-data/gatehouse.db")
	}
	if err := s.level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format %q: want text or json", c.LogFormat)
	}
	for _, p := range c.TrustedProxies {
		pf, err := netip.ParsePrefix(p)
		if err != nil {
			if a, err2 := netip.ParseAddr(p); err2 == nil {
				pf = netip.PrefixFrom(a, a.BitLen())
			} else {
				bad("trusted_proxies: %q is not an IP address or CIDR prefix", p)
				continue
			}
		}
		s.proxies = append(s.proxies, pf)
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 64<<20 {
		bad("body_limit %d: want between 1024 and 67108864 bytes", c.BodyLimit)
	}
	if c.HashConcurrency < 0 || c.HashConcurrency > 256 {
		bad("hash_concurrency %d: want 0 (the CPU count) to 256", c.HashConcurrency)
	}
	for name, d := range map[string]time.Duration{"shutdown_timeout": c.ShutdownTimeout, "read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout, "idle_timeout": c.IdleTimeout} {
		if d <= 0 || d > time.Hour {
			bad("%s %s: want a duration between 1s and 1h", name, d)
		}
	}
	if c.KeyEncryptionKey != "" {
		if _, err := keys.ParseKEK(c.KeyEncryptionKey); err != nil {
			bad("key_encryption_key: %v", err)
		}
		if c.KeyFile != "" {
			bad("key_encryption_key and key_file are both set; keep one")
		}
	} else if c.KeyFile == "" && !strings.HasPrefix(c.Database, "sqlite:") {
		bad("key_encryption_key: PostgreSQL deployments need the key that seals signing keys: set key_encryption_key (GATEHOUSE_KEY_ENCRYPTION_KEY, from `openssl rand -base64 32`) or key_file, the same on every node")
	}
	var merr error
	s.mail, merr = c.Mail.resolve()
	errs = append(errs, merr)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve reads the password file and checks the mail section. With a host,
// mail.Config.Validate has the last word; without one, settings that only
// apply to a relay are reported, since they would be ignored.
func (m mailConfig) resolve() (mail.Config, error) {
	c := m.Config
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.Password != "" && m.PasswordFile != "" {
		bad("mail.password and mail.password_file are both set (GATEHOUSE_MAIL_PASSWORD, GATEHOUSE_MAIL_PASSWORD_FILE); keep one")
	} else if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			bad("mail.password_file: read the SMTP password: %v", err)
		} else if c.Password = strings.TrimRight(string(b), "\r\n"); c.Password == "" {
			bad("mail.password_file %s is empty", m.PasswordFile)
		}
	}
	if c.TemplateDir != "" {
		if fi, err := os.Stat(c.TemplateDir); err != nil || !fi.IsDir() {
			bad("mail.template_dir %q: not a directory; it holds templates that replace the built-in ones", c.TemplateDir)
		}
	}
	if c.Host != "" {
		if err := c.Validate("mail"); err != nil {
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = append(errs, j.Unwrap()...)
			} else {
				errs = append(errs, err)
			}
		}
		return c, errors.Join(errs...)
	}
	var relay []string
	for k, set := range map[string]bool{"port": c.Port != 0, "tls": c.TLS != "", "username": c.Username != "", "password": c.Password != "", "helo": c.HELO != ""} {
		if set {
			relay = append(relay, "mail."+k)
		}
	}
	switch c.TLS {
	case "", mail.TLSNone, mail.TLSStartTLS, mail.TLSImplicit:
	default:
		bad("mail.tls %q: want none, starttls or tls", c.TLS)
	}
	if len(relay) > 0 {
		slices.Sort(relay)
		bad("mail.host: %s only apply to an SMTP server; set mail.host (GATEHOUSE_MAIL_HOST) or remove them", strings.Join(relay, ", "))
	}
	if c.From != "" {
		if a, err := netmail.ParseAddress(c.From); err != nil || strings.ContainsAny(c.From, "\r\n") || !strings.Contains(a.Address, "@") {
			bad("mail.from: %q is not a mail address; want no-reply@example.com or \"Example <no-reply@example.com>\"", c.From)
		}
	}
	if c.Timeout < 0 {
		bad("mail.timeout: %s is negative; use a duration such as 30s", c.Timeout)
	}
	return c, errors.Join(errs...)
}

// kek returns the key-encryption key: from the configuration, or from the
// key file (created when missing; beside the SQLite database by default).
func (s *settings) kek() ([]byte, error) {
	if s.KeyEncryptionKey != "" {
		return keys.ParseKEK(s.KeyEncryptionKey)
	}
	path := s.KeyFile
	if path == "" {
		path = filepath.Join(filepath.Dir(strings.TrimPrefix(s.Database, "sqlite:")), "gatehouse.key")
	}
	k, err := keys.LoadOrCreateKEK(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (s *settings) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.level}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
