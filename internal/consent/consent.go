// Package consent keeps what users allowed OAuth clients: the grant a
// third-party client's consent page stores and later authorization requests
// reuse, listing a user's grants, and revoking one (which revokes the refresh
// tokens issued under it). It does not serve HTTP.
package consent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Audit event types.
const (
	EventGranted = "consent.granted"
	EventRevoked = "consent.revoked"
)

// Service manages grants.
type Service struct {
	Store store.Store
	Now   func() time.Time
}

// Covers reports whether the user has granted the client every scope in scopes.
func (s *Service) Covers(ctx context.Context, t *ciam.Tenant, user ciam.UserID, client ciam.ClientID, scopes []string) (bool, error) {
	var g *ciam.Grant
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		g, err = tx.Grants().Get(ctx, user, client)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, sc := range scopes {
		if !slices.Contains(g.Scopes, sc) {
			return false, nil
		}
	}
	return true, nil
}

// Grant records that the user allowed the client scopes, adding to what was
// granted before.
func (s *Service) Grant(ctx context.Context, t *ciam.Tenant, u *ciam.User, client ciam.ClientID, scopes []string, m audit.Meta) error {
	now := s.Now().UTC()
	return s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		g, err := tx.Grants().Get(ctx, u.ID, client)
		if errors.Is(err, store.ErrNotFound) {
			g = &ciam.Grant{TenantID: t.ID, UserID: u.ID, ClientID: client, CreatedAt: now}
		} else if err != nil {
			return err
		}
		for _, sc := range scopes {
			if !slices.Contains(g.Scopes, sc) {
				g.Scopes = append(g.Scopes, sc)
			}
		}
		g.UpdatedAt = now
		if err := tx.Grants().Put(ctx, g); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, EventGranted, string(u.ID), string(client), ciam.OutcomeSuccess, u, m, "", map[string]string{"scope": strings.Join(scopes, " ")})
	})
}

// List returns the user's grants.
func (s *Service) List(ctx context.Context, t *ciam.Tenant, user ciam.UserID) ([]*ciam.Grant, error) {
	var out []*ciam.Grant
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		out, err = tx.Grants().ListByUser(ctx, user)
		return err
	})
	return out, err
}

// Revoke withdraws the user's grant to client and revokes the refresh tokens
// (and so the access tokens) issued under it.
func (s *Service) Revoke(ctx context.Context, t *ciam.Tenant, u *ciam.User, client ciam.ClientID, m audit.Meta) error {
	now := s.Now().UTC()
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Grants().Delete(ctx, u.ID, client); err != nil {
			return err
		}
		if _, err := tx.RefreshTokens().RevokeGrant(ctx, u.ID, client, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, EventRevoked, string(u.ID), string(client), ciam.OutcomeSuccess, u, m, "", nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ciam.Errorf(ciam.NotFound, "grant_not_found", "There is no such access to revoke.")
	}
	return err
}
