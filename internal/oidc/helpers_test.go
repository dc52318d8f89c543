package oidc_test

// Shared helpers of the provider's protocol tests: a fixture (a whole server
// over httptest with a user), client registration, a browser driver that
// walks the hosted login and consent pages, and small HTTP helpers for the
// requests the client libraries cannot be made to send (malformed ones,
// attacks). Tokens are only ever obtained from the server; the few tokens a
// test builds itself are forgeries that must be refused.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

const (
	testPassword = "correct horse battery staple"
	testEmail    = "ada@example.com"
	appCallback  = "https://app.example/cb"
)

// fixture is a running server with one user in a tenant.
type fixture struct {
	t        *testing.T
	env      *testenv.Env
	ctx      context.Context
	tenant   *ciam.Tenant
	issuer   string
	provider *oidc.Provider
	user     *ciam.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return fixtureOn(t, testenv.New(t))
}

func fixtureOn(t *testing.T, env *testenv.Env) *fixture {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), env.HTTP.Client())
	tn, err := env.Server.Tenants.BySlug(ctx, tenant.DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, env: env, ctx: ctx, tenant: tn, issuer: env.URL + "/t/" + tn.Slug}
	f.user = f.newUser(tn, testEmail, "Ada Lovelace")
	f.provider, err = oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s): %v", f.issuer, err)
	}
	return f
}

// newUser creates a user with testPassword in tenant tn.
func (f *fixture) newUser(tn *ciam.Tenant, email, name string) *ciam.User {
	f.t.Helper()
	u, err := f.env.Server.Users.Create(f.ctx, tn, user.Input{Email: email, Name: name, Password: testPassword, EmailVerified: true, Locale: "en"}, "test", audit.Meta{})
	if err != nil {
		f.t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// newTenant creates another tenant with a user of the same email.
func (f *fixture) newTenant(slug string) *ciam.Tenant {
	f.t.Helper()
	tn, err := f.env.Server.Tenants.Create(f.ctx, slug, tenant.Settings{}, "test", audit.Meta{})
	if err != nil {
		f.t.Fatalf("create tenant %s: %v", slug, err)
	}
	f.newUser(tn, testEmail, "Ada in "+slug)
	return tn
}

// registered is a client and the secret it was given.
type registered struct {
	*ciam.Client
	Secret string
}

func (f *fixture) register(in client.Input) registered {
	return f.registerIn(f.tenant, in)
}

func (f *fixture) registerIn(tn *ciam.Tenant, in client.Input) registered {
	f.t.Helper()
	if in.Name == "" {
		in.Name = "Test app"
	}
	c, secret, err := f.env.Server.Clients.Create(f.ctx, tn, in, "test", audit.Meta{})
	if err != nil {
		f.t.Fatalf("register client %+v: %v", in, err)
	}
	return registered{c, secret}
}

// webApp registers a confidential first-party web application.
func (f *fixture) webApp(method string) registered {
	return f.register(client.Input{
		Name: "Web app", FirstParty: true, TokenAuthMethod: method,
		RedirectURIs: []string{appCallback, "https://app.example/cb2"}, PostLogoutURIs: []string{"https://app.example/bye"},
	})
}

// config is an x/oauth2 configuration for c at tenant f.tenant.
func (f *fixture) config(c registered, redirect string, scopes ...string) *oauth2.Config {
	ep := f.provider.Endpoint()
	switch c.TokenAuthMethod {
	case ciam.AuthSecretBasic:
		ep.AuthStyle = oauth2.AuthStyleInHeader
	default:
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	}
	return &oauth2.Config{ClientID: string(c.ID), ClientSecret: c.Secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes}
}

var audit0 = audit.Meta{}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func randString() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// flowOpts say how the browser answers the pages it meets.
type flowOpts struct {
	login   bool   // log in with testEmail/testPassword when the login page shows
	email   string // another login email
	consent string // "allow" or "deny" on the consent page; "" stops there
	// code gives a TOTP code for the second step and the confirmation
	// page; nil stops there. Without it the confirmation page is passed
	// with the password when login is set.
	code func() string
}

// flowResult is where a browser's walk through the authorization ended.
type flowResult struct {
	Redirect   *url.URL          // the redirect to the client, if it ended with one
	Page       *testenv.Response // the last page, if it ended on one
	SawLogin   bool
	SawConsent bool
	SawConfirm bool   // the page that confirms a login (max_age, step-up)
	SawMFA     bool   // the second step of a login
	LoginPage  string // the body of the (first) login page shown
}

var (
	loginFormRE   = regexp.MustCompile(`action="/t/[a-z0-9-]+/login"`)
	consentFormRE = regexp.MustCompile(`action="/t/([a-z0-9-]+)/consent"`)
	nextFieldRE   = regexp.MustCompile(`name="next" value="([^"]*)"`)
	confirmFormRE = regexp.MustCompile(`action="/t/([a-z0-9-]+)/confirm"`)
	mfaFormRE     = regexp.MustCompile(`action="/t/([a-z0-9-]+)/mfa"`)
	acrFieldRE    = regexp.MustCompile(`name="acr" value="2"`)
)

// local returns the path of u on the test server, or "" if u is elsewhere.
func (f *fixture) local(u string) string {
	switch {
	case strings.HasPrefix(u, f.env.URL+"/"):
		return strings.TrimPrefix(u, f.env.URL)
	case strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//"):
		return u
	}
	return ""
}

// drive sends the browser to authURL (absolute or a path) and follows
// redirects through the login and consent pages as o says, until a redirect
// leaves the server (to the client) or a page ends the walk.
func (f *fixture) drive(b *testenv.Browser, authURL string, o flowOpts) *flowResult {
	f.t.Helper()
	out := &flowResult{}
	formCSP := "" // the CSP of the page whose form was submitted last
	path := f.local(authURL)
	if path == "" {
		f.t.Fatalf("authorization URL %q is not on the test server", authURL)
	}
	res := b.Get(path)
	for step := 0; step < 20; step++ {
		if res.Status >= 500 {
			f.t.Fatalf("server error %d during authorization: %s", res.Status, res.Body)
		}
		if res.Status == http.StatusSeeOther || res.Status == http.StatusFound {
			if p := f.local(res.Location); p != "" {
				res = b.Get(p)
				continue
			}
			u, err := url.Parse(res.Location)
			if err != nil {
				f.t.Fatalf("bad Location %q", res.Location)
			}
			out.Redirect = u
			// Browsers apply the form's page's form-action to the
			// redirects after the submission: the page must allow the
			// client's redirect URI, or the user is stuck on the form.
			if formCSP != "" && !formActionAllows(formCSP, f.env.URL, u) {
				f.t.Errorf("the login/consent page's CSP %q does not let its form's redirects reach %s", formCSP, u)
			}
			return out
		}
		if res.Status >= 300 && res.Status < 400 {
			f.t.Errorf("redirect with status %d (RFC 9700 4.12: no 307 with credentials; want 303)", res.Status)
		}
		if res.Status != http.StatusOK {
			out.Page = res
			return out
		}
		switch {
		case loginFormRE.MatchString(res.Body) && strings.Contains(res.Body, `name="password"`):
			if !out.SawLogin {
				out.LoginPage = res.Body
			}
			out.SawLogin = true
			email := o.email
			if email == "" {
				email = testEmail
			}
			if !o.login && o.email == "" {
				out.Page = res
				return out
			}
			form := url.Values{"csrf_token": {testenv.CSRF(res.Body)}, "email": {email}, "password": {testPassword}}
			if m := nextFieldRE.FindStringSubmatch(res.Body); m != nil {
				form.Set("next", html.UnescapeString(m[1]))
			}
			formCSP = res.Header.Get("Content-Security-Policy")
			action := html.UnescapeString(strings.TrimSuffix(strings.TrimPrefix(loginFormRE.FindString(res.Body), `action="`), `"`))
			res = b.Post(action, form)
			if res.Status != http.StatusSeeOther {
				f.t.Fatalf("login: status %d: %s", res.Status, res.Body)
			}
		case confirmFormRE.MatchString(res.Body):
			out.SawConfirm = true
			slug := confirmFormRE.FindStringSubmatch(res.Body)[1]
			m := nextFieldRE.FindStringSubmatch(res.Body)
			if m == nil {
				f.t.Fatalf("confirmation page without next: %s", res.Body)
			}
			form := url.Values{"csrf_token": {testenv.CSRF(res.Body)}, "next": {html.UnescapeString(m[1])}}
			if acrFieldRE.MatchString(res.Body) {
				form.Set("acr", "2")
			}
			switch {
			case o.code != nil && strings.Contains(res.Body, `name="method" value="totp"`):
				form.Set("method", "totp")
				form.Set("code", o.code())
			case o.login && strings.Contains(res.Body, `name="method" value="password"`):
				form.Set("method", "password")
				form.Set("password", testPassword)
			default:
				out.Page = res
				return out
			}
			formCSP = res.Header.Get("Content-Security-Policy")
			res = b.Post("/t/"+slug+"/confirm", form)
			if res.Status != http.StatusSeeOther {
				f.t.Fatalf("confirm: status %d: %s", res.Status, res.Body)
			}
		case mfaFormRE.MatchString(res.Body) && strings.Contains(res.Body, `name="method" value="totp"`):
			out.SawMFA = true
			if o.code == nil {
				out.Page = res
				return out
			}
			slug := mfaFormRE.FindStringSubmatch(res.Body)[1]
			formCSP = res.Header.Get("Content-Security-Policy")
			res = b.Post("/t/"+slug+"/mfa", url.Values{"csrf_token": {testenv.CSRF(res.Body)}, "method": {"totp"}, "code": {o.code()}})
			if res.Status != http.StatusSeeOther {
				f.t.Fatalf("second step: status %d: %s", res.Status, res.Body)
			}
		case consentFormRE.MatchString(res.Body):
			out.SawConsent = true
			if o.consent == "" {
				out.Page = res
				return out
			}
			m := nextFieldRE.FindStringSubmatch(res.Body)
			if m == nil {
				f.t.Fatalf("consent page without next: %s", res.Body)
			}
			slug := consentFormRE.FindStringSubmatch(res.Body)[1]
			formCSP = res.Header.Get("Content-Security-Policy")
			form := url.Values{"csrf_token": {testenv.CSRF(res.Body)}, "next": {html.UnescapeString(m[1])}, "decision": {o.consent}}
			res = b.Post("/t/"+slug+"/consent", form)
			if res.Status != http.StatusSeeOther {
				f.t.Fatalf("consent: status %d: %s", res.Status, res.Body)
			}
		default:
			out.Page = res
			return out
		}
	}
	f.t.Fatalf("authorization did not end after 20 steps")
	return nil
}

// formActionAllows reports whether the CSP's form-action directive lets a
// form of a page at self end at target (CSP 3 host-source and scheme-source
// matching, the parts a redirect URI can need).
func formActionAllows(csp, self string, target *url.URL) bool {
	for _, d := range strings.Split(csp, ";") {
		fields := strings.Fields(d)
		if len(fields) == 0 || !strings.EqualFold(fields[0], "form-action") {
			continue
		}
		origin := target.Scheme + "://" + target.Host
		for _, src := range fields[1:] {
			switch {
			case src == "'self'" && origin == self:
				return true
			case strings.EqualFold(src, origin), strings.EqualFold(src, target.Scheme+":"):
				return true
			}
		}
		return false
	}
	return true // no form-action: anything goes
}

// authRun is one authorization: its client configuration, PKCE verifier,
// state, nonce, and where the browser ended.
type authRun struct {
	cfg      *oauth2.Config
	verifier string
	state    string
	nonce    string
	result   *flowResult
}

// authorize starts an authorization with PKCE, state and nonce.
func (f *fixture) authorize(b *testenv.Browser, cfg *oauth2.Config, o flowOpts, extra ...oauth2.AuthCodeOption) *authRun {
	f.t.Helper()
	r := &authRun{cfg: cfg, verifier: oauth2.GenerateVerifier(), state: randString(), nonce: randString()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(r.verifier), oidc.Nonce(r.nonce)}, extra...)
	r.result = f.drive(b, cfg.AuthCodeURL(r.state, opts...), o)
	return r
}

// code returns the code of a successful authorization response.
func (f *fixture) code(r *authRun) string {
	f.t.Helper()
	u := r.result.Redirect
	if u == nil {
		body := ""
		if r.result.Page != nil {
			body = r.result.Page.Body
		}
		f.t.Fatalf("authorization ended on a page, not at the client: %s", body)
	}
	q := u.Query()
	if q.Get("error") != "" {
		f.t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	want, _ := url.Parse(r.cfg.RedirectURL)
	if u.Scheme != want.Scheme || u.Host != want.Host || u.Path != want.Path {
		f.t.Fatalf("redirected to %s, want %s", u, r.cfg.RedirectURL)
	}
	if q.Get("state") != r.state {
		f.t.Fatalf("state %q, want %q", q.Get("state"), r.state)
	}
	if q.Get("iss") != f.issuer {
		f.t.Fatalf("iss %q, want %q (RFC 9207)", q.Get("iss"), f.issuer)
	}
	if q.Get("code") == "" {
		f.t.Fatalf("no code in %s", u)
	}
	return q.Get("code")
}

// redirectError returns the error of an error authorization response, with
// state and iss checked.
func (f *fixture) redirectError(r *authRun) string {
	f.t.Helper()
	u := r.result.Redirect
	if u == nil {
		f.t.Fatalf("authorization ended on a page (%d), want an error at the redirect URI: %s", r.result.Page.Status, r.result.Page.Body)
	}
	q := u.Query()
	if q.Get("code") != "" {
		f.t.Fatalf("got a code, want an error: %s", u)
	}
	if q.Get("state") != r.state || q.Get("iss") != f.issuer {
		f.t.Fatalf("error response without state/iss: %s", u)
	}
	return q.Get("error")
}

// exchange redeems the code of r with the PKCE verifier.
func (f *fixture) exchange(r *authRun, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	f.t.Helper()
	code := f.code(r)
	tok, err := r.cfg.Exchange(f.ctx, code, append([]oauth2.AuthCodeOption{oauth2.VerifierOption(r.verifier)}, opts...)...)
	if err != nil {
		f.t.Fatalf("exchange: %v", err)
	}
	return tok
}

// login runs a whole authorization for cfg in a new browser and returns the
// browser and the tokens.
func (f *fixture) login(cfg *oauth2.Config, o flowOpts) (*testenv.Browser, *authRun, *oauth2.Token) {
	f.t.Helper()
	b := f.env.Browser()
	o.login = true
	r := f.authorize(b, cfg, o)
	return b, r, f.exchange(r)
}

// oauthError asserts err is an RFC 6749 error response with code, never a 5xx.
func oauthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want OAuth error %s, got %v", code, err)
	}
	if re.Response.StatusCode >= 500 {
		t.Fatalf("status %d for %s: %s", re.Response.StatusCode, code, re.Body)
	}
	if re.ErrorCode != code {
		t.Fatalf("error %q (%s), want %q", re.ErrorCode, re.Body, code)
	}
}

// apiResponse is a JSON answer of a back-channel endpoint.
type apiResponse struct {
	Status int
	Header http.Header
	JSON   map[string]any
	Body   string
}

func (r *apiResponse) str(k string) string {
	s, _ := r.JSON[k].(string)
	return s
}

// post sends form to path with optional HTTP Basic credentials.
func (f *fixture) post(path string, form url.Values, basic ...string) *apiResponse {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return f.do(req)
}

// postAs sends form to path authenticated as c with its secret method.
func (f *fixture) postAs(c registered, path string, form url.Values) *apiResponse {
	f.t.Helper()
	if c.TokenAuthMethod == ciam.AuthSecretBasic {
		return f.post(path, form, string(c.ID), c.Secret)
	}
	v := url.Values{}
	for k, vs := range form {
		v[k] = vs
	}
	v.Set("client_id", string(c.ID))
	if c.Secret != "" {
		v.Set("client_secret", c.Secret)
	}
	return f.post(path, v)
}

func (f *fixture) do(req *http.Request) *apiResponse {
	f.t.Helper()
	res, err := f.env.HTTP.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := &apiResponse{Status: res.StatusCode, Header: res.Header, Body: string(body)}
	_ = json.Unmarshal(body, &out.JSON)
	if res.StatusCode >= 500 {
		f.t.Errorf("%s %s: server error %d: %s", req.Method, req.URL.Path, res.StatusCode, body)
	}
	return out
}

// wantError asserts an RFC 6749 JSON error answer.
func wantError(t *testing.T, r *apiResponse, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer has Content-Type %q", ct)
	}
}

// introspect asks the tenant's introspection endpoint as c.
func (f *fixture) introspect(c registered, tok string) *apiResponse {
	return f.introspectAt(f.tenant.Slug, c, tok)
}

func (f *fixture) introspectAt(slug string, c registered, tok string) *apiResponse {
	f.t.Helper()
	r := f.post("/t/"+slug+"/introspect", url.Values{"token": {tok}}, string(c.ID), c.Secret)
	if r.Status != http.StatusOK {
		f.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r
}

func active(r *apiResponse) bool { b, _ := r.JSON["active"].(bool); return b }

// userinfo calls the userinfo endpoint of slug with a bearer token.
func (f *fixture) userinfo(slug, tok string) *apiResponse {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.env.URL+"/t/"+slug+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return f.do(req)
}

// wantInvalidToken asserts a 401 invalid_token with its WWW-Authenticate challenge.
func wantInvalidToken(t *testing.T, r *apiResponse) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
	}
	wa := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q, want a Bearer invalid_token challenge", wa)
	}
}

// refresh redeems a refresh token directly as c.
func (f *fixture) refresh(cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	return cfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

// claims decodes an ID token's claims.
func claims(t *testing.T, idt *oidc.IDToken) map[string]any {
	t.Helper()
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func idToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	s, _ := tok.Extra("id_token").(string)
	if s == "" {
		t.Fatalf("token response has no id_token")
	}
	return s
}
