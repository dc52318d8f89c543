package token

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Access is a verified access token.
type Access struct {
	Subject  string
	ClientID ciam.ClientID
	Scopes   []string
	Audience []string
	Expiry   time.Time
	IssuedAt time.Time
	ID       string
	SID      string
	family   string
	claims   accessClaims
}

// leeway tolerates clock skew between nodes when checking times.
const leeway = 30 * time.Second

var errBadToken = oauth.InvalidToken("The access token is invalid, expired or revoked.")

// CheckAccess verifies an access token of tenant t: signature with one of
// the tenant's published keys, "typ" at+jwt (so an ID token is refused),
// issuer, expiry, and that its family was not revoked.
func (s *Service) CheckAccess(ctx context.Context, t *ciam.Tenant, token string) (*Access, error) {
	if token == "" || len(token) > 8192 {
		return nil, errBadToken
	}
	var cl accessClaims
	if _, err := s.Keys.Verify(ctx, t.ID, token, TypeAccess, &cl); err != nil {
		if errors.Is(err, keys.ErrMalformed) || errors.Is(err, keys.ErrUnknownKey) || errors.Is(err, keys.ErrSignature) || errors.Is(err, keys.ErrType) {
			return nil, errBadToken
		}
		return nil, err
	}
	now := s.Now()
	if cl.Issuer != s.Issuer(t) || cl.Expiry == 0 || !now.Before(time.Unix(cl.Expiry, 0).Add(leeway)) || time.Unix(cl.IssuedAt, 0).After(now.Add(leeway)) {
		return nil, errBadToken
	}
	if cl.Family != "" {
		var revoked bool
		err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
			var err error
			revoked, err = tx.RefreshTokens().FamilyRevoked(ctx, cl.Family)
			return err
		})
		if err != nil {
			return nil, err
		}
		if revoked {
			return nil, errBadToken
		}
	}
	scopes, _ := oauth.ParseScope(cl.Scope)
	return &Access{
		Subject: cl.Subject, ClientID: ciam.ClientID(cl.ClientID), Scopes: scopes, Audience: cl.Audience,
		Expiry: time.Unix(cl.Expiry, 0), IssuedAt: time.Unix(cl.IssuedAt, 0), ID: cl.ID, SID: cl.SID,
		family: cl.Family, claims: cl,
	}, nil
}

// Introspect answers RFC 7662 for caller. A token that is invalid, expired,
// revoked, of another tenant, or issued to another client (and not meant
// for the caller as an audience) is {"active": false}.
func (s *Service) Introspect(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token, hint string) (map[string]any, error) {
	inactive := map[string]any{"active": false}
	if hint != "refresh_token" {
		if a, err := s.CheckAccess(ctx, t, token); err == nil {
			if a.ClientID != caller.ID && !slices.Contains(a.Audience, string(caller.ID)) {
				return inactive, nil
			}
			out := map[string]any{
				"active": true, "token_type": "Bearer", "client_id": string(a.ClientID), "sub": a.Subject,
				"scope": strings.Join(a.Scopes, " "), "aud": a.Audience, "iss": s.Issuer(t),
				"exp": a.Expiry.Unix(), "iat": a.IssuedAt.Unix(), "jti": a.ID,
			}
			if a.claims.AuthTime != 0 {
				out["auth_time"] = a.claims.AuthTime
			}
			if a.claims.ACR != "" {
				out["acr"] = a.claims.ACR
			}
			if len(a.claims.AMR) > 0 {
				out["amr"] = a.claims.AMR
			}
			return out, nil
		} else if oauth.As(err) == nil || oauth.As(err).Code != "invalid_token" {
			return nil, err
		}
	}
	if len(token) > 128 || token == "" {
		return inactive, nil
	}
	var rt *ciam.RefreshToken
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		rt, err = tx.RefreshTokens().ByHash(ctx, hash(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	if rt.ClientID != caller.ID || !rt.Live(s.Now()) {
		return inactive, nil
	}
	return map[string]any{
		"active": true, "token_type": "refresh_token", "client_id": string(rt.ClientID), "sub": string(rt.UserID),
		"scope": strings.Join(rt.Scopes, " "), "iss": s.Issuer(t), "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(),
	}, nil
}

// Revoke handles RFC 7009 for caller: a refresh token revokes its family; an
// access token with a family revokes that family too. Unknown tokens and
// tokens of other clients are ignored, as the RFC asks.
func (s *Service) Revoke(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token, hint string) error {
	now := s.Now().UTC()
	if len(token) <= 128 && token != "" {
		var rt *ciam.RefreshToken
		err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
			var err error
			rt, err = tx.RefreshTokens().ByHash(ctx, hash(token))
			return err
		})
		if err == nil {
			if rt.ClientID == caller.ID {
				s.revokeFamily(ctx, t, rt.FamilyID, now)
			}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if a, err := s.CheckAccess(ctx, t, token); err == nil && a.ClientID == caller.ID && a.family != "" {
		s.revokeFamily(ctx, t, a.family, now)
	}
	return nil
}
