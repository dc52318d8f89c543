package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Mailer queues mail in a transaction (see package notify).
type Mailer interface {
	Queue(ctx context.Context, tx store.Tx, t *ciam.Tenant, msg notify.Message, now time.Time) error
}

// Limits of the mail-driven flows.
const (
	// MaxCodeAttempts is how many codes may be tried against one mailed code.
	MaxCodeAttempts = 5
	// ResendInterval is the least time between two mails of one purpose to
	// one user, and MaxMailsPerHour the most of one purpose in an hour.
	ResendInterval  = time.Minute
	MaxMailsPerHour = 5
)

// Errors of the mail-driven flows. Each has a stable code.
var (
	ErrLinkInvalid = ciam.Errorf(ciam.Invalid, "link_invalid",
		"This link is not valid any more: it was used already, a newer one was sent, or it expired. Ask for a new one.")
	ErrCodeInvalid = ciam.Errorf(ciam.Invalid, "code_invalid", "The code is not correct. Check the latest mail and try again.").OnField("code")
	ErrCodeSpent   = ciam.Errorf(ciam.Invalid, "code_expired",
		"This code cannot be used any more: it expired, was used, or was entered wrongly too often. Ask for a new one.").OnField("code")
	ErrOtherBrowser = ciam.Errorf(ciam.Conflict, "other_browser",
		"This link was requested in another browser. Confirm to log in here instead, or start again.")
	ErrAlreadyVerified = ciam.Errorf(ciam.Conflict, "already_verified", "Your email address is verified already.")
)

// tooManyMails refuses a mail asked for too soon after the last one.
func tooManyMails(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	return &ciam.Error{Kind: ciam.TooManyRequests, Code: "mail_throttled",
		Msg:        fmt.Sprintf("We sent you a mail a moment ago. Check your inbox, or ask again in %d second%s.", secs, plural(secs)),
		RetryAfter: secs}
}

// codeHash keys a six-digit code to its token under the deployment's code
// key, so a database reader cannot test the million candidates offline.
func (s *Service) codeHash(tokenID, code string) []byte {
	m := hmac.New(sha256.New, s.CodeKey)
	m.Write([]byte(tokenID + "\x00" + code))
	return m.Sum(nil)
}

func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// normalizeCode keeps the digits of what a person typed ("123 456" works).
func normalizeCode(c string) string {
	var b strings.Builder
	for _, r := range c {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// issued is a freshly stored token and its secrets (never stored in clear).
type issued struct {
	token     *ciam.EmailToken
	linkToken string
	code      string
}

// issue stores a new token of purpose for u (superseding older ones).
func (s *Service) issue(ctx context.Context, tx store.Tx, u *ciam.User, purpose, email string, ttl time.Duration, withCode bool, binding, data string, now time.Time) (*issued, error) {
	in := &issued{linkToken: ciam.NewSecret()}
	et := &ciam.EmailToken{
		ID: ciam.NewID(), UserID: u.ID, Purpose: purpose, Email: email,
		LinkHash: session.HashToken(in.linkToken), Data: data,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if withCode {
		in.code = newCode()
		et.CodeHash = s.codeHash(et.ID, in.code)
	}
	if binding != "" {
		et.BrowserHash = session.HashToken(binding)
	}
	if err := tx.EmailTokens().Create(ctx, et); err != nil {
		return nil, fmt.Errorf("issue %s token: %w", purpose, err)
	}
	in.token = et
	return in, nil
}

// mailAllowed applies the resend limits of purpose for u: at most one mail
// per ResendInterval and MaxMailsPerHour an hour. It reads the database,
// so the limits hold across server processes.
func mailAllowed(ctx context.Context, tx store.Tx, u ciam.UserID, purpose string, now time.Time) error {
	last, err := tx.EmailTokens().Latest(ctx, u, purpose)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if wait := last.CreatedAt.Add(ResendInterval).Sub(now); wait > 0 {
		return tooManyMails(wait)
	}
	n, err := tx.EmailTokens().CountSince(ctx, u, purpose, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	if n >= MaxMailsPerHour {
		return tooManyMails(time.Hour / MaxMailsPerHour)
	}
	return nil
}

// Binding is the cookie value that ties a mailed login or verification to
// the browser that asked for it: the token id and a secret whose hash the
// token keeps.
type Binding struct {
	TokenID string
	Secret  string
}

// String is the cookie value.
func (b Binding) String() string { return b.TokenID + "." + b.Secret }

// ParseBinding reads a cookie value; the zero Binding when it is malformed.
func ParseBinding(v string) Binding {
	id, secret, ok := strings.Cut(v, ".")
	if !ok || id == "" || secret == "" || len(v) > 200 {
		return Binding{}
	}
	return Binding{TokenID: id, Secret: secret}
}

func newBinding() Binding { return Binding{TokenID: ciam.NewID(), Secret: ciam.NewSecret()} }

// queueVerification issues a verification link and code for u's address
// and queues the mail, in tx.
func (s *Service) queueVerification(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, binding string, m audit.Meta, now time.Time) (*issued, error) {
	in, err := s.issue(ctx, tx, u, ciam.PurposeVerifyEmail, u.Email, t.VerifyTTL(), true, binding, "", now)
	if err != nil {
		return nil, err
	}
	err = s.Mailer.Queue(ctx, tx, t, notify.Message{
		Kind: mail.VerifyEmail, UserID: u.ID, To: u.Email, Name: u.Name, Locale: u.Locale,
		Path: "/t/" + t.Slug + "/verify", LinkToken: in.linkToken, Code: in.code, ExpiresIn: t.VerifyTTL(),
	}, now)
	if err != nil {
		return nil, err
	}
	return in, audit.Record(ctx, tx, now, audit.EmailVerificationSent, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "", nil)
}

// ResendVerification sends u a new verification link and code, within the
// resend limits. binding, when set, ties the code to this browser.
func (s *Service) ResendVerification(ctx context.Context, t *ciam.Tenant, u *ciam.User, m audit.Meta) (Binding, error) {
	if u.EmailVerified {
		return Binding{}, ErrAlreadyVerified
	}
	b := newBinding()
	now := s.Now().UTC()
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := mailAllowed(ctx, tx, u.ID, ciam.PurposeVerifyEmail, now); err != nil {
			return err
		}
		in, err := s.queueVerification(ctx, tx, t, u, b.Secret, m, now)
		if err != nil {
			return err
		}
		b.TokenID = in.token.ID
		return nil
	})
	if err != nil {
		return Binding{}, err
	}
	return b, nil
}

// markVerified sets u's email verified when the token went to u's current
// address, in tx; it reports whether it changed anything.
func markVerified(ctx context.Context, tx store.Tx, u *ciam.User, et *ciam.EmailToken, now time.Time) (bool, error) {
	if u.EmailVerified || !strings.EqualFold(et.Email, u.Email) {
		return false, nil
	}
	u.EmailVerified, u.UpdatedAt = true, now
	if err := tx.Users().Update(ctx, u); err != nil {
		return false, err
	}
	return true, nil
}

// redeemed is a token taken in a transaction, with its user.
type redeemed struct {
	token *ciam.EmailToken
	user  *ciam.User
}

// byLink finds the live token of purpose behind a link secret, with its
// active user. Every failure is ErrLinkInvalid, so a link reveals nothing
// but that it does not work.
func byLink(ctx context.Context, tx store.Tx, purpose, linkToken string, now time.Time) (*redeemed, error) {
	if linkToken == "" || len(linkToken) > 200 {
		return nil, ErrLinkInvalid
	}
	et, err := tx.EmailTokens().ByLinkHash(ctx, session.HashToken(linkToken))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrLinkInvalid
	}
	if err != nil {
		return nil, err
	}
	if et.Purpose != purpose || !et.Live(now) {
		return nil, ErrLinkInvalid
	}
	u, err := tx.Users().Get(ctx, et.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrLinkInvalid
	}
	if err != nil {
		return nil, err
	}
	if u.Status != ciam.UserActive {
		return nil, ErrDisabled
	}
	return &redeemed{token: et, user: u}, nil
}

// consume ends a token; a racing redeemer that won first makes it invalid.
func consume(ctx context.Context, tx store.Tx, et *ciam.EmailToken, now time.Time, invalid error) error {
	err := tx.EmailTokens().Consume(ctx, et.ID, now)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return invalid
	}
	return err
}

// VerifyLink confirms the address a verification link was sent to.
func (s *Service) VerifyLink(ctx context.Context, t *ciam.Tenant, linkToken string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	var u *ciam.User
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		r, err := byLink(ctx, tx, ciam.PurposeVerifyEmail, linkToken, now)
		if err != nil {
			return err
		}
		return s.finishVerify(ctx, tx, r, m, now, "link", &u)
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeVerifyEmail, err, m)
		return nil, err
	}
	return u, nil
}

func (s *Service) finishVerify(ctx context.Context, tx store.Tx, r *redeemed, m audit.Meta, now time.Time, via string, out **ciam.User) error {
	if err := consume(ctx, tx, r.token, now, ErrLinkInvalid); err != nil {
		return err
	}
	if !strings.EqualFold(r.token.Email, r.user.Email) {
		return ErrLinkInvalid // the address changed since the mail went out
	}
	if _, err := markVerified(ctx, tx, r.user, r.token, now); err != nil {
		return err
	}
	*out = r.user
	return audit.Record(ctx, tx, now, audit.EmailVerified, string(r.user.ID), string(r.user.ID), ciam.OutcomeSuccess, r.user, m, "", map[string]string{"via": via})
}

// VerifyCode confirms u's address with the code from the mail. The user is
// the session's, or (before a first login) found through the browser's
// binding to the token.
func (s *Service) VerifyCode(ctx context.Context, t *ciam.Tenant, u *ciam.User, b Binding, code string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	var out *ciam.User
	err := s.redeemCode(ctx, t, ciam.PurposeVerifyEmail, u, b, code, now, func(tx store.Tx, r *redeemed) error {
		return s.finishVerify(ctx, tx, r, m, now, "code", &out)
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeVerifyEmail, err, m)
		return nil, err
	}
	return out, nil
}

// redeemCode checks a code against the user's latest token of purpose (u
// set) or the token the browser is bound to (u nil), counting the attempt
// first, and runs finish in the same transaction once it matches.
func (s *Service) redeemCode(ctx context.Context, t *ciam.Tenant, purpose string, u *ciam.User, b Binding, code string, now time.Time, finish func(tx store.Tx, r *redeemed) error) error {
	code = normalizeCode(code)
	if len(code) != 6 {
		return ciam.Errorf(ciam.Invalid, "code_malformed", "Enter the six digits from the mail.").OnField("code")
	}
	// The attempt is counted in a transaction of its own, so it sticks
	// whatever the comparison gives.
	var et *ciam.EmailToken
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		switch {
		case u != nil:
			et, err = tx.EmailTokens().Latest(ctx, u.ID, purpose)
		case b.TokenID != "":
			et, err = tx.EmailTokens().Get(ctx, b.TokenID)
			if err == nil && (et.BrowserHash == nil || subtle.ConstantTimeCompare(et.BrowserHash, session.HashToken(b.Secret)) != 1) {
				err = store.ErrNotFound
			}
		default:
			err = store.ErrNotFound
		}
		if errors.Is(err, store.ErrNotFound) {
			return ErrCodeSpent
		}
		if err != nil {
			return err
		}
		if et.Purpose != purpose || et.CodeHash == nil {
			return ErrCodeSpent
		}
		err = tx.EmailTokens().Attempt(ctx, et.ID, MaxCodeAttempts, now)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return ErrCodeSpent
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hmac.Equal(et.CodeHash, s.codeHash(et.ID, code)) {
		if et.Attempts+1 >= MaxCodeAttempts {
			return ErrCodeSpent
		}
		return ErrCodeInvalid
	}
	return s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		usr, err := tx.Users().Get(ctx, et.UserID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrCodeSpent
			}
			return err
		}
		if usr.Status != ciam.UserActive {
			return ErrDisabled
		}
		return finish(tx, &redeemed{token: et, user: usr})
	})
}

// refused audits a mail token that did not work (not the ordinary
// mistyped code: that is the person's to retry).
func (s *Service) refused(ctx context.Context, t *ciam.Tenant, purpose string, err error, m audit.Meta) {
	e := ciam.As(err)
	if e == nil || e.Code == "code_invalid" || e.Code == "code_malformed" || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable {
		return
	}
	rerr := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		return audit.Record(ctx, tx, s.Now().UTC(), audit.EmailTokenRefused, "", "", ciam.OutcomeFailure, nil, m, "",
			map[string]string{"purpose": purpose, "reason": e.Code})
	})
	if rerr != nil && s.Log != nil {
		s.Log.ErrorContext(ctx, "record refused mail token", "err", rerr, "tenant", t.Slug)
	}
}

// BoundUser returns the active user of the live token of purpose that the
// browser's binding names; ErrCodeSpent when there is none.
func (s *Service) BoundUser(ctx context.Context, t *ciam.Tenant, b Binding, purpose string) (*ciam.User, error) {
	if b.TokenID == "" {
		return nil, ErrCodeSpent
	}
	var u *ciam.User
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		et, err := tx.EmailTokens().Get(ctx, b.TokenID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrCodeSpent
		}
		if err != nil {
			return err
		}
		if et.Purpose != purpose || et.BrowserHash == nil || subtle.ConstantTimeCompare(et.BrowserHash, session.HashToken(b.Secret)) != 1 {
			return ErrCodeSpent
		}
		u, err = tx.Users().Get(ctx, et.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrCodeSpent
		}
		if err == nil && u.Status != ciam.UserActive {
			return ErrDisabled
		}
		return err
	})
	return u, err
}
