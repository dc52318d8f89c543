// Package oidc serves each tenant's OAuth 2.1 / OpenID Connect provider under
// its issuer {public_url}/t/{tenant}: discovery (OpenID and RFC 8414
// metadata), the JWKS, authorize, token, userinfo, introspection (RFC 7662),
// revocation (RFC 7009), RP-initiated logout, and the delivery of
// back-channel logout tokens queued in the outbox. Protocol errors are RFC
// 6749 errors through package oauth; tokens come from package token. The
// login and consent pages it sends browsers to belong to package ui.
package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/consent"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
	"github.com/gatehouse-id/gatehouse/internal/user"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Handler serves the provider endpoints. Its fields are everything it uses.
type Handler struct {
	PublicURL *url.URL
	Secure    bool // the public URL is https (session cookie naming)
	Tenants   *tenant.Service
	Users     *user.Service
	Sessions  *session.Manager
	Clients   *client.Registry
	Consents  *consent.Service
	Keys      *keys.Manager
	Tokens    *token.Service
	Log       *slog.Logger
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Now is the clock; when nil, the token service's clock (else time.Now).
	Now func() time.Time
	// Backchannel posts back-channel logout tokens; nil means BackchannelClient().
	Backchannel *http.Client

	mu        sync.Mutex
	discovery map[discoveryKey][]byte
}

type discoveryKey struct {
	tenant  ciam.TenantID
	version int64
	kind    string
}

func (h *Handler) now() time.Time {
	switch {
	case h.Now != nil:
		return h.Now()
	case h.Tokens != nil && h.Tokens.Now != nil:
		return h.Tokens.Now()
	}
	return time.Now()
}

// Issuer returns tenant t's issuer URL.
func (h *Handler) Issuer(t *ciam.Tenant) string {
	return strings.TrimSuffix(h.PublicURL.String(), "/") + "/t/" + t.Slug
}

// Mount registers the provider's routes.
func (h *Handler) Mount(m *web.Mux) {
	m.HandleHTTP("GET /t/{tenant}/.well-known/openid-configuration", h.api(h.openIDConfiguration))
	m.HandleHTTP("GET /t/{tenant}/.well-known/oauth-authorization-server", h.api(h.authorizationServerMetadata))
	m.HandleHTTP("GET /.well-known/oauth-authorization-server/t/{tenant}", h.api(h.authorizationServerMetadata))
	m.HandleHTTP("GET /t/{tenant}/jwks.json", h.api(h.jwks))
	m.Handle("GET /t/{tenant}/authorize", h.authorize)
	m.Handle("POST /t/{tenant}/authorize", h.authorize)
	m.HandleHTTP("POST /t/{tenant}/token", h.api(h.token))
	m.HandleHTTP("GET /t/{tenant}/userinfo", h.api(h.userinfo))
	m.HandleHTTP("POST /t/{tenant}/userinfo", h.api(h.userinfo))
	m.HandleHTTP("POST /t/{tenant}/introspect", h.api(h.introspect))
	m.HandleHTTP("POST /t/{tenant}/revoke", h.api(h.revoke))
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json", "/token", "/userinfo", "/introspect", "/revoke"} {
		m.HandleHTTP("OPTIONS /t/{tenant}"+p, http.HandlerFunc(preflight))
	}
	// Other methods at the POST-only endpoints get an RFC 6749 error in
	// JSON, which a client library can read, rather than the HTML 405 page.
	for _, p := range []string{"/token", "/introspect", "/revoke"} {
		m.HandleHTTP("/t/{tenant}"+p, h.api(postOnly))
	}
	m.Handle("GET /t/{tenant}/end_session", h.endSession)
	m.Handle("POST /t/{tenant}/end_session", h.endSession)
}

// apiFunc is an endpoint that answers with JSON and RFC 6749 errors.
type apiFunc func(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error

// api resolves the tenant, allows cross-origin calls (these endpoints use
// no cookies), and writes errors as RFC 6749 JSON.
func (h *Handler) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		t, err := h.Tenants.BySlug(r.Context(), r.PathValue("tenant"))
		if err == nil {
			err = f(w, r, t)
		}
		if err == nil {
			return
		}
		if e := oauth.As(err); e != nil && e.Code != oauth.CodeServerError {
			if e.Code == oauth.CodeInvalidClient {
				oauth.WriteBasic(w, "gatehouse", err)
				return
			}
			oauth.WriteJSON(w, err)
			return
		}
		h.writeClassified(w, r, err)
	})
}

// writeClassified turns a non-OAuth error into the closest RFC 6749 answer.
func (h *Handler) writeClassified(w http.ResponseWriter, r *http.Request, err error) {
	switch ciam.KindOf(err) {
	case ciam.NotFound:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found","error_description":"There is no such tenant."}` + "\n"))
		return
	case ciam.Unavailable:
		oauth.WriteJSON(w, oauth.TemporarilyUnavailable("The service is temporarily unavailable; try again shortly."))
	case ciam.TooLarge:
		oauth.WriteJSON(w, oauth.InvalidRequest("The request body is too large.").WithStatus(http.StatusRequestEntityTooLarge))
	default:
		if h.Log != nil {
			h.Log.ErrorContext(r.Context(), "provider endpoint failed", "err", err, "request_id", web.RequestID(r.Context()))
		}
		oauth.WriteJSON(w, oauth.ServerError("An internal error occurred."))
	}
}

func postOnly(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	w.Header().Set("Allow", "OPTIONS, POST")
	return oauth.InvalidRequest("This endpoint accepts only POST requests (RFC 6749 section 3.2).").WithStatus(http.StatusMethodNotAllowed)
}

func preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

func (h *Handler) currentSession(ctx context.Context, r *http.Request, t *ciam.Tenant) (*ciam.Session, *ciam.User, error) {
	c, err := r.Cookie(session.CookieName(t.Slug, h.Secure))
	if err != nil {
		return nil, nil, nil
	}
	s, err := h.Sessions.Lookup(ctx, t, c.Value)
	if err != nil {
		if ciam.KindOf(err) == ciam.Unauthenticated {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	u, err := h.Users.Get(ctx, t, s.UserID)
	if err != nil || u.Status != ciam.UserActive {
		if err != nil && ciam.KindOf(err) != ciam.NotFound {
			return nil, nil, err
		}
		return nil, nil, nil
	}
	return s, u, nil
}

func sessionCookie(t *ciam.Tenant, secure bool) string { return session.CookieName(t.Slug, secure) }

func (h *Handler) meta(r *http.Request) audit.Meta {
	return audit.Meta{RequestID: web.RequestID(r.Context()), IP: web.ClientIP(r, h.TrustedProxies), UserAgent: r.UserAgent()}
}
