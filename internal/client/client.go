// Package client registers a tenant's OAuth clients: the rules a
// registration must follow (redirect URIs, grant types, authentication
// method, lifetimes), generated secrets stored only as SHA-256, secret
// rotation, deletion, and authenticating a client at the token endpoint. It
// keeps a short-lived cache of clients for the token endpoint's hot path.
package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Audit event types.
const (
	EventCreated       = "client.created"
	EventUpdated       = "client.updated"
	EventDeleted       = "client.deleted"
	EventSecretRotated = "client.secret_rotated"
)

// Defaults of a new client.
const (
	DefaultAccessTokenTTL = 15 * time.Minute
	DefaultRefreshIdleTTL = 14 * 24 * time.Hour
	DefaultRefreshMaxTTL  = 90 * 24 * time.Hour
)

// DefaultScopes are the scopes a client may request unless it is registered with others.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Registry manages clients.
type Registry struct {
	Store    store.Store
	Now      func() time.Time
	CacheTTL time.Duration // default 10s; changes made through this Registry apply at once

	mu    sync.RWMutex
	cache map[cacheKey]cachedClient
}

type cacheKey struct {
	tenant ciam.TenantID
	id     ciam.ClientID
}

type cachedClient struct {
	c       *ciam.Client
	expires time.Time
}

// Input is a registration. Zero values take the defaults.
type Input struct {
	Name                 string
	Public               bool
	FirstParty           bool
	RedirectURIs         []string
	PostLogoutURIs       []string
	GrantTypes           []string
	Scopes               []string
	Audiences            []string
	TokenAuthMethod      string
	JWKS                 string
	IDTokenAlg           string
	AccessTokenTTL       time.Duration
	RefreshIdleTTL       time.Duration
	RefreshMaxTTL        time.Duration
	RefreshWithSession   bool
	BackchannelLogoutURI string
}

func invalid(field, code, format string, args ...any) error {
	return ciam.Errorf(ciam.Invalid, code, format, args...).OnField(field)
}

// build validates in and turns it into a client, reporting every problem.
func build(in Input) (*ciam.Client, error) {
	var errs []error
	c := &ciam.Client{
		Name: strings.TrimSpace(in.Name), Public: in.Public, FirstParty: in.FirstParty,
		RedirectURIs: in.RedirectURIs, PostLogoutURIs: in.PostLogoutURIs, GrantTypes: in.GrantTypes,
		Scopes: in.Scopes, Audiences: in.Audiences, TokenAuthMethod: in.TokenAuthMethod, JWKS: in.JWKS,
		IDTokenAlg: in.IDTokenAlg, AccessTokenTTL: in.AccessTokenTTL, RefreshIdleTTL: in.RefreshIdleTTL,
		RefreshMaxTTL: in.RefreshMaxTTL, RefreshWithSession: in.RefreshWithSession, BackchannelLogoutURI: in.BackchannelLogoutURI,
	}
	if c.Name == "" || len([]rune(c.Name)) > 100 {
		errs = append(errs, invalid("name", "invalid_client_name", "A client needs a name of 1 to 100 characters."))
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{ciam.GrantAuthorizationCode, ciam.GrantRefreshToken}
	}
	for _, g := range c.GrantTypes {
		switch g {
		case ciam.GrantAuthorizationCode, ciam.GrantRefreshToken:
		case ciam.GrantClientCredentials:
			if c.Public {
				errs = append(errs, invalid("grant_types", "public_client_credentials", "A public client cannot use client_credentials: it has no secret."))
			}
		default:
			errs = append(errs, invalid("grant_types", "unsupported_grant_type", "Grant type %q is not supported; use authorization_code, refresh_token or client_credentials (implicit and password grants are not offered).", g))
		}
	}
	c.GrantTypes = dedupe(c.GrantTypes)
	if c.HasGrant(ciam.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		errs = append(errs, invalid("redirect_uris", "redirect_uri_required", "A client that uses the authorization code flow needs at least one redirect URI."))
	}
	for _, u := range c.RedirectURIs {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			errs = append(errs, invalid("redirect_uris", "invalid_redirect_uri", "Redirect URI %q: %s", u, describe(err)))
		}
	}
	for _, u := range c.PostLogoutURIs {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			errs = append(errs, invalid("post_logout_redirect_uris", "invalid_redirect_uri", "Post-logout redirect URI %q: %s", u, describe(err)))
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := oauth.ValidateRedirectURI(c.BackchannelLogoutURI); err != nil || strings.Contains(c.BackchannelLogoutURI, "#") {
			errs = append(errs, invalid("backchannel_logout_uri", "invalid_backchannel_logout_uri", "The back-channel logout URI must be an absolute https URI (http only on loopback)."))
		}
	}
	c.RedirectURIs, c.PostLogoutURIs = dedupe(c.RedirectURIs), dedupe(c.PostLogoutURIs)
	if c.TokenAuthMethod == "" {
		if c.Public {
			c.TokenAuthMethod = ciam.AuthNone
		} else {
			c.TokenAuthMethod = ciam.AuthSecretBasic
		}
	}
	switch c.TokenAuthMethod {
	case ciam.AuthNone:
		if !c.Public {
			errs = append(errs, invalid("token_endpoint_auth_method", "invalid_auth_method", "Only a public client authenticates with \"none\"."))
		}
	case ciam.AuthSecretBasic, ciam.AuthSecretPost:
		if c.Public {
			errs = append(errs, invalid("token_endpoint_auth_method", "invalid_auth_method", "A public client has no secret; it authenticates with \"none\"."))
		}
	case ciam.AuthPrivateKeyJWT:
		if c.Public {
			errs = append(errs, invalid("token_endpoint_auth_method", "invalid_auth_method", "A public client authenticates with \"none\"."))
		}
		if err := checkJWKS(c.JWKS); err != nil {
			errs = append(errs, invalid("jwks", "invalid_jwks", "private_key_jwt needs the client's public keys as a JWK Set: %s", describe(err)))
		}
	default:
		errs = append(errs, invalid("token_endpoint_auth_method", "invalid_auth_method", "Authentication method %q is not supported; use client_secret_basic, client_secret_post, private_key_jwt or none.", c.TokenAuthMethod))
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	for _, s := range c.Scopes {
		if _, err := oauth.ParseScope(s); err != nil || strings.Contains(s, " ") {
			errs = append(errs, invalid("scopes", "invalid_scope", "Scope %q is not a valid scope token.", s))
		}
	}
	c.Scopes, c.Audiences = dedupe(c.Scopes), dedupe(c.Audiences)
	switch c.IDTokenAlg {
	case "", ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA:
	default:
		errs = append(errs, invalid("id_token_signed_response_alg", "invalid_alg", "ID tokens can be signed with ES256 (the default), RS256 or EdDSA."))
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.RefreshIdleTTL == 0 {
		c.RefreshIdleTTL = DefaultRefreshIdleTTL
	}
	if c.RefreshMaxTTL == 0 {
		c.RefreshMaxTTL = DefaultRefreshMaxTTL
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		errs = append(errs, invalid("access_token_ttl", "invalid_ttl", "The access token lifetime must be between 1 minute and 24 hours."))
	}
	if c.RefreshIdleTTL < time.Minute || c.RefreshMaxTTL < c.RefreshIdleTTL || c.RefreshMaxTTL > 400*24*time.Hour {
		errs = append(errs, invalid("refresh_token_ttl", "invalid_ttl", "Refresh token lifetimes: the idle lifetime at least 1 minute, the absolute lifetime at least the idle one and at most 400 days."))
	}
	return c, errors.Join(errs...)
}

func describe(err error) string {
	if e := oauth.As(err); e != nil && e.Description != "" {
		return e.Description
	}
	if e := ciam.As(err); e != nil {
		return e.Msg
	}
	return err.Error()
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// newSecret returns a 256-bit secret and its SHA-256.
func newSecret() (string, []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	s := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(s))
	return s, sum[:]
}

// Create registers a client and returns it with its secret (empty for a
// public client). The secret is shown once: only its hash is kept.
func (r *Registry) Create(ctx context.Context, t *ciam.Tenant, in Input, actor string, m audit.Meta) (*ciam.Client, string, error) {
	c, err := build(in)
	if err != nil {
		return nil, "", err
	}
	now := r.Now().UTC()
	c.ID, c.TenantID, c.CreatedAt, c.UpdatedAt = ciam.ClientID(ciam.NewID()), t.ID, now, now
	var secret string
	if !c.Public && c.TokenAuthMethod != ciam.AuthPrivateKeyJWT {
		secret, c.SecretHash = newSecret()
		c.SecretRotatedAt = now
	}
	err = r.Store.Tx(ctx, t.ID, func(tx store.Tx) error {
		if err := tx.Clients().Create(ctx, c); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, EventCreated, actor, string(c.ID), ciam.OutcomeSuccess, nil, m, "", map[string]string{"name": c.Name})
	})
	if err != nil {
		return nil, "", fmt.Errorf("create client: %w", err)
	}
	return c, secret, nil
}

var errNotFound = ciam.Errorf(ciam.NotFound, "client_not_found", "There is no such client.")

// Get returns a client from the store (not the cache).
func (r *Registry) Get(ctx context.Context, t ciam.TenantID, id ciam.ClientID) (*ciam.Client, error) {
	var c *ciam.Client
	err := r.Store.View(ctx, t, func(tx store.Tx) error {
		var err error
		c, err = tx.Clients().Get(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound
	}
	return c, err
}

// Lookup returns a client for the request path, cached for CacheTTL.
func (r *Registry) Lookup(ctx context.Context, t ciam.TenantID, id ciam.ClientID) (*ciam.Client, error) {
	k := cacheKey{t, id}
	now := r.Now()
	r.mu.RLock()
	cc, ok := r.cache[k]
	r.mu.RUnlock()
	if ok && now.Before(cc.expires) {
		return cc.c, nil
	}
	if id == "" || len(id) > 128 {
		return nil, errNotFound
	}
	c, err := r.Get(ctx, t, id)
	if err != nil {
		return nil, err
	}
	ttl := r.CacheTTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) > 100000 {
		r.cache = map[cacheKey]cachedClient{}
	}
	r.cache[k] = cachedClient{c: c, expires: now.Add(ttl)}
	r.mu.Unlock()
	return c, nil
}

func (r *Registry) forget(t ciam.TenantID, id ciam.ClientID) {
	r.mu.Lock()
	delete(r.cache, cacheKey{t, id})
	r.mu.Unlock()
}

// List pages through the tenant's clients.
func (r *Registry) List(ctx context.Context, t ciam.TenantID, after ciam.ClientID, limit int) ([]*ciam.Client, error) {
	var out []*ciam.Client
	err := r.Store.View(ctx, t, func(tx store.Tx) error {
		var err error
		out, err = tx.Clients().List(ctx, after, limit)
		return err
	})
	return out, err
}

// Delete removes a client and everything issued to it.
func (r *Registry) Delete(ctx context.Context, t ciam.TenantID, id ciam.ClientID, actor string, m audit.Meta) error {
	now := r.Now().UTC()
	err := r.Store.Tx(ctx, t, func(tx store.Tx) error {
		if err := tx.Clients().Delete(ctx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, EventDeleted, actor, string(id), ciam.OutcomeSuccess, nil, m, "", nil)
	})
	r.forget(t, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	return err
}

// RotateSecret issues a new secret; the old one stops working at once.
func (r *Registry) RotateSecret(ctx context.Context, t ciam.TenantID, id ciam.ClientID, actor string, m audit.Meta) (string, error) {
	now := r.Now().UTC()
	var secret string
	err := r.Store.Tx(ctx, t, func(tx store.Tx) error {
		c, err := tx.Clients().Get(ctx, id)
		if err != nil {
			return err
		}
		if c.Public || c.TokenAuthMethod == ciam.AuthPrivateKeyJWT {
			return ciam.Errorf(ciam.Invalid, "no_secret", "This client does not authenticate with a secret.")
		}
		secret, c.SecretHash = newSecret()
		c.SecretRotatedAt, c.UpdatedAt = now, now
		if err := tx.Clients().Update(ctx, c); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, EventSecretRotated, actor, string(id), ciam.OutcomeSuccess, nil, m, "", nil)
	})
	r.forget(t, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", errNotFound
	}
	return secret, err
}

// VerifySecret reports whether secret is the client's, in constant time.
func VerifySecret(c *ciam.Client, secret string) bool {
	if len(c.SecretHash) != sha256.Size || secret == "" {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], c.SecretHash) == 1
}
