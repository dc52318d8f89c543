package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

// setupKey names the deployment setting that holds the hash of the first-run token.
const setupKey = "setup_token_sha256"

// ErrSetupInvalid is the answer for a wrong, used or missing first-run token.
var ErrSetupInvalid = ciam.Errorf(ciam.Forbidden, "setup_invalid", "This setup link is not valid or was used already.")

// IssueSetupToken returns a fresh one-time first-run token when the platform
// tenant has no administrator yet, replacing any earlier one; otherwise "".
func (s *Service) IssueSetupToken(ctx context.Context, platform *ciam.Tenant) (string, error) {
	var users []*ciam.User
	err := s.Store.View(ctx, platform.ID, func(tx store.Tx) error {
		var err error
		users, err = tx.Users().List(ctx, store.UserFilter{Limit: 1})
		return err
	})
	if err != nil || len(users) > 0 {
		return "", err
	}
	token := ciam.NewSecret()
	sum := sha256.Sum256([]byte(token))
	if _, err := s.Store.System().DeleteSetting(ctx, setupKey); err != nil {
		return "", err
	}
	stored, err := s.Store.System().PutSettingIfAbsent(ctx, setupKey, sum[:])
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(stored, sum[:]) != 1 {
		return "", errors.New("another process issued a setup token at the same time; restart to get a link")
	}
	return token, nil
}

// SetupTokenValid reports whether token is the current first-run token.
func (s *Service) SetupTokenValid(ctx context.Context, token string) bool {
	if token == "" || len(token) > 128 {
		return false
	}
	stored, err := s.Store.System().Setting(ctx, setupKey)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(stored, sum[:]) == 1
}

// CompleteSetup creates the first platform administrator with the one-time
// token and logs them in. The token is consumed by exactly one caller.
func (s *Service) CompleteSetup(ctx context.Context, platform *ciam.Tenant, token, email, pw string, m audit.Meta) (*Result, error) {
	if !s.SetupTokenValid(ctx, token) {
		return nil, ErrSetupInvalid
	}
	now := s.Now().UTC()
	u, err := user.New(platform, email, "", "", now)
	if err != nil {
		return nil, err
	}
	u.EmailVerified = true
	if err := s.Policy(pw, platform.EffectivePasswordMin(), u.Email); err != nil {
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, pw)
	if err != nil {
		return nil, err
	}
	won, err := s.Store.System().DeleteSetting(ctx, setupKey)
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, ErrSetupInvalid
	}
	var res *Result
	err = s.Store.Tx(ctx, platform.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		if err := tx.Passwords().Set(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.AdminSetup, string(u.ID), string(u.ID), ciam.OutcomeSuccess, u, m, u.Email, nil); err != nil {
			return err
		}
		// Like every login, through the platform tenant's second-factor policy.
		var err error
		res, err = s.establish(ctx, tx, platform, u, []string{"pwd"}, "password", m, now, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create first administrator: %w", err)
	}
	return res, nil
}
