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
	// User is the token's user as read with its liveness (nil for a
	// client's own token).
	User   *ciam.User
	family string
	claims accessClaims
}

// leeway tolerates clock skew between nodes when checking times.
const leeway = 30 * time.Second

var errBadToken = oauth.InvalidToken("The access token is invalid, expired or revoked.")

// CheckAccess verifies an access token of tenant t: signature with one of
// the tenant's published keys, "typ" at+jwt (so an ID token is refused),
// issuer, expiry, that its family was not revoked, that its client still
// exists and that its user (if any) still exists and is active.
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
	// One query: the token's refresh family is not revoked, its client
	// exists, and its user (none for a client's own token) is active.
	user := ciam.UserID(cl.Subject)
	if cl.Subject == cl.ClientID {
		user = ""
	}
	var st store.AccessState
	err := s.Store.Read(ctx, t.ID, func(tx store.Tx) (err error) {
		st, err = tx.RefreshTokens().AccessState(ctx, cl.Family, user, ciam.ClientID(cl.ClientID))
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.FamilyRevoked || !st.ClientExists || (user != "" && st.UserStatus != ciam.UserActive) {
		return nil, errBadToken
	}
	scopes, _ := oauth.ParseScope(cl.Scope)
	return &Access{
		Subject: cl.Subject, ClientID: ciam.ClientID(cl.ClientID), Scopes: scopes, Audience: cl.Audience,
		Expiry: time.Unix(cl.Expiry, 0), IssuedAt: time.Unix(cl.IssuedAt, 0), ID: cl.ID, SID: cl.SID,
		family: cl.Family, claims: cl, User: st.User,
	}, nil
}

// Introspect answers RFC 7662 for caller. A token that is invalid, expired,
// revoked, of another tenant, or issued to another client (and not meant
// for the caller as an audience) is {"active": false}. The hint only says
// where to look first: a token not found as that type is looked for as the
// other (RFC 7662 section 2.1).
func (s *Service) Introspect(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token, hint string) (map[string]any, error) {
	lookups := []func(context.Context, *ciam.Tenant, *ciam.Client, string) (map[string]any, error){s.introspectAccess, s.introspectRefresh}
	if hint == "refresh_token" {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	for _, look := range lookups {
		if out, err := look(ctx, t, caller, token); err != nil || out != nil {
			return out, err
		}
	}
	return map[string]any{"active": false}, nil
}

// introspectAccess answers for an access token, or returns nil when token is
// not one of this tenant's access tokens.
func (s *Service) introspectAccess(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token string) (map[string]any, error) {
	a, err := s.CheckAccess(ctx, t, token)
	if err != nil {
		if e := oauth.As(err); e != nil && e.Code == oauth.CodeInvalidToken {
			return nil, nil
		}
		return nil, err
	}
	inactive := map[string]any{"active": false}
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
}

// introspectRefresh answers for a refresh token, or returns nil when token
// is not one of this tenant's refresh tokens.
func (s *Service) introspectRefresh(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token string) (map[string]any, error) {
	if len(token) > 128 || token == "" {
		return nil, nil
	}
	var rt *ciam.RefreshToken
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		var err error
		rt, err = tx.RefreshTokens().ByHash(ctx, hash(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inactive := map[string]any{"active": false}
	if rt.ClientID != caller.ID || !rt.Live(s.Now()) {
		return inactive, nil
	}
	if ok, err := s.holdersLive(ctx, t, rt.UserID, rt.ClientID); err != nil || !ok {
		return inactive, err
	}
	return map[string]any{
		"active": true, "token_type": "refresh_token", "client_id": string(rt.ClientID), "sub": string(rt.UserID),
		"scope": strings.Join(rt.Scopes, " "), "iss": s.Issuer(t), "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(),
	}, nil
}

// holdersLive reports whether a token's client still exists and its user
// (empty for a client's own token) exists and is active: a token of a
// disabled user or a deleted client is not active (RFC 7662 section 2.2),
// even before it expires.
func (s *Service) holdersLive(ctx context.Context, t *ciam.Tenant, user ciam.UserID, client ciam.ClientID) (bool, error) {
	live := true
	err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
		if _, err := tx.Clients().Get(ctx, client); err != nil {
			return err
		}
		if user == "" {
			return nil
		}
		u, err := tx.Users().Get(ctx, user)
		if err != nil {
			return err
		}
		live = u.Status == ciam.UserActive
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return live && err == nil, err
}

// Revoke handles RFC 7009 for caller: a refresh token revokes its family; an
// access token with a family revokes that family too. Unknown tokens and
// tokens of other clients are ignored, as the RFC asks.
func (s *Service) Revoke(ctx context.Context, t *ciam.Tenant, caller *ciam.Client, token, hint string) error {
	now := s.Now().UTC()
	if len(token) <= 128 && token != "" {
		// The current token of a family, or one rotated away: either way
		// its client may revoke the family.
		var family string
		var client ciam.ClientID
		err := s.Store.View(ctx, t.ID, func(tx store.Tx) error {
			rt, err := tx.RefreshTokens().ByHash(ctx, hash(token))
			if errors.Is(err, store.ErrNotFound) {
				family, client, err = tx.RefreshTokens().SpentFamily(ctx, hash(token))
				return err
			}
			if err == nil {
				family, client = rt.FamilyID, rt.ClientID
			}
			return err
		})
		if err == nil {
			if client == caller.ID {
				s.revokeFamily(ctx, t, family, now)
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
