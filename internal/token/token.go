// Package token issues and checks what the OAuth 2.1 / OpenID Connect
// provider hands out: single-use authorization codes bound to a client, a
// redirect URI and a PKCE challenge; JWT access tokens (RFC 9068) and ID
// tokens signed with the tenant's keys; rotating refresh tokens whose reuse
// revokes their family. Codes and refresh tokens are stored only as SHA-256
// hashes, and every single-use step is one conditional update. It does not
// speak HTTP; package oidc does.
package token

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// CodeTTL is how long an authorization code may be redeemed.
const CodeTTL = 60 * time.Second

// Token types in the JWS "typ" header.
const (
	TypeAccess = "at+jwt"
	TypeID     = "JWT"
)

// Service issues and checks tokens.
type Service struct {
	Store store.Store
	Keys  *keys.Manager
	Now   func() time.Time
	// Issuer returns the issuer URL of a tenant: {public_url}/t/{slug}.
	Issuer func(t *ciam.Tenant) string
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// CodeRequest is an authorization the user has given, to be turned into a code.
type CodeRequest struct {
	Client      *ciam.Client
	User        *ciam.User
	Session     *ciam.Session
	RedirectURI string
	Scopes      []string
	Nonce       string
	Challenge   string
}

// IssueCode stores a new authorization code and returns it.
func (s *Service) IssueCode(ctx context.Context, t *ciam.Tenant, r CodeRequest) (string, error) {
	code := ciam.NewSecret()
	now := s.Now().UTC()
	c := &ciam.AuthCode{
		Hash: hash(code), TenantID: t.ID, ClientID: r.Client.ID, UserID: r.User.ID, SessionID: r.Session.ID,
		RedirectURI: r.RedirectURI, Scopes: r.Scopes, Nonce: r.Nonce, CodeChallenge: r.Challenge,
		AuthTime: r.Session.AuthTime, ACR: r.Session.ACR, AMR: r.Session.AMR,
		CreatedAt: now, ExpiresAt: now.Add(CodeTTL),
	}
	// A client that wants back-channel logout is told when this session
	// ends, so the pair is recorded with the code; for the others the code
	// is the one statement, committed without a transaction around it.
	run := s.Store.Write
	if r.Client.BackchannelLogoutURI != "" {
		run = s.Store.Tx
	}
	err := run(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.AuthCodes().Create(ctx, c); err != nil {
			return err
		}
		if r.Client.BackchannelLogoutURI != "" {
			return tx.Sessions().AddClient(ctx, r.Session.ID, r.Client.ID, now)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store authorization code: %w", err)
	}
	return code, nil
}

// Tokens is a token endpoint response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

var errBadCode = oauth.InvalidGrant("The authorization code is invalid, expired, already used, or was issued to another client or redirect URI.")

// RedeemCode exchanges a code for tokens. A code presented by another
// client, with another redirect URI or without the right PKCE verifier is
// refused and stays redeemable by its rightful client; a code redeemed a
// second time revokes every token the first redemption produced.
func (s *Service) RedeemCode(ctx context.Context, t *ciam.Tenant, c *ciam.Client, code, redirectURI, verifier string) (*Tokens, error) {
	if code == "" || len(code) > 128 {
		return nil, errBadCode
	}
	h := hash(code)
	var ac *ciam.AuthCode
	// Single-row reads run outside a transaction; the consuming update
	// below is what makes the code single-use.
	err := s.Store.Read(ctx, t.ID, func(tx store.Tx) error {
		var err error
		ac, err = tx.AuthCodes().Get(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCode
	}
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	family := familyOf(ac)
	if !ac.ConsumedAt.IsZero() {
		s.revokeCodeFamily(ctx, t, ac, now)
		return nil, errBadCode
	}
	if !now.Before(ac.ExpiresAt) || ac.ClientID != c.ID || ac.RedirectURI != redirectURI {
		return nil, errBadCode
	}
	if ac.CodeChallenge == "" {
		if verifier != "" {
			return nil, oauth.InvalidGrant("A code_verifier was sent for a code issued without a code_challenge.")
		}
		return nil, errBadCode // codes are always issued with a challenge
	}
	if !oauth.VerifyS256(verifier, ac.CodeChallenge) {
		return nil, oauth.InvalidGrant("The code_verifier does not match the code_challenge.")
	}

	var u *ciam.User
	err = s.Store.Read(ctx, t.ID, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().Get(ctx, ac.UserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCode
	}
	if err != nil {
		return nil, err
	}
	if u.Status != ciam.UserActive {
		return nil, errBadCode
	}
	var rt string
	// Without a refresh token the consuming update is the one statement.
	withRefresh := slices.Contains(ac.Scopes, "offline_access") && c.HasGrant(ciam.GrantRefreshToken)
	run := s.Store.Write
	if withRefresh {
		run = s.Store.Tx
	}
	err = run(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.AuthCodes().Consume(ctx, h, now); err != nil {
			return err
		}
		var err error
		if withRefresh {
			rt, err = s.newRefresh(ctx, tx, c, &ciam.RefreshToken{
				FamilyID: family, ClientID: c.ID, UserID: u.ID, SessionID: ac.SessionID, Scopes: ac.Scopes,
				AuthTime: ac.AuthTime, ACR: ac.ACR, AMR: ac.AMR,
			}, now, time.Time{})
		}
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		// Another redemption won the race: this one is the replay.
		s.revokeCodeFamily(ctx, t, ac, now)
		return nil, errBadCode
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCode
	}
	if err != nil {
		return nil, err
	}
	g := grantInfo{user: u, client: c, scopes: ac.Scopes, sid: string(ac.SessionID), family: family,
		authTime: ac.AuthTime, acr: ac.ACR, amr: ac.AMR, nonce: ac.Nonce}
	return s.mint(ctx, t, g, rt, now, true)
}

// familyOf names the token family a code starts; it is derived from the
// code's hash, so a replayed code finds the family it produced.
func familyOf(ac *ciam.AuthCode) string { return hex.EncodeToString(ac.Hash[:16]) }

func (s *Service) revokeFamily(ctx context.Context, t *ciam.Tenant, family string, now time.Time) {
	_ = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		_, err := tx.RefreshTokens().RevokeFamily(ctx, family, now)
		return err
	})
}

// revokeCodeFamily revokes what a replayed code produced: its refresh-token
// family and, through it, the family's access tokens (CheckAccess asks
// FamilyRevoked). A code redeemed without offline_access produced no refresh
// token, so a revoked placeholder of the family is stored in its place: a
// row whose secret nobody knows, there only to mark the family revoked until
// every access token it could have produced has expired.
func (s *Service) revokeCodeFamily(ctx context.Context, t *ciam.Tenant, ac *ciam.AuthCode, now time.Time) {
	family := familyOf(ac)
	_ = s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		n, err := tx.RefreshTokens().RevokeFamily(ctx, family, now)
		if err != nil || n > 0 {
			return err
		}
		if revoked, err := tx.RefreshTokens().FamilyRevoked(ctx, family); err != nil || revoked {
			return err
		}
		return tx.RefreshTokens().Create(ctx, &ciam.RefreshToken{
			ID: ciam.NewID(), Hash: hash(ciam.NewSecret()), TenantID: t.ID, FamilyID: family,
			ClientID: ac.ClientID, UserID: ac.UserID, Scopes: ac.Scopes, AuthTime: ac.AuthTime,
			CreatedAt: now, IdleExpiresAt: now, ExpiresAt: now.Add(maxAccessTokenTTL + leeway),
			RevokedAt: now,
		})
	})
}

// maxAccessTokenTTL is the longest access-token lifetime a client may have
// (package client's registration rules).
const maxAccessTokenTTL = 24 * time.Hour

// newRefresh stores a refresh token generation and returns its secret.
// expires, when set, is the family's absolute end inherited from its predecessor.
func (s *Service) newRefresh(ctx context.Context, tx store.Tx, c *ciam.Client, rt *ciam.RefreshToken, now, expires time.Time) (string, error) {
	secret := ciam.NewSecret()
	rt.ID, rt.Hash, rt.CreatedAt = ciam.NewID(), hash(secret), now
	if expires.IsZero() {
		expires = now.Add(c.RefreshMaxTTL)
	}
	rt.ExpiresAt = expires
	rt.IdleExpiresAt = now.Add(c.RefreshIdleTTL)
	if rt.IdleExpiresAt.After(expires) {
		rt.IdleExpiresAt = expires
	}
	if !c.RefreshWithSession {
		rt.SessionID = ""
	}
	if err := tx.RefreshTokens().Create(ctx, rt); err != nil {
		return "", err
	}
	return secret, nil
}

var errBadRefresh = oauth.InvalidGrant("The refresh token is invalid, expired or revoked.")

// Refresh rotates a refresh token: the presented one is spent and a new one
// of the same family returned with fresh access (and ID) tokens. Presenting
// a spent token revokes the family; of racing rotations exactly one wins.
func (s *Service) Refresh(ctx context.Context, t *ciam.Tenant, c *ciam.Client, token, scope string) (*Tokens, error) {
	if token == "" || len(token) > 128 {
		return nil, errBadRefresh
	}
	now := s.Now().UTC()
	var old *ciam.RefreshToken
	var u *ciam.User
	var next string
	var scopes []string
	reusedFamily := ""
	err := s.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		var err error
		h := hash(token)
		if old, err = tx.RefreshTokens().ByHash(ctx, h); errors.Is(err, store.ErrNotFound) {
			// A hash rotated away earlier: reuse of a spent token.
			if reusedFamily, _, err = tx.RefreshTokens().SpentFamily(ctx, h); err == nil {
				return store.ErrConflict
			}
			return err
		} else if err != nil {
			return err
		}
		if old.ClientID != c.ID {
			return errBadRefresh
		}
		if !old.Live(now) {
			return errBadRefresh
		}
		scopes = old.Scopes
		if scope != "" {
			req, err := oauth.ParseScope(scope)
			if err != nil {
				return err
			}
			if !oauth.Subset(req, old.Scopes) {
				return oauth.InvalidScope("A refresh may only narrow the scope that was granted.")
			}
			scopes = req
		}
		if old.SessionID != "" {
			sess, err := tx.Sessions().Get(ctx, old.SessionID)
			if err != nil || !sess.Active(now) {
				return errBadRefresh
			}
		}
		if u, err = tx.Users().Get(ctx, old.UserID); err != nil {
			return err
		}
		if u.Status != ciam.UserActive {
			return errBadRefresh
		}
		// The family's token moves to a new secret in place.
		next = ciam.NewSecret()
		idle := now.Add(c.RefreshIdleTTL)
		if idle.After(old.ExpiresAt) {
			idle = old.ExpiresAt
		}
		return tx.RefreshTokens().Rotate(ctx, old.ID, old.Hash, hash(next), now, idle)
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		switch {
		case reusedFamily != "":
			s.revokeFamily(ctx, t, reusedFamily, now)
		case old != nil:
			s.revokeFamily(ctx, t, old.FamilyID, now)
		}
		return nil, errBadRefresh
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadRefresh
	case err != nil:
		return nil, err
	}
	g := grantInfo{user: u, client: c, scopes: scopes, sid: string(old.SessionID), family: old.FamilyID,
		authTime: old.AuthTime, acr: old.ACR, amr: old.AMR}
	return s.mint(ctx, t, g, next, now, slices.Contains(scopes, "openid"))
}

// ClientCredentials issues an access token to a confidential client for
// itself, with the scopes and audiences it is allowed.
func (s *Service) ClientCredentials(ctx context.Context, t *ciam.Tenant, c *ciam.Client, scope string, audience []string) (*Tokens, error) {
	scopes := c.Scopes
	if scope != "" {
		req, err := oauth.ParseScope(scope)
		if err != nil {
			return nil, err
		}
		if !oauth.Subset(req, c.Scopes) {
			return nil, oauth.InvalidScope("The client may not request one of these scopes.")
		}
		scopes = req
	}
	aud := c.Audiences
	if len(audience) > 0 {
		for _, a := range audience {
			if !slices.Contains(c.Audiences, a) {
				return nil, oauth.New("invalid_target", "The client may not request a token for this audience.")
			}
		}
		aud = audience
	}
	now := s.Now().UTC()
	at, exp, err := s.accessToken(ctx, t, c, accessClaims{Subject: string(c.ID), Audience: audOrClient(aud, c), Scope: strings.Join(scopes, " ")}, now)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: at, TokenType: "Bearer", ExpiresIn: exp, Scope: strings.Join(scopes, " ")}, nil
}

func audOrClient(aud []string, c *ciam.Client) []string {
	if len(aud) == 0 {
		return []string{string(c.ID)}
	}
	return aud
}

// grantInfo is what a token is about.
type grantInfo struct {
	user     *ciam.User
	client   *ciam.Client
	scopes   []string
	sid      string
	family   string
	authTime time.Time
	acr      string
	amr      []string
	nonce    string
}

// accessClaims are the claims of an RFC 9068 access token.
type accessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	ID       string   `json:"jti"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	SID      string   `json:"sid,omitempty"`
	// Family names the refresh-token family the token belongs to, so a
	// revoked family (a replayed code, a reused refresh token, a revoked
	// grant) invalidates its access tokens at introspection and userinfo.
	Family string `json:"gh_fam,omitempty"`
}

func (s *Service) accessToken(ctx context.Context, t *ciam.Tenant, c *ciam.Client, cl accessClaims, now time.Time) (string, int, error) {
	signer, err := s.Keys.Signer(ctx, t.ID, ciam.AlgES256)
	if err != nil {
		return "", 0, err
	}
	ttl := c.AccessTokenTTL
	cl.Issuer, cl.ClientID, cl.ID = s.Issuer(t), string(c.ID), ciam.NewID()
	cl.IssuedAt, cl.Expiry = now.Unix(), now.Add(ttl).Unix()
	tok, err := signer.Sign(cl, TypeAccess)
	return tok, int(ttl / time.Second), err
}

// mint signs the access token (and the ID token when asked) for a user grant.
func (s *Service) mint(ctx context.Context, t *ciam.Tenant, g grantInfo, refresh string, now time.Time, withID bool) (*Tokens, error) {
	scope := strings.Join(g.scopes, " ")
	at, exp, err := s.accessToken(ctx, t, g.client, accessClaims{
		Subject: string(g.user.ID), Audience: audOrClient(g.client.Audiences, g.client), Scope: scope,
		AuthTime: g.authTime.Unix(), ACR: g.acr, AMR: g.amr, SID: g.sid, Family: g.family,
	}, now)
	if err != nil {
		return nil, err
	}
	out := &Tokens{AccessToken: at, TokenType: "Bearer", ExpiresIn: exp, RefreshToken: refresh, Scope: scope}
	if withID && slices.Contains(g.scopes, "openid") {
		alg := g.client.IDTokenAlg
		if alg == "" {
			alg = ciam.AlgES256
		}
		signer, err := s.Keys.Signer(ctx, t.ID, alg)
		if err != nil {
			return nil, err
		}
		claims := map[string]any{
			"iss": s.Issuer(t), "sub": string(g.user.ID), "aud": string(g.client.ID), "azp": string(g.client.ID),
			"exp": now.Add(g.client.AccessTokenTTL).Unix(), "iat": now.Unix(), "auth_time": g.authTime.Unix(),
			"at_hash": halfHash(alg, at),
		}
		if g.nonce != "" {
			claims["nonce"] = g.nonce
		}
		if g.acr != "" {
			claims["acr"] = g.acr
		}
		if len(g.amr) > 0 {
			claims["amr"] = g.amr
		}
		if g.sid != "" {
			claims["sid"] = g.sid
		}
		for k, v := range UserClaims(g.user, g.scopes) {
			claims[k] = v
		}
		if out.IDToken, err = signer.Sign(claims, TypeID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// halfHash is the at_hash of an access token: the left half of its hash with
// the ID token's algorithm's hash function, base64url-encoded.
func halfHash(alg, token string) string {
	var sum []byte
	if alg == ciam.AlgEdDSA {
		h := sha512.Sum512([]byte(token))
		sum = h[:]
	} else {
		h := sha256.Sum256([]byte(token))
		sum = h[:]
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// UserClaims returns the standard claims the scopes release.
func UserClaims(u *ciam.User, scopes []string) map[string]any {
	out := map[string]any{}
	if slices.Contains(scopes, "profile") {
		if u.Name != "" {
			out["name"] = u.Name
		}
		if u.Locale != "" {
			out["locale"] = u.Locale
		}
		out["updated_at"] = u.UpdatedAt.Unix()
	}
	if slices.Contains(scopes, "email") {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	return out
}
