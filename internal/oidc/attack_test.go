package oidc_test

// Unhappy paths from security.md 2.1-2.4: each gets the right RFC 6749
// error, on a page when the client or its redirect URI cannot be trusted,
// and never a 5xx.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// authorizeRaw sends an authorization request with exactly these
// parameters and returns the answer without following it.
func authorizeRaw(b *testenv.Browser, slug string, q url.Values) *testenv.Response {
	return b.Get("/t/" + slug + "/authorize?" + q.Encode())
}

// wantPage asserts an error page: 4xx, HTML, no redirect.
func wantPage(t *testing.T, what string, res *testenv.Response) {
	t.Helper()
	if res.Status < 400 || res.Status >= 500 || res.Location != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: want an error page without redirect, got %d Location %q", what, res.Status, res.Location)
	}
}

func TestRedirectURIMutations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.register(client.Input{FirstParty: true, RedirectURIs: []string{appCallback, "http://127.0.0.1/native", "com.example.app:/oauth"}})
	b := f.env.Browser()
	// A session, so that nothing stops the request before the redirect URI check.
	f.authorize(b, f.config(app, appCallback), flowOpts{login: true})
	base := func(redirect string) url.Values {
		return url.Values{"client_id": {string(app.ID)}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	}
	// The registered values work (the challenge above is well-formed).
	for _, ok := range []string{appCallback, "http://127.0.0.1:1234/native", "com.example.app:/oauth"} {
		res := authorizeRaw(b, "default", base(ok))
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, strings.Split(ok, ":1234")[0]) {
			t.Errorf("registered %s: %d %q", ok, res.Status, res.Location)
		}
	}
	for _, bad := range []string{
		"https://APP.example/cb", "https://app.example/CB", "HTTPS://app.example/cb", "https://app.example/cb/", "https://app.example/cb//",
		"https://app.example/cb/../cb", "https://app.example/x/..;/cb", "https://app.example/cb/..", "https://app.example/%2e%2e/cb", "https://app.example/cb%2F",
		"https://app.example/c%62", "https://evil.example@app.example/cb", "https://app.example@evil.example/cb", "https://a@b@app.example/cb",
		"https://app.example/cb?x=1", "https://app.example/cb?", "https://app.example/cb#frag", "https://app.example/cb#",
		"http://app.example/cb", "https://app.example:443/cb", "https://app.example:8443/cb", "https://app.example.evil.example/cb",
		"https://app.example./cb", "https://evil.example/cb", "//app.example/cb", "/cb", "app.example/cb", " https://app.example/cb",
		"https://app.example/cb ", "https://app.example/cb%20", "javascript:alert(1)//app.example/cb", "data:text/html,x",
		"http://127.0.0.1:1234/native/", "http://127.0.0.1:1234/native?x=1", "http://127.0.0.1:01234/native", "http://127.0.0.1:99999/native",
		"http://localhost:1234/native", "http://127.0.0.1.evil.example/native", "http://[::1]:1234/native", "https://127.0.0.1:1234/native",
		"http://127.0.0.1:1234@evil.example/native", "com.example.app:/oauth/", "com.example.app://oauth", "COM.example.app:/oauth",
	} {
		wantPage(t, "redirect_uri "+bad, authorizeRaw(b, "default", base(bad)))
	}
	// No redirect_uri at all, or twice.
	q := base(appCallback)
	q.Del("redirect_uri")
	wantPage(t, "missing redirect_uri", authorizeRaw(b, "default", q))
	wantPage(t, "duplicate redirect_uri", b.Get("/t/default/authorize?"+base(appCallback).Encode()+"&redirect_uri="+url.QueryEscape("https://evil.example/cb")))
	wantPage(t, "duplicate client_id", b.Get("/t/default/authorize?"+base(appCallback).Encode()+"&client_id=x"))

	// Unknown, missing or other-tenant client with an attacker's redirect URI.
	for name, id := range map[string]string{"unknown": "no-such-client", "missing": "", "long": strings.Repeat("c", 500)} {
		q := base("https://evil.example/cb")
		q.Set("client_id", id)
		wantPage(t, name+" client", authorizeRaw(b, "default", q))
	}
	other := f.newTenant("other")
	oc := f.registerIn(other, client.Input{FirstParty: true, RedirectURIs: []string{"https://evil.example/cb"}})
	q = base("https://evil.example/cb")
	q.Set("client_id", string(oc.ID))
	wantPage(t, "client of another tenant", authorizeRaw(b, "default", q))
	// Errors before the client is known never redirect, even with a request object.
	q = base("https://evil.example/cb")
	q.Del("client_id")
	q.Set("request", "eyJ.eyJ.")
	wantPage(t, "request object without client", authorizeRaw(b, "default", q))
	// An unknown tenant.
	if res := authorizeRaw(b, "no-such-tenant", base(appCallback)); res.Status != 404 || res.Location != "" {
		t.Errorf("unknown tenant: %d %q", res.Status, res.Location)
	}
}

// TestAuthorizeErrors: once client and redirect URI are trusted, errors go
// back to the client with state and iss.
func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	f.authorize(b, cfg, flowOpts{login: true})
	for _, tc := range []struct {
		name  string
		param url.Values
		drop  []string
		want  string
	}{
		{"response_type token", url.Values{"response_type": {"token"}}, nil, "unsupported_response_type"},
		{"response_type id_token", url.Values{"response_type": {"code id_token"}}, nil, "unsupported_response_type"},
		{"no response_type", nil, []string{"response_type"}, "invalid_request"},
		{"no code_challenge", nil, []string{"code_challenge", "code_challenge_method"}, "invalid_request"},
		{"no code_challenge_method (plain)", nil, []string{"code_challenge_method"}, "invalid_request"},
		{"plain", url.Values{"code_challenge_method": {"plain"}}, nil, "invalid_request"},
		{"s256 lower case", url.Values{"code_challenge_method": {"s256"}}, nil, "invalid_request"},
		{"short challenge", url.Values{"code_challenge": {"abc"}}, nil, "invalid_request"},
		{"verifier as challenge", url.Values{"code_challenge": {oauth2.GenerateVerifier() + "A"}}, nil, "invalid_request"},
		{"scope not allowed", url.Values{"scope": {"openid admin"}}, nil, "invalid_scope"},
		{"prompt select_account", url.Values{"prompt": {"select_account"}}, nil, "account_selection_required"},
		{"prompt none login", url.Values{"prompt": {"none login"}}, nil, "invalid_request"},
		{"prompt unknown", url.Values{"prompt": {"sudo"}}, nil, "invalid_request"},
		{"max_age negative", url.Values{"max_age": {"-1"}}, nil, "invalid_request"},
		{"max_age not a number", url.Values{"max_age": {"soon"}}, nil, "invalid_request"},
		{"request object", url.Values{"request": {"eyJ.eyJ."}}, nil, "request_not_supported"},
		{"request_uri", url.Values{"request_uri": {"urn:x"}}, nil, "request_uri_not_supported"},
		{"response_mode fragment", url.Values{"response_mode": {"fragment"}}, nil, "invalid_request"},
		{"long nonce", url.Values{"nonce": {strings.Repeat("n", 600)}}, nil, "invalid_request"},
	} {
		verifier := oauth2.GenerateVerifier()
		state := randString()
		u, _ := url.Parse(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
		q := u.Query()
		for k, v := range tc.param {
			q[k] = v
		}
		for _, k := range tc.drop {
			q.Del(k)
		}
		res := authorizeRaw(b, "default", q)
		if res.Status != http.StatusSeeOther {
			t.Errorf("%s: %d, want a redirect with %s: %s", tc.name, res.Status, tc.want, res.Body)
			continue
		}
		loc, _ := url.Parse(res.Location)
		got := loc.Query()
		if loc.Host != "app.example" || got.Get("error") != tc.want || got.Get("state") != state || got.Get("iss") != f.issuer || got.Get("code") != "" {
			t.Errorf("%s: redirect %s, want error %s", tc.name, res.Location, tc.want)
		}
	}

	// Unknown parameters, and ones Gatehouse does not act on, are ignored.
	r := f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("foo", "bar"), oauth2.SetAuthURLParam("claims", `{"userinfo":{"email":null}}`),
		oauth2.SetAuthURLParam("acr_values", "urn:gatehouse:aal1"), oauth2.SetAuthURLParam("ui_locales", "de"), oauth2.SetAuthURLParam("display", "page"))
	f.exchange(r)

	// The authorization endpoint accepts POST too.
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(cfg.AuthCodeURL("post-state", oauth2.S256ChallengeOption(verifier)))
	res := b.Post("/t/default/authorize", u.Query())
	if loc, _ := url.Parse(res.Location); res.Status != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("state") != "post-state" {
		t.Errorf("POST authorize: %d %q", res.Status, res.Location)
	}
}

// TestPKCE covers the token-endpoint half: a wrong, missing or malformed
// verifier, and a verifier for a code issued without a challenge (the
// downgrade). The authorization endpoint never issues such a code: a request
// without an S256 challenge is refused (TestAuthorizeErrors).
func TestPKCE(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no verifier":        nil,
		"wrong verifier":     {oauth2.VerifierOption(oauth2.GenerateVerifier())},
		"short verifier":     {oauth2.VerifierOption("abc")},
		"challenge as verif": {oauth2.VerifierOption(oauth2.S256ChallengeFromVerifier(r.verifier))},
		"bad characters":     {oauth2.VerifierOption(r.verifier + "!")},
	} {
		_, err := cfg.Exchange(f.ctx, code, opts...)
		var re *oauth2.RetrieveError
		if err == nil {
			t.Fatalf("%s: exchange succeeded", name)
		}
		oauthErrorOneOf(t, err, &re, "invalid_grant", "invalid_request")
	}
	// The refused attempts did not spend the code.
	if _, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier)); err != nil {
		t.Fatalf("the rightful exchange after refused ones: %v", err)
	}

	// The downgrade (security.md 2.2): a code without a challenge cannot
	// come from the authorization endpoint, so issue one through the token
	// service for this browser's session, and present a verifier anyway.
	jarURL, _ := url.Parse(f.env.URL)
	var sess *ciam.Session
	for _, c := range b.Jar.Cookies(jarURL) {
		if c.Name == session.CookieName("default", false) {
			var err error
			if sess, err = f.env.Server.Sessions.Lookup(f.ctx, f.tenant, c.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sess == nil {
		t.Fatalf("no session cookie")
	}
	for _, opts := range [][]oauth2.AuthCodeOption{{oauth2.VerifierOption(oauth2.GenerateVerifier())}, nil} {
		bare, err := f.env.Server.Tokens.IssueCode(f.ctx, f.tenant, token.CodeRequest{Client: app.Client, User: f.user, Session: sess, RedirectURI: appCallback, Scopes: []string{"openid"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.Exchange(f.ctx, bare, opts...)
		oauthError(t, err, "invalid_grant")
	}
}

func oauthErrorOneOf(t *testing.T, err error, re **oauth2.RetrieveError, codes ...string) {
	t.Helper()
	for _, c := range codes {
		if e, ok := err.(*oauth2.RetrieveError); ok && e.ErrorCode == c && e.Response.StatusCode < 500 {
			*re = e
			return
		}
	}
	t.Errorf("error %v, want one of %v", err, codes)
}

// TestCodeReplay: a second redemption fails and revokes what the first one
// issued, with and without a refresh token.
func TestCodeReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	b := f.env.Browser()
	for _, offline := range []bool{true, false} {
		scopes := []string{"openid", "profile"}
		if offline {
			scopes = append(scopes, "offline_access")
		}
		cfg := f.config(app, appCallback, scopes...)
		r := f.authorize(b, cfg, flowOpts{login: true})
		code := f.code(r)
		tok, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
		if err != nil {
			t.Fatal(err)
		}
		if offline != (tok.RefreshToken != "") {
			t.Fatalf("offline %v but refresh token %q", offline, tok.RefreshToken)
		}
		if f.userinfo("default", tok.AccessToken).Status != 200 {
			t.Fatalf("userinfo before the replay")
		}
		f.env.Clock.Advance(5 * time.Second)
		_, err = cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
		oauthError(t, err, "invalid_grant")
		if offline {
			_, err = f.refresh(cfg, tok.RefreshToken)
			oauthError(t, err, "invalid_grant")
		}
		if active(f.introspect(app, tok.AccessToken)) {
			t.Errorf("offline %v: the access token of a replayed code is still active", offline)
		}
		wantInvalidToken(t, f.userinfo("default", tok.AccessToken))
	}
}

// TestCodeBinding: a code presented by another client or with another
// redirect URI is refused, and its rightful client can still redeem it.
func TestCodeBinding(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	thief := f.register(client.Input{FirstParty: true, RedirectURIs: []string{appCallback}})
	publicThief := f.register(client.Input{Public: true, RedirectURIs: []string{appCallback}})
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)

	for name, c := range map[string]*oauth2.Config{"confidential": f.config(thief, appCallback), "public": f.config(publicThief, appCallback)} {
		_, err := c.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
		if name == "public" {
			oauthError(t, err, "invalid_grant")
		} else {
			oauthError(t, err, "invalid_grant")
		}
	}
	other := *cfg
	other.RedirectURL = "https://app.example/cb2" // registered, but not the one of the request
	_, err := other.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_grant")
	// Without the client's secret.
	noSecret := *cfg
	noSecret.ClientSecret = "wrong"
	_, err = noSecret.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_client")

	tok, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatalf("the rightful client could not redeem its code: %v", err)
	}
	if _, err := f.refresh(cfg, tok.RefreshToken); err != nil {
		t.Fatalf("refresh after refused redemptions: %v", err)
	}
}

func TestCodeExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)
	f.env.Clock.Advance(61 * time.Second)
	_, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_grant")
	// A fresh code at the new time works.
	f.exchange(f.authorize(b, cfg, flowOpts{}))
}

// TestCrossTenant: what tenant A issued is nothing at tenant B.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)

	other := f.newTenant("tenant-b")
	bApp := f.registerIn(other, client.Input{FirstParty: true, RedirectURIs: []string{appCallback}})
	bProvider := f.issuer[:strings.LastIndex(f.issuer, "/")] + "/tenant-b"
	bCfg := *f.config(bApp, appCallback)
	bCfg.Endpoint.AuthURL, bCfg.Endpoint.TokenURL = bProvider+"/authorize", bProvider+"/token"

	// Tenant A's code at tenant B's token endpoint, by tenant B's client.
	_, err := bCfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_grant")
	// Tenant A's client does not exist at tenant B.
	aAtB := *cfg
	aAtB.Endpoint.TokenURL = bProvider + "/token"
	_, err = aAtB.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_client")

	tok, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatal(err)
	}
	// Tenant A's access token at tenant B's userinfo: 401 invalid_token.
	wantInvalidToken(t, f.userinfo("tenant-b", tok.AccessToken))
	if r := f.userinfo("tenant-b", tok.AccessToken); !strings.Contains(r.Header.Get("WWW-Authenticate"), `realm="`+bProvider+`"`) {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	// Tenant A's refresh token at tenant B.
	_, err = bCfg.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	oauthError(t, err, "invalid_grant")
	// A session of tenant A is no session at tenant B.
	res := f.drive(b, bCfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")), flowOpts{})
	if res.Redirect == nil || res.Redirect.Query().Get("error") != "login_required" || res.Redirect.Query().Get("iss") != bProvider {
		t.Errorf("prompt=none at tenant B with a tenant-A session: %+v", res)
	}
	// Tenant B is an issuer of its own: its own keys, and its ID tokens
	// are not tenant A's.
	bp, err := oidc.NewProvider(f.ctx, bProvider)
	if err != nil {
		t.Fatal(err)
	}
	bCfg.Endpoint = bp.Endpoint()
	bCfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	bb := f.env.Browser()
	br := f.authorize(bb, &bCfg, flowOpts{login: true})
	bq := br.result.Redirect.Query()
	if bq.Get("iss") != bProvider || bq.Get("code") == "" {
		t.Fatalf("tenant B authorization: %v", br.result.Redirect)
	}
	btok, err := bCfg.Exchange(f.ctx, bq.Get("code"), oauth2.VerifierOption(br.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bp.Verifier(&oidc.Config{ClientID: string(bApp.ID)}).Verify(f.ctx, idToken(t, btok)); err != nil {
		t.Fatalf("tenant B ID token: %v", err)
	}
	if _, err := f.provider.Verifier(&oidc.Config{ClientID: string(bApp.ID), SkipIssuerCheck: true}).Verify(f.ctx, idToken(t, btok)); err == nil {
		t.Errorf("tenant A's keys verify tenant B's ID token")
	}
	wantInvalidToken(t, f.userinfo("default", btok.AccessToken))

	// And the tokens still work at home.
	if f.userinfo("default", tok.AccessToken).Status != 200 {
		t.Errorf("userinfo at home failed")
	}
}

// TestForgedTokens: tokens the server did not issue, or no longer accepts,
// are 401 invalid_token at userinfo with a Bearer challenge.
func TestForgedTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	_, _, tok := f.login(cfg, flowOpts{})
	if f.userinfo("default", tok.AccessToken).Status != 200 {
		t.Fatalf("the real token does not work")
	}
	parts := strings.Split(tok.AccessToken, ".")
	var header map[string]any
	hb, _ := decodeSegment(parts[0])
	json.Unmarshal(hb, &header)
	kid := header["kid"].(string)
	payload, _ := decodeSegment(parts[1])

	// The server's published public key, as bytes an attacker can fetch.
	res, err := http.Get(f.issuer + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	json.NewDecoder(res.Body).Decode(&jwks)
	res.Body.Close()
	var pubJWK []byte
	for _, k := range jwks.Keys {
		if strings.Contains(string(k), kid) {
			pubJWK = k
		}
	}
	if pubJWK == nil {
		t.Fatalf("kid %s not in the JWKS", kid)
	}
	var pub jose.JSONWebKey
	if err := pub.UnmarshalJSON(pubJWK); err != nil {
		t.Fatal(err)
	}

	own, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(alg jose.SignatureAlgorithm, key any, hdr map[jose.HeaderKey]any) string {
		opts := &jose.SignerOptions{ExtraHeaders: hdr}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}
	typAt := map[jose.HeaderKey]any{"typ": "at+jwt", "kid": kid}
	pubDER, _ := json.Marshal(pub.Key)
	forgeries := map[string]string{
		"alg none":                   b64(`{"alg":"none","typ":"at+jwt","kid":"`+kid+`"}`) + "." + parts[1] + ".",
		"alg none, signature kept":   b64(`{"alg":"none","typ":"at+jwt","kid":"`+kid+`"}`) + "." + parts[1] + "." + parts[2],
		"HS256 with the public JWK":  sign(jose.HS256, pubJWK, typAt),
		"HS256 with the public key":  sign(jose.HS256, pubDER, typAt),
		"own key, server kid":        sign(jose.ES256, own, typAt),
		"own key, unknown kid":       sign(jose.ES256, own, map[jose.HeaderKey]any{"typ": "at+jwt", "kid": ciamLikeID()}),
		"own key, no kid":            sign(jose.ES256, own, map[jose.HeaderKey]any{"typ": "at+jwt"}),
		"payload changed":            parts[0] + "." + b64(strings.Replace(string(payload), string(f.user.ID), "01aaaaaaaaaaaaaaaaaaaaaaaa", 1)) + "." + parts[2],
		"signature stripped":         parts[0] + "." + parts[1] + ".",
		"id token as access token":   idToken(t, tok),
		"garbage":                    "not-a-token",
		"embedded jwk header":        sign(jose.ES256, jose.JSONWebKey{Key: own, KeyID: kid}, map[jose.HeaderKey]any{"typ": "at+jwt"}),
		"two signatures (JSON form)": `{"payload":"` + parts[1] + `","signatures":[]}`,
	}
	forgeries["refresh token as bearer"] = tok.RefreshToken // a real token, but not an access token
	for name, forged := range forgeries {
		wantInvalidToken(t, f.userinfo("default", forged))
		if name == "refresh token as bearer" {
			continue
		}
		if active(f.introspect(app, forged)) {
			t.Errorf("%s: active at introspection", name)
		}
	}
	// No token, or a token in the query (RFC 6750 section 2.3 usage is not accepted).
	req, _ := http.NewRequest("GET", f.issuer+"/userinfo?access_token="+url.QueryEscape(tok.AccessToken), nil)
	if r := f.do(req); r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("token in the query: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}

	// Expired: after the lifetime plus the allowed skew.
	f.env.Clock.Advance(client.DefaultAccessTokenTTL + time.Minute)
	wantInvalidToken(t, f.userinfo("default", tok.AccessToken))
	if active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("expired token active at introspection")
	}
	f.env.Clock.Advance(-client.DefaultAccessTokenTTL - time.Minute)

	// Not yet valid: issued an hour ahead of the server's current clock.
	f.env.Clock.Advance(time.Hour)
	_, _, future := f.login(cfg, flowOpts{})
	if f.userinfo("default", future.AccessToken).Status != 200 {
		t.Fatalf("the token does not work at its own time")
	}
	f.env.Clock.Advance(-time.Hour)
	wantInvalidToken(t, f.userinfo("default", future.AccessToken))
	if active(f.introspect(app, future.AccessToken)) {
		t.Errorf("not-yet-valid token active at introspection")
	}
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// ciamLikeID is a key id of the form the server uses, naming no key.
func ciamLikeID() string { return ciam.NewID() }

// TestTokenEndpointMalformed: protocol errors at the token endpoint.
func TestTokenEndpointMalformed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)
	tokenPath := "/t/default/token"
	codeForm := func() url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCallback}, "code_verifier": {r.verifier}}
	}
	basic := []string{string(app.ID), app.Secret}

	wantError(t, f.post(tokenPath, url.Values{"code": {code}}, basic...), 400, "invalid_request")
	for _, dup := range []string{"grant_type", "code", "redirect_uri", "code_verifier"} {
		form := codeForm()
		form.Add(dup, form.Get(dup))
		wantError(t, f.post(tokenPath, form, basic...), 400, "invalid_request")
	}
	form := codeForm()
	form.Set("client_id", string(app.ID))
	form.Add("client_id", string(app.ID))
	if r := f.post(tokenPath, form); r.Status != 400 || r.str("error") != "invalid_request" {
		t.Errorf("duplicate client_id: %d %s", r.Status, r.Body)
	}
	for _, g := range []string{"password", "implicit", "token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_credentials "} {
		wantError(t, f.post(tokenPath, url.Values{"grant_type": {g}, "username": {testEmail}, "password": {testPassword}}, basic...), 400, "unsupported_grant_type")
	}
	for _, missing := range []string{"code", "redirect_uri"} {
		form := codeForm()
		form.Del(missing)
		wantError(t, f.post(tokenPath, form, basic...), 400, "invalid_request")
	}
	wantError(t, f.post(tokenPath, url.Values{"grant_type": {"refresh_token"}}, basic...), 400, "invalid_request")
	wantError(t, f.post(tokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("r", 1000)}}, basic...), 400, "invalid_grant")
	wantError(t, f.post(tokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {appCallback}, "code_verifier": {r.verifier}}, basic...), 400, "invalid_grant")
	// No client authentication at all.
	res := f.post(tokenPath, codeForm())
	wantError(t, res, 401, "invalid_client")
	if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("invalid_client without a Basic challenge: %q", res.Header.Get("WWW-Authenticate"))
	}
	// Credentials in the query, a JSON body, a GET.
	req, _ := http.NewRequest("POST", f.env.URL+tokenPath+"?client_secret="+app.Secret, strings.NewReader(codeForm().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(string(app.ID), app.Secret)
	wantError(t, f.do(req), 400, "invalid_request")
	body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": code})
	req, _ = http.NewRequest("POST", f.env.URL+tokenPath, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(string(app.ID), app.Secret)
	wantError(t, f.do(req), 400, "invalid_request")
	for _, path := range []string{tokenPath, "/t/default/introspect", "/t/default/revoke"} {
		req, _ = http.NewRequest("GET", f.env.URL+path+"?"+codeForm().Encode(), nil)
		req.SetBasicAuth(string(app.ID), app.Secret)
		res = f.do(req)
		if res.Status != http.StatusMethodNotAllowed || res.str("error") != "invalid_request" || !strings.Contains(res.Header.Get("Allow"), "POST") {
			t.Errorf("GET %s: %d Allow %q %s", path, res.Status, res.Header.Get("Allow"), res.Body)
		}
	}
	// None of that spent the code.
	if _, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier)); err != nil {
		t.Fatalf("exchange after malformed requests: %v", err)
	}
}
