package ciam

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"sort"
	"time"
)

// MFA policies of a tenant.
const (
	MFAOff      = "off"
	MFAOptional = "optional"
	MFARequired = "required"
)

// Password length limits of NIST SP 800-63B-4.
const (
	PasswordMinSingleFactor = 15  // the password is the only factor
	PasswordMinMultiFactor  = 8   // the password is one of two factors; also the lowest a tenant may set
	PasswordMaxLength       = 256 // longer passwords are refused, never truncated
)

// Tenant is an isolated identity domain with its own users, branding and policies.
type Tenant struct {
	ID           TenantID
	Slug         string
	DisplayName  string
	LogoURL      string // https URL of a logo, or empty
	PrimaryColor string // "#rrggbb"
	SignupOpen   bool   // anyone may sign up; otherwise accounts are created by operators
	Listed       bool   // linked from the public platform page
	System       bool   // the platform tenant that holds administrators; never listed
	// PasswordMinLength is the tenant's minimum password length in characters.
	// Zero means the NIST default for the tenant's MFA policy.
	PasswordMinLength    int
	MFAPolicy            string // MFAOff, MFAOptional or MFARequired
	RequireVerifiedEmail bool   // users must verify their email before their first login
	SessionIdle          time.Duration
	SessionAbsolute      time.Duration
	// Lifetimes of the links and codes sent by mail; zero means the
	// default (DefaultEmailVerifyTTL and so on).
	EmailVerifyTTL   time.Duration
	PasswordResetTTL time.Duration
	LoginLinkTTL     time.Duration // magic links and login codes
	// Mail overrides the deployment's SMTP settings for this tenant's mail;
	// its zero value uses them unchanged.
	Mail TenantMail
	// ReauthTTL is how long a login counts as recent for sensitive
	// changes; zero means DefaultReauthTTL.
	ReauthTTL time.Duration
	Passkeys  TenantPasskeys
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // incremented by every update; updates check it
}

// Default session lifetimes for a new tenant.
const (
	DefaultSessionIdle     = 24 * time.Hour
	DefaultSessionAbsolute = 30 * 24 * time.Hour
)

// Default lifetimes of the links and codes sent by mail.
const (
	DefaultEmailVerifyTTL   = 24 * time.Hour
	DefaultPasswordResetTTL = 30 * time.Minute
	DefaultLoginLinkTTL     = 10 * time.Minute
	EmailChangeUndoTTL      = 72 * time.Hour
)

// VerifyTTL is how long an address verification link or code lives.
func (t *Tenant) VerifyTTL() time.Duration {
	return orDefault(t.EmailVerifyTTL, DefaultEmailVerifyTTL)
}

// ResetTTL is how long a password reset link lives.
func (t *Tenant) ResetTTL() time.Duration {
	return orDefault(t.PasswordResetTTL, DefaultPasswordResetTTL)
}

// LoginTTL is how long a login link or code lives.
func (t *Tenant) LoginTTL() time.Duration {
	return orDefault(t.LoginLinkTTL, DefaultLoginLinkTTL)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// TenantMail is a tenant's override of the deployment's SMTP settings. Set
// fields replace the deployment's; a different Host brings its own port,
// TLS mode and credentials (the deployment's are never sent to it).
type TenantMail struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	TLS      string `json:"tls,omitempty"` // none, starttls or tls
	Username string `json:"username,omitempty"`
	// SealedPassword is the SMTP password sealed under the deployment's
	// key-encryption key; only the mail service opens it.
	SealedPassword []byte `json:"sealed_password,omitempty"`
	From           string `json:"from,omitempty"`
}

// IsZero reports whether no field is set.
func (m TenantMail) IsZero() bool {
	return m.Host == "" && m.Port == 0 && m.TLS == "" && m.Username == "" && len(m.SealedPassword) == 0 && m.From == ""
}

// EffectivePasswordMin is the minimum password length the tenant enforces.
func (t *Tenant) EffectivePasswordMin() int {
	if t.PasswordMinLength > 0 {
		return t.PasswordMinLength
	}
	if t.MFAPolicy == MFARequired {
		return PasswordMinMultiFactor
	}
	return PasswordMinSingleFactor
}

// PasswordMinBelowNIST reports whether the tenant's minimum is below what
// NIST SP 800-63B-4 asks for single-factor logins.
func (t *Tenant) PasswordMinBelowNIST() bool {
	return t.MFAPolicy != MFARequired && t.EffectivePasswordMin() < PasswordMinSingleFactor
}

// UserStatus is whether a user may log in.
type UserStatus string

// User statuses.
const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// User is a person in a tenant.
type User struct {
	ID            UserID
	TenantID      TenantID
	Email         string // normalised; unique in the tenant
	EmailVerified bool
	Name          string
	Locale        string // BCP 47 tag, or empty
	Status        UserStatus
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   time.Time // zero when the user never logged in
	Version       int64
	// PIIKey encrypts what the audit trail keeps about this user. Erasing the
	// user destroys it, leaving the audit chain intact and unreadable.
	PIIKey []byte
}

// Session is a browser session. The cookie holds a secret whose SHA-256 is TokenHash.
type Session struct {
	ID            SessionID
	TenantID      TenantID
	UserID        UserID
	TokenHash     []byte
	CreatedAt     time.Time
	AuthTime      time.Time // when the user last authenticated in this session
	LastSeenAt    time.Time
	IdleExpiresAt time.Time // moves forward as the session is used
	ExpiresAt     time.Time // absolute end
	RevokedAt     time.Time // zero while the session is live
	IP            string
	UserAgent     string
	AMR           []string // RFC 8176 method names, e.g. "pwd"
	ACR           string
}

// Active reports whether the session may be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt)
}

// Audit event outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// AuditEvent is an append-only, hash-chained record of a security-relevant change.
// Data holds non-personal details; anything personal goes in PII, encrypted with
// the subject user's PIIKey.
type AuditEvent struct {
	TenantID  TenantID
	Seq       int64 // position in the tenant's chain, from 1; set by the store
	Time      time.Time
	Type      string // e.g. "user.signup", "login.failure"
	ActorID   string // who did it: a user id, "system", "cli", or empty
	TargetID  string // what it was done to
	Outcome   string
	RequestID string
	IP        string // kept only when no user is the subject; otherwise inside PII
	Data      map[string]string
	PII       []byte
	PrevHash  []byte // set by the store
	Hash      []byte // set by the store
}

// ComputeHash returns SHA-256 over prev and a canonical encoding of the event's
// content (every field but Hash). Verification recomputes it.
func (e *AuditEvent) ComputeHash(prev []byte) []byte {
	var b bytes.Buffer
	field := func(p []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		b.Write(n[:])
		b.Write(p)
	}
	field(prev)
	field([]byte(e.TenantID))
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(e.Seq))
	field(seq[:])
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Type))
	field([]byte(e.ActorID))
	field([]byte(e.TargetID))
	field([]byte(e.Outcome))
	field([]byte(e.RequestID))
	field([]byte(e.IP))
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	data, _ := json.Marshal(keys) // the key order is part of the encoding
	field(data)
	for _, k := range keys {
		field([]byte(e.Data[k]))
	}
	field(e.PII)
	sum := sha256.Sum256(b.Bytes())
	return sum[:]
}
