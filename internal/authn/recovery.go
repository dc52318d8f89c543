package authn

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

// findForMail looks up the active account of an address for a mail that
// must not reveal whether the account exists: nil for an unknown, malformed
// or disabled address.
func (s *Service) findForMail(ctx context.Context, t *ciam.Tenant, email string) (*ciam.User, error) {
	norm, err := user.NormalizeEmail(email)
	if err != nil {
		return nil, nil
	}
	var u *ciam.User
	err = s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().ByEmail(ctx, norm)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up account: %w", err)
	}
	if u.Status != ciam.UserActive {
		return nil, nil
	}
	return u, nil
}

// RequestReset sends a password reset link to the address if it belongs to
// an active account, and does the same work and gives the same answer
// otherwise (nil), so the request reveals nothing. Requests beyond the
// resend limits send nothing and also answer nil.
func (s *Service) RequestReset(ctx context.Context, t *ciam.Tenant, email string, m audit.Meta) error {
	if _, err := user.NormalizeEmail(email); err != nil {
		return err // a typo the person should see; says nothing about accounts
	}
	u, err := s.findForMail(ctx, t, email)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	return s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if u == nil {
			return audit.Record(ctx, tx, now, audit.PasswordResetRequested, "", "", ciam.OutcomeFailure, nil, m, "", map[string]string{"reason": "unknown_account"})
		}
		if err := mailAllowed(ctx, tx, u.ID, ciam.PurposePasswordReset, now); err != nil {
			return audit.Record(ctx, tx, now, audit.PasswordResetRequested, string(u.ID), string(u.ID), ciam.OutcomeFailure, u, m, "", map[string]string{"reason": "throttled"})
		}
		in, err := s.issue(ctx, tx, u, ciam.PurposePasswordReset, u.Email, t.ResetTTL(), false, "", "", now)
		if err != nil {
			return err
		}
		err = s.Mailer.Queue(ctx, tx, t, notify.Message{
			Kind: mail.PasswordReset, UserID: u.ID, To: u.Email, Name: u.Name, Locale: u.Locale,
			Path: "/t/" + t.Slug + "/reset", LinkToken: in.linkToken, ExpiresIn: t.ResetTTL(),
		}, now)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.PasswordResetRequested, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "", nil)
	})
}

// CheckReset reports whether a reset link still works, for the page that
// asks for the new password; it changes nothing.
func (s *Service) CheckReset(ctx context.Context, t *ciam.Tenant, linkToken string) error {
	now := s.Now().UTC()
	return s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		_, err := byLink(ctx, tx, ciam.PurposePasswordReset, linkToken, now)
		return err
	})
}

// ResetPassword sets a new password through a reset link. The link is
// consumed, every session of the user ends and every refresh token is
// revoked, other pending reset and login links die, the address counts as
// verified (the mail reached it), and a "password changed" mail is sent.
// It starts no session: the person logs in with the new password, and so
// passes every factor the account has.
func (s *Service) ResetPassword(ctx context.Context, t *ciam.Tenant, linkToken, next string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	r, err := s.checkLink(ctx, t, ciam.PurposePasswordReset, linkToken, m, now)
	if err != nil {
		return nil, err
	}
	if err := s.Policy(next, t.EffectivePasswordMin(), r.user.Email); err != nil {
		if e := ciam.As(err); e != nil {
			return nil, e.OnField("new_password")
		}
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	now = s.Now().UTC()
	u := r.user
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := consume(ctx, tx, r.token, now, ErrLinkInvalid); err != nil {
			return err
		}
		// The user row is read again inside the transaction: it may have
		// changed (an email change) since the link was checked.
		cur, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		u = cur
		if err := tx.Passwords().Set(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if _, err := markVerified(ctx, tx, u, r.token, now); err != nil {
			return err
		}
		ended, err := session.EndAll(ctx, tx, u.ID, "", now)
		if err != nil {
			return err
		}
		if _, err := tx.EmailTokens().Revoke(ctx, u.ID, []string{ciam.PurposePasswordReset, ciam.PurposeLogin}, now); err != nil {
			return err
		}
		if err := s.Mailer.Queue(ctx, tx, t, notify.PasswordChanged(t, u), now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.PasswordReset, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "",
			map[string]string{"sessions_ended": fmt.Sprint(len(ended))})
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposePasswordReset, err, m)
		return nil, err
	}
	return u, nil
}

// Email login methods.
const (
	EmailLink = "link"
	EmailCode = "code"
)

// StartEmailLogin mails a login link or code to the address if it belongs
// to an active account. It answers the same either way: a Binding that the
// caller sets as a cookie, so that only this browser can complete the
// login with the code, and the link completes it here without a question.
func (s *Service) StartEmailLogin(ctx context.Context, t *ciam.Tenant, email, method string, m audit.Meta) (Binding, error) {
	if _, err := user.NormalizeEmail(email); err != nil {
		return Binding{}, err
	}
	if method != EmailLink && method != EmailCode {
		return Binding{}, ciam.Errorf(ciam.Invalid, "method_unknown", "Choose a link or a code.")
	}
	u, err := s.findForMail(ctx, t, email)
	if err != nil {
		return Binding{}, err
	}
	b := newBinding()
	if u == nil {
		return b, nil // a binding to no token: every code is wrong
	}
	now := s.Now().UTC()
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := mailAllowed(ctx, tx, u.ID, ciam.PurposeLogin, now); err != nil {
			return err
		}
		in, err := s.issue(ctx, tx, u, ciam.PurposeLogin, u.Email, t.LoginTTL(), method == EmailCode, b.Secret, method, now)
		if err != nil {
			return err
		}
		b.TokenID = in.token.ID
		msg := notify.Message{
			Kind: mail.MagicLink, UserID: u.ID, To: u.Email, Name: u.Name, Locale: u.Locale,
			Path: "/t/" + t.Slug + "/login/link", LinkToken: in.linkToken, ExpiresIn: t.LoginTTL(),
		}
		if method == EmailCode {
			msg.Kind, msg.Path, msg.LinkToken, msg.Code = mail.LoginCode, "", "", in.code
		}
		if err := s.Mailer.Queue(ctx, tx, t, msg, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.LoginEmailSent, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "", map[string]string{"method": method})
	})
	if err != nil {
		var e *ciam.Error
		if errors.As(err, &e) && e.Code == "mail_throttled" {
			return b, nil // the earlier mail is on its way; say nothing more
		}
		return Binding{}, err
	}
	return b, nil
}

// LinkLogin is a login link that the browser opening it did not request.
type LinkLogin struct {
	Email string // the account's address, for the confirmation question
}

// CompleteEmailLink logs in with a login link. In the browser that asked
// for it (b matches) it starts a session. In any other browser it changes
// nothing and returns ErrOtherBrowser with the account it is for, so the
// page can ask whether to log in here instead (ConfirmEmailLink).
func (s *Service) CompleteEmailLink(ctx context.Context, t *ciam.Tenant, linkToken string, b Binding, m audit.Meta) (*Result, *LinkLogin, error) {
	now := s.Now().UTC()
	r, err := s.checkLink(ctx, t, ciam.PurposeLogin, linkToken, m, now)
	if err != nil {
		return nil, nil, err
	}
	if b.TokenID != r.token.ID || r.token.BrowserHash == nil || subtle.ConstantTimeCompare(r.token.BrowserHash, session.HashToken(b.Secret)) != 1 {
		return nil, &LinkLogin{Email: r.user.Email}, ErrOtherBrowser
	}
	res, err := s.emailSession(ctx, t, r, m, "link")
	return res, nil, err
}

// ConfirmEmailLink logs in with a login link in a browser that did not ask
// for it, after the person confirmed: the session starts here, and the
// browser that asked can no longer use the link.
func (s *Service) ConfirmEmailLink(ctx context.Context, t *ciam.Tenant, linkToken string, m audit.Meta) (*Result, error) {
	now := s.Now().UTC()
	r, err := s.checkLink(ctx, t, ciam.PurposeLogin, linkToken, m, now)
	if err != nil {
		return nil, err
	}
	return s.emailSession(ctx, t, r, m, "link_confirmed")
}

// CompleteEmailCode logs in with a code, in the browser bound to it.
func (s *Service) CompleteEmailCode(ctx context.Context, t *ciam.Tenant, b Binding, code string, m audit.Meta) (*Result, error) {
	now := s.Now().UTC()
	var res *Result
	err := s.redeemCode(ctx, t, ciam.PurposeLogin, nil, b, code, now, func(tx store.Tx, r *redeemed) error {
		var err error
		res, err = s.emailSessionTx(ctx, tx, t, r, m, "code", now)
		return err
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeLogin, err, m)
		return nil, err
	}
	return res, nil
}

func (s *Service) emailSession(ctx context.Context, t *ciam.Tenant, r *redeemed, m audit.Meta, via string) (*Result, error) {
	now := s.Now().UTC()
	var res *Result
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		res, err = s.emailSessionTx(ctx, tx, t, r, m, via, now)
		return err
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeLogin, err, m)
		return nil, err
	}
	return res, nil
}

// EmailAMR is the authentication method of a login by mailed link or code:
// "otp" in RFC 8176's registry, a one-time secret sent out of band. It is
// one factor, never a second one.
var EmailAMR = []string{"otp"}

// emailSessionTx consumes a login token and starts a session, in tx. The
// login proves the mailbox, so the address counts as verified.
func (s *Service) emailSessionTx(ctx context.Context, tx store.Tx, t *ciam.Tenant, r *redeemed, m audit.Meta, via string, now time.Time) (*Result, error) {
	if err := consume(ctx, tx, r.token, now, ErrLinkInvalid); err != nil {
		return nil, err
	}
	u := r.user
	if _, err := markVerified(ctx, tx, u, r.token, now); err != nil {
		return nil, err
	}
	return s.establish(ctx, tx, t, u, EmailAMR, "email_"+r.token.Data, m, now, map[string]string{"via": via})
}

// ErrEmailUnchanged refuses an email change to the current address.
var ErrEmailUnchanged = ciam.Errorf(ciam.Invalid, "email_unchanged", "This is your current email address already.").OnField("new_email")

// RequestEmailChange mails a confirmation link to a new address, after the
// current password (for a user without one, the caller checks that the
// session authenticated recently). Nothing changes until the link is followed. Whether
// the new address belongs to another account is not told here (only at
// confirmation, to whoever controls that mailbox).
func (s *Service) RequestEmailChange(ctx context.Context, t *ciam.Tenant, u *ciam.User, password, newEmail string, m audit.Meta) error {
	norm, err := user.NormalizeEmail(newEmail)
	if err != nil {
		return ciam.As(err).OnField("new_email")
	}
	if norm == u.Email {
		return ErrEmailUnchanged
	}
	var hash string
	err = s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		hash, err = tx.Passwords().Get(ctx, u.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ok := hash == "" && password == ""
	if hash != "" {
		if ok, err = s.Hasher.Verify(ctx, password, hash); err != nil {
			return err
		}
	}
	if !ok {
		return user.ErrWrongPassword
	}
	now := s.Now().UTC()
	return s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := mailAllowed(ctx, tx, u.ID, ciam.PurposeEmailChange, now); err != nil {
			return err
		}
		in, err := s.issue(ctx, tx, u, ciam.PurposeEmailChange, norm, t.VerifyTTL(), false, "", u.Email, now)
		if err != nil {
			return err
		}
		err = s.Mailer.Queue(ctx, tx, t, notify.Message{
			Kind: mail.EmailChangeConfirm, UserID: u.ID, To: norm, Name: u.Name, Locale: u.Locale,
			Path: "/t/" + t.Slug + "/email/confirm", LinkToken: in.linkToken, ExpiresIn: t.VerifyTTL(),
		}, now)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.EmailChangeRequested, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, norm, nil)
	})
}

// ConfirmEmailChange applies an email change through the link mailed to
// the new address. The old address is told, with a link that undoes the
// change for ciam.EmailChangeUndoTTL; links sent to the old address before
// (reset, login) die.
func (s *Service) ConfirmEmailChange(ctx context.Context, t *ciam.Tenant, linkToken string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	var u *ciam.User
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var old string
		var err error
		if u, old, err = swapEmail(ctx, tx, ciam.PurposeEmailChange, linkToken, now); err != nil {
			return err
		}
		if _, err := tx.EmailTokens().Revoke(ctx, u.ID, []string{ciam.PurposePasswordReset, ciam.PurposeLogin, ciam.PurposeVerifyEmail}, now); err != nil {
			return err
		}
		undo := &ciam.User{ID: u.ID}
		in, err := s.issue(ctx, tx, undo, ciam.PurposeEmailChangeUndo, old, ciam.EmailChangeUndoTTL, false, "", u.Email, now)
		if err != nil {
			return err
		}
		err = s.Mailer.Queue(ctx, tx, t, notify.Message{
			Kind: mail.EmailChangeNotice, UserID: u.ID, To: old, Name: u.Name, Locale: u.Locale,
			Path: "/t/" + t.Slug + "/email/undo", LinkToken: in.linkToken, ExpiresIn: ciam.EmailChangeUndoTTL, NewEmail: u.Email,
		}, now)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.EmailChanged, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, u.Email, nil)
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeEmailChange, err, m)
		return nil, err
	}
	return u, nil
}

// UndoEmailChange restores the old address through the link mailed to it.
// Someone else may have made the change, so every session ends, every
// refresh token is revoked and pending links die; the owner then resets
// the password from the restored address.
func (s *Service) UndoEmailChange(ctx context.Context, t *ciam.Tenant, linkToken string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	var u *ciam.User
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		if u, _, err = swapEmail(ctx, tx, ciam.PurposeEmailChangeUndo, linkToken, now); err != nil {
			return err
		}
		ended, err := session.EndAll(ctx, tx, u.ID, "", now)
		if err != nil {
			return err
		}
		if _, err := tx.EmailTokens().Revoke(ctx, u.ID, []string{ciam.PurposePasswordReset, ciam.PurposeLogin, ciam.PurposeVerifyEmail, ciam.PurposeEmailChange}, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.EmailChangeUndone, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, u.Email,
			map[string]string{"sessions_ended": fmt.Sprint(len(ended))})
	})
	if err != nil {
		s.refused(ctx, t, ciam.PurposeEmailChangeUndo, err, m)
		return nil, err
	}
	return u, nil
}

// swapEmail redeems an email change (or undo) link in tx and moves the
// user from the token's Data address to the token's Email address, which
// becomes verified. The link is refused when the user's address is no
// longer the one the change started from (changed again since, another way).
func swapEmail(ctx context.Context, tx store.Tx, purpose, linkToken string, now time.Time) (*ciam.User, string, error) {
	r, err := byLink(ctx, tx, purpose, linkToken, now)
	if err != nil {
		return nil, "", err
	}
	if err := consume(ctx, tx, r.token, now, ErrLinkInvalid); err != nil {
		return nil, "", err
	}
	u, old := r.user, r.user.Email
	if old != r.token.Data {
		return nil, "", ErrLinkInvalid
	}
	u.Email, u.EmailVerified, u.UpdatedAt = r.token.Email, true, now
	if err := tx.Users().Update(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, "", user.ErrEmailTaken
		}
		return nil, "", err
	}
	return u, old, nil
}

// checkLink finds the live token of purpose behind a link without using
// it, auditing a link that does not work.
func (s *Service) checkLink(ctx context.Context, t *ciam.Tenant, purpose, linkToken string, m audit.Meta, now time.Time) (*redeemed, error) {
	var r *redeemed
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		r, err = byLink(ctx, tx, purpose, linkToken, now)
		return err
	})
	if err != nil {
		s.refused(ctx, t, purpose, err, m)
		return nil, err
	}
	return r, nil
}
