package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
)

// TestEndSession is RP-initiated logout: with an id_token_hint and a
// registered post_logout_redirect_uri the session ends and the browser
// returns with state; an unregistered URI or a forged hint gets a page; no
// hint asks the user to confirm.
func TestEndSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	endSession := func(v url.Values) string { return "/t/default/end_session?" + v.Encode() }

	b, _, tok := f.login(cfg, flowOpts{})
	hint := idToken(t, tok)

	// No hint: the confirmation page, and the session lives on.
	res := b.Get(endSession(url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s"}}))
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/logout" {
		t.Fatalf("end_session without a hint: %d %q", res.Status, res.Location)
	}
	if page := b.Get(res.Location); page.Status != 200 || !strings.Contains(page.Body, `action="/t/default/logout"`) {
		t.Fatalf("logout confirmation page: %d", page.Status)
	}
	if acct := b.Get("/t/default/account"); acct.Status != 200 {
		t.Fatalf("session ended without confirmation: %d", acct.Status)
	}

	// An unregistered post_logout_redirect_uri: an error page, no redirect,
	// and the session lives on.
	for _, bad := range []string{"https://evil.example/bye", "https://app.example/bye/", "https://app.example/BYE", "https://app.example/bye?x=1", appCallback} {
		res = b.Get(endSession(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bad}, "state": {"s"}}))
		if res.Status != 400 || res.Location != "" {
			t.Errorf("unregistered %s: %d %q", bad, res.Status, res.Location)
		}
	}
	// A forged hint (payload changed, signature kept) or a hint with
	// another client_id: error page.
	parts := strings.Split(hint, ".")
	forged := parts[0] + "." + b64(`{"iss":"`+f.issuer+`","sub":"someone","aud":"`+string(app.ID)+`","azp":"`+string(app.ID)+`"}`) + "." + parts[2]
	res = b.Get(endSession(url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {"https://app.example/bye"}}))
	if res.Status != 400 || res.Location != "" {
		t.Errorf("forged hint: %d %q", res.Status, res.Location)
	}
	other := f.webApp(ciam.AuthSecretBasic)
	res = b.Get(endSession(url.Values{"id_token_hint": {hint}, "client_id": {string(other.ID)}, "post_logout_redirect_uri": {"https://app.example/bye"}}))
	if res.Status != 400 || res.Location != "" {
		t.Errorf("client_id not of the hint: %d %q", res.Status, res.Location)
	}
	// An access token is not an ID token.
	res = b.Get(endSession(url.Values{"id_token_hint": {tok.AccessToken}, "post_logout_redirect_uri": {"https://app.example/bye"}}))
	if res.Status != 400 || res.Location != "" {
		t.Errorf("access token as hint: %d %q", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != 200 {
		t.Fatalf("a refused logout ended the session: %d", acct.Status)
	}

	// The real thing: back to the client with state, session over.
	res = b.Get(endSession(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st ate"}, "client_id": {string(app.ID)}}))
	if res.Status != http.StatusSeeOther {
		t.Fatalf("end_session: %d %s", res.Status, res.Body)
	}
	u, _ := url.Parse(res.Location)
	if u.Scheme+"://"+u.Host+u.Path != "https://app.example/bye" || u.Query().Get("state") != "st ate" {
		t.Fatalf("post-logout redirect %q", res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusSeeOther || !strings.Contains(acct.Location, "/login") {
		t.Fatalf("session still alive after logout: %d", acct.Status)
	}
	r := f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("prompt", "none"))
	if e := f.redirectError(r); e != "login_required" {
		t.Fatalf("prompt=none after logout: %s", e)
	}

	// Without post_logout_redirect_uri: the login page says so. An
	// expired hint is still a hint.
	b, _, tok = f.login(cfg, flowOpts{})
	f.env.Clock.Advance(2 * time.Hour)
	res = b.Get(endSession(url.Values{"id_token_hint": {idToken(t, tok)}, "state": {"x"}}))
	if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/t/default/login") {
		t.Fatalf("end_session without a redirect: %d %q", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
		t.Fatalf("session still alive after logout: %d", acct.Status)
	}

	// POST works like GET.
	b, _, tok = f.login(cfg, flowOpts{})
	res = b.Post("/t/default/end_session", url.Values{"id_token_hint": {idToken(t, tok)}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"p"}})
	if res.Status != http.StatusSeeOther || res.Location != "https://app.example/bye?state=p" {
		t.Fatalf("POST end_session: %d %q", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
		t.Fatalf("session still alive after POST logout: %d", acct.Status)
	}

	// A hint of another tenant is not a hint here.
	oc := f.registerIn(f.newTenant("other"), client.Input{FirstParty: true, RedirectURIs: []string{appCallback}, PostLogoutURIs: []string{"https://app.example/bye"}})
	res = b.Get("/t/other/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example/bye"}, "client_id": {string(oc.ID)}}.Encode())
	if res.Status != 400 || res.Location != "" {
		t.Errorf("hint of another tenant: %d %q", res.Status, res.Location)
	}
}
