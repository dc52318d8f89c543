package passkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// Kinds of ceremony a state is for.
const (
	kindCreate       = "passkey_create" // registration
	kindLogin        = "passkey_login"  // discoverable login: no username, or browser autofill
	kindSecondFactor = "passkey_mfa"    // assertion by a known user's credentials
)

// state is what a Begin method hands the caller to keep until Finish.
type state struct {
	Kind    string               `json:"kind"`
	Tenant  ciam.TenantID        `json:"tenant"`
	Expires time.Time            `json:"expires"`
	Session webauthn.SessionData `json:"session"`
}

// Assertion is a verified login: who signed, with which stored passkey, and
// what the authenticator reported. The caller stores NewCount and
// BackupState on the passkey and sets its LastUsedAt.
type Assertion struct {
	User         *ciam.User
	Passkey      *ciam.Passkey // the stored passkey that signed, unchanged
	NewCount     uint32
	BackupState  bool
	UserVerified bool // this login verified the user (PIN, biometrics)
}

// FindFunc loads the user a credential belongs to and all of that user's
// passkeys. userHandle is the user id the authenticator returned (for a
// discoverable login) or the user the ceremony was begun for (a second
// factor). When nothing matches it returns a nil user, or an error of kind
// NotFound (both refused as passkey_unknown); any other error is returned
// wrapped, keeping its kind. The user and passkeys must carry the tenant's
// id: those of another tenant, or passkeys of another user, are ignored.
type FindFunc func(credentialID, userHandle []byte) (*ciam.User, []*ciam.Passkey, error)

// The refusals of a ceremony: templates, never returned themselves; refuse
// returns a copy carrying the cause.
var (
	errInvalid    = ciam.Errorf(ciam.Unauthenticated, "passkey_invalid", "The passkey could not be verified. Try again.")
	errUnknown    = ciam.Errorf(ciam.Unauthenticated, "passkey_unknown", "This passkey is not registered here.")
	errExpired    = ciam.Errorf(ciam.Unauthenticated, "passkey_expired", "The passkey request expired. Try again.")
	errUVRequired = ciam.Errorf(ciam.Unauthenticated, "passkey_verification_required", "This passkey must verify it is you, with a PIN, fingerprint or face. Try again and unlock it when asked.")
	errRegressed  = ciam.Errorf(ciam.Unauthenticated, "passkey_counter_regressed", "This passkey looks like a copy of another one and was refused. Use another way to sign in.")
	errNoPasskeys = ciam.Errorf(ciam.Invalid, "passkey_none", "No passkey is registered for this account.")
)

// refuse returns a copy of e with cause as its Err. A go-webauthn error
// gains its type and developer detail, which its Error method leaves out.
func refuse(e *ciam.Error, cause error) *ciam.Error {
	c := *e
	if pe, ok := errors.AsType[*protocol.Error](cause); ok {
		detail := "webauthn " + pe.Type
		if pe.DevInfo != "" {
			detail += ": " + pe.DevInfo
		}
		if pe.Err != nil && !strings.Contains(pe.Details+pe.DevInfo, pe.Err.Error()) {
			detail += ": " + pe.Err.Error()
		}
		cause = fmt.Errorf("%w (%s)", cause, detail)
	}
	c.Err = cause
	return &c
}

// BeginCreate starts the registration of a passkey for u. existing are u's
// passkeys, which the authenticator is asked not to register twice.
func (rp *RelyingParty) BeginCreate(u *ciam.User, existing []*ciam.Passkey) (options, st []byte, err error) {
	exclude := make([]protocol.CredentialDescriptor, 0, len(existing))
	for _, p := range existing {
		exclude = append(exclude, descriptor(p))
	}
	creation, sd, err := rp.wa.BeginRegistration(newUser(u, nil), webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return rp.begin(kindCreate, creation.Response, sd)
}

// FinishCreate checks the browser's answer to BeginCreate (the JSON a
// PublicKeyCredential serialises to) and returns the new passkey for the
// caller to store. now dates the passkey and decides whether the challenge
// expired.
func (rp *RelyingParty) FinishCreate(u *ciam.User, st, response []byte, now time.Time) (*ciam.Passkey, error) {
	s, err := rp.open(st, now, kindCreate)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(s.Session.UserID, []byte(u.ID)) {
		return nil, refuse(errInvalid, errors.New("passkey: registration state is for another user"))
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, refuse(errInvalid, err)
	}
	flags := parsed.Response.AttestationObject.AuthData.Flags
	if (rp.uvRequired || s.Session.UserVerification == protocol.VerificationRequired) && !flags.UserVerified() {
		return nil, refuse(errUVRequired, errors.New("passkey: registration without user verification"))
	}
	cred, err := rp.wa.CreateCredential(newUser(u, nil), s.Session, parsed)
	if err != nil {
		return nil, refuse(errInvalid, err)
	}
	transports := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		transports = append(transports, string(t))
	}
	return &ciam.Passkey{
		ID:              ciam.NewID(),
		TenantID:        rp.tenant,
		UserID:          u.ID,
		CredentialID:    cred.ID,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		UserVerified:    cred.Flags.UserVerified,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		Name:            "Passkey",
		CreatedAt:       now,
	}, nil
}

// BeginLogin starts a discoverable login: no allowCredentials, so the
// browser offers every passkey it holds for the RP ID. The same options
// serve a login without a username and browser autofill (conditional
// mediation, which the page requests itself).
func (rp *RelyingParty) BeginLogin() (options, st []byte, err error) {
	assertion, sd, err := rp.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	return rp.begin(kindLogin, assertion.Response, sd)
}

// BeginSecondFactor starts an assertion by one of creds, the passkeys of u,
// who has already passed a first factor.
func (rp *RelyingParty) BeginSecondFactor(u *ciam.User, creds []*ciam.Passkey) (options, st []byte, err error) {
	if len(creds) == 0 {
		return nil, nil, refuse(errNoPasskeys, nil)
	}
	assertion, sd, err := rp.wa.BeginLogin(newUser(u, creds))
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin second factor: %w", err)
	}
	return rp.begin(kindSecondFactor, assertion.Response, sd)
}

func (rp *RelyingParty) begin(kind string, publicKey any, sd *webauthn.SessionData) (options, st []byte, err error) {
	if options, err = json.Marshal(publicKey); err != nil {
		return nil, nil, fmt.Errorf("passkey: options: %w", err)
	}
	sd.Expires = time.Time{} // expiry is ours, on our clock
	if st, err = json.Marshal(state{Kind: kind, Tenant: rp.tenant, Expires: rp.now().Add(ChallengeTTL).UTC(), Session: *sd}); err != nil {
		return nil, nil, fmt.Errorf("passkey: state: %w", err)
	}
	return options, st, nil
}

// open decodes a state and checks that it is one of kinds, of this tenant,
// and live at now.
func (rp *RelyingParty) open(st []byte, now time.Time, kinds ...string) (*state, error) {
	var s state
	if err := json.Unmarshal(st, &s); err != nil {
		return nil, refuse(errInvalid, fmt.Errorf("passkey: state: %w", err))
	}
	if !slices.Contains(kinds, s.Kind) {
		return nil, refuse(errInvalid, fmt.Errorf("passkey: state of a %q ceremony, want %q", s.Kind, kinds))
	}
	if s.Tenant != rp.tenant || s.Session.GetRelyingPartyID(rp.RPID()) != rp.RPID() {
		return nil, refuse(errInvalid, fmt.Errorf("passkey: state of tenant %s (RP ID %s) used at tenant %s (RP ID %s)", s.Tenant, s.Session.RelyingPartyID, rp.tenant, rp.RPID()))
	}
	if s.Expires.IsZero() || !now.Before(s.Expires) {
		return nil, refuse(errExpired, fmt.Errorf("passkey: challenge expired at %s", s.Expires.Format(time.RFC3339)))
	}
	return &s, nil
}

// FinishLogin checks the browser's answer to BeginLogin or
// BeginSecondFactor and returns who signed. find loads the owner of the
// credential; for a second factor it is asked for the user the ceremony
// was begun for.
func (rp *RelyingParty) FinishLogin(st, response []byte, find FindFunc) (*Assertion, error) {
	s, err := rp.open(st, rp.now(), kindLogin, kindSecondFactor)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, refuse(errInvalid, err)
	}
	handle := parsed.Response.UserHandle
	switch s.Kind {
	case kindLogin:
		if len(handle) == 0 {
			return nil, refuse(errInvalid, errors.New("passkey: discoverable login without a user handle"))
		}
	case kindSecondFactor:
		if len(handle) != 0 && !bytes.Equal(handle, s.Session.UserID) {
			return nil, refuse(errUnknown, errors.New("passkey: user handle is not the user the second factor was begun for"))
		}
		if !inList(parsed.RawID, s.Session.AllowedCredentialIDs) {
			return nil, refuse(errUnknown, errors.New("passkey: credential not among those the second factor allowed"))
		}
		handle = s.Session.UserID
	}

	u, creds, err := find(parsed.RawID, handle)
	if err != nil {
		if ciam.KindOf(err) == ciam.NotFound {
			return nil, refuse(errUnknown, err)
		}
		return nil, fmt.Errorf("passkey: find credential: %w", err)
	}
	if u == nil {
		return nil, refuse(errUnknown, errors.New("passkey: no user for credential"))
	}
	if string(handle) != string(u.ID) || u.TenantID != rp.tenant {
		return nil, refuse(errUnknown, fmt.Errorf("passkey: credential presented for user handle %q belongs to user %s", handle, u.ID))
	}
	var stored *ciam.Passkey
	owned := make([]*ciam.Passkey, 0, len(creds))
	for _, p := range creds {
		if p == nil || p.UserID != u.ID || p.TenantID != rp.tenant {
			continue
		}
		owned = append(owned, p)
		if bytes.Equal(p.CredentialID, parsed.RawID) {
			stored = p
		}
	}
	if stored == nil {
		return nil, refuse(errUnknown, fmt.Errorf("passkey: credential is not registered to user %s", u.ID))
	}

	flags := parsed.Response.AuthenticatorData.Flags
	if (rp.uvRequired || s.Session.UserVerification == protocol.VerificationRequired) && !flags.UserVerified() {
		return nil, refuse(errUVRequired, errors.New("passkey: assertion without user verification"))
	}

	wu := newUser(u, owned)
	sd := s.Session
	var cred *webauthn.Credential
	if s.Kind == kindLogin {
		cred, err = rp.wa.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return wu, nil }, sd, parsed)
	} else {
		// The library insists that every allowed credential is still the
		// user's; one removed since Begin must not fail the one presented.
		sd.AllowedCredentialIDs = [][]byte{parsed.RawID}
		cred, err = rp.wa.ValidateLogin(wu, sd, parsed)
	}
	if err != nil {
		if _, ok := errors.AsType[*protocol.ErrorUnknownCredential](err); ok {
			return nil, refuse(errUnknown, err)
		}
		return nil, refuse(errInvalid, err)
	}

	// A signature counter that does not move forward betrays a cloned
	// authenticator; synced passkeys keep both at zero. Compared here, not
	// only through the library's CloneWarning, which it merely flags.
	newCount := parsed.Response.AuthenticatorData.Counter
	if ((stored.SignCount > 0 || newCount > 0) && newCount <= stored.SignCount) || cred.Authenticator.CloneWarning {
		return nil, refuse(errRegressed, fmt.Errorf("passkey: sign count %d after %d for credential %s", newCount, stored.SignCount, stored.ID))
	}
	return &Assertion{
		User:         u,
		Passkey:      stored,
		NewCount:     newCount,
		BackupState:  flags.HasBackupState(),
		UserVerified: flags.UserVerified(),
	}, nil
}

// Challenge returns the challenge a state holds and when it expires, so the
// caller can refuse a challenge that was already used.
func Challenge(st []byte) (challenge string, expires time.Time, err error) {
	var s state
	if err := json.Unmarshal(st, &s); err != nil {
		return "", time.Time{}, refuse(errInvalid, err)
	}
	if s.Session.Challenge == "" {
		return "", time.Time{}, refuse(errInvalid, errors.New("passkey: state without a challenge"))
	}
	return s.Session.Challenge, s.Expires, nil
}

// user adapts a ciam.User and its passkeys to webauthn.User.
type user struct {
	id          []byte
	name        string
	displayName string
	creds       []webauthn.Credential
}

func newUser(u *ciam.User, passkeys []*ciam.Passkey) *user {
	w := &user{id: []byte(u.ID), name: u.Email, displayName: u.Name}
	if w.name == "" {
		w.name = string(u.ID)
	}
	if w.displayName == "" {
		w.displayName = w.name
	}
	for _, p := range passkeys {
		w.creds = append(w.creds, credential(p))
	}
	return w
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.displayName }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func credential(p *ciam.Passkey) webauthn.Credential {
	return webauthn.Credential{
		ID:              p.CredentialID,
		PublicKey:       p.PublicKey,
		AttestationType: p.AttestationType,
		Transport:       transports(p.Transports),
		Flags: webauthn.CredentialFlags{
			UserPresent:    true,
			UserVerified:   p.UserVerified,
			BackupEligible: p.BackupEligible,
			BackupState:    p.BackupState,
		},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
}

func descriptor(p *ciam.Passkey) protocol.CredentialDescriptor {
	return protocol.CredentialDescriptor{
		Type:         protocol.PublicKeyCredentialType,
		CredentialID: p.CredentialID,
		Transport:    transports(p.Transports),
	}
}

func transports(ts []string) []protocol.AuthenticatorTransport {
	if len(ts) == 0 {
		return nil
	}
	out := make([]protocol.AuthenticatorTransport, len(ts))
	for i, t := range ts {
		out[i] = protocol.AuthenticatorTransport(t)
	}
	return out
}

func inList(id []byte, list [][]byte) bool {
	for _, v := range list {
		if bytes.Equal(v, id) {
			return true
		}
	}
	return false
}
