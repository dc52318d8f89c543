package oidc_test

// End-to-end flows of the provider driven by golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3: the browser part goes through the hosted
// login and consent pages with testenv's cookie-jar browser.

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
)

// TestCodeFlowFirstParty runs the authorization code flow with PKCE for a
// first-party confidential client with each secret authentication method,
// verifies the ID token with go-oidc and reads userinfo.
func TestCodeFlowFirstParty(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, method := range []string{ciam.AuthSecretBasic, ciam.AuthSecretPost} {
		t.Run(method, func(t *testing.T) {
			app := f.webApp(method)
			cfg := f.config(app, appCallback)
			loginAt := f.env.Clock.Now()
			b := f.env.Browser()
			r := f.authorize(b, cfg, flowOpts{login: true})
			if !r.result.SawLogin || r.result.SawConsent {
				t.Fatalf("login shown %v, consent shown %v: a first-party client logs in without consent", r.result.SawLogin, r.result.SawConsent)
			}
			tok := f.exchange(r)
			if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || !tok.Expiry.After(time.Now()) {
				t.Fatalf("token response: %+v", tok)
			}
			if s, _ := tok.Extra("scope").(string); s != "openid profile email offline_access" {
				t.Errorf("scope %q", s)
			}

			verifier := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)})
			idt, err := verifier.Verify(f.ctx, idToken(t, tok))
			if err != nil {
				t.Fatalf("go-oidc rejects the ID token: %v", err)
			}
			if idt.Nonce != r.nonce {
				t.Errorf("nonce %q, want %q", idt.Nonce, r.nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			if idt.Issuer != f.issuer || idt.Subject != string(f.user.ID) || !slices.Equal(idt.Audience, []string{string(app.ID)}) {
				t.Errorf("iss %s sub %s aud %v", idt.Issuer, idt.Subject, idt.Audience)
			}
			c := claims(t, idt)
			authTime, _ := c["auth_time"].(float64)
			if d := time.Unix(int64(authTime), 0).Sub(loginAt); d < -time.Second || d > 5*time.Second {
				t.Errorf("auth_time %v is not the login time %v", time.Unix(int64(authTime), 0), loginAt)
			}
			if sid, _ := c["sid"].(string); sid == "" {
				t.Errorf("no sid")
			}
			if c["acr"] != "urn:gatehouse:aal1" {
				t.Errorf("acr %v", c["acr"])
			}
			if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
				t.Errorf("amr %v", c["amr"])
			}
			if c["azp"] != string(app.ID) || c["email"] != testEmail || c["email_verified"] != true || c["name"] != "Ada Lovelace" {
				t.Errorf("claims %v", c)
			}

			ui, err := f.provider.UserInfo(f.ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui.Subject != idt.Subject || ui.Email != testEmail || !ui.EmailVerified {
				t.Errorf("userinfo %+v", ui)
			}
			var uc map[string]any
			ui.Claims(&uc)
			if uc["name"] != "Ada Lovelace" {
				t.Errorf("userinfo claims %v", uc)
			}

			// Userinfo by POST with the header works as well (OIDC Core 5.3.1).
			req, _ := http.NewRequest("POST", f.issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			if res := f.do(req); res.Status != 200 || res.str("sub") != string(f.user.ID) {
				t.Errorf("POST userinfo: %d %s", res.Status, res.Body)
			}

			// The token endpoint must not let responses be cached.
			res := f.postAs(app, "/t/default/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			if res.Status != 200 || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("refresh: %d, Cache-Control %q", res.Status, res.Header.Get("Cache-Control"))
			}

			// A second authorization in the same browser needs no login.
			r2 := f.authorize(b, cfg, flowOpts{})
			if r2.result.SawLogin {
				t.Errorf("login shown again with a live session")
			}
			f.exchange(r2)
		})
	}

	t.Run("id token algorithms", func(t *testing.T) {
		for _, alg := range []string{ciam.AlgRS256, ciam.AlgEdDSA} {
			app := f.register(client.Input{FirstParty: true, RedirectURIs: []string{appCallback}, IDTokenAlg: alg})
			cfg := f.config(app, appCallback)
			_, _, tok := f.login(cfg, flowOpts{})
			idt, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken(t, tok))
			if err != nil {
				t.Fatalf("%s ID token: %v", alg, err)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("%s at_hash: %v", alg, err)
			}
		}
	})
}

// TestClaimsByScope checks that the profile and email scopes release their
// claims, in the ID token and at userinfo, and nothing else.
func TestClaimsByScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	b := f.env.Browser()
	first := true
	for _, tc := range []struct {
		scopes      []string
		email, name bool
	}{
		{[]string{"openid"}, false, false},
		{[]string{"openid", "email"}, true, false},
		{[]string{"openid", "profile"}, false, true},
		{[]string{"openid", "profile", "email"}, true, true},
	} {
		cfg := f.config(app, appCallback, tc.scopes...)
		r := f.authorize(b, cfg, flowOpts{login: first})
		first = false
		tok := f.exchange(r)
		if tok.RefreshToken != "" {
			t.Errorf("%v: a refresh token without offline_access", tc.scopes)
		}
		idt, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		ui := f.userinfo("default", tok.AccessToken)
		if ui.Status != 200 {
			t.Fatalf("userinfo: %d %s", ui.Status, ui.Body)
		}
		for where, c := range map[string]map[string]any{"id token": claims(t, idt), "userinfo": ui.JSON} {
			_, hasEmail := c["email"]
			_, hasVerified := c["email_verified"]
			_, hasName := c["name"]
			_, hasUpdated := c["updated_at"]
			if hasEmail != tc.email || hasVerified != tc.email || hasName != tc.name || hasUpdated != tc.name {
				t.Errorf("%v: %s claims %v", tc.scopes, where, c)
			}
			if c["sub"] != string(f.user.ID) {
				t.Errorf("%s sub %v", where, c["sub"])
			}
		}
	}

	// Without openid there is no ID token, and userinfo refuses the token.
	cfg := f.config(app, appCallback, "profile")
	tok := f.exchange(f.authorize(b, cfg, flowOpts{}))
	if tok.Extra("id_token") != nil {
		t.Errorf("an ID token without the openid scope")
	}
	ui := f.userinfo("default", tok.AccessToken)
	if ui.Status != http.StatusForbidden || !strings.Contains(ui.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("userinfo without openid: %d %q", ui.Status, ui.Header.Get("WWW-Authenticate"))
	}
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
var formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)

// TestFormPost checks response_mode=form_post: an auto-submitting form to
// the redirect URI carrying code, state and iss, for a success and an error.
func TestFormPost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretPost)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true}, oauth2.SetAuthURLParam("response_mode", "form_post"))
	page := r.result.Page
	if page == nil || page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("form_post: want an HTML page, got %+v", r.result)
	}
	fields := parseFormPost(t, page.Body, appCallback)
	if fields.Get("state") != r.state || fields.Get("iss") != f.issuer || fields.Get("code") == "" {
		t.Fatalf("form_post fields %v", fields)
	}
	if cc := page.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("form_post page Cache-Control %q", cc)
	}
	tok, err := cfg.Exchange(f.ctx, fields.Get("code"), oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken(t, tok)); err != nil {
		t.Fatal(err)
	}

	// A native app's private-use scheme is a form action like any other.
	native := f.register(client.Input{Public: true, FirstParty: true, RedirectURIs: []string{"com.example.app:/oauth2redirect"}})
	ncfg := f.config(native, "com.example.app:/oauth2redirect")
	r = f.authorize(b, ncfg, flowOpts{}, oauth2.SetAuthURLParam("response_mode", "form_post"))
	fields = parseFormPost(t, r.result.Page.Body, "com.example.app:/oauth2redirect")
	if _, err := ncfg.Exchange(f.ctx, fields.Get("code"), oauth2.VerifierOption(r.verifier)); err != nil {
		t.Fatalf("native form_post exchange: %v", err)
	}

	// Errors travel the same way.
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "select_account"))
	fields = parseFormPost(t, r.result.Page.Body, appCallback)
	if fields.Get("error") != "account_selection_required" || fields.Get("state") != r.state || fields.Get("iss") != f.issuer {
		t.Fatalf("form_post error fields %v", fields)
	}
}

func parseFormPost(t *testing.T, body, action string) url.Values {
	t.Helper()
	m := formActionRE.FindStringSubmatch(body)
	if m == nil || html.UnescapeString(m[1]) != action {
		t.Fatalf("form_post page does not post to %s: %s", action, body)
	}
	out := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(body, -1) {
		out.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return out
}

// TestThirdPartyConsent walks the consent page of a third-party client:
// approve, reuse of the grant, prompt=consent, a wider scope, deny,
// prompt=none without consent, and revoking the grant on the account page.
func TestThirdPartyConsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.register(client.Input{Name: "Partner App", RedirectURIs: []string{"https://partner.example/cb"}})
	cfg := f.config(app, "https://partner.example/cb", "openid", "profile", "offline_access")
	b := f.env.Browser()

	// No session and no grant: login, then the consent page, then the code.
	r := f.authorize(b, cfg, flowOpts{login: true, consent: "allow"})
	if !r.result.SawLogin || !r.result.SawConsent {
		t.Fatalf("login %v consent %v: a third-party client needs consent", r.result.SawLogin, r.result.SawConsent)
	}
	tok := f.exchange(r)

	// The consent page names the client and stops there when not answered.
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("prompt", "consent"))
	if !r.result.SawConsent || !strings.Contains(r.result.Page.Body, "Partner App") {
		t.Fatalf("prompt=consent did not show the consent page: %+v", r.result)
	}
	r = f.authorize(b, cfg, flowOpts{consent: "allow"}, oauth2.SetAuthURLParam("prompt", "consent"))
	if !r.result.SawConsent {
		t.Fatalf("prompt=consent did not show the consent page")
	}
	f.exchange(r)

	// The grant covers a second authorization: no consent page.
	r = f.authorize(b, cfg, flowOpts{})
	if r.result.SawConsent || r.result.SawLogin {
		t.Fatalf("second authorization showed login %v consent %v", r.result.SawLogin, r.result.SawConsent)
	}
	f.exchange(r)
	// prompt=none too.
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("prompt", "none"))
	f.exchange(r)

	// A scope not granted yet asks again; prompt=none cannot.
	wider := f.config(app, "https://partner.example/cb", "openid", "profile", "email")
	r = f.authorize(b, wider, flowOpts{}, oauth2.SetAuthURLParam("prompt", "none"))
	if e := f.redirectError(r); e != "consent_required" {
		t.Fatalf("prompt=none without consent: %s", e)
	}
	r = f.authorize(b, wider, flowOpts{consent: "deny"})
	if !r.result.SawConsent {
		t.Fatalf("a wider scope did not show the consent page")
	}
	if e := f.redirectError(r); e != "access_denied" {
		t.Fatalf("deny: %s", e)
	}

	// Another user denies from the start.
	f.newUser(f.tenant, "grace@example.com", "Grace")
	b2 := f.env.Browser()
	r = f.authorize(b2, cfg, flowOpts{email: "grace@example.com", consent: "deny"})
	if e := f.redirectError(r); e != "access_denied" {
		t.Fatalf("deny: %s", e)
	}

	// The account page lists the grant; revoking it revokes its refresh
	// tokens (and the access tokens of their families).
	acct := b.Get("/t/default/account")
	if acct.Status != 200 || !strings.Contains(acct.Body, `data-client="`+string(app.ID)+`"`) || !strings.Contains(acct.Body, "Partner App") {
		t.Fatalf("account page does not list the grant: %d", acct.Status)
	}
	if !active(f.introspect(app, tok.AccessToken)) {
		t.Fatalf("access token inactive before the revocation")
	}
	res := b.Submit("/t/default/account", "/t/default/account/grants/"+string(app.ID)+"/revoke", nil)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("revoke grant: %d %s", res.Status, res.Body)
	}
	if acct := b.Get("/t/default/account"); strings.Contains(acct.Body, `data-client="`+string(app.ID)+`"`) {
		t.Fatalf("the revoked grant is still listed")
	}
	_, err := f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
	if active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("access token of a revoked grant still active")
	}
	// And the next authorization asks for consent again.
	r = f.authorize(b, cfg, flowOpts{})
	if !r.result.SawConsent {
		t.Fatalf("no consent page after revoking the grant")
	}
}

// TestPublicClientLoopback runs a native app: a public client (auth method
// none) with PKCE and a loopback redirect URI registered without a port.
func TestPublicClientLoopback(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.register(client.Input{Name: "CLI", Public: true, FirstParty: true, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]/cb"}})
	if app.Secret != "" || app.TokenAuthMethod != ciam.AuthNone {
		t.Fatalf("public client got a secret or method %s", app.TokenAuthMethod)
	}
	b := f.env.Browser()
	first := true
	for _, redirect := range []string{"http://127.0.0.1:54321/cb", "http://127.0.0.1:8080/cb", "http://127.0.0.1/cb", "http://[::1]:61000/cb"} {
		cfg := f.config(app, redirect)
		r := f.authorize(b, cfg, flowOpts{login: first})
		first = false
		if got := r.result.Redirect; got == nil || got.Scheme+"://"+got.Host+got.Path != redirect {
			t.Fatalf("redirect %v, want %s", got, redirect)
		}
		tok := f.exchange(r)
		if _, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken(t, tok)); err != nil {
			t.Fatal(err)
		}
		// Public clients rotate refresh tokens too.
		next, err := f.refresh(cfg, tok.RefreshToken)
		if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("public refresh: %v", err)
		}
	}

	// The token request must repeat the exact redirect URI, port included.
	cfg := f.config(app, "http://127.0.0.1:54321/cb")
	r := f.authorize(b, cfg, flowOpts{})
	code := f.code(r)
	other := *cfg
	other.RedirectURL = "http://127.0.0.1:54322/cb"
	_, err := other.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_grant")
	if _, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier)); err != nil {
		t.Fatalf("exchange with the right redirect URI after a wrong one: %v", err)
	}

	// Only the port may vary.
	for _, bad := range []string{"http://127.0.0.1:54321/cb/", "http://127.0.0.1:54321/other", "http://localhost:54321/cb", "http://127.0.0.1:54321/cb?x=1", "https://127.0.0.1:54321/cb"} {
		c := f.config(app, bad)
		r := f.authorize(b, c, flowOpts{})
		if r.result.Redirect != nil || r.result.Page == nil || r.result.Page.Status != 400 {
			t.Errorf("%s: want an error page, got %+v", bad, r.result)
		}
	}

	// A public client cannot authenticate with a secret it does not have.
	cfg.ClientSecret = "guess"
	r = f.authorize(b, cfg, flowOpts{})
	_, err = cfg.Exchange(f.ctx, f.code(r), oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_client")
}

// TestPromptLoginMaxAgeLoginHint checks prompt=none, prompt=login, max_age,
// id_token_hint and login_hint.
func TestPromptLoginMaxAgeLoginHint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	verifier := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)})
	authTime := func(tok *oauth2.Token) time.Time {
		idt, err := verifier.Verify(f.ctx, idToken(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		at, _ := claims(t, idt)["auth_time"].(float64)
		return time.Unix(int64(at), 0)
	}
	b := f.env.Browser()

	// prompt=none without a session: login_required at the redirect URI.
	r := f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("prompt", "none"))
	if e := f.redirectError(r); e != "login_required" {
		t.Fatalf("prompt=none without a session: %s", e)
	}

	// login_hint pre-fills the login form.
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("login_hint", testEmail))
	if !r.result.SawLogin || !strings.Contains(r.result.LoginPage, `value="`+testEmail+`"`) {
		t.Fatalf("login_hint did not pre-fill the email")
	}
	r = f.authorize(b, cfg, flowOpts{login: true})
	tok := f.exchange(r)
	first := authTime(tok)

	// With a session prompt=none succeeds silently.
	f.exchange(f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("prompt", "none")))

	// prompt=login shows the login form again despite the session, and
	// auth_time moves.
	f.env.Clock.Advance(10 * time.Second)
	r = f.authorize(b, cfg, flowOpts{login: true}, oauth2.SetAuthURLParam("prompt", "login"))
	if !r.result.SawLogin {
		t.Fatalf("prompt=login did not show the login form")
	}
	tok = f.exchange(r)
	second := authTime(tok)
	if !second.After(first) {
		t.Errorf("auth_time %v did not move after prompt=login (was %v)", second, first)
	}
	hint := idToken(t, tok)

	// max_age=0 forces a login too.
	f.env.Clock.Advance(10 * time.Second)
	r = f.authorize(b, cfg, flowOpts{login: true}, oauth2.SetAuthURLParam("max_age", "0"))
	if !r.result.SawLogin {
		t.Fatalf("max_age=0 did not show the login form")
	}
	if third := authTime(f.exchange(r)); !third.After(second) {
		t.Errorf("auth_time did not move after max_age=0")
	}

	// A recent enough login satisfies max_age; an older one does not (on
	// the server's clock).
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("max_age", "3600"))
	if r.result.SawLogin {
		t.Fatalf("max_age=3600 right after a login showed the login form")
	}
	f.exchange(r)
	f.env.Clock.Advance(2 * time.Minute)
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("max_age", "60"))
	if r.result.SawLogin || !r.result.SawConfirm {
		t.Fatalf("max_age=60 two minutes after the login did not ask to confirm the login (login form %v)", r.result.SawLogin)
	}
	// Confirming with the password renews the same session: auth_time
	// moves, sid stays.
	sid := func(tok *oauth2.Token) string {
		idt, err := verifier.Verify(f.ctx, idToken(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := claims(t, idt)["sid"].(string)
		return s
	}
	beforeTok := f.exchange(f.authorize(b, cfg, flowOpts{}))
	f.env.Clock.Advance(2 * time.Minute)
	r = f.authorize(b, cfg, flowOpts{login: true}, oauth2.SetAuthURLParam("max_age", "60"))
	if r.result.SawLogin || !r.result.SawConfirm {
		t.Fatalf("max_age=60: login form %v, confirmation %v", r.result.SawLogin, r.result.SawConfirm)
	}
	afterTok := f.exchange(r)
	if sid(afterTok) != sid(beforeTok) {
		t.Errorf("confirming the login for max_age started another session")
	}
	if !authTime(afterTok).After(authTime(beforeTok)) {
		t.Errorf("auth_time did not move after confirming for max_age")
	}
	f.env.Clock.Advance(2 * time.Minute)
	r = f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("max_age", "60"), oauth2.SetAuthURLParam("prompt", "none"))
	if e := f.redirectError(r); e != "login_required" {
		t.Fatalf("prompt=none with max_age exceeded: %s", e)
	}

	// id_token_hint of the current user: silent; of another user: login.
	f.exchange(f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("id_token_hint", hint), oauth2.SetAuthURLParam("prompt", "none")))
	f.newUser(f.tenant, "grace@example.com", "Grace")
	b2 := f.env.Browser()
	f.authorize(b2, cfg, flowOpts{email: "grace@example.com"})
	r = f.authorize(b2, cfg, flowOpts{}, oauth2.SetAuthURLParam("id_token_hint", hint))
	if !r.result.SawLogin {
		t.Fatalf("id_token_hint of another user did not ask for a login")
	}
	r = f.authorize(b2, cfg, flowOpts{}, oauth2.SetAuthURLParam("id_token_hint", "not-a-token"))
	if e := f.redirectError(r); e != "invalid_request" {
		t.Fatalf("garbage id_token_hint: %s", e)
	}

	// prompt=login consent for a third-party client asks for both.
	partner := f.register(client.Input{Name: "Partner", RedirectURIs: []string{"https://partner.example/cb"}})
	pcfg := f.config(partner, "https://partner.example/cb", "openid")
	f.exchange(f.authorize(b, pcfg, flowOpts{login: true, consent: "allow"}))
	r = f.authorize(b, pcfg, flowOpts{login: true, consent: "allow"}, oauth2.SetAuthURLParam("prompt", "login consent"))
	if !r.result.SawLogin || !r.result.SawConsent {
		t.Fatalf("prompt=login consent: login %v consent %v", r.result.SawLogin, r.result.SawConsent)
	}
	f.exchange(r)
}
