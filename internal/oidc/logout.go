package oidc

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/token"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// endSession is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
// With a valid id_token_hint of the current user the session ends at once and
// the browser returns to a post_logout_redirect_uri registered for that
// client, with state; without a hint the user confirms on the logout page.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) error {
	t, err := h.Tenants.BySlug(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return pageError("The logout request could not be read.")
	}
	get := r.Form.Get
	hint, postLogout, state := get("id_token_hint"), get("post_logout_redirect_uri"), get("state")
	if hint == "" {
		http.Redirect(w, r, "/t/"+t.Slug+"/logout", http.StatusSeeOther)
		return nil
	}
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
		Azp string `json:"azp"`
		SID string `json:"sid"`
	}
	if _, err := h.Keys.Verify(r.Context(), t.ID, hint, token.TypeID, &claims); err != nil || claims.Iss != h.Issuer(t) {
		return pageError("The id_token_hint is not an ID token issued here.")
	}
	clientID := claims.Azp
	if cid := get("client_id"); cid != "" && cid != clientID {
		return pageError("client_id does not match the id_token_hint.")
	}
	var target string
	if postLogout != "" {
		c, err := h.Clients.Lookup(r.Context(), t.ID, ciam.ClientID(clientID))
		if err != nil {
			return pageError("The client of the id_token_hint is unknown.")
		}
		if _, ok := oauth.MatchRedirectURI(c.PostLogoutURIs, postLogout); !ok {
			return pageError("The post_logout_redirect_uri is not registered for this client.")
		}
		target = postLogout
	}
	s, u, err := h.currentSession(r.Context(), r, t)
	if err != nil {
		return err
	}
	if s != nil && string(u.ID) == claims.Sub {
		if err := h.Sessions.End(r.Context(), t, s, h.meta(r)); err != nil {
			return err
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie(t, h.Secure), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	}
	if target == "" {
		http.Redirect(w, r, "/t/"+t.Slug+"/login?loggedout=1", http.StatusSeeOther)
		return nil
	}
	u2, _ := url.Parse(target)
	q := u2.Query()
	if state != "" {
		q.Set("state", state)
	}
	u2.RawQuery = q.Encode()
	web.AllowFormAction(w, target)
	http.Redirect(w, r, u2.String(), http.StatusSeeOther)
	return nil
}
