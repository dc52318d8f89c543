// Package passkey runs WebAuthn ceremonies (passkey registration, passkey
// login with or without a username, security keys as a second factor) for
// one tenant at a time, on top of github.com/go-webauthn/webauthn.
//
// It holds no store and serves no HTTP: a Begin method returns the options
// the browser passes to navigator.credentials.create or get, and an opaque
// state the caller keeps server-side (or sealed) until the matching Finish
// method checks the browser's response against it. Each state carries one
// challenge that lives five minutes; callers make it single-use by
// recording Challenge(state) when a ceremony finishes.
//
// Every refusal is a *ciam.Error with a stable code (passkey_invalid,
// passkey_unknown, passkey_expired, passkey_verification_required,
// passkey_counter_regressed) and a message safe to show; the library's own
// diagnosis is kept in its Err for the logs.
package passkey

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// ChallengeTTL is how long a ceremony may take between Begin and Finish.
const ChallengeTTL = 5 * time.Minute

// Cache builds and keeps one relying party per tenant, rebuilt when the
// tenant's Version changes. Its zero value is ready once PublicURL is set.
type Cache struct {
	// PublicURL is the deployment's public URL, such as
	// https://id.example.com or http://localhost:8080.
	PublicURL string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[ciam.TenantID]*RelyingParty
}

// RelyingParty runs the WebAuthn ceremonies of one tenant.
type RelyingParty struct {
	tenant     ciam.TenantID
	version    int64
	uvRequired bool
	uv         protocol.UserVerificationRequirement
	now        func() time.Time
	wa         *webauthn.WebAuthn
}

// For returns the relying party of t. A configuration that cannot work (see
// Validate) is an error of kind Invalid with code passkey_config_invalid.
func (c *Cache) For(t *ciam.Tenant) (*RelyingParty, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rp, ok := c.m[t.ID]; ok && rp.version == t.Version {
		return rp, nil
	}
	rp, err := c.build(t)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = make(map[ciam.TenantID]*RelyingParty)
	}
	c.m[t.ID] = rp
	return rp, nil
}

func (c *Cache) build(t *ciam.Tenant) (*RelyingParty, error) {
	cfg, err := resolve(c.PublicURL, t.Passkeys)
	if err != nil {
		return nil, err
	}
	name := t.DisplayName
	if name == "" {
		name = t.Slug
	}
	if name == "" {
		name = cfg.rpID
	}
	uv := protocol.VerificationPreferred
	if cfg.uvRequired {
		uv = protocol.VerificationRequired
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  cfg.rpID,
		RPDisplayName:         name,
		RPOrigins:             cfg.origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   uv,
		},
		// The browser's timeout matches the challenge's lifetime; expiry
		// itself is enforced here with the injected clock, not by the library.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL},
		},
	})
	if err != nil {
		return nil, configError("", "Passkeys cannot be set up for this tenant.", err)
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &RelyingParty{
		tenant:     t.ID,
		version:    t.Version,
		uvRequired: cfg.uvRequired,
		uv:         uv,
		now:        now,
		wa:         wa,
	}, nil
}

// UVRequired reports whether the tenant refuses passkeys that do not verify
// the user (with a PIN or biometrics).
func (rp *RelyingParty) UVRequired() bool { return rp.uvRequired }

// RPID returns the relying-party id passkeys are scoped to.
func (rp *RelyingParty) RPID() string { return rp.wa.Config.RPID }

// Origins returns the origins allowed to run a ceremony.
func (rp *RelyingParty) Origins() []string {
	return append([]string(nil), rp.wa.Config.RPOrigins...)
}

// config is a tenant's passkey settings resolved against the public URL.
type config struct {
	rpID       string
	origins    []string
	uvRequired bool
}

// Validate checks a tenant's passkey settings against the deployment's
// public URL: the origins must be http(s) origins (http only on localhost),
// the RP ID a domain that is the host of the public URL or of one of the
// origins, or a parent domain of one, and the user verification setting
// known. Problems are errors of kind Invalid, code passkey_config_invalid,
// naming the field.
func Validate(publicURL string, p ciam.TenantPasskeys) error {
	_, err := resolve(publicURL, p)
	return err
}

func resolve(publicURL string, p ciam.TenantPasskeys) (*config, error) {
	cfg := &config{}
	switch p.UserVerification {
	case "", ciam.UVPreferred:
	case ciam.UVRequired:
		cfg.uvRequired = true
	default:
		return nil, configError("passkeys.user_verification",
			fmt.Sprintf("Passkey user verification must be %q or %q, not %q.", ciam.UVPreferred, ciam.UVRequired, p.UserVerification), nil)
	}

	pub, err := url.Parse(publicURL)
	if err != nil || pub.Host == "" {
		return nil, configError("", fmt.Sprintf("The public URL %q is not an absolute URL.", publicURL), err)
	}
	origin, host, err := originOf(pub)
	if err != nil {
		return nil, configError("", fmt.Sprintf("The public URL %q cannot run passkeys: %v.", publicURL, err), nil)
	}
	cfg.origins = []string{origin}
	hosts := []string{host}
	for _, o := range p.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return nil, configError("passkeys.origins",
				fmt.Sprintf("The passkey origin %q is not an origin: write it as scheme://host[:port], with no path.", o), err)
		}
		origin, host, err := originOf(u)
		if err != nil {
			return nil, configError("passkeys.origins", fmt.Sprintf("The passkey origin %q cannot run passkeys: %v.", o, err), nil)
		}
		if !slices.Contains(cfg.origins, origin) {
			cfg.origins = append(cfg.origins, origin)
			hosts = append(hosts, host)
		}
	}

	cfg.rpID = strings.ToLower(strings.TrimSuffix(p.RPID, "."))
	field := "passkeys.rp_id"
	if cfg.rpID == "" {
		cfg.rpID, field = host, ""
	}
	if net.ParseIP(strings.Trim(cfg.rpID, "[]")) != nil {
		return nil, configError(field, fmt.Sprintf("The passkey RP ID %q is an IP address; passkeys need a domain name.", cfg.rpID), nil)
	}
	if err := protocol.ValidateRPID(cfg.rpID); err != nil || strings.ContainsAny(cfg.rpID, ":/?#@ ") {
		return nil, configError(field, fmt.Sprintf("The passkey RP ID %q is not a domain name.", cfg.rpID), err)
	}
	if cfg.rpID != "localhost" && !strings.Contains(cfg.rpID, ".") {
		return nil, configError(field, fmt.Sprintf("The passkey RP ID %q is a top-level domain; use a domain you control.", cfg.rpID), nil)
	}
	matched := false
	for _, h := range hosts {
		if h == cfg.rpID || strings.HasSuffix(h, "."+cfg.rpID) {
			matched = true
			break
		}
	}
	if !matched {
		return nil, configError(field, fmt.Sprintf("The passkey RP ID %q must be the host of the public URL or of a passkey origin, or a parent domain of one (hosts: %s).",
			cfg.rpID, strings.Join(hosts, ", ")), nil)
	}
	return cfg, nil
}

// originOf returns the serialised origin and the lower-case host of u.
func originOf(u *url.URL) (origin, host string, err error) {
	host = strings.ToLower(u.Hostname())
	if host == "" {
		return "", "", fmt.Errorf("it has no host")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			return "", "", fmt.Errorf("browsers allow passkeys over http only on localhost; use https")
		}
	default:
		return "", "", fmt.Errorf("the scheme must be https")
	}
	hostport := strings.ToLower(u.Host)
	if port := u.Port(); (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		hostport = strings.ToLower(strings.TrimSuffix(u.Host, ":"+port))
	}
	return u.Scheme + "://" + hostport, host, nil
}

func configError(field, msg string, err error) *ciam.Error {
	e := ciam.Wrap(err, ciam.Invalid, "passkey_config_invalid", msg)
	if field != "" {
		e = e.OnField(field)
	}
	return e
}
