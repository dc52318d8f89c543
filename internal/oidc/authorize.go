package oidc

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/token"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// authRequest is a validated authorization request.
type authRequest struct {
	client      *ciam.Client
	redirectURI string
	state       string
	mode        string // query or form_post
	scopes      []string
	nonce       string
	challenge   string
	prompt      []string
	maxAge      int // -1 when absent
	loginHint   string
	idTokenHint string
	uiLocales   string
	wantMFA     bool // acr_values asks for multi-factor and nothing less
}

// pageError is an authorization error shown on a page, never redirected:
// the client or its redirect URI could not be trusted.
func pageError(desc string) error {
	return ciam.Errorf(ciam.Invalid, "invalid_authorization_request", "%s", desc)
}

// authorize is the authorization endpoint (RFC 6749 section 4.1, OpenID
// Connect Core 3.1.2). Until the client and redirect URI are validated,
// errors are shown on a page; after, they go back to the client.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) error {
	t, err := h.Tenants.BySlug(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return pageError("The authorization request could not be read.")
	}
	params := r.Form
	if r.Method == http.MethodPost {
		params = r.PostForm
	}
	for name, vs := range params {
		if len(vs) > 1 {
			return pageError(fmt.Sprintf("The parameter %q appears more than once.", name))
		}
	}
	get := params.Get
	if get("request") != "" || get("request_uri") != "" {
		// Without a trusted redirect URI yet, an unsupported request object is a page error.
		if get("client_id") == "" {
			return pageError("Request objects are not supported.")
		}
	}
	c, err := h.Clients.Lookup(r.Context(), t.ID, ciam.ClientID(get("client_id")))
	if err != nil {
		if ciam.KindOf(err) == ciam.NotFound {
			return pageError("The client_id is missing or unknown.")
		}
		return err
	}
	if !c.HasGrant(ciam.GrantAuthorizationCode) {
		return pageError("This client may not use the authorization code flow.")
	}
	redirect, ok := oauth.MatchRedirectURI(c.RedirectURIs, get("redirect_uri"))
	if !ok || get("redirect_uri") == "" {
		return pageError("The redirect_uri is missing or is not registered for this client.")
	}
	req := &authRequest{client: c, redirectURI: get("redirect_uri"), state: get("state"), mode: "query", maxAge: -1}
	_ = redirect
	if m := get("response_mode"); m != "" {
		if m != "query" && m != "form_post" {
			return h.fail(w, r, t, req, oauth.InvalidRequest("response_mode must be query or form_post."))
		}
		req.mode = m
	}
	if err := h.validate(t, req, params); err != nil {
		return h.fail(w, r, t, req, err)
	}
	return h.proceed(w, r, t, req, params)
}

// validate checks the rest of the request once the redirect URI is trusted.
func (h *Handler) validate(t *ciam.Tenant, req *authRequest, p url.Values) error {
	get := p.Get
	if get("request") != "" {
		return oauth.RequestNotSupported("Request objects are not supported.")
	}
	if get("request_uri") != "" {
		return oauth.New("request_uri_not_supported", "request_uri is not supported.")
	}
	if rt := get("response_type"); rt != "code" {
		if rt == "" {
			return oauth.InvalidRequest("response_type is required and must be code.")
		}
		return oauth.UnsupportedResponseType("Only response_type=code is supported.")
	}
	if err := oauth.ValidateChallenge(get("code_challenge"), get("code_challenge_method")); err != nil {
		return err
	}
	req.challenge = get("code_challenge")
	scopes, err := oauth.ParseScope(get("scope"))
	if err != nil {
		return err
	}
	if !oauth.Subset(scopes, req.client.Scopes) {
		return oauth.InvalidScope("The client may not request one of these scopes.")
	}
	req.scopes = scopes
	req.nonce = get("nonce")
	if len(req.nonce) > 512 || len(req.state) > 2048 {
		return oauth.InvalidRequest("state or nonce is too long.")
	}
	if pr := get("prompt"); pr != "" {
		req.prompt = strings.Fields(pr)
		for _, x := range req.prompt {
			switch x {
			case "none", "login", "consent", "create":
			case "select_account":
				return oauth.AccountSelectionRequired("Account selection is not supported.")
			default:
				return oauth.InvalidRequest("Unknown prompt value " + strconv.Quote(x) + ".")
			}
		}
		if slices.Contains(req.prompt, "none") && len(req.prompt) > 1 {
			return oauth.InvalidRequest("prompt=none cannot be combined with other values.")
		}
	}
	if ma := get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return oauth.InvalidRequest("max_age must be a non-negative number of seconds.")
		}
		req.maxAge = n
	}
	if acr := get("acr_values"); acr != "" {
		// Voluntary (OpenID Connect Core 3.1.2.1): unknown values are
		// ignored; multi-factor is required when it is asked for and
		// single-factor is not offered as an alternative.
		vals := strings.Fields(acr)
		req.wantMFA = slices.Contains(vals, ACRMultiFactor) && !slices.Contains(vals, ACRSingleFactor)
	}
	req.loginHint, req.idTokenHint, req.uiLocales = get("login_hint"), get("id_token_hint"), get("ui_locales")
	if len(req.loginHint) > 320 {
		return oauth.InvalidRequest("login_hint is too long.")
	}
	return nil
}

// proceed authenticates the user (sending the browser to the login page when
// needed), checks consent and issues the code.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, req *authRequest, p url.Values) error {
	ctx := r.Context()
	s, u, err := h.currentSession(ctx, r, t)
	if err != nil {
		return h.fail(w, r, t, req, err)
	}
	promptNone := slices.Contains(req.prompt, "none")
	needLogin := s == nil || slices.Contains(req.prompt, "login")
	if s != nil && req.maxAge == 0 {
		needLogin = true // max_age=0 is prompt=login (OpenID Connect Core 3.1.2.1)
	}
	if s != nil && req.idTokenHint != "" {
		sub, err := h.hintSubject(ctx, t, req.idTokenHint)
		if err != nil {
			return h.fail(w, r, t, req, oauth.InvalidRequest("id_token_hint is not an ID token issued here."))
		}
		if sub != string(u.ID) {
			needLogin = true
		}
	}
	if needLogin {
		if promptNone {
			return h.fail(w, r, t, req, oauth.LoginRequired("The user is not logged in."))
		}
		return h.toLogin(w, r, t, req, p)
	}
	// Step-up without logging out: a login older than max_age seconds (on
	// the server's clock) is confirmed again, and a client that asks for
	// multi-factor gets the missing factor, on the confirmation page of
	// the same session. It returns here with the session renewed.
	stale := req.maxAge > 0 && h.now().Sub(s.AuthTime) > time.Duration(req.maxAge)*time.Second
	weak := req.wantMFA && s.ACR != ciam.ACRMultiFactor
	if stale || weak {
		if promptNone {
			if stale {
				return h.fail(w, r, t, req, oauth.LoginRequired("The user's login is older than max_age."))
			}
			return h.fail(w, r, t, req, oauth.New("interaction_required", "The user must pass a second factor."))
		}
		q := url.Values{"next": {"/t/" + t.Slug + "/authorize?" + p.Encode()}}
		if weak {
			q.Set("acr", "2")
		}
		http.Redirect(w, r, "/t/"+t.Slug+"/confirm?"+q.Encode(), http.StatusSeeOther)
		return nil
	}

	if !req.client.FirstParty {
		granted, err := h.Consents.Covers(ctx, t, u.ID, req.client.ID, req.scopes)
		if err != nil {
			return h.fail(w, r, t, req, err)
		}
		if p.Get("gh_consent") == "denied" {
			return h.fail(w, r, t, req, oauth.AccessDenied("The user denied the request."))
		}
		if !granted || (slices.Contains(req.prompt, "consent") && p.Get("gh_consent") != "given") {
			if promptNone {
				return h.fail(w, r, t, req, oauth.ConsentRequired("The user has not consented to this client."))
			}
			return h.toPage(w, r, t, "consent", p, nil)
		}
	}
	code, err := h.Tokens.IssueCode(ctx, t, token.CodeRequest{
		Client: req.client, User: u, Session: s, RedirectURI: req.redirectURI,
		Scopes: req.scopes, Nonce: req.nonce, Challenge: req.challenge,
	})
	if err != nil {
		return h.fail(w, r, t, req, err)
	}
	return h.respond(w, r, t, req, url.Values{"code": {code}})
}

// hintSubject returns the subject of an ID token this tenant issued; an
// expired hint is still a hint.
func (h *Handler) hintSubject(ctx context.Context, t *ciam.Tenant, hint string) (string, error) {
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if _, err := h.Keys.Verify(ctx, t.ID, hint, token.TypeID, &claims); err != nil {
		return "", err
	}
	if claims.Iss != h.Issuer(t) || claims.Sub == "" {
		return "", fmt.Errorf("id_token_hint of another issuer")
	}
	return claims.Sub, nil
}

// toLogin sends the browser to the login (or sign-up) page, which returns
// to this request when the user has authenticated.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, req *authRequest, p url.Values) error {
	page := "login"
	if slices.Contains(req.prompt, "create") {
		page = "signup"
	}
	extra := url.Values{}
	if req.loginHint != "" {
		extra.Set("login_hint", req.loginHint)
	}
	if slices.Contains(req.prompt, "login") || req.maxAge == 0 || req.idTokenHint != "" {
		extra.Set("force", "1")
	}
	for _, l := range strings.Fields(req.uiLocales) {
		if l = strings.ToLower(strings.SplitN(l, "-", 2)[0]); l == "en" || l == "de" {
			extra.Set("lang", l)
			break
		}
	}
	return h.toPage(w, r, t, page, p, extra)
}

// toPage redirects to a hosted page with next= this authorization request,
// minus what the page itself satisfies: the login and sign-up pages satisfy
// prompt=login (and create), max_age and id_token_hint with a fresh login;
// the consent page satisfies prompt=consent. Other prompt values stay (so
// prompt=login consent still shows the consent page after the login).
func (h *Handler) toPage(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, page string, p url.Values, extra url.Values) error {
	satisfied := []string{"consent"}
	if page != "consent" {
		satisfied = []string{"login", "create"}
	}
	next := url.Values{}
	for k, v := range p {
		switch k {
		case "gh_consent":
			continue
		case "prompt":
			var keep []string
			for _, x := range strings.Fields(p.Get("prompt")) {
				if !slices.Contains(satisfied, x) {
					keep = append(keep, x)
				}
			}
			if len(keep) > 0 {
				next.Set("prompt", strings.Join(keep, " "))
			}
			continue
		case "max_age", "id_token_hint":
			if page != "consent" {
				continue // satisfied by the fresh login
			}
		}
		next[k] = v
	}
	q := url.Values{"next": {"/t/" + t.Slug + "/authorize?" + next.Encode()}}
	for k, v := range extra {
		q[k] = v
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/"+page+"?"+q.Encode(), http.StatusSeeOther)
	return nil
}

// fail sends an error back to the client (its redirect URI is trusted by now).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, req *authRequest, err error) error {
	e := oauth.As(err)
	if e == nil || e.Code == oauth.CodeServerError {
		if ciam.KindOf(err) == ciam.Unavailable {
			e = oauth.TemporarilyUnavailable("The service is temporarily unavailable; try again shortly.")
		} else {
			if h.Log != nil {
				h.Log.ErrorContext(r.Context(), "authorize failed", "err", err, "request_id", web.RequestID(r.Context()))
			}
			e = oauth.ServerError("An internal error occurred.")
		}
	}
	return h.respond(w, r, t, req, oauth.RedirectParams(e, req.state, h.Issuer(t)))
}

// respond returns the authorization response to the client's redirect URI,
// with state and iss (RFC 9207), as a query or an auto-submitted form.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, req *authRequest, v url.Values) error {
	if v.Get("iss") == "" {
		v.Set("iss", h.Issuer(t))
	}
	if req.state != "" && v.Get("state") == "" {
		v.Set("state", req.state)
	}
	w.Header().Set("Cache-Control", "no-store")
	if req.mode == "form_post" {
		return h.formPost(w, r, req.redirectURI, v)
	}
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		return pageError("The redirect_uri cannot be used.")
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	web.AllowFormAction(w, req.redirectURI)
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return nil
}

var formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue</title></head>
<body><form method="post" action="{{.Action}}">{{range $k, $v := .Values}}{{range $v}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript></form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script></body></html>
`))

// formPost answers with an auto-submitting form (OAuth 2.0 Form Post
// Response Mode); without JavaScript a button submits it.
func (h *Handler) formPost(w http.ResponseWriter, r *http.Request, action string, v url.Values) error {
	web.AllowFormAction(w, action)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The action is a redirect URI the client registered (validated at
	// registration: no javascript: or data:), so a private-use scheme of a
	// native app is trusted rather than replaced with html/template's
	// "#ZgotmplZ". It is still attribute-escaped.
	return formPostPage.Execute(w, map[string]any{"Action": template.URL(action), "Values": v, "Nonce": web.CSPNonce(r.Context())})
}
