package mail

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// TLSMode says how the SMTP connection is encrypted.
type TLSMode string

// TLS modes of Config.TLS.
const (
	// TLSNone sends in clear text. Only for a relay on the same host or
	// network (a local MTA, mailpit in tests); credentials are refused.
	TLSNone TLSMode = "none"
	// TLSStartTLS connects in clear text and requires STARTTLS before any
	// mail or credentials are sent (submission, usually port 587).
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
)

// DefaultTimeout bounds one delivery (connect, greeting, TLS, AUTH and the
// whole SMTP conversation) when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config is the outbound mail configuration of a deployment, or a tenant's
// override of it (see Merge). Zero values mean "not set". The YAML keys are
// the ones the deployment's config file uses under its mail section.
//
// Secrets are plain fields here; reading them from a *_FILE or the
// environment is the config loader's job.
type Config struct {
	// Host is the SMTP server. Empty: no SMTP delivery is configured.
	Host string `yaml:"host"`
	// Port of the SMTP server; 0 means the usual one for TLS: 25 for none,
	// 587 for starttls, 465 for tls.
	Port int `yaml:"port"`
	// TLS is "none", "starttls" or "tls"; empty means "tls" on port 465 and
	// "starttls" otherwise.
	TLS TLSMode `yaml:"tls"`
	// Username and Password authenticate to the server (SMTP AUTH). Both or
	// neither; never sent over an unencrypted connection.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// From is the sender, "Display Name <address>" or a bare address. A bare
	// address gets the tenant's display name (see FromFor).
	From string `yaml:"from"`
	// HELO is the name sent in EHLO; empty means this host's name.
	HELO string `yaml:"helo"`
	// Timeout bounds one delivery; 0 means DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// TemplateDir holds template files that replace the embedded ones
	// (see the package documentation for the layout). Empty: none.
	TemplateDir string `yaml:"template_dir"`
}

// Merge returns c with the fields that override sets replacing c's.
//
// When the override names a different server (Host), the connection
// settings (Port, TLS, Username, Password, HELO) come from the override
// alone: a tenant's own relay never receives the deployment's credentials.
// Otherwise each set field replaces the deployment's.
func (c Config) Merge(override Config) Config {
	out := c
	if override.Host != "" && !strings.EqualFold(override.Host, c.Host) {
		out.Host = override.Host
		out.Port, out.TLS, out.Username, out.Password, out.HELO = override.Port, override.TLS, override.Username, override.Password, override.HELO
	} else {
		if override.Port != 0 {
			out.Port = override.Port
		}
		if override.TLS != "" {
			out.TLS = override.TLS
		}
		if override.Username != "" || override.Password != "" {
			out.Username, out.Password = override.Username, override.Password
		}
		if override.HELO != "" {
			out.HELO = override.HELO
		}
	}
	if override.From != "" {
		out.From = override.From
	}
	if override.Timeout != 0 {
		out.Timeout = override.Timeout
	}
	if override.TemplateDir != "" {
		out.TemplateDir = override.TemplateDir
	}
	return out
}

// Enabled reports whether an SMTP server is configured.
func (c Config) Enabled() bool { return c.Host != "" }

// withDefaults fills in the port, TLS mode and timeout.
func (c Config) withDefaults() Config {
	if c.TLS == "" {
		if c.Port == 465 {
			c.TLS = TLSImplicit
		} else {
			c.TLS = TLSStartTLS
		}
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSNone:
			c.Port = 25
		case TLSImplicit:
			c.Port = 465
		default:
			c.Port = 587
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem of a configuration that is to send mail,
// each naming the key and what to change. prefix names the section in
// messages ("mail" gives "mail.host: ..."); it may be empty.
func (c Config) Validate(prefix string) error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key(k), fmt.Sprintf(format, args...)))
	}
	d := c.withDefaults()
	switch {
	case c.Host == "":
		bad("host", "required: set the SMTP server's host name, for example smtp.example.com")
	case strings.ContainsAny(c.Host, " /:@") && net.ParseIP(strings.Trim(c.Host, "[]")) == nil:
		bad("host", "%q is not a host name; give the name or IP address only, the port goes in port", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("port", "%d is not a TCP port; use 587 (starttls), 465 (tls) or 25", c.Port)
	}
	switch d.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		bad("tls", "%q: want none, starttls or tls", c.TLS)
	}
	if (c.Username == "") != (c.Password == "") {
		bad("password", "username and password go together: set both or neither")
	}
	if d.TLS == TLSNone && c.Username != "" && !LoopbackHost(c.Host) {
		bad("tls", "none would send the SMTP password in clear text to %s; use starttls or tls", c.Host)
	}
	if strings.ContainsAny(c.Username+c.Password+c.HELO, "\r\n") {
		bad("username", "username, password and helo must not contain line breaks")
	}
	if c.From == "" {
		bad("from", "required: set the sender address, for example \"Example <no-reply@example.com>\"")
	} else if _, err := parseAddress(c.From); err != nil {
		bad("from", "%q is not a mail address: %v", c.From, err)
	}
	if c.Timeout < 0 {
		bad("timeout", "%s is negative; use a duration such as 30s", c.Timeout)
	}
	return errors.Join(errs...)
}

// ValidAddress reports whether s is one RFC 5322 address with a local
// part and a domain ("Name <a@b>" or "a@b"), with no line breaks.
func ValidAddress(s string) bool {
	_, err := parseAddress(s)
	return err == nil
}

// FromFor returns the sender for mail of tenant t: From itself when it has
// a display name, else the configured address with the tenant's name.
func (c Config) FromFor(t *ciam.Tenant) string {
	a, err := parseAddress(c.From)
	if err != nil || a.Name != "" || t == nil || t.DisplayName == "" {
		return c.From
	}
	a.Name = oneLine(t.DisplayName)
	return a.String()
}

// parseAddress parses one RFC 5322 address ("Name <a@b>" or "a@b").
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("contains a line break")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || domain == "" {
		return nil, errors.New("want local-part@domain")
	}
	return a, nil
}

// LoopbackHost reports whether host names this machine (localhost or a
// loopback address), where TLS none may carry credentials.
func LoopbackHost(host string) bool {
	h := strings.Trim(host, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
