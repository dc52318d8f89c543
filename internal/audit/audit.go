// Package audit builds the events of Gatehouse's audit trail and checks the
// trail's hash chain. Events are appended by the service that makes a change,
// through store.Tx.Audit(), in the same transaction as the change. What an
// event must keep about a person (an email, an IP address, a user agent) is
// sealed with that person's key (ciam.User.PIIKey), so erasing the person
// leaves the chain verifiable and the personal data unreadable.
package audit

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Event types written by the services.
const (
	TenantCreated   = "tenant.created"
	TenantUpdated   = "tenant.updated"
	UserSignup      = "user.signup"
	UserCreated     = "user.created"
	UserUpdated     = "user.updated"
	UserDisabled    = "user.disabled"
	UserEnabled     = "user.enabled"
	LoginSucceeded  = "login.success"
	LoginFailed     = "login.failure"
	Logout          = "logout"
	PasswordChanged = "password.changed"
	SessionRevoked  = "session.revoked"
	AdminSetup      = "admin.setup"

	// Mail-driven steps.
	EmailVerificationSent  = "email.verification_sent"
	EmailVerified          = "email.verified"
	PasswordResetRequested = "password_reset.requested"
	PasswordReset          = "password.reset"
	LoginEmailSent         = "login.email_sent"
	EmailChangeRequested   = "email_change.requested"
	EmailChanged           = "email.changed"
	EmailChangeUndone      = "email_change.undone"
	EmailTokenRefused      = "email_token.refused"

	// Second factors and passkeys.
	LoginSecondFactor      = "login.second_factor_required" // the first factor passed; a second one is asked for
	SessionReauthenticated = "session.reauthenticated"      // the user proved again who they are (Data: method, acr)
	TOTPAdded              = "mfa.totp_added"
	TOTPRemoved            = "mfa.totp_removed"
	RecoveryCodesCreated   = "mfa.recovery_codes_created"
	RecoveryCodeUsed       = "mfa.recovery_code_used"
	PasskeyAdded           = "passkey.added"
	PasskeyRenamed         = "passkey.renamed"
	PasskeyRemoved         = "passkey.removed"
	PasskeyRefused         = "passkey.refused" // a ceremony that failed a check (Data: reason), e.g. a counter that went backwards
)

// Meta is what a request tells about who made it.
type Meta struct {
	RequestID string
	IP        string
	UserAgent string
}

// PII is the personal data an event may keep, sealed.
type PII struct {
	Email     string `json:"email,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// NewPIIKey returns a fresh 256-bit key for a new user.
func NewPIIKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return k
}

// Seal encrypts p with AES-256-GCM under key. An empty p seals to nil.
func Seal(key []byte, p PII) ([]byte, error) {
	if p == (PII{}) {
		return nil, nil
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// Open decrypts what Seal produced.
func Open(key, sealed []byte) (PII, error) {
	var p PII
	if len(sealed) == 0 {
		return p, nil
	}
	aead, err := newAEAD(key)
	if err != nil {
		return p, err
	}
	if len(sealed) < aead.NonceSize() {
		return p, errors.New("audit: sealed data too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return p, fmt.Errorf("audit: open sealed data: %w", err)
	}
	err = json.Unmarshal(plain, &p)
	return p, err
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Record appends an event about user u (which may be nil) to tx's chain. The
// request's IP and user agent, and email when given, are sealed with u's key;
// with no user, only the IP is kept, in the clear.
func Record(ctx context.Context, tx store.Tx, now time.Time, typ, actor, target, outcome string, u *ciam.User, m Meta, email string, data map[string]string) error {
	e := &ciam.AuditEvent{
		Time: now.UTC(), Type: typ, ActorID: actor, TargetID: target,
		Outcome: outcome, RequestID: m.RequestID, Data: data,
	}
	if u != nil && len(u.PIIKey) > 0 {
		sealed, err := Seal(u.PIIKey, PII{Email: email, IP: m.IP, UserAgent: m.UserAgent})
		if err != nil {
			return fmt.Errorf("seal audit data: %w", err)
		}
		e.PII = sealed
	} else {
		e.IP = m.IP
	}
	if err := tx.Audit().Append(ctx, e); err != nil {
		return fmt.Errorf("append audit event %s: %w", typ, err)
	}
	return nil
}

// Break describes the first place a chain fails to verify.
type Break struct {
	Seq    int64
	Reason string
}

// Verify walks the tenant's chain from the start and returns the first break,
// or nil when every event links to its predecessor and its hash matches.
func Verify(ctx context.Context, s store.Store, tenant ciam.TenantID) (*Break, int64, error) {
	var prev []byte
	var want int64 = 1
	var after int64
	for {
		var page []*ciam.AuditEvent
		err := s.View(ctx, tenant, func(tx store.Tx) error {
			var err error
			page, err = tx.Audit().List(ctx, store.AuditFilter{AfterSeq: after, Limit: 1000})
			return err
		})
		if err != nil {
			return nil, want - 1, err
		}
		if len(page) == 0 {
			return nil, want - 1, nil
		}
		for _, e := range page {
			if e.Seq != want {
				return &Break{Seq: want, Reason: fmt.Sprintf("event %d is missing (next is %d)", want, e.Seq)}, want - 1, nil
			}
			if string(e.PrevHash) != string(prev) {
				return &Break{Seq: e.Seq, Reason: "previous-hash link does not match the preceding event"}, want - 1, nil
			}
			if got := e.ComputeHash(prev); string(got) != string(e.Hash) {
				return &Break{Seq: e.Seq, Reason: "content does not match its hash (edited)"}, want - 1, nil
			}
			prev = e.Hash
			want++
			after = e.Seq
		}
	}
}
