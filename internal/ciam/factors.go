package ciam

import "time"

// DefaultReauthTTL is how long after a login a sensitive change (a factor
// added or removed, new recovery codes, a new password or email) goes
// through without asking the person to authenticate again.
const DefaultReauthTTL = 10 * time.Minute

// ReauthWindow is how long a login counts as recent for sensitive changes.
func (t *Tenant) ReauthWindow() time.Duration {
	return orDefault(t.ReauthTTL, DefaultReauthTTL)
}

// Passkey user verification settings of a tenant.
const (
	UVPreferred = "preferred" // asked for; a login without it is one factor
	UVRequired  = "required"  // refused without it
)

// TenantPasskeys is a tenant's WebAuthn relying-party configuration. Its
// zero value derives everything from the deployment's public URL.
type TenantPasskeys struct {
	// RPID is the relying-party id (a registrable domain suffix of the
	// origin the pages are served on); empty: the public URL's host.
	RPID string `json:"rp_id,omitempty"`
	// Origins are the origins, besides the public URL's, that may run a
	// ceremony (a tenant's custom domain).
	Origins []string `json:"origins,omitempty"`
	// UserVerification is UVPreferred (empty) or UVRequired.
	UserVerification string `json:"user_verification,omitempty"`
}

// IsZero reports whether no field is set.
func (p TenantPasskeys) IsZero() bool {
	return p.RPID == "" && len(p.Origins) == 0 && p.UserVerification == ""
}

// Passkey is a WebAuthn credential registered to a user: a passkey that
// logs in without a password, or a security key used as a second factor.
type Passkey struct {
	ID              string
	TenantID        TenantID
	UserID          UserID
	CredentialID    []byte
	PublicKey       []byte // COSE key
	AttestationType string
	AAGUID          []byte
	// SignCount is the authenticator's signature counter at its last use;
	// one that goes backwards betrays a cloned authenticator (passkeys that
	// sync keep it at zero).
	SignCount      uint32
	Transports     []string
	UserVerified   bool // the authenticator verified the user at registration
	BackupEligible bool
	BackupState    bool
	Name           string // chosen by the user
	CreatedAt      time.Time
	LastUsedAt     time.Time // zero until first used
}

// TOTPSecret is a user's time-based one-time password authenticator.
type TOTPSecret struct {
	TenantID  TenantID
	UserID    UserID
	Secret    []byte // sealed under the key-encryption key
	CreatedAt time.Time
	// LastStep is the last time step (Unix time / 30 s) whose code was
	// accepted: no code of that step or an earlier one is accepted again.
	LastStep int64
}

// Kinds of AuthFlow.
const (
	FlowSecondFactor = "mfa" // a login that passed its first factor and waits for a second
)

// Authentication context classes, in sessions, tokens and discovery.
// aal1: one factor (a password, a mailed link or code, a passkey without
// user verification). aal2: two factors, or a passkey that verified its
// user (a multi-factor cryptographic authenticator).
const (
	ACRSingleFactor = "urn:gatehouse:aal1"
	ACRMultiFactor  = "urn:gatehouse:aal2"
)

// AuthFlow is a short-lived step of an authentication bound to the
// browser that started it (by the hash of a cookie secret): it completes
// once, and only there.
type AuthFlow struct {
	ID          string
	TenantID    TenantID
	Kind        string
	BrowserHash []byte
	UserID      UserID    // empty until known (a passkey login without a username)
	SessionID   SessionID // the session it acts on, if any
	Data        string    // JSON, kind-specific
	Attempts    int
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      time.Time // zero while live
}

// Live reports whether the flow may still complete at now.
func (f *AuthFlow) Live(now time.Time) bool {
	return f.UsedAt.IsZero() && now.Before(f.ExpiresAt)
}
