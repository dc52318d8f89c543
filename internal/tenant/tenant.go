// Package tenant manages tenants: creation with their defaults, settings
// changes, and an in-memory cache of tenants by slug for the request path.
// It owns the rules a tenant's settings must follow; it does not serve HTTP.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/passkey"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Slugs of the tenants Gatehouse creates itself.
const (
	DefaultSlug  = "default"
	PlatformSlug = "platform" // holds the platform administrators; never listed
)

// reserved slugs cannot name a customer tenant.
var reserved = map[string]bool{PlatformSlug: true, "admin": true, "api": true, "static": true, "system": true}

// Service creates, reads and updates tenants.
type Service struct {
	Store store.Store
	Now   func() time.Time
	Log   *slog.Logger
	// CacheTTL bounds how long a cached tenant is served after a change made by
	// another server process. Changes made through this Service are seen at once.
	CacheTTL time.Duration
	// KEK is the deployment's key-encryption key; it seals a tenant's SMTP
	// password (Settings.MailPassword) before it is stored.
	KEK []byte
	// PublicURL is the deployment's public URL; passkey settings are checked
	// against it (passkey.Validate). Empty skips that check.
	PublicURL string

	mu    sync.RWMutex
	cache map[string]cached
}

type cached struct {
	t       *ciam.Tenant
	expires time.Time
}

// Settings are the values an operator chooses for a tenant. Nil fields keep
// the current (or default) value.
type Settings struct {
	DisplayName          *string
	LogoURL              *string
	PrimaryColor         *string
	SignupOpen           *bool
	Listed               *bool
	PasswordMinLength    *int
	MFAPolicy            *string
	RequireVerifiedEmail *bool
	SessionIdle          *time.Duration
	SessionAbsolute      *time.Duration
	// Lifetimes of the links and codes sent by mail; 0 means the default
	// (ciam.DefaultEmailVerifyTTL and so on).
	EmailVerifyTTL   *time.Duration
	PasswordResetTTL *time.Duration
	LoginLinkTTL     *time.Duration
	// The tenant's override of the deployment's SMTP settings
	// (ciam.TenantMail). An empty string (or port 0) clears a field, so the
	// deployment's value applies again. MailPassword is plain here; the
	// Service seals it with its KEK and never stores or returns it in clear.
	MailHost     *string
	MailPort     *int
	MailTLS      *string
	MailUsername *string
	MailPassword *string
	MailFrom     *string
	// ReauthTTL is how long a login counts as recent for sensitive changes;
	// 0 means ciam.DefaultReauthTTL.
	ReauthTTL *time.Duration
	// The tenant's passkey (WebAuthn) settings (ciam.TenantPasskeys). An
	// empty RP ID or user verification goes back to the default (the public
	// URL's host, ciam.UVPreferred); PasskeyOrigins replaces the whole list,
	// an empty one clears it.
	PasskeyRPID             *string
	PasskeyOrigins          *[]string
	PasskeyUserVerification *string
}

// Bounds of the mail lifetimes a tenant may choose.
const (
	MinEmailVerifyTTL   = time.Minute
	MaxEmailVerifyTTL   = 7 * 24 * time.Hour
	MinPasswordResetTTL = 5 * time.Minute
	MaxPasswordResetTTL = 24 * time.Hour
	MinLoginLinkTTL     = time.Minute
	MaxLoginLinkTTL     = time.Hour
	MinReauthTTL        = time.Minute
	MaxReauthTTL        = 24 * time.Hour
)

// MaxPasskeyOrigins bounds the extra passkey origins of a tenant.
const MaxPasskeyOrigins = 20

var colorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// apply validates s onto t, reporting every problem at once. kek seals a
// new SMTP password; t.ID must be set. A non-empty publicURL is what the
// passkey settings are checked against.
func (s Settings) apply(t *ciam.Tenant, kek []byte, publicURL string) error {
	var errs []error
	bad := func(field, code, msg string) {
		errs = append(errs, (&ciam.Error{Kind: ciam.Invalid, Code: code, Msg: msg}).OnField(field))
	}
	if s.DisplayName != nil {
		n := strings.TrimSpace(*s.DisplayName)
		if n == "" || len([]rune(n)) > 100 {
			bad("display_name", "invalid_display_name", "The display name must have 1 to 100 characters.")
		}
		t.DisplayName = n
	}
	if s.LogoURL != nil {
		u := strings.TrimSpace(*s.LogoURL)
		if u != "" && (!strings.HasPrefix(u, "https://") || len(u) > 2048 || strings.ContainsAny(u, "\"'<> ")) {
			bad("logo_url", "invalid_logo_url", "The logo URL must be an https:// URL.")
		}
		t.LogoURL = u
	}
	if s.PrimaryColor != nil {
		if !colorPattern.MatchString(*s.PrimaryColor) {
			bad("primary_color", "invalid_color", "The primary colour must look like #1a2b3c.")
		}
		t.PrimaryColor = strings.ToLower(*s.PrimaryColor)
	}
	if s.SignupOpen != nil {
		t.SignupOpen = *s.SignupOpen
	}
	if s.Listed != nil {
		t.Listed = *s.Listed && !t.System
	}
	if s.MFAPolicy != nil {
		switch *s.MFAPolicy {
		case ciam.MFAOff, ciam.MFAOptional, ciam.MFARequired:
			t.MFAPolicy = *s.MFAPolicy
		default:
			bad("mfa_policy", "invalid_mfa_policy", "The MFA policy must be off, optional or required.")
		}
	}
	if s.PasswordMinLength != nil {
		n := *s.PasswordMinLength
		if n != 0 && (n < ciam.PasswordMinMultiFactor || n > 64) {
			bad("password_min_length", "invalid_password_min_length", fmt.Sprintf("The minimum password length must be between %d and 64 (0 for the default).", ciam.PasswordMinMultiFactor))
		}
		t.PasswordMinLength = n
	}
	if s.RequireVerifiedEmail != nil {
		t.RequireVerifiedEmail = *s.RequireVerifiedEmail
	}
	if s.SessionIdle != nil {
		t.SessionIdle = *s.SessionIdle
	}
	if s.SessionAbsolute != nil {
		t.SessionAbsolute = *s.SessionAbsolute
	}
	if t.SessionIdle < time.Minute || t.SessionIdle > 90*24*time.Hour {
		bad("session_idle", "invalid_session_idle", "The session idle lifetime must be between 1 minute and 90 days.")
	}
	if t.SessionAbsolute < t.SessionIdle || t.SessionAbsolute > 400*24*time.Hour {
		bad("session_absolute", "invalid_session_absolute", "The absolute session lifetime must be at least the idle lifetime and at most 400 days.")
	}
	ttl := func(p *time.Duration, dst *time.Duration, field, what string, lo, hi time.Duration) {
		if p == nil {
			return
		}
		if d := *p; d != 0 && (d < lo || d > hi) {
			bad(field, "invalid_"+field, fmt.Sprintf("The %s lifetime must be between %s and %s (0 for the default).", what, human(lo), human(hi)))
			return
		}
		*dst = *p
	}
	ttl(s.EmailVerifyTTL, &t.EmailVerifyTTL, "email_verify_ttl", "email verification", MinEmailVerifyTTL, MaxEmailVerifyTTL)
	ttl(s.PasswordResetTTL, &t.PasswordResetTTL, "password_reset_ttl", "password reset", MinPasswordResetTTL, MaxPasswordResetTTL)
	ttl(s.LoginLinkTTL, &t.LoginLinkTTL, "login_link_ttl", "login link", MinLoginLinkTTL, MaxLoginLinkTTL)
	ttl(s.ReauthTTL, &t.ReauthTTL, "reauth_ttl", "recent login", MinReauthTTL, MaxReauthTTL)
	errs = append(errs, s.applyMail(t, kek)...)
	errs = append(errs, s.applyPasskeys(t, publicURL)...)
	return errors.Join(errs...)
}

// applyMail validates the SMTP override onto t.Mail.
func (s Settings) applyMail(t *ciam.Tenant, kek []byte) []error {
	var errs []error
	bad := func(field, code, msg string) {
		errs = append(errs, (&ciam.Error{Kind: ciam.Invalid, Code: code, Msg: msg}).OnField(field))
	}
	m := t.Mail
	oldHost := m.Host
	if s.MailHost != nil {
		h := strings.TrimSpace(*s.MailHost)
		if len(h) > 253 || hasControl(h) || (strings.ContainsAny(h, " /:@[]") && net.ParseIP(strings.Trim(h, "[]")) == nil) {
			bad("mail_host", "invalid_mail_host", "The SMTP host must be a host name or IP address, without a port (that goes in the port).")
		}
		m.Host = h
	}
	if s.MailPort != nil {
		if p := *s.MailPort; p < 0 || p > 65535 {
			bad("mail_port", "invalid_mail_port", "The SMTP port must be between 1 and 65535 (0 for the usual port of the TLS mode).")
		}
		m.Port = *s.MailPort
	}
	if s.MailTLS != nil {
		switch mail.TLSMode(*s.MailTLS) {
		case "", mail.TLSNone, mail.TLSStartTLS, mail.TLSImplicit:
		default:
			bad("mail_tls", "invalid_mail_tls", "The SMTP TLS mode must be none, starttls or tls (empty for the deployment's).")
		}
		m.TLS = *s.MailTLS
	}
	if s.MailUsername != nil {
		u := strings.TrimSpace(*s.MailUsername)
		if len(u) > 256 || hasControl(u) {
			bad("mail_username", "invalid_mail_username", "The SMTP user name must have at most 256 characters and no line breaks.")
		}
		m.Username = u
	}
	if s.MailFrom != nil {
		f := strings.TrimSpace(*s.MailFrom)
		if f != "" && (len(f) > 320 || hasControl(f) || !mail.ValidAddress(f)) {
			bad("mail_from", "invalid_mail_from", "The sender must be a mail address such as no-reply@example.com or \"Acme <no-reply@example.com>\".")
		}
		m.From = f
	}
	hostChanged := !strings.EqualFold(m.Host, oldHost)
	switch {
	case s.MailPassword != nil && *s.MailPassword == "":
		m.SealedPassword = nil
	case s.MailPassword != nil:
		pw := *s.MailPassword
		if len(pw) > 1024 || strings.ContainsAny(pw, "\r\n\x00") {
			bad("mail_password", "invalid_mail_password", "The SMTP password must have at most 1024 bytes and no line breaks.")
			break
		}
		if len(kek) == 0 {
			errs = append(errs, errors.New("tenant: no key-encryption key to seal the SMTP password with"))
			break
		}
		sealed, err := notify.SealTenantPassword(kek, t.ID, pw)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant: seal the SMTP password: %w", err))
			break
		}
		m.SealedPassword = sealed
	case hostChanged && len(m.SealedPassword) > 0:
		// The password was given for the old server; never send it to another.
		bad("mail_password", "mail_password_required", "Give the SMTP password again (or an empty one) when changing the SMTP host: the stored one belongs to the old server.")
	}
	if (m.Username == "") != (len(m.SealedPassword) == 0) {
		bad("mail_password", "mail_credentials_incomplete", "The SMTP user name and password go together: set both or neither.")
	}
	if mail.TLSMode(m.TLS) == mail.TLSNone && m.Username != "" && !mail.LoopbackHost(m.Host) {
		bad("mail_tls", "mail_tls_required", "With TLS none the SMTP password would cross the network in clear text; use starttls or tls.")
	}
	t.Mail = m
	return errs
}

// rpIDPattern is a lower-case DNS name (international names in punycode).
var rpIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// applyPasskeys validates the passkey settings onto t.Passkeys and, when
// they changed to something other than the defaults and publicURL is known,
// checks that passkeys can work with them (passkey.Validate).
func (s Settings) applyPasskeys(t *ciam.Tenant, publicURL string) []error {
	if s.PasskeyRPID == nil && s.PasskeyOrigins == nil && s.PasskeyUserVerification == nil {
		return nil
	}
	var errs []error
	bad := func(field, code, msg string) {
		errs = append(errs, (&ciam.Error{Kind: ciam.Invalid, Code: code, Msg: msg}).OnField(field))
	}
	p := t.Passkeys
	if s.PasskeyRPID != nil {
		id := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(*s.PasskeyRPID)), ".")
		if id != "" && (len(id) > 253 || !rpIDPattern.MatchString(id)) {
			bad("passkey_rp_id", "invalid_passkey_rp_id", "The passkey RP ID must be a domain name such as acme.example (empty for the public URL's host).")
		}
		p.RPID = id
	}
	if s.PasskeyOrigins != nil {
		var origins []string
		for _, o := range *s.PasskeyOrigins {
			n, ok := normalOrigin(o)
			if !ok {
				bad("passkey_origins", "invalid_passkey_origin", fmt.Sprintf("The passkey origin %q must be an http(s) origin such as https://login.acme.example, without a path.", o))
				continue
			}
			if !slices.Contains(origins, n) {
				origins = append(origins, n)
			}
		}
		if len(origins) > MaxPasskeyOrigins {
			bad("passkey_origins", "invalid_passkey_origins", fmt.Sprintf("A tenant may have at most %d passkey origins.", MaxPasskeyOrigins))
		}
		p.Origins = origins
	}
	if s.PasskeyUserVerification != nil {
		switch uv := *s.PasskeyUserVerification; uv {
		case "", ciam.UVPreferred:
			p.UserVerification = "" // the default
		case ciam.UVRequired:
			p.UserVerification = uv
		default:
			bad("passkey_user_verification", "invalid_passkey_user_verification", "Passkey user verification must be preferred or required.")
		}
	}
	if len(errs) == 0 && publicURL != "" && !p.IsZero() {
		if err := passkey.Validate(publicURL, p); err != nil {
			errs = append(errs, passkeyField(err))
		}
	}
	t.Passkeys = p
	return errs
}

// normalOrigin returns o as scheme://host[:port], lower-case and without a
// default port, if o is an absolute http(s) origin.
func normalOrigin(o string) (string, bool) {
	o = strings.TrimSpace(o)
	u, err := url.Parse(o)
	if err != nil || len(o) > 2048 || hasControl(o) || u.Opaque != "" || u.User != nil || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(o, "#") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch {
	case scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	default:
		return "", false
	}
	return scheme + "://" + host, true
}

// passkeyField puts a passkey.Validate error on the tenant's settings field
// (a problem with the RP ID derived from the public URL on passkey_rp_id).
func passkeyField(err error) error {
	e := ciam.As(err)
	if e == nil {
		return err
	}
	switch e.Field {
	case "passkeys.origins":
		return e.OnField("passkey_origins")
	case "passkeys.user_verification":
		return e.OnField("passkey_user_verification")
	default:
		return e.OnField("passkey_rp_id")
	}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// human writes a bound such as 5m0s as "5 minutes".
func human(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0 && d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "1 hour"
	case d == time.Minute:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
}

// Warnings lists what the operator should know about t's settings.
func Warnings(t *ciam.Tenant) []string {
	var w []string
	if t.PasswordMinBelowNIST() {
		w = append(w, fmt.Sprintf("password minimum %d is below the 15 characters NIST SP 800-63B-4 asks for when the password is the only factor", t.EffectivePasswordMin()))
	}
	return w
}

// Create makes a tenant with default settings overridden by s.
func (svc *Service) Create(ctx context.Context, slug string, s Settings, actor string, m audit.Meta) (*ciam.Tenant, error) {
	return svc.create(ctx, slug, s, actor, m, false)
}

func (svc *Service) create(ctx context.Context, slug string, s Settings, actor string, m audit.Meta, system bool) (*ciam.Tenant, error) {
	slug = strings.TrimSpace(slug)
	if !ciam.ValidSlug(slug) {
		return nil, ciam.Errorf(ciam.Invalid, "invalid_slug", "A tenant slug has 2 to 63 characters: lower-case letters, digits and dashes, starting with a letter or digit.").OnField("slug")
	}
	if reserved[slug] && !system {
		return nil, ciam.Errorf(ciam.Invalid, "reserved_slug", "The slug %q is reserved; choose another.", slug).OnField("slug")
	}
	now := svc.Now().UTC()
	t := &ciam.Tenant{
		ID: ciam.TenantID(ciam.NewID()), Slug: slug, DisplayName: slug, PrimaryColor: "#2f5bea",
		SignupOpen: !system, System: system, MFAPolicy: ciam.MFAOptional,
		SessionIdle: ciam.DefaultSessionIdle, SessionAbsolute: ciam.DefaultSessionAbsolute,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.apply(t, svc.KEK, svc.PublicURL); err != nil {
		return nil, err
	}
	err := svc.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Tenant().Create(ctx, t); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.TenantCreated, actor, string(t.ID), ciam.OutcomeSuccess, nil, m, "", map[string]string{"slug": slug})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, ciam.Errorf(ciam.Conflict, "slug_taken", "A tenant with the slug %q exists already.", slug).OnField("slug")
	}
	if err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", slug, err)
	}
	return t, nil
}

// Update applies s to the tenant with the given slug.
func (svc *Service) Update(ctx context.Context, slug string, s Settings, actor string, m audit.Meta) (*ciam.Tenant, error) {
	cur, err := svc.BySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	var out *ciam.Tenant
	err = svc.Store.Tx(ctx, cur.ID, func(tx store.Tx) error {
		t, err := tx.Tenant().Get(ctx)
		if err != nil {
			return err
		}
		if err := s.apply(t, svc.KEK, svc.PublicURL); err != nil {
			return err
		}
		t.UpdatedAt = svc.Now().UTC()
		if err := tx.Tenant().Update(ctx, t); err != nil {
			return err
		}
		out = t
		return audit.Record(ctx, tx, t.UpdatedAt, audit.TenantUpdated, actor, string(t.ID), ciam.OutcomeSuccess, nil, m, "", nil)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, ciam.Errorf(ciam.Conflict, "tenant_changed", "The tenant was changed at the same time; try again.")
	}
	if err != nil {
		return nil, err
	}
	svc.forget(slug)
	return out, nil
}

// BySlug returns the tenant, from the cache when fresh. An unknown slug is a
// NotFound error with code "tenant_not_found".
func (svc *Service) BySlug(ctx context.Context, slug string) (*ciam.Tenant, error) {
	now := svc.Now()
	svc.mu.RLock()
	c, ok := svc.cache[slug]
	svc.mu.RUnlock()
	if ok && now.Before(c.expires) {
		return c.t, nil
	}
	if !ciam.ValidSlug(slug) {
		return nil, notFound(slug)
	}
	t, err := svc.Store.System().TenantBySlug(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(slug)
	}
	if err != nil {
		return nil, fmt.Errorf("look up tenant %s: %w", slug, err)
	}
	ttl := svc.CacheTTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	svc.mu.Lock()
	if svc.cache == nil || len(svc.cache) > 50000 {
		svc.cache = make(map[string]cached)
	}
	svc.cache[slug] = cached{t: t, expires: now.Add(ttl)}
	svc.mu.Unlock()
	return t, nil
}

// ByID returns the tenant with id, read from the store (background jobs know
// tenants by id). An unknown id is a NotFound error with code "tenant_not_found".
func (svc *Service) ByID(ctx context.Context, id ciam.TenantID) (*ciam.Tenant, error) {
	var t *ciam.Tenant
	err := svc.Store.View(ctx, id, func(tx store.Tx) (err error) {
		t, err = tx.Tenant().Get(ctx)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(string(id))
	}
	if err != nil {
		return nil, fmt.Errorf("look up tenant %s: %w", id, err)
	}
	return t, nil
}

func (svc *Service) forget(slug string) {
	svc.mu.Lock()
	delete(svc.cache, slug)
	svc.mu.Unlock()
}

func notFound(slug string) error {
	return ciam.Errorf(ciam.NotFound, "tenant_not_found", "There is no tenant called %q.", slug)
}

// EnsureBuiltin creates the default and platform tenants when they are missing.
func (svc *Service) EnsureBuiltin(ctx context.Context) error {
	for _, b := range []struct {
		slug   string
		system bool
		name   string
	}{{DefaultSlug, false, "Default"}, {PlatformSlug, true, "Gatehouse platform"}} {
		if _, err := svc.BySlug(ctx, b.slug); err == nil {
			continue
		} else if ciam.KindOf(err) != ciam.NotFound {
			return err
		}
		name := b.name
		_, err := svc.create(ctx, b.slug, Settings{DisplayName: &name}, "system", audit.Meta{}, b.system)
		if err != nil && ciam.CodeOf(err) != "slug_taken" {
			return err
		}
	}
	return nil
}

// List returns tenants by slug after the cursor.
func (svc *Service) List(ctx context.Context, after string, limit int) ([]*ciam.Tenant, error) {
	return svc.Store.System().Tenants(ctx, after, limit)
}

// Listed returns the tenants the public platform page links: default first,
// then those an operator marked as listed. System tenants never appear.
func (svc *Service) Listed(ctx context.Context) ([]*ciam.Tenant, error) {
	ts, err := svc.Store.System().ListedTenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*ciam.Tenant, 0, len(ts)+1)
	if d, err := svc.BySlug(ctx, DefaultSlug); err == nil {
		out = append(out, d)
	}
	for _, t := range ts {
		if t.Slug != DefaultSlug && !t.System {
			out = append(out, t)
		}
	}
	return out, nil
}
