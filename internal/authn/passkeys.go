package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/passkey"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

// Passkey ceremonies run in two requests: Begin* gives the page the
// options for the browser and a state sealed under the key-encryption key,
// bound to the tenant, the purpose and the user (so a state cannot be
// carried to another tenant, ceremony or account); the Finish step opens
// it, checks the browser's answer, and records the challenge as used, so
// a replayed answer is refused on every server process. No row is written
// before the browser answers: a login page with passkey autofill costs no
// write to show.

// Passkey ceremony purposes.
const (
	purposeLogin  = "login"  // a login without a username (and autofill)
	purposeVerify = "verify" // a known user's second factor or confirmation
	purposeCreate = "create" // a passkey added to an account
	purposeSignup = "signup" // a new account with a passkey and no password
)

// Ceremony is what a page needs to run a passkey ceremony in the browser.
type Ceremony struct {
	Options string // JSON for navigator.credentials (the publicKey member)
	State   string // sealed; posted back with the browser's answer
}

var (
	errPasskeyUnknown = ciam.Errorf(ciam.Unauthenticated, "passkey_unknown", "This passkey is not registered here.")
	errPasskeyExpired = ciam.Errorf(ciam.Unauthenticated, "passkey_expired", "The passkey request expired or was already used. Try again.")
	errPasskeyTaken   = ciam.Errorf(ciam.Conflict, "passkey_taken", "This passkey is already registered to an account.")
)

// ErrLastFactor refuses removing the last second factor of a user whose
// tenant requires one.
var ErrLastFactor = ciam.Errorf(ciam.Forbidden, "last_factor", "This is your last second factor, and this service requires one. Add another before you remove it.")

func stateContext(t ciam.TenantID, purpose string, u ciam.UserID) string {
	return "passkey state\x00" + string(t) + "\x00" + purpose + "\x00" + string(u)
}

func (s *Service) sealState(t ciam.TenantID, purpose string, u ciam.UserID, st []byte) (string, error) {
	b, err := keys.Seal(s.KEK, stateContext(t, purpose, u), st)
	if err != nil {
		return "", fmt.Errorf("seal passkey state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Service) openState(t ciam.TenantID, purpose string, u ciam.UserID, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(sealed) > 64<<10 {
		return nil, errPasskeyExpired
	}
	st, err := keys.Open(s.KEK, stateContext(t, purpose, u), b)
	if err != nil {
		return nil, errPasskeyExpired
	}
	return st, nil
}

func (s *Service) ceremony(t ciam.TenantID, purpose string, u ciam.UserID, options, st []byte) (*Ceremony, error) {
	sealed, err := s.sealState(t, purpose, u, st)
	if err != nil {
		return nil, err
	}
	return &Ceremony{Options: string(options), State: sealed}, nil
}

// beginRP returns t's relying party for starting a ceremony, or nil when
// passkeys cannot work under this deployment's public URL or the tenant's
// passkey settings (a plain-http public URL other than localhost, an IP
// address): the pages then offer no passkeys instead of failing.
func (s *Service) beginRP(t *ciam.Tenant) (*passkey.RelyingParty, error) {
	rp, err := s.Passkeys.For(t)
	if e := ciam.As(err); e != nil && e.Code == "passkey_config_invalid" {
		return nil, nil
	}
	return rp, err
}

// errPasskeysOff refuses a passkey ceremony where passkeys cannot work.
var errPasskeysOff = ciam.Errorf(ciam.Invalid, "passkeys_unavailable", "Passkeys cannot be used on this site. Sign up with a password instead.")

// PasskeysOn reports whether passkeys work for t under this deployment.
func (s *Service) PasskeysOn(t *ciam.Tenant) bool {
	rp, _ := s.beginRP(t)
	return rp != nil
}

// BeginPasskeyLogin starts a login with any passkey of the tenant: the
// browser offers the person's passkeys without a username, in a dialog or
// as autofill in the email field.
func (s *Service) BeginPasskeyLogin(t *ciam.Tenant) (*Ceremony, error) {
	rp, err := s.beginRP(t)
	if rp == nil {
		return nil, err
	}
	opts, st, err := rp.BeginLogin()
	if err != nil {
		return nil, err
	}
	return s.ceremony(t.ID, purposeLogin, "", opts, st)
}

// BeginPasskeyVerify starts an assertion with one of u's passkeys (a second
// factor or a confirmation); nil when u has none.
func (s *Service) BeginPasskeyVerify(t *ciam.Tenant, u *ciam.User, f *Factors) (*Ceremony, error) {
	if len(f.Passkeys) == 0 {
		return nil, nil
	}
	rp, err := s.beginRP(t)
	if rp == nil {
		return nil, err
	}
	opts, st, err := rp.BeginSecondFactor(u, f.Passkeys)
	if err != nil {
		return nil, err
	}
	return s.ceremony(t.ID, purposeVerify, u.ID, opts, st)
}

// BeginPasskeyCreate starts adding a passkey to u's account.
func (s *Service) BeginPasskeyCreate(t *ciam.Tenant, u *ciam.User, f *Factors) (*Ceremony, error) {
	rp, err := s.beginRP(t)
	if rp == nil {
		return nil, err
	}
	opts, st, err := rp.BeginCreate(u, f.Passkeys)
	if err != nil {
		return nil, err
	}
	return s.ceremony(t.ID, purposeCreate, u.ID, opts, st)
}

// signupState is a passkey sign-up's state: the account to create, which
// exists nowhere until the browser answers.
type signupState struct {
	State  []byte      `json:"state"`
	User   ciam.UserID `json:"user"`
	Email  string      `json:"email"`
	Name   string      `json:"name"`
	Locale string      `json:"locale"`
}

// BeginPasskeySignup starts creating an account with a passkey and no
// password. Whether the address is taken is told only at the end, as in
// a password sign-up.
func (s *Service) BeginPasskeySignup(t *ciam.Tenant, email, name, locale string) (*Ceremony, error) {
	if !t.SignupOpen {
		return nil, ErrSignupClosed
	}
	u, err := user.New(t, email, name, locale, s.Now().UTC())
	if err != nil {
		return nil, err
	}
	rp, err := s.beginRP(t)
	if err != nil {
		return nil, err
	}
	if rp == nil {
		return nil, errPasskeysOff
	}
	opts, st, err := rp.BeginCreate(u, nil)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(signupState{State: st, User: u.ID, Email: u.Email, Name: u.Name, Locale: u.Locale})
	if err != nil {
		return nil, err
	}
	return s.ceremony(t.ID, purposeSignup, "", opts, b)
}

// useChallenge records the ceremony's challenge as answered, in tx: of two
// requests carrying the same answer, on any node, one gets through.
func useChallenge(ctx context.Context, tx store.Tx, st []byte, now time.Time) error {
	ch, exp, err := passkey.Challenge(st)
	if err != nil {
		return errPasskeyExpired
	}
	if !now.Before(exp) {
		return errPasskeyExpired
	}
	if err := tx.Nonces().Use(ctx, "webauthn", ch, now, exp); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errPasskeyExpired
		}
		return err
	}
	return nil
}

// finishPasskey checks an assertion in tx and records the passkey's use.
// For purposeVerify the state names want, and the passkey must be theirs.
func (s *Service) finishPasskey(ctx context.Context, tx store.Tx, t *ciam.Tenant, purpose string, want ciam.UserID, sealed string, credential []byte, now time.Time) (*passkey.Assertion, error) {
	st, err := s.openState(t.ID, purpose, want, sealed)
	if err != nil {
		return nil, err
	}
	rp, err := s.Passkeys.For(t)
	if err != nil {
		return nil, err
	}
	if err := useChallenge(ctx, tx, st, now); err != nil {
		return nil, err
	}
	a, err := rp.FinishLogin(st, credential, func(credentialID, userHandle []byte) (*ciam.User, []*ciam.Passkey, error) {
		pk, err := tx.Passkeys().ByCredentialID(ctx, credentialID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil // removed, or never registered here
		}
		if err != nil {
			return nil, nil, err
		}
		if want != "" && pk.UserID != want {
			return nil, nil, nil
		}
		u, err := tx.Users().Get(ctx, pk.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		all, err := tx.Passkeys().ListByUser(ctx, u.ID)
		return u, all, err
	})
	if err != nil {
		return nil, err
	}
	if err := tx.Passkeys().RecordUse(ctx, a.Passkey.ID, a.Passkey.SignCount, a.NewCount, a.BackupState, now); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errPasskeyUnknown // removed while the ceremony ran
		}
		if errors.Is(err, store.ErrConflict) {
			return nil, errPasskeyExpired // another login with it raced this one
		}
		return nil, err
	}
	return a, nil
}

// passkeyAMR is the RFC 8176 methods of a passkey login: "hwk" for a key
// bound to its device, "swk" for one that syncs between devices, and "mfa"
// when the authenticator verified its user (a PIN or biometrics on top of
// possession: two factors in one).
func passkeyAMR(a *passkey.Assertion) []string {
	k := "hwk"
	if a.Passkey.BackupEligible {
		k = "swk"
	}
	if a.UserVerified {
		return []string{k, "mfa"}
	}
	return []string{k}
}

// passkeyRefused records a failed ceremony outside the transaction that
// rolled back, so a cloned authenticator's attempt stays on the record.
func (s *Service) passkeyRefused(ctx context.Context, t *ciam.Tenant, u *ciam.User, err error, m audit.Meta) {
	e := ciam.As(err)
	if e == nil || (e.Kind != ciam.Unauthenticated && e.Kind != ciam.Conflict) {
		return
	}
	target := ""
	if u != nil {
		target = string(u.ID)
	}
	rerr := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		return audit.Record(ctx, tx, s.Now().UTC(), audit.PasskeyRefused, target, target, ciam.OutcomeFailure, u, m, "", map[string]string{"reason": e.Code})
	})
	if rerr != nil && s.Log != nil {
		s.Log.ErrorContext(ctx, "record passkey refusal", "err", rerr, "tenant", t.Slug)
	}
}

// PasskeyLogin completes a login with a passkey chosen in the browser
// without a username. Like every login it may still ask for a second
// factor (a passkey that did not verify its user is one factor).
func (s *Service) PasskeyLogin(ctx context.Context, t *ciam.Tenant, state string, credential []byte, m audit.Meta) (*Result, error) {
	srcKey := "ip:" + string(t.ID) + ":" + m.IP
	if err := s.throttled(srcKey); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var res *Result
	var who *ciam.User
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		a, err := s.finishPasskey(ctx, tx, t, purposeLogin, "", state, credential, now)
		if err != nil {
			return err
		}
		u := a.User
		who = u
		if u.Status != ciam.UserActive {
			return ErrDisabled
		}
		if t.RequireVerifiedEmail && !u.EmailVerified {
			return ErrEmailNotVerified
		}
		res, err = s.establish(ctx, tx, t, u, passkeyAMR(a), "passkey", m, now, map[string]string{"passkey": a.Passkey.ID})
		return err
	})
	if err != nil {
		if e := ciam.As(err); e != nil && e.Kind == ciam.Unauthenticated {
			s.Sources.Fail(srcKey)
		}
		s.passkeyRefused(ctx, t, who, err, m)
		return nil, err
	}
	return res, nil
}

// PasskeySignup creates the account begun by BeginPasskeySignup with the
// passkey the browser made, queues the address verification and, unless
// the tenant waits for it, logs in: the user, the passkey, the mail and the
// session commit together.
func (s *Service) PasskeySignup(ctx context.Context, t *ciam.Tenant, state string, credential []byte, name string, m audit.Meta) (*Result, error) {
	if !t.SignupOpen {
		return nil, ErrSignupClosed
	}
	raw, err := s.openState(t.ID, purposeSignup, "", state)
	if err != nil {
		return nil, err
	}
	var ss signupState
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, errPasskeyExpired
	}
	now := s.Now().UTC()
	u, err := user.New(t, ss.Email, ss.Name, ss.Locale, now)
	if err != nil {
		return nil, err
	}
	u.ID = ss.User
	rp, err := s.Passkeys.For(t)
	if err != nil {
		return nil, err
	}
	pk, err := rp.FinishCreate(u, ss.State, credential, now)
	if err != nil {
		return nil, err
	}
	pk.Name = passkeyName(name)
	res := &Result{User: u}
	binding := newBinding()
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := useChallenge(ctx, tx, ss.State, now); err != nil {
			return err
		}
		if err := tx.Users().Create(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return user.ErrEmailTaken
			}
			return err
		}
		if err := tx.Passkeys().Create(ctx, pk); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errPasskeyTaken
			}
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.UserSignup, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, u.Email, map[string]string{"method": "passkey"}); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.PasskeyAdded, string(u.ID), pk.ID, ciam.OutcomeSuccess, u, m, "", nil); err != nil {
			return err
		}
		in, err := s.queueVerification(ctx, tx, t, u, binding.Secret, m, now)
		if err != nil {
			return err
		}
		binding.TokenID = in.token.ID
		if t.RequireVerifiedEmail {
			return nil
		}
		r, err := s.establish(ctx, tx, t, u, createdAMR(pk), "passkey", m, now, nil)
		if err != nil {
			return err
		}
		res.Session, res.Token, res.Pending, res.Enrol = r.Session, r.Token, r.Pending, r.Enrol
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Verify = binding
	return res, nil
}

func passkeyName(name string) string {
	n, err := user.CleanName(name)
	if err != nil || n == "" {
		return "Passkey"
	}
	if len([]rune(n)) > 64 {
		n = string([]rune(n)[:64])
	}
	return n
}

// AddPasskey stores the passkey the browser made for u's account, after a
// recent authentication, and tells the user by mail.
func (s *Service) AddPasskey(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, u *ciam.User, state string, credential []byte, name string, m audit.Meta) (*ciam.Passkey, error) {
	if err := s.requireRecent(t, sess); err != nil {
		return nil, err
	}
	st, err := s.openState(t.ID, purposeCreate, u.ID, state)
	if err != nil {
		return nil, err
	}
	rp, err := s.Passkeys.For(t)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	pk, err := rp.FinishCreate(u, st, credential, now)
	if err != nil {
		s.passkeyRefused(ctx, t, u, err, m)
		return nil, err
	}
	pk.Name = passkeyName(name)
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		return s.storePasskey(ctx, tx, t, u, st, pk, m, now)
	})
	if err != nil {
		return nil, err
	}
	return pk, nil
}

// storePasskey keeps a passkey made in the ceremony of state st, in tx:
// the challenge is spent, the credential must be new to the tenant, and the
// user is told.
func (s *Service) storePasskey(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, st []byte, pk *ciam.Passkey, m audit.Meta, now time.Time) error {
	if err := useChallenge(ctx, tx, st, now); err != nil {
		return err
	}
	if err := tx.Passkeys().Create(ctx, pk); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errPasskeyTaken
		}
		return err
	}
	return s.securityChanged(ctx, tx, t, u, audit.PasskeyAdded, pk.ID, "passkey_added", m, now)
}

// createdAMR is the methods of a login that just made passkey pk.
func createdAMR(pk *ciam.Passkey) []string {
	amr := []string{"hwk"}
	if pk.BackupEligible {
		amr = []string{"swk"}
	}
	if pk.UserVerified {
		amr = append(amr, "mfa")
	}
	return amr
}

// ErrPasskeyNotFound is returned for a passkey the user does not have.
var ErrPasskeyNotFound = ciam.Errorf(ciam.NotFound, "passkey_not_found", "That passkey is not registered to your account.")

// RenamePasskey gives one of u's passkeys a new name.
func (s *Service) RenamePasskey(ctx context.Context, t *ciam.Tenant, u *ciam.User, id, name string, m audit.Meta) error {
	n, err := user.CleanName(name)
	if err != nil {
		return err
	}
	if n == "" {
		return ciam.Errorf(ciam.Invalid, "name_required", "Enter a name for the passkey.").OnField("name")
	}
	now := s.Now().UTC()
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Passkeys().Rename(ctx, u.ID, id, passkeyName(n)); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.PasskeyRenamed, string(u.ID), id, ciam.OutcomeSuccess, u, m, "", nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrPasskeyNotFound
	}
	return err
}

// RemovePasskey removes one of u's passkeys after a recent authentication.
// Under a policy that requires a second factor, the last one stays.
func (s *Service) RemovePasskey(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, u *ciam.User, id string, m audit.Meta) error {
	if err := s.requireRecent(t, sess); err != nil {
		return err
	}
	now := s.Now().UTC()
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		f, err := loadFactors(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if t.MFAPolicy == ciam.MFARequired && !f.TOTP && len(f.Passkeys) == 1 && f.Passkeys[0].ID == id {
			return ErrLastFactor
		}
		if err := tx.Passkeys().Delete(ctx, u.ID, id); err != nil {
			return err
		}
		return s.securityChanged(ctx, tx, t, u, audit.PasskeyRemoved, id, "passkey_removed", m, now)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrPasskeyNotFound
	}
	return err
}
