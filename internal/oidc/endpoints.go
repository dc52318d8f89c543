package oidc

import (
	"net/http"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// authenticateClient parses and checks the client's credentials at a
// back-channel endpoint.
func (h *Handler) authenticateClient(r *http.Request, t *ciam.Tenant, endpoint string) (*ciam.Client, error) {
	cred, err := oauth.ParseClientAuth(r)
	if err != nil {
		return nil, err
	}
	iss := h.Issuer(t)
	return h.Clients.Authenticate(r.Context(), t.ID, cred, []string{iss + endpoint, iss})
}

// token is the token endpoint (RFC 6749 section 3.2), one branch per grant type.
func (h *Handler) token(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	c, err := h.authenticateClient(r, t, "/token")
	if err != nil {
		return err
	}
	form := r.PostForm
	for _, k := range []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"} {
		if len(form[k]) > 1 {
			return oauth.InvalidRequest("The parameter " + k + " appears more than once.")
		}
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return oauth.InvalidRequest("grant_type is required.")
	}
	if grant != ciam.GrantAuthorizationCode && grant != ciam.GrantRefreshToken && grant != ciam.GrantClientCredentials {
		return oauth.UnsupportedGrantType("Supported grant types: authorization_code, refresh_token, client_credentials.")
	}
	if !c.HasGrant(grant) {
		return oauth.UnauthorizedClient("This client may not use the " + grant + " grant.")
	}
	var out *token.Tokens
	switch grant {
	case ciam.GrantAuthorizationCode:
		if form.Get("code") == "" || form.Get("redirect_uri") == "" {
			return oauth.InvalidRequest("code and redirect_uri are required.")
		}
		out, err = h.Tokens.RedeemCode(r.Context(), t, c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
	case ciam.GrantRefreshToken:
		if form.Get("refresh_token") == "" {
			return oauth.InvalidRequest("refresh_token is required.")
		}
		out, err = h.Tokens.Refresh(r.Context(), t, c, form.Get("refresh_token"), form.Get("scope"))
	case ciam.GrantClientCredentials:
		aud := form["resource"]
		if a := form.Get("audience"); a != "" {
			aud = append(aud, a)
		}
		out, err = h.Tokens.ClientCredentials(r.Context(), t, c, form.Get("scope"), aud)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// bearer returns the access token from the Authorization header only
// (RFC 6750 section 2.1); tokens in the query or body are not accepted.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}

// userinfo returns the claims the access token's scopes release (OpenID
// Connect Core 5.3).
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	realm := h.Issuer(t)
	tok, ok := bearer(r)
	if !ok {
		oauth.WriteBearer(w, realm, nil)
		return nil
	}
	a, err := h.Tokens.CheckAccess(r.Context(), t, tok)
	if err != nil {
		if e := oauth.As(err); e != nil && e.Code == oauth.CodeInvalidToken {
			oauth.WriteBearer(w, realm, err)
			return nil
		}
		return err
	}
	if !oauth.Contains(a.Scopes, "openid") {
		oauth.WriteBearer(w, realm, oauth.InsufficientScope("The access token lacks the openid scope."))
		return nil
	}
	// CheckAccess read the user with the token's liveness, in one query.
	u, err := a.User, error(nil)
	if u == nil {
		u, err = h.Users.Get(r.Context(), t, ciam.UserID(a.Subject))
	}
	if err != nil || u.Status != ciam.UserActive {
		if err != nil && ciam.KindOf(err) != ciam.NotFound {
			return err
		}
		oauth.WriteBearer(w, realm, oauth.InvalidToken("The access token's user no longer exists or is disabled."))
		return nil
	}
	claims := token.UserClaims(u, a.Scopes)
	claims["sub"] = string(u.ID)
	return writeJSON(w, http.StatusOK, claims)
}

// introspect is RFC 7662: only authenticated clients may ask.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	c, err := h.authenticateClient(r, t, "/introspect")
	if err != nil {
		return err
	}
	if c.Public {
		return oauth.UnauthorizedClient("Public clients may not introspect tokens.")
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		return oauth.InvalidRequest("token is required.")
	}
	res, err := h.Tokens.Introspect(r.Context(), t, c, tok, r.PostForm.Get("token_type_hint"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// revoke is RFC 7009: the answer is 200 whether or not the token was known.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	c, err := h.authenticateClient(r, t, "/revoke")
	if err != nil {
		return err
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		return oauth.InvalidRequest("token is required.")
	}
	if hint := r.PostForm.Get("token_type_hint"); hint != "" && hint != "access_token" && hint != "refresh_token" {
		return oauth.UnsupportedTokenType("token_type_hint must be access_token or refresh_token.")
	}
	if err := h.Tokens.Revoke(r.Context(), t, c, tok, r.PostForm.Get("token_type_hint")); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
