package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/totp"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Recovery codes: RecoveryCodeCount codes of recoveryLen characters from
// recoveryAlphabet (lower-case letters and digits without 0, 1, l, o: about
// 51 bits each), shown as two groups of five.
const (
	RecoveryCodeCount = 10
	recoveryLen       = 10
	recoveryAlphabet  = "23456789abcdefghijkmnpqrstuvwxyz"
)

// TOTPEnrolmentTTL is how long a QR code shown for enrolment stays good.
const TOTPEnrolmentTTL = 15 * time.Minute

func newRecoveryCodes() []string {
	codes := make([]string, RecoveryCodeCount)
	buf := make([]byte, recoveryLen)
	for i := range codes {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		var b strings.Builder
		for j, c := range buf {
			if j == recoveryLen/2 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)]) // 256 is a multiple of 32: no bias
		}
		codes[i] = b.String()
	}
	return codes
}

// replaceRecovery stores a new set of codes for u in tx and returns them.
func (s *Service) replaceRecovery(ctx context.Context, tx store.Tx, u ciam.UserID, now time.Time) ([]string, error) {
	codes := newRecoveryCodes()
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = s.recoveryHash(u, normalizeRecovery(c))
	}
	if err := tx.RecoveryCodes().Replace(ctx, u, hashes, now); err != nil {
		return nil, err
	}
	return codes, nil
}

// securityChanged audits a change to u's factors and queues the notice mail.
func (s *Service) securityChanged(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, event, target, change string, m audit.Meta, now time.Time) error {
	if err := audit.Record(ctx, tx, now, event, string(u.ID), target, ciam.OutcomeSuccess, u, m, "", nil); err != nil {
		return err
	}
	if s.Mailer == nil || u.Email == "" {
		return nil
	}
	return s.Mailer.Queue(ctx, tx, t, notify.SecurityChanged(t, u, change), now)
}

func (s *Service) recoveryUsed(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, m audit.Meta, now time.Time) error {
	left, err := tx.RecoveryCodes().Remaining(ctx, u.ID)
	if err != nil {
		return err
	}
	return audit.Record(ctx, tx, now, audit.RecoveryCodeUsed, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "", map[string]string{"remaining": fmt.Sprint(left)})
}

// TOTPEnrolment is a new authenticator secret on its way to the user's
// app: the QR code and text to show, and the sealed secret the page posts
// back with the first code.
type TOTPEnrolment struct {
	*totp.Enrolment
	Sealed string
}

func enrolContext(t ciam.TenantID, u ciam.UserID) string {
	return "totp enrolment\x00" + string(t) + "\x00" + string(u)
}

// BeginTOTP makes a new secret for u. Nothing is stored until ConfirmTOTP
// sees a first code from it; the secret travels sealed in the page.
func (s *Service) BeginTOTP(t *ciam.Tenant, u *ciam.User) (*TOTPEnrolment, error) {
	e, err := totp.New(t.DisplayName, u.Email)
	if err != nil {
		return nil, err
	}
	return s.sealEnrolment(t, u, e, s.Now().UTC().Add(TOTPEnrolmentTTL))
}

func (s *Service) sealEnrolment(t *ciam.Tenant, u *ciam.User, e *totp.Enrolment, until time.Time) (*TOTPEnrolment, error) {
	plain := binary.BigEndian.AppendUint64(nil, uint64(until.Unix()))
	plain = append(plain, e.Secret...)
	b, err := keys.Seal(s.KEK, enrolContext(t.ID, u.ID), plain)
	if err != nil {
		return nil, fmt.Errorf("seal totp enrolment: %w", err)
	}
	return &TOTPEnrolment{Enrolment: e, Sealed: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// ErrEnrolmentExpired is returned for a TOTP enrolment that is too old or
// not this user's.
var ErrEnrolmentExpired = ciam.Errorf(ciam.Invalid, "enrolment_expired", "This setup has expired. Scan the new QR code.")

// ReopenTOTP gives back the enrolment of sealed (to show the same QR code
// again after a mistyped first code).
func (s *Service) ReopenTOTP(t *ciam.Tenant, u *ciam.User, sealed string) (*TOTPEnrolment, error) {
	secret, until, err := s.openEnrolment(t, u, sealed)
	if err != nil {
		return nil, err
	}
	e, err := totp.ForSecret(t.DisplayName, u.Email, secret)
	if err != nil {
		return nil, err
	}
	return s.sealEnrolment(t, u, e, until)
}

func (s *Service) openEnrolment(t *ciam.Tenant, u *ciam.User, sealed string) ([]byte, time.Time, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(sealed) > 1024 {
		return nil, time.Time{}, ErrEnrolmentExpired
	}
	plain, err := keys.Open(s.KEK, enrolContext(t.ID, u.ID), b)
	if err != nil || len(plain) != 8+totp.SecretSize {
		return nil, time.Time{}, ErrEnrolmentExpired
	}
	until := time.Unix(int64(binary.BigEndian.Uint64(plain[:8])), 0)
	if !s.Now().Before(until) {
		return nil, time.Time{}, ErrEnrolmentExpired
	}
	return plain[8:], until, nil
}

// storeTOTP checks the first code of an enrolment and stores the secret in
// tx, with that code's step spent. It returns new recovery codes when the
// user had none left.
func (s *Service) storeTOTP(ctx context.Context, tx store.Tx, t *ciam.Tenant, u *ciam.User, sealed, code string, m audit.Meta, now time.Time) ([]string, error) {
	secret, _, err := s.openEnrolment(t, u, sealed)
	if err != nil {
		return nil, err
	}
	step, ok := totp.Check(secret, code, now)
	if !ok {
		return nil, ErrFactorInvalid
	}
	box, err := keys.Seal(s.KEK, totpContext(t.ID, u.ID), secret)
	if err != nil {
		return nil, fmt.Errorf("seal totp secret: %w", err)
	}
	if err := tx.TOTP().Put(ctx, &ciam.TOTPSecret{TenantID: t.ID, UserID: u.ID, Secret: box, CreatedAt: now, LastStep: step}); err != nil {
		return nil, err
	}
	if err := s.securityChanged(ctx, tx, t, u, audit.TOTPAdded, string(u.ID), "totp_added", m, now); err != nil {
		return nil, err
	}
	left, err := tx.RecoveryCodes().Remaining(ctx, u.ID)
	if err != nil || left > 0 {
		return nil, err
	}
	codes, err := s.replaceRecovery(ctx, tx, u.ID, now)
	if err != nil {
		return nil, err
	}
	return codes, audit.Record(ctx, tx, now, audit.RecoveryCodesCreated, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, "", nil)
}

// ConfirmTOTP finishes adding an authenticator app to u's account with its
// first code, after a recent authentication. It replaces an app set up
// before, and returns recovery codes (shown once) when the user had none.
func (s *Service) ConfirmTOTP(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, u *ciam.User, sealed, code string, m audit.Meta) ([]string, error) {
	if err := s.requireRecent(t, sess); err != nil {
		return nil, err
	}
	if t.MFAPolicy == ciam.MFAOff {
		return nil, errMFAOff
	}
	key := s.factorKey(string(t.ID) + ":" + string(u.ID))
	if err := s.throttled(key); err != nil {
		return nil, err
	}
	var codes []string
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		codes, err = s.storeTOTP(ctx, tx, t, u, sealed, code, m, s.Now().UTC())
		return err
	})
	if errors.Is(err, ErrFactorInvalid) {
		s.Accounts.Fail(key)
	}
	return codes, err
}

var errMFAOff = ciam.Errorf(ciam.Forbidden, "mfa_off", "This service does not use two-step verification.")

// RemoveTOTP removes u's authenticator app after a recent authentication;
// under a policy that requires a second factor, not the last one.
func (s *Service) RemoveTOTP(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, u *ciam.User, m audit.Meta) error {
	if err := s.requireRecent(t, sess); err != nil {
		return err
	}
	now := s.Now().UTC()
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		f, err := loadFactors(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if t.MFAPolicy == ciam.MFARequired && f.TOTP && len(f.Passkeys) == 0 {
			return ErrLastFactor
		}
		if err := tx.TOTP().Delete(ctx, u.ID); err != nil {
			return err
		}
		return s.securityChanged(ctx, tx, t, u, audit.TOTPRemoved, string(u.ID), "totp_removed", m, now)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoSuchFactor
	}
	return err
}

// RegenerateRecoveryCodes replaces u's recovery codes after a recent
// authentication; the old ones stop working. The new ones are shown once.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, t *ciam.Tenant, sess *ciam.Session, u *ciam.User, m audit.Meta) ([]string, error) {
	if err := s.requireRecent(t, sess); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var codes []string
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		if codes, err = s.replaceRecovery(ctx, tx, u.ID, now); err != nil {
			return err
		}
		return s.securityChanged(ctx, tx, t, u, audit.RecoveryCodesCreated, string(u.ID), "recovery_codes", m, now)
	})
	return codes, err
}

// EnrolPendingTOTP completes the pending login bound to b of a user who
// must add a second factor: the first code of the new authenticator app
// stores it and starts the session. It returns the user's recovery codes,
// shown once.
func (s *Service) EnrolPendingTOTP(ctx context.Context, t *ciam.Tenant, b Binding, sealed, code string, m audit.Meta) (*Result, []string, error) {
	pl, err := s.Pending(ctx, t, b)
	if err != nil {
		return nil, nil, err
	}
	if !pl.Enrol {
		return nil, nil, ErrPendingExpired // a user with a factor proves it instead
	}
	key := s.factorKey(string(t.ID) + ":" + string(pl.User.ID))
	if err := s.throttled(key); err != nil {
		return nil, nil, err
	}
	now := s.Now().UTC()
	var res *Result
	var codes []string
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		if codes, err = s.storeTOTP(ctx, tx, t, pl.User, sealed, code, m, now); err != nil {
			return err
		}
		return s.finishEnrol(ctx, tx, t, pl, []string{"otp"}, MethodTOTP, m, now, &res)
	})
	if errors.Is(err, ErrFactorInvalid) {
		s.Accounts.Fail(key)
	}
	if err != nil {
		return nil, nil, err
	}
	return res, codes, nil
}

// BeginPendingPasskey starts registering a passkey as the first second
// factor of a pending login's user.
func (s *Service) BeginPendingPasskey(ctx context.Context, t *ciam.Tenant, b Binding) (*Ceremony, error) {
	pl, err := s.Pending(ctx, t, b)
	if err != nil {
		return nil, err
	}
	return s.BeginPasskeyCreate(t, pl.User, pl.Factors)
}

// EnrolPendingPasskey completes the pending login bound to b of a user who
// must add a second factor with a passkey made now. It returns new
// recovery codes, shown once.
func (s *Service) EnrolPendingPasskey(ctx context.Context, t *ciam.Tenant, b Binding, state string, credential []byte, name string, m audit.Meta) (*Result, []string, error) {
	pl, err := s.Pending(ctx, t, b)
	if err != nil {
		return nil, nil, err
	}
	if !pl.Enrol {
		return nil, nil, ErrPendingExpired
	}
	st, err := s.openState(t.ID, purposeCreate, pl.User.ID, state)
	if err != nil {
		return nil, nil, err
	}
	rp, err := s.Passkeys.For(t)
	if err != nil {
		return nil, nil, err
	}
	now := s.Now().UTC()
	pk, err := rp.FinishCreate(pl.User, st, credential, now)
	if err != nil {
		s.passkeyRefused(ctx, t, pl.User, err, m)
		return nil, nil, err
	}
	pk.Name = passkeyName(name)
	var res *Result
	var codes []string
	err = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := s.storePasskey(ctx, tx, t, pl.User, st, pk, m, now); err != nil {
			return err
		}
		var err error
		if codes, err = s.replaceRecovery(ctx, tx, pl.User.ID, now); err != nil {
			return err
		}
		return s.finishEnrol(ctx, tx, t, pl, createdAMR(pk), MethodPasskey, m, now, &res)
	})
	if err != nil {
		return nil, nil, err
	}
	return res, codes, nil
}

// finishEnrol ends a pending login after its user enrolled a factor.
func (s *Service) finishEnrol(ctx context.Context, tx store.Tx, t *ciam.Tenant, pl *PendingLogin, second []string, method string, m audit.Meta, now time.Time, out **Result) error {
	if err := tx.AuthFlows().Consume(ctx, pl.flow.ID, now); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return ErrPendingExpired
		}
		return err
	}
	res, err := s.startSession(ctx, tx, t, pl.User, withMFA(pl.data.AMR, second), pl.data.Method+"+"+method, m, now, map[string]string{"enrolled": method})
	*out = res
	return err
}
