package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/totp"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Every login path (password, passkey, mailed link or code, and later
// federation) ends in establish, which applies the tenant's second-factor
// policy: it starts the session, or it records a pending login bound to the
// browser and starts no session. Only CompleteSecondFactor turns a pending
// login into a session, after the missing factor; nothing else reads a
// pending login, so no page can be skipped to reach a session.

// Second-factor proofs, as the pages name them.
const (
	MethodPassword = "password"
	MethodTOTP     = "totp"
	MethodRecovery = "recovery"
	MethodPasskey  = "passkey"
)

// PendingTTL is how long a login waits for its second factor.
const PendingTTL = 10 * time.Minute

// maxFactorAttempts is how many codes one pending login accepts.
const maxFactorAttempts = 5

// Factors is what second factors a user has.
type Factors struct {
	Password bool // not a second factor; whether a confirmation can ask for it
	TOTP     bool
	Passkeys []*ciam.Passkey
	Recovery int // unused recovery codes
}

// Any reports whether the user has a second factor (recovery codes stand in
// for one but are not one).
func (f *Factors) Any() bool { return f.TOTP || len(f.Passkeys) > 0 }

func loadFactors(ctx context.Context, tx store.Tx, user ciam.UserID) (*Factors, error) {
	f := &Factors{}
	if _, err := tx.TOTP().Get(ctx, user); err == nil {
		f.TOTP = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if _, err := tx.Passwords().Get(ctx, user); err == nil {
		f.Password = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var err error
	if f.Passkeys, err = tx.Passkeys().ListByUser(ctx, user); err != nil {
		return nil, err
	}
	if f.Recovery, err = tx.RecoveryCodes().Remaining(ctx, user); err != nil {
		return nil, err
	}
	return f, nil
}

// hasSecondFactor reports whether the user has a TOTP app or a passkey,
// with at most two indexed reads: all a login needs to apply the policy.
func hasSecondFactor(ctx context.Context, tx store.Tx, user ciam.UserID) (bool, error) {
	if _, err := tx.TOTP().Get(ctx, user); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	ps, err := tx.Passkeys().ListByUser(ctx, user)
	return len(ps) > 0, err
}

// Factors returns the second factors of u.
func (s *Service) Factors(ctx context.Context, t *ciam.Tenant, u ciam.UserID) (*Factors, error) {
	var f *Factors
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		f, err = loadFactors(ctx, tx, u)
		return err
	})
	return f, err
}

// multiFactor reports whether amr already proves two factors.
func multiFactor(amr []string) bool { return slices.Contains(amr, "mfa") }

// acrOf is the authentication context class of amr.
func acrOf(amr []string) string {
	if multiFactor(amr) {
		return ciam.ACRMultiFactor
	}
	return ciam.ACRSingleFactor
}

// needsSecondFactor applies the tenant's policy to a first factor of a
// user who has (or has not) a second factor.
func needsSecondFactor(t *ciam.Tenant, has bool, amr []string) bool {
	if multiFactor(amr) {
		return false
	}
	switch t.MFAPolicy {
	case ciam.MFARequired:
		return true
	case ciam.MFAOptional:
		return has
	}
	return false
}

// pending is the Data of a FlowSecondFactor.
type pending struct {
	AMR    []string `json:"amr"`    // of the first factor
	Method string   `json:"method"` // of the first factor, for the audit trail
	Enrol  bool     `json:"enrol"`  // the user has no factor and must add one
}

// establish ends a successful first factor in tx: it starts a session, or,
// when the tenant's policy asks for a second factor, records a pending login
// bound to a new browser Binding. method names the first factor in the
// audit trail; extra is added to the success event.
func (s *Service) establish(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, amr []string, method string, m audit.Meta, now time.Time, extra map[string]string) (*Result, error) {
	if t.MFAPolicy == ciam.MFAOff || multiFactor(amr) {
		// Nothing to ask: the login costs no reads of the user's factors.
		return s.startSession(ctx, tx, t, u, amr, method, m, now, extra)
	}
	has, err := hasSecondFactor(ctx, tx, u.ID)
	if err != nil {
		return nil, err
	}
	if needsSecondFactor(t, has, amr) {
		b := newBinding()
		data, _ := json.Marshal(pending{AMR: amr, Method: method, Enrol: !has})
		flow := &ciam.AuthFlow{
			ID: b.TokenID, TenantID: t.ID, Kind: ciam.FlowSecondFactor, BrowserHash: session.HashToken(b.Secret),
			UserID: u.ID, Data: string(data), CreatedAt: now, ExpiresAt: now.Add(PendingTTL),
		}
		if err := tx.AuthFlows().Create(ctx, flow); err != nil {
			return nil, err
		}
		d := map[string]string{"method": method}
		if !has {
			d["enrol"] = "true"
		}
		if err := audit.Record(ctx, tx, now, audit.LoginSecondFactor, string(u.ID), flow.ID, ciam.OutcomeSuccess, u, m, "", d); err != nil {
			return nil, err
		}
		return &Result{User: u, Pending: b, Enrol: !has}, nil
	}
	return s.startSession(ctx, tx, t, u, amr, method, m, now, extra)
}

// startSession creates the session of a completed login, in tx.
func (s *Service) startSession(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, amr []string, method string, m audit.Meta, now time.Time, extra map[string]string) (*Result, error) {
	sess, token := s.Sessions.New(t, u.ID, amr, m)
	sess.ACR = acrOf(amr)
	if err := tx.Sessions().Create(ctx, sess); err != nil {
		return nil, err
	}
	if err := tx.Users().RecordLogin(ctx, u.ID, now); err != nil {
		return nil, err
	}
	d := map[string]string{"method": method, "acr": sess.ACR}
	for k, v := range extra {
		d[k] = v
	}
	if err := audit.Record(ctx, tx, now, audit.LoginSucceeded, string(u.ID), string(sess.ID), ciam.OutcomeSuccess, u, m, "", d); err != nil {
		return nil, err
	}
	u.LastLoginAt = now
	return &Result{User: u, Session: sess, Token: token}, nil
}

// ErrPendingExpired is returned for a pending login that is over, unknown,
// or started in another browser.
var ErrPendingExpired = ciam.Errorf(ciam.Unauthenticated, "login_expired", "This login has expired. Please log in again.")

// ErrFactorInvalid is the one answer for a wrong, reused or expired code.
var ErrFactorInvalid = ciam.Errorf(ciam.Unauthenticated, "factor_invalid", "That code is not correct, or it was already used. Try the next code.").OnField("code")

// ErrNoSuchFactor is returned for a method the user has not set up.
var ErrNoSuchFactor = ciam.Errorf(ciam.Invalid, "factor_unavailable", "That method is not set up for this account.")

// PendingLogin is a login waiting for its second factor.
type PendingLogin struct {
	User    *ciam.User
	Factors *Factors
	Enrol   bool // the user must add a factor before the login completes
	flow    *ciam.AuthFlow
	data    pending
}

// Pending returns the pending login bound to browser binding b.
func (s *Service) Pending(ctx context.Context, t *ciam.Tenant, b Binding) (*PendingLogin, error) {
	if b.TokenID == "" || len(b.TokenID) > 64 || b.Secret == "" {
		return nil, ErrPendingExpired
	}
	now := s.Now().UTC()
	var p PendingLogin
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		f, err := tx.AuthFlows().Get(ctx, b.TokenID)
		if err != nil {
			return err
		}
		if f.Kind != ciam.FlowSecondFactor || !f.Live(now) || subtle.ConstantTimeCompare(f.BrowserHash, session.HashToken(b.Secret)) != 1 {
			return ErrPendingExpired
		}
		if err := json.Unmarshal([]byte(f.Data), &p.data); err != nil {
			return fmt.Errorf("pending login %s: %w", f.ID, err)
		}
		if p.User, err = tx.Users().Get(ctx, f.UserID); err != nil {
			return err
		}
		p.flow = f
		p.Factors, err = loadFactors(ctx, tx, f.UserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrPendingExpired
	}
	if err != nil {
		return nil, err
	}
	if p.User.Status != ciam.UserActive {
		return nil, ErrDisabled
	}
	p.Enrol = !p.Factors.Any()
	return &p, nil
}

// Proof is what a person presents to prove a factor.
type Proof struct {
	Method   string // MethodPassword, MethodTOTP, MethodRecovery or MethodPasskey
	Password string
	Code     string // TOTP or recovery code
	// Passkey: the sealed ceremony state the page was given and the
	// browser's credential JSON.
	State      string
	Credential []byte
}

// proven is what a verified proof adds to a session.
type proven struct {
	amr      []string
	multi    bool // the proof is two factors by itself (a passkey with user verification)
	detail   map[string]string
	recovery bool
}

func (s *Service) factorKey(user string) string { return "mfa:" + user }

// verifyProof checks p for user u in tx. A TOTP step or recovery code is
// spent in tx: if the caller's transaction fails later, the code stays
// unspent, and the login did not happen either.
func (s *Service) verifyProof(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, p Proof, now time.Time) (*proven, error) {
	switch p.Method {
	case MethodTOTP:
		sec, err := tx.TOTP().Get(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoSuchFactor
		}
		if err != nil {
			return nil, err
		}
		secret, err := keys.Open(s.KEK, totpContext(t.ID, u.ID), sec.Secret)
		if err != nil {
			return nil, fmt.Errorf("open totp secret: %w", err)
		}
		step, ok := totp.Check(secret, p.Code, now)
		if !ok {
			return nil, ErrFactorInvalid
		}
		if err := tx.TOTP().UseStep(ctx, u.ID, step); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return nil, ErrFactorInvalid // a replay, or removed meanwhile
			}
			return nil, err
		}
		return &proven{amr: []string{"otp"}, detail: map[string]string{"factor": MethodTOTP}}, nil
	case MethodRecovery:
		code := normalizeRecovery(p.Code)
		if code == "" {
			return nil, ErrFactorInvalid
		}
		if err := tx.RecoveryCodes().Use(ctx, u.ID, s.recoveryHash(u.ID, code), now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, ErrFactorInvalid
			}
			return nil, err
		}
		return &proven{amr: []string{"otp"}, detail: map[string]string{"factor": MethodRecovery}, recovery: true}, nil
	case MethodPasskey:
		a, err := s.finishPasskey(ctx, tx, t, purposeVerify, u.ID, p.State, p.Credential, now)
		if err != nil {
			return nil, err
		}
		if a.User.ID != u.ID {
			return nil, errPasskeyUnknown
		}
		return &proven{amr: passkeyAMR(a), multi: a.UserVerified, detail: map[string]string{"factor": MethodPasskey, "passkey": a.Passkey.ID}}, nil
	case MethodPassword:
		return nil, ErrNoSuchFactor // checked by the caller, outside any transaction
	}
	return nil, ciam.Errorf(ciam.Invalid, "method_unknown", "Choose how to confirm it is you.")
}

// CompleteSecondFactor finishes the pending login bound to b with a second
// factor, or, for a user who must enrol first, after the enrolment that
// Enrol* already stored: the session starts and the pending login ends.
// Every code tried counts against the login (five at most) and against the
// account's throttle before it is compared.
func (s *Service) CompleteSecondFactor(ctx context.Context, t *ciam.Tenant, b Binding, p Proof, m audit.Meta) (*Result, error) {
	pl, err := s.Pending(ctx, t, b)
	if err != nil {
		return nil, err
	}
	return s.completePending(ctx, t, pl, p, m)
}

// ErrEnrolFirst is returned when a pending login of a user without a
// factor is offered a code instead of an enrolment.
var ErrEnrolFirst = ciam.Errorf(ciam.Forbidden, "mfa_enrolment_required", "Set up a second factor to finish logging in.")

// errTooManyCodes ends a pending login after maxFactorAttempts codes.
var errTooManyCodes = ciam.Errorf(ciam.TooManyRequests, "too_many_attempts", "Too many codes were tried. Please log in again.")

// throttled refuses an attempt while the account's second-factor throttle
// holds it back.
func (s *Service) throttled(key string) error {
	delay, locked := s.Accounts.Check(key)
	if locked > 0 {
		return tooMany(locked)
	}
	if delay > 0 {
		return tooSoon(delay)
	}
	return nil
}

func (s *Service) completePending(ctx context.Context, t *ciam.Tenant, pl *PendingLogin, p Proof, m audit.Meta) (*Result, error) {
	if pl.Enrol {
		return nil, ErrEnrolFirst
	}
	key := s.factorKey(string(t.ID) + ":" + string(pl.User.ID))
	if err := s.throttled(key); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	if p.Method != MethodPasskey {
		// Counted before the code is compared, and committed on its own,
		// so racing guesses cannot exceed the limit.
		err := s.Store.Write(ctx, t.ID, func(tx store.Tx) error {
			return tx.AuthFlows().Attempt(ctx, pl.flow.ID, maxFactorAttempts, now)
		})
		if errors.Is(err, store.ErrConflict) {
			return nil, errTooManyCodes
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrPendingExpired
		}
		if err != nil {
			return nil, err
		}
	}
	var res *Result
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		pr, err := s.verifyProof(ctx, tx, t, pl.User, p, now)
		if err != nil {
			return err
		}
		if !isSecond(pl.data.AMR, pr) {
			return errSameFactor
		}
		if err := tx.AuthFlows().Consume(ctx, pl.flow.ID, now); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return ErrPendingExpired // completed by a racing request, or expired
			}
			return err
		}
		if pr.recovery {
			if err := s.recoveryUsed(ctx, tx, t, pl.User, m, now); err != nil {
				return err
			}
		}
		amr := withMFA(pl.data.AMR, pr.amr)
		res, err = s.startSession(ctx, tx, t, pl.User, amr, pl.data.Method+"+"+pr.detail["factor"], m, now, pr.detail)
		return err
	})
	if err != nil {
		s.factorFailed(ctx, t, pl.User, key, err, m)
		return nil, err
	}
	s.Accounts.Reset(key)
	return res, nil
}

// factorFailed counts a wrong second factor against the account and
// records it; other errors pass through untouched.
func (s *Service) factorFailed(ctx context.Context, t *ciam.Tenant, u *ciam.User, key string, err error, m audit.Meta) {
	e := ciam.As(err)
	if e == nil || (e.Kind != ciam.Unauthenticated && e.Code != "passkey_verification_required") || e.Code == ErrPendingExpired.Code {
		return
	}
	s.Accounts.Fail(key)
	s.recordFailure(ctx, t, u, m, e.Code)
}

// withMFA is the union of two factors' methods, marked as multi-factor.
func withMFA(first, second []string) []string {
	out := slices.Clone(first)
	for _, x := range append(slices.Clone(second), "mfa") {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// ErrReauthRequired refuses a sensitive change when the session's last
// authentication is older than the tenant's re-authentication window.
var ErrReauthRequired = ciam.Errorf(ciam.Forbidden, "reauthentication_required", "Confirm it is you to make this change.")

// Recent reports whether sess authenticated within t's re-authentication
// window, so a sensitive change may go ahead without asking again.
func (s *Service) Recent(t *ciam.Tenant, sess *ciam.Session) bool {
	return s.Now().Sub(sess.AuthTime) <= t.ReauthWindow()
}

func (s *Service) requireRecent(t *ciam.Tenant, sess *ciam.Session) error {
	if sess == nil || !s.Recent(t, sess) {
		return ErrReauthRequired
	}
	return nil
}

// ErrPasswordWrong is the answer to a wrong password when a signed-in
// person confirms who they are.
var ErrPasswordWrong = ciam.Errorf(ciam.Unauthenticated, "password_incorrect", "The password is not correct.").OnField("password")

// Confirm proves again who is behind the live session sess (token is its
// cookie secret): a password, a TOTP or recovery code, or a passkey. The
// session's authentication time becomes now, its identifier rotates (the
// returned Result carries the new cookie secret) and, when the proof adds a
// second factor, it becomes multi-factor (step-up) without logging out.
func (s *Service) Confirm(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, token string, u *ciam.User, p Proof, m audit.Meta) (*Result, error) {
	key := s.factorKey(string(t.ID) + ":" + string(u.ID))
	if err := s.throttled(key); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var pr *proven
	if p.Method == MethodPassword {
		if err := s.checkPassword(ctx, t, u, p.Password); err != nil {
			s.factorFailed(ctx, t, u, key, err, m)
			return nil, err
		}
		pr = &proven{amr: []string{"pwd"}, detail: map[string]string{"factor": MethodPassword}}
	}
	newToken := ciam.NewSecret()
	var out ciam.Session
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if pr == nil {
			var err error
			if pr, err = s.verifyProof(ctx, tx, t, u, p, now); err != nil {
				return err
			}
		}
		if pr.recovery {
			if err := s.recoveryUsed(ctx, tx, t, u, m, now); err != nil {
				return err
			}
		}
		amr := stepUp(sess.AMR, pr)
		out = *sess
		out.AMR, out.ACR, out.AuthTime = amr, acrOf(amr), now
		if err := tx.Sessions().Reauthenticate(ctx, sess.ID, session.HashToken(token), session.HashToken(newToken), now, amr, out.ACR); err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				return session.ErrNoSession
			}
			return err
		}
		d := map[string]string{"acr": out.ACR}
		for k, v := range pr.detail {
			d[k] = v
		}
		return audit.Record(ctx, tx, now, audit.SessionReauthenticated, string(u.ID), string(sess.ID), ciam.OutcomeSuccess, u, m, "", d)
	})
	if err != nil {
		s.factorFailed(ctx, t, u, key, err, m)
		return nil, err
	}
	s.Accounts.Reset(key)
	out.TokenHash = session.HashToken(newToken)
	return &Result{User: u, Session: &out, Token: newToken}, nil
}

// stepUp is a session's methods after proof pr. A TOTP or recovery code is
// always a second factor (sessions never start with one); a passkey is two
// factors when it verified its user, and a second one after a password or
// mailed code; a password is a second factor after a passkey.
func stepUp(amr []string, pr *proven) []string {
	if isSecond(amr, pr) || multiFactor(amr) {
		return withMFA(amr, pr.amr)
	}
	out := slices.Clone(amr)
	for _, x := range pr.amr {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// isSecond reports whether proof pr is a factor other than the one(s) amr
// records: a TOTP or recovery code always (sessions never start with one);
// a passkey when it verified its user, or after a password or mailed code;
// a password after a passkey.
func isSecond(amr []string, pr *proven) bool {
	hasKey := slices.Contains(amr, "hwk") || slices.Contains(amr, "swk")
	hasOther := slices.Contains(amr, "pwd") || slices.Contains(amr, "otp")
	switch pr.detail["factor"] {
	case MethodTOTP, MethodRecovery:
		return true
	case MethodPasskey:
		return pr.multi || hasOther
	case MethodPassword:
		return hasKey
	}
	return false
}

// PasswordIsSecond reports whether a password would add a second factor
// to session sess (it began with a passkey that did not verify its user).
func PasswordIsSecond(sess *ciam.Session) bool {
	return isSecond(sess.AMR, &proven{detail: map[string]string{"factor": MethodPassword}})
}

// errSameFactor refuses a passkey offered as the second factor of a login
// that began with a passkey, without verifying its user: possession twice
// is one factor.
var errSameFactor = ciam.Errorf(ciam.Unauthenticated, "passkey_verification_required", "This passkey must verify it is you, with a PIN, fingerprint or face. Try again and unlock it when asked.")

// checkPassword verifies u's password; a user without one gets the same
// answer as a wrong one after the same work.
func (s *Service) checkPassword(ctx context.Context, t *ciam.Tenant, u *ciam.User, pw string) error {
	if len(pw) > 4*ciam.PasswordMaxLength {
		pw = pw[:4*ciam.PasswordMaxLength]
	}
	var hash string
	err := s.Store.Read(ctx, t.ID, func(tx store.Tx) error {
		var err error
		hash, err = tx.Passwords().Get(ctx, u.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if hash == "" {
		_ = s.Hasher.DummyVerify(ctx, pw)
		return ErrPasswordWrong
	}
	ok, err := s.Hasher.Verify(ctx, pw, hash)
	if err != nil {
		return fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		return ErrPasswordWrong
	}
	return nil
}

func normalizeRecovery(c string) string {
	c = strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, c))
	if len(c) != recoveryLen {
		return ""
	}
	return c
}

func (s *Service) recoveryHash(user ciam.UserID, code string) []byte {
	mac := hmac.New(sha256.New, keys.Derive(s.KEK, "recovery codes"))
	mac.Write([]byte(string(user) + "\x00" + code))
	return mac.Sum(nil)
}

func totpContext(t ciam.TenantID, u ciam.UserID) string {
	return "totp secret\x00" + string(t) + "\x00" + string(u)
}
