package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// consentView is what the consent page shows.
type consentView struct {
	ClientName string
	Scopes     []string // plain-language descriptions
	Next       string
}

// scopeMessage is the catalogue id describing a scope in plain language.
func scopeMessage(scope string) string {
	switch scope {
	case "openid", "profile", "email", "offline_access":
		return "scope." + scope
	}
	return "scope.other"
}

// consentRequest reads the authorization request the consent page is for. It
// must be this tenant's authorize endpoint; the provider validates it again
// when the browser returns there.
func (h *Handler) consentRequest(r *http.Request, t *ciam.Tenant, next string) (*ciam.Client, []string, url.Values, bool) {
	prefix := "/t/" + t.Slug + "/authorize?"
	if !strings.HasPrefix(next, prefix) {
		return nil, nil, nil, false
	}
	q, err := url.ParseQuery(strings.TrimPrefix(next, prefix))
	if err != nil {
		return nil, nil, nil, false
	}
	c, err := h.Clients.Lookup(r.Context(), t.ID, ciam.ClientID(q.Get("client_id")))
	if err != nil {
		return nil, nil, nil, false
	}
	scopes, err := oauth.ParseScope(q.Get("scope"))
	if err != nil || !oauth.Subset(scopes, c.Scopes) {
		return nil, nil, nil, false
	}
	return c, scopes, q, true
}

// allowReturnTo widens the page's CSP form-action to the client's redirect
// URI when next is an authorization request of tenant t with a redirect URI
// the client registered. Browsers apply form-action to the redirects that
// follow a form submission, and the login, sign-up and consent forms end,
// through the authorization endpoint, at the client: with form-action 'self'
// alone the browser blocks that last redirect and the user stays on the form.
func (h *Handler) allowReturnTo(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, next string) {
	prefix := "/t/" + t.Slug + "/authorize?"
	if !strings.HasPrefix(next, prefix) {
		return
	}
	q, err := url.ParseQuery(strings.TrimPrefix(next, prefix))
	if err != nil {
		return
	}
	c, err := h.Clients.Lookup(r.Context(), t.ID, ciam.ClientID(q.Get("client_id")))
	if err != nil {
		return
	}
	if ru := q.Get("redirect_uri"); ru != "" {
		if _, ok := oauth.MatchRedirectURI(c.RedirectURIs, ru); ok {
			web.AllowFormAction(w, ru)
		}
	}
}

func (h *Handler) consentForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	next := r.URL.Query().Get("next")
	s, u, err := h.current(r, t)
	if err != nil {
		return err
	}
	if s == nil {
		http.Redirect(w, r, "/t/"+t.Slug+"/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil
	}
	c, scopes, _, ok := h.consentRequest(r, t, next)
	if !ok {
		return ciam.Errorf(ciam.Invalid, "invalid_consent_request", "This consent request is not valid.")
	}
	p := h.newPage(r, t, "consent.title")
	p.User = u
	p.CSRF = h.CSRF.Token(w, r)
	v := consentView{ClientName: c.Name, Next: next}
	for _, sc := range scopes {
		v.Scopes = append(v.Scopes, p.T(scopeMessage(sc), "Scope", sc))
	}
	p.Data = v
	h.allowReturnTo(w, r, t, next)
	return h.render(w, r, http.StatusOK, "consent", p)
}

func (h *Handler) consent(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	_ = s
	next := r.PostFormValue("next")
	c, scopes, _, valid := h.consentRequest(r, t, next)
	if !valid {
		return ciam.Errorf(ciam.Invalid, "invalid_consent_request", "This consent request is not valid.")
	}
	decision := "denied"
	if r.PostFormValue("decision") == "allow" {
		if err := h.Consents.Grant(r.Context(), t, u, c.ID, scopes, h.meta(r)); err != nil {
			return err
		}
		decision = "given"
	}
	http.Redirect(w, r, next+"&gh_consent="+decision, http.StatusSeeOther)
	return nil
}

// grantView is one row of the account page's list of connected applications.
type grantView struct {
	ClientID, ClientName string
	Scopes               []string
}

func (h *Handler) grantViews(r *http.Request, t *ciam.Tenant, u *ciam.User, p *page) ([]grantView, error) {
	gs, err := h.Consents.List(r.Context(), t, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]grantView, 0, len(gs))
	for _, g := range gs {
		name := string(g.ClientID)
		if c, err := h.Clients.Lookup(r.Context(), t.ID, g.ClientID); err == nil {
			name = c.Name
		}
		v := grantView{ClientID: string(g.ClientID), ClientName: name}
		for _, sc := range g.Scopes {
			if !slices.Contains([]string{"openid"}, sc) {
				v.Scopes = append(v.Scopes, p.T(scopeMessage(sc), "Scope", sc))
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (h *Handler) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	t, _, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	if err := h.Consents.Revoke(r.Context(), t, u, ciam.ClientID(r.PathValue("client")), h.meta(r)); err != nil {
		return err
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account?done=grant", http.StatusSeeOther)
	return nil
}
