// Package authn runs sign-up and login: it checks credentials, throttles
// failed attempts per account and per source address, and starts the
// session, writing the user, the session and the audit event in one
// transaction. One subpackage per authentication method (password, ...)
// holds the method's own rules. It does not serve HTTP.
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/passkey"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

// Hasher is the password hashing the flows need.
type Hasher interface {
	user.Hasher
	// DummyVerify costs what Verify costs, for accounts that do not exist.
	DummyVerify(ctx context.Context, pw string) error
}

// Throttle counts failed attempts per key (see package throttle).
type Throttle interface {
	Check(key string) (delay, locked time.Duration)
	Fail(key string)
	Reset(key string)
}

// Login outcomes reported to OnLogin, for metrics.
const (
	OutcomeOK        = "success"
	OutcomeBad       = "invalid_credentials"
	OutcomeDisabled  = "disabled"
	OutcomeThrottled = "throttled"
	OutcomeError     = "error"
)

// Service runs the flows.
type Service struct {
	Store    store.Store
	Hasher   Hasher
	Policy   user.PolicyFunc
	Sessions *session.Manager
	Accounts Throttle // keyed per tenant and email
	Sources  Throttle // keyed per tenant and client IP
	Now      func() time.Time
	Log      *slog.Logger
	OnLogin  func(outcome string)
	// Mailer queues the mail of sign-up, recovery and email login.
	Mailer Mailer
	// CodeKey keys the hashes of mailed six-digit codes (32 bytes, derived
	// from the key-encryption key).
	CodeKey []byte
	// KEK is the key-encryption key: TOTP secrets and passkey ceremony
	// states are sealed under it, recovery codes hashed under a key derived
	// from it.
	KEK []byte
	// Passkeys builds each tenant's WebAuthn relying party.
	Passkeys *passkey.Cache
}

// Result is a started session.
type Result struct {
	User    *ciam.User
	Session *ciam.Session // nil when sign-up waits for the address to be verified
	Token   string        // the cookie secret
	// Verify binds the verification code mailed at sign-up to this browser,
	// for tenants that require a verified address before the first login.
	Verify Binding
	// Pending binds a login that waits for its second factor to this
	// browser (Session is nil); Enrol says the user must add one first.
	Pending Binding
	Enrol   bool
}

// SignUpInput is what a person enters to create an account.
type SignUpInput struct {
	Email    string
	Password string
	Name     string
	Locale   string
}

// ErrSignupClosed is returned when a tenant does not accept sign-ups.
var ErrSignupClosed = ciam.Errorf(ciam.Forbidden, "signup_closed", "This service does not accept new sign-ups. Ask its operator for an account.")

// SignUp creates a password account, queues the mail that verifies its
// address, and logs it in unless the tenant requires a verified address
// first: the user, the password, the mail, the session and the audit event
// commit together or not at all.
func (s *Service) SignUp(ctx context.Context, t *ciam.Tenant, in SignUpInput, m audit.Meta) (*Result, error) {
	if !t.SignupOpen {
		return nil, ErrSignupClosed
	}
	now := s.Now().UTC()
	u, err := user.New(t, in.Email, in.Name, in.Locale, now)
	if err != nil {
		return nil, err
	}
	if err := s.Policy(in.Password, t.EffectivePasswordMin(), u.Email); err != nil {
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	res := &Result{User: u}
	binding := newBinding()
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		if err := tx.Passwords().Set(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.UserSignup, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, u.Email, map[string]string{"method": "password"}); err != nil {
			return err
		}
		in, err := s.queueVerification(ctx, tx, t, u, binding.Secret, m, now)
		if err != nil {
			return err
		}
		binding.TokenID = in.token.ID
		if t.RequireVerifiedEmail {
			return nil // the first login waits for the address
		}
		// A tenant that requires a second factor has the new user add one
		// before the session starts.
		r, err := s.establish(ctx, tx, t, u, []string{"pwd"}, "password", m, now, nil)
		if err != nil {
			return err
		}
		res.Session, res.Token, res.Pending, res.Enrol = r.Session, r.Token, r.Pending, r.Enrol
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, user.ErrEmailTaken
	}
	if err != nil {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	res.Verify = binding
	return res, nil
}

// ErrInvalidCredentials is the one answer for an unknown email and a wrong password.
var ErrInvalidCredentials = ciam.Errorf(ciam.Unauthenticated, "invalid_credentials", "The email address or password is not correct.")

// ErrDisabled is returned, after a correct password, for a disabled account.
var ErrDisabled = ciam.Errorf(ciam.Forbidden, "account_disabled", "This account is disabled. Contact the service's support to restore it.")

// ErrEmailNotVerified is returned when the tenant requires a verified email first.
var ErrEmailNotVerified = ciam.Errorf(ciam.Forbidden, "email_not_verified", "Verify your email address before you log in: follow the link we sent you.")

func tooMany(locked time.Duration) error {
	mins := int((locked + time.Minute - 1) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return &ciam.Error{Kind: ciam.TooManyRequests, Code: "too_many_attempts",
		Msg:        fmt.Sprintf("Too many failed attempts. Try again in %d minute%s.", mins, plural(mins)),
		RetryAfter: int(locked / time.Second)}
}

// tooSoon refuses an attempt that comes before the progressive delay after
// the last failures has passed.
func tooSoon(delay time.Duration) error {
	secs := int((delay + time.Second - 1) / time.Second)
	return &ciam.Error{Kind: ciam.TooManyRequests, Code: "attempts_delayed",
		Msg:        fmt.Sprintf("Too many failed attempts. Wait %d second%s, then try again.", secs, plural(secs)),
		RetryAfter: secs}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Login checks an email and password and starts a session. An unknown email
// and a wrong password give the same error after the same work.
func (s *Service) Login(ctx context.Context, t *ciam.Tenant, email, pw string, m audit.Meta) (res *Result, err error) {
	outcome := OutcomeError
	defer func() {
		if s.OnLogin != nil {
			s.OnLogin(outcome)
		}
	}()
	norm, nerr := user.NormalizeEmail(email)
	if nerr != nil {
		norm = "invalid:" + email
	}
	acctKey := "acct:" + string(t.ID) + ":" + norm
	srcKey := "ip:" + string(t.ID) + ":" + m.IP
	delay, locked := s.Accounts.Check(acctKey)
	if d2, l2 := s.Sources.Check(srcKey); l2 > locked || d2 > delay {
		delay, locked = max(delay, d2), max(locked, l2)
	}
	if locked > 0 {
		outcome = OutcomeThrottled
		s.recordFailure(ctx, t, nil, m, "throttled")
		return nil, tooMany(locked)
	}
	if delay > 0 {
		outcome = OutcomeThrottled
		return nil, tooSoon(delay)
	}
	if len(pw) > 4*ciam.PasswordMaxLength {
		pw = pw[:4*ciam.PasswordMaxLength] // never verifies; bounds the hashing work
	}

	var u *ciam.User
	var hash string
	if nerr == nil {
		err = s.Store.View(ctx, t.ID, func(tx store.Tx) error {
			var err error
			if u, err = tx.Users().ByEmail(ctx, norm); err != nil {
				return err
			}
			hash, err = tx.Passwords().Get(ctx, u.ID)
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("load account: %w", err)
		}
	}
	ok := false
	if hash != "" {
		if ok, err = s.Hasher.Verify(ctx, pw, hash); err != nil {
			return nil, fmt.Errorf("verify password: %w", err)
		}
	} else {
		if err := s.Hasher.DummyVerify(ctx, pw); err != nil {
			return nil, fmt.Errorf("verify password: %w", err)
		}
	}
	if !ok {
		s.Accounts.Fail(acctKey)
		s.Sources.Fail(srcKey)
		outcome = OutcomeBad
		if hash == "" {
			u = nil
		}
		s.recordFailure(ctx, t, u, m, "invalid_credentials")
		return nil, ErrInvalidCredentials
	}
	if u.Status != ciam.UserActive {
		outcome = OutcomeDisabled
		s.recordFailure(ctx, t, u, m, "disabled")
		return nil, ErrDisabled
	}
	if t.RequireVerifiedEmail && !u.EmailVerified {
		outcome = OutcomeBad
		s.recordFailure(ctx, t, u, m, "email_not_verified")
		// The password was right: send a fresh link and code (within the
		// resend limits) and bind the code to this browser.
		b, err := s.ResendVerification(ctx, t, u, m)
		if err != nil && ciam.KindOf(err) != ciam.TooManyRequests {
			return nil, err
		}
		return &Result{User: u, Verify: b}, ErrEmailNotVerified
	}
	s.Accounts.Reset(acctKey)

	now := s.Now().UTC()
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		res, err = s.establish(ctx, tx, t, u, []string{"pwd"}, "password", m, now, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	outcome = OutcomeOK
	return res, nil
}

// recordFailure appends a login.failure event. A failure to record is logged,
// not returned: the person still gets the answer to their attempt.
func (s *Service) recordFailure(ctx context.Context, t *ciam.Tenant, u *ciam.User, m audit.Meta, reason string) {
	target := ""
	if u != nil {
		target = string(u.ID)
	}
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		return audit.Record(ctx, tx, s.Now().UTC(), audit.LoginFailed, "", target, ciam.OutcomeFailure, u, m, "", map[string]string{"reason": reason})
	})
	if err != nil && s.Log != nil {
		s.Log.ErrorContext(ctx, "record login failure", "err", err, "tenant", t.Slug)
	}
}
