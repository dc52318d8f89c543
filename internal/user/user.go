// Package user owns the user lifecycle in a tenant: creation by an operator,
// profile changes, password changes, disabling and enabling, and the rules an
// email address and a name must follow. Sign-up and login, which also start
// sessions, live in package authn.
package user

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"golang.org/x/text/unicode/norm"
)

// Hasher hashes and verifies passwords (package password implements it).
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	Verify(ctx context.Context, pw, phc string) (bool, error)
}

// PolicyFunc checks a new password against a minimum length and the user's
// own identifiers, returning a *ciam.Error the user can act on.
type PolicyFunc func(pw string, minLen int, identifiers ...string) error

// Service changes users.
type Service struct {
	Store  store.Store
	Hasher Hasher
	Policy PolicyFunc
	Now    func() time.Time
	// Mailer queues the "your password was changed" notice; nil sends none.
	Mailer interface {
		Queue(ctx context.Context, tx store.Tx, t *ciam.Tenant, msg notify.Message, now time.Time) error
	}
}

// NormalizeEmail validates an email address and returns the form it is
// stored and compared in: NFKC, trimmed, lower-case.
func NormalizeEmail(s string) (string, error) {
	bad := ciam.Errorf(ciam.Invalid, "invalid_email", "Enter an email address like name@example.com.").OnField("email")
	if !utf8.ValidString(s) || len(s) > 1024 {
		return "", bad
	}
	e := strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
	if e == "" || len(e) > 254 {
		return "", bad
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", bad
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || at == len(e)-1 || !strings.Contains(e[at+1:], ".") || strings.HasSuffix(e, ".") {
		return "", bad
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", bad
		}
	}
	return e, nil
}

// CleanName trims a display name and checks its length (empty is allowed).
func CleanName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ciam.Errorf(ciam.Invalid, "invalid_name", "The name contains characters that are not allowed.").OnField("name")
	}
	n := strings.TrimSpace(norm.NFC.String(s))
	if len([]rune(n)) > 200 {
		return "", ciam.Errorf(ciam.Invalid, "name_too_long", "Use at most 200 characters for your name.").OnField("name")
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", ciam.Errorf(ciam.Invalid, "invalid_name", "The name contains characters that are not allowed.").OnField("name")
		}
	}
	return n, nil
}

// CleanLocale keeps a short BCP 47-looking tag, or nothing.
func CleanLocale(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 35 {
		return ""
	}
	for _, r := range s {
		if !(r == '-' || r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return ""
		}
	}
	return s
}

// New builds an active user; the caller stores it.
func New(t *ciam.Tenant, email, name, locale string, now time.Time) (*ciam.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	n, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	return &ciam.User{
		ID: ciam.UserID(ciam.NewID()), TenantID: t.ID, Email: e, Name: n, Locale: CleanLocale(locale),
		Status: ciam.UserActive, CreatedAt: now, UpdatedAt: now, PIIKey: audit.NewPIIKey(),
	}, nil
}

// ErrEmailTaken is returned when an email is already in use in the tenant.
var ErrEmailTaken = ciam.Errorf(ciam.Conflict, "email_taken", "An account with this email address exists already. Log in instead, or use another address.").OnField("email")

// Input describes a user an operator creates.
type Input struct {
	Email         string
	Name          string
	Locale        string
	Password      string // optional
	EmailVerified bool
}

// Create adds a user (with a password when given) on an operator's behalf.
func (s *Service) Create(ctx context.Context, t *ciam.Tenant, in Input, actor string, m audit.Meta) (*ciam.User, error) {
	now := s.Now().UTC()
	u, err := New(t, in.Email, in.Name, in.Locale, now)
	if err != nil {
		return nil, err
	}
	u.EmailVerified = in.EmailVerified
	var hash string
	if in.Password != "" {
		if err := s.Policy(in.Password, t.EffectivePasswordMin(), u.Email); err != nil {
			return nil, err
		}
		if hash, err = s.Hasher.Hash(ctx, in.Password); err != nil {
			return nil, err
		}
	}
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		if hash != "" {
			if err := tx.Passwords().Set(ctx, u.ID, hash, now); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, now, audit.UserCreated, actor, string(u.ID), ciam.OutcomeSuccess, u, m, u.Email, nil)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, ErrEmailTaken
	}
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Get returns a user; an unknown id is a NotFound error.
func (s *Service) Get(ctx context.Context, t *ciam.Tenant, id ciam.UserID) (*ciam.User, error) {
	var u *ciam.User
	err := s.Store.Read(ctx, t.ID, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().Get(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ciam.Errorf(ciam.NotFound, "user_not_found", "There is no such user.")
	}
	return u, err
}

// ByEmail finds a user by email address.
func (s *Service) ByEmail(ctx context.Context, t *ciam.Tenant, email string) (*ciam.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	var u *ciam.User
	err = s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().ByEmail(ctx, e)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ciam.Errorf(ciam.NotFound, "user_not_found", "There is no user with that email address.")
	}
	return u, err
}

// List pages through the tenant's users.
func (s *Service) List(ctx context.Context, t *ciam.Tenant, f store.UserFilter) ([]*ciam.User, error) {
	var out []*ciam.User
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		out, err = tx.Users().List(ctx, f)
		return err
	})
	return out, err
}

// update loads the user, applies change and stores it with an audit event.
func (s *Service) update(ctx context.Context, t *ciam.Tenant, id ciam.UserID, typ, actor string, m audit.Meta, change func(tx store.Tx, u *ciam.User) error) (*ciam.User, error) {
	now := s.Now().UTC()
	var out *ciam.User
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, id)
		if err != nil {
			return err
		}
		if err := change(tx, u); err != nil {
			return err
		}
		u.UpdatedAt = now
		if err := tx.Users().Update(ctx, u); err != nil {
			return err
		}
		out = u
		return audit.Record(ctx, tx, now, typ, actor, string(u.ID), ciam.OutcomeSuccess, u, m, "", nil)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ciam.Errorf(ciam.NotFound, "user_not_found", "There is no such user.")
	case errors.Is(err, store.ErrConflict):
		return nil, ciam.Errorf(ciam.Conflict, "user_changed", "The account was changed at the same time; reload and try again.")
	}
	return out, err
}

// SetName changes the user's display name.
func (s *Service) SetName(ctx context.Context, t *ciam.Tenant, id ciam.UserID, name, actor string, m audit.Meta) (*ciam.User, error) {
	n, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, t, id, audit.UserUpdated, actor, m, func(_ store.Tx, u *ciam.User) error {
		u.Name = n
		return nil
	})
}

// SetStatus disables or enables a user. Disabling ends every session and
// revokes every refresh token of the user.
func (s *Service) SetStatus(ctx context.Context, t *ciam.Tenant, id ciam.UserID, st ciam.UserStatus, actor string, m audit.Meta) (*ciam.User, error) {
	typ := audit.UserEnabled
	if st == ciam.UserDisabled {
		typ = audit.UserDisabled
	} else if st != ciam.UserActive {
		return nil, ciam.Errorf(ciam.Invalid, "invalid_status", "A user's status is active or disabled.")
	}
	return s.update(ctx, t, id, typ, actor, m, func(tx store.Tx, u *ciam.User) error {
		u.Status = st
		if st == ciam.UserDisabled {
			// Disabling ends every session and every refresh token, so
			// enabling the user later does not bring old tokens back.
			_, err := session.EndAll(ctx, tx, u.ID, "", s.Now().UTC())
			return err
		}
		return nil
	})
}

// ErrWrongPassword is returned when the current password given to confirm a change is wrong.
var ErrWrongPassword = ciam.Errorf(ciam.Invalid, "wrong_current_password", "Your current password is not correct.").OnField("current_password")

// ChangePassword replaces the user's password after checking the current one,
// and ends the user's other sessions (keep stays). A user without a password
// (signed up with a passkey) sets one with current empty: the caller must
// have checked that the session authenticated recently.
func (s *Service) ChangePassword(ctx context.Context, t *ciam.Tenant, id ciam.UserID, current, next string, keep ciam.SessionID, m audit.Meta) error {
	u, err := s.Get(ctx, t, id)
	if err != nil {
		return err
	}
	var old string
	err = s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		old, err = tx.Passwords().Get(ctx, id)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ok := old == "" && current == ""
	if old != "" {
		if ok, err = s.Hasher.Verify(ctx, current, old); err != nil {
			return err
		}
	}
	if !ok {
		return ErrWrongPassword
	}
	if err := s.Policy(next, t.EffectivePasswordMin(), u.Email); err != nil {
		if e := ciam.As(err); e != nil {
			return e.OnField("new_password")
		}
		return err
	}
	if current == next {
		return ciam.Errorf(ciam.Invalid, "password_unchanged", "Choose a password different from your current one.").OnField("new_password")
	}
	hash, err := s.Hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	return s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Passwords().Set(ctx, id, hash, now); err != nil {
			return err
		}
		// Other sessions and the refresh tokens not of this session end.
		ended, err := session.EndAll(ctx, tx, id, keep, now)
		if err != nil {
			return err
		}
		// A pending reset or login link must not outlive the old password.
		if _, err := tx.EmailTokens().Revoke(ctx, id, []string{ciam.PurposePasswordReset, ciam.PurposeLogin}, now); err != nil {
			return err
		}
		if s.Mailer != nil {
			if err := s.Mailer.Queue(ctx, tx, t, notify.PasswordChanged(t, u), now); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, now, audit.PasswordChanged, string(id), string(id), ciam.OutcomeSuccess, u, m, "", map[string]string{"sessions_ended": fmt.Sprint(len(ended))})
	})
}
