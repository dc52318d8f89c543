package oidc_test

// The back-channel endpoints without a browser: client_credentials,
// introspection (RFC 7662), revocation (RFC 7009) and private_key_jwt
// client authentication (RFC 7523).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
)

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := f.register(client.Input{Name: "Worker", GrantTypes: []string{ciam.GrantClientCredentials}, Scopes: []string{"api.read", "api.write"}, Audiences: []string{"https://api.example", "https://other-api.example"}})
	cc := func(scopes []string, params url.Values) *clientcredentials.Config {
		return &clientcredentials.Config{ClientID: string(svc.ID), ClientSecret: svc.Secret, TokenURL: f.provider.Endpoint().TokenURL, Scopes: scopes, EndpointParams: params, AuthStyle: oauth2.AuthStyleInHeader}
	}

	tok, err := cc([]string{"api.read"}, url.Values{"audience": {"https://api.example"}}).Token(f.ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if tok.RefreshToken != "" || tok.Extra("id_token") != nil {
		t.Errorf("client_credentials returned a refresh or ID token")
	}
	in := f.introspect(svc, tok.AccessToken)
	if !active(in) || in.str("scope") != "api.read" || in.str("sub") != string(svc.ID) || in.str("client_id") != string(svc.ID) || in.str("iss") != f.issuer {
		t.Fatalf("introspection %s", in.Body)
	}
	if aud, _ := in.JSON["aud"].([]any); len(aud) != 1 || aud[0] != "https://api.example" {
		t.Errorf("aud %v", in.JSON["aud"])
	}

	// No scope asked: all the client's scopes and audiences.
	tok, err = cc(nil, nil).Token(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	in = f.introspect(svc, tok.AccessToken)
	if in.str("scope") != "api.read api.write" || len(in.JSON["aud"].([]any)) != 2 {
		t.Errorf("default scope/aud: %s", in.Body)
	}
	// Such a token has no user: userinfo refuses it.
	if r := f.userinfo("default", tok.AccessToken); r.Status < 400 || r.Status >= 500 {
		t.Errorf("userinfo with a client_credentials token: %d", r.Status)
	}

	_, err = cc([]string{"api.read", "admin"}, nil).Token(f.ctx)
	oauthError(t, err, "invalid_scope")
	_, err = cc([]string{"openid"}, nil).Token(f.ctx)
	oauthError(t, err, "invalid_scope")
	_, err = cc(nil, url.Values{"audience": {"https://evil.example"}}).Token(f.ctx)
	oauthError(t, err, "invalid_target")
	_, err = cc(nil, url.Values{"resource": {"https://api.example", "https://evil.example"}}).Token(f.ctx)
	oauthError(t, err, "invalid_target")

	wrong := cc(nil, nil)
	wrong.ClientSecret = "wrong"
	_, err = wrong.Token(f.ctx)
	oauthError(t, err, "invalid_client")

	// A public client cannot be registered for the grant, nor use it.
	if _, _, err := f.env.Server.Clients.Create(f.ctx, f.tenant, client.Input{Name: "x", Public: true, GrantTypes: []string{ciam.GrantClientCredentials}}, "test", audit0); err == nil {
		t.Errorf("a public client was registered for client_credentials")
	}
	pub := f.register(client.Input{Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	_, err = (&clientcredentials.Config{ClientID: string(pub.ID), TokenURL: f.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams}).Token(f.ctx)
	oauthError(t, err, "unauthorized_client")
	// Nor a confidential client without the grant.
	web := f.webApp(ciam.AuthSecretBasic)
	_, err = (&clientcredentials.Config{ClientID: string(web.ID), ClientSecret: web.Secret, TokenURL: f.provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInHeader}).Token(f.ctx)
	oauthError(t, err, "unauthorized_client")
	// And a client_credentials client cannot run the code flow.
	r := f.drive(f.env.Browser(), f.config(svc, appCallback).AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), flowOpts{})
	if r.Page == nil || r.Page.Status != 400 {
		t.Errorf("authorization by a client_credentials-only client: %+v", r)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.webApp(ciam.AuthSecretBasic)
	bApp := f.webApp(ciam.AuthSecretPost)
	cfg := f.config(a, appCallback)
	_, _, tok := f.login(cfg, flowOpts{})

	at := f.introspect(a, tok.AccessToken)
	if !active(at) || at.str("client_id") != string(a.ID) || at.str("sub") != string(f.user.ID) || at.str("scope") != "openid profile email offline_access" || at.str("token_type") != "Bearer" {
		t.Fatalf("access token introspection: %s", at.Body)
	}
	for _, k := range []string{"exp", "iat", "iss", "jti", "auth_time"} {
		if at.JSON[k] == nil {
			t.Errorf("introspection lacks %s", k)
		}
	}
	if rt := f.introspect(a, tok.RefreshToken); !active(rt) || rt.str("client_id") != string(a.ID) {
		t.Fatalf("refresh token introspection: %s", rt.Body)
	}
	// A wrong token_type_hint does not hide the token (RFC 7662 section 2.1).
	for _, tc := range []struct{ tok, hint string }{{tok.AccessToken, "refresh_token"}, {tok.RefreshToken, "access_token"}, {tok.AccessToken, "access_token"}, {tok.RefreshToken, "refresh_token"}, {tok.AccessToken, "something_else"}} {
		r := f.post("/t/default/introspect", url.Values{"token": {tc.tok}, "token_type_hint": {tc.hint}}, string(a.ID), a.Secret)
		if r.Status != 200 || !active(r) {
			t.Errorf("introspection with hint %s: %d %s", tc.hint, r.Status, r.Body)
		}
	}
	// Client authentication by client_secret_post works too.
	if r := f.postAs(bApp, "/t/default/introspect", url.Values{"token": {tok.AccessToken}}); r.Status != 200 || active(r) {
		t.Errorf("another client sees the token: %s", r.Body)
	}
	if r := f.postAs(bApp, "/t/default/introspect", url.Values{"token": {tok.RefreshToken}}); r.Status != 200 || active(r) {
		t.Errorf("another client sees the refresh token: %s", r.Body)
	}
	for name, tk := range map[string]string{"garbage": "garbage", "id token": idToken(t, tok), "long": strings.Repeat("x", 5000)} {
		if active(f.introspect(a, tk)) {
			t.Errorf("%s introspected as active", name)
		}
	}

	// Only authenticated confidential clients may ask.
	wantError(t, f.post("/t/default/introspect", url.Values{"token": {tok.AccessToken}}), 401, "invalid_client")
	wantError(t, f.post("/t/default/introspect", url.Values{"token": {tok.AccessToken}}, string(a.ID), "wrong"), 401, "invalid_client")
	pub := f.register(client.Input{Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	r := f.post("/t/default/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {string(pub.ID)}})
	if r.Status < 400 || r.Status >= 500 || active(r) {
		t.Errorf("public client introspected: %d %s", r.Status, r.Body)
	}
	wantError(t, f.post("/t/default/introspect", url.Values{}, string(a.ID), a.Secret), 400, "invalid_request")

	// A token of another tenant is inactive there, even for a client
	// that exists there.
	other := f.newTenant("other")
	oc := f.registerIn(other, client.Input{FirstParty: true, RedirectURIs: []string{appCallback}})
	if r := f.introspectAt("other", oc, tok.AccessToken); active(r) {
		t.Errorf("tenant-A access token active at tenant B: %s", r.Body)
	}
	if r := f.introspectAt("other", oc, tok.RefreshToken); active(r) {
		t.Errorf("tenant-A refresh token active at tenant B: %s", r.Body)
	}
	// And tenant A's client does not exist at tenant B.
	wantError(t, f.post("/t/other/introspect", url.Values{"token": {tok.AccessToken}}, string(a.ID), a.Secret), 401, "invalid_client")
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	revoke := func(c registered, tok, hint string) *apiResponse {
		form := url.Values{"token": {tok}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		return f.postAs(c, "/t/default/revoke", form)
	}

	// A refresh token: its family goes, access tokens included.
	_, _, tok := f.login(cfg, flowOpts{})
	if r := revoke(app, tok.RefreshToken, "refresh_token"); r.Status != 200 {
		t.Fatalf("revoke refresh token: %d %s", r.Status, r.Body)
	}
	_, err := f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
	if active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("access token active after its refresh token was revoked")
	}

	// An access token, with a wrong hint, revokes its family too.
	_, _, tok = f.login(cfg, flowOpts{})
	if r := revoke(app, tok.AccessToken, "refresh_token"); r.Status != 200 {
		t.Fatalf("revoke access token: %d %s", r.Status, r.Body)
	}
	if active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("revoked access token still active")
	}
	wantInvalidToken(t, f.userinfo("default", tok.AccessToken))
	_, err = f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")

	// Unknown tokens: 200 (RFC 7009 section 2.2).
	for _, tk := range []string{"unknown", strings.Repeat("y", 300), "a.b.c"} {
		if r := revoke(app, tk, ""); r.Status != 200 {
			t.Errorf("revoke unknown token: %d %s", r.Status, r.Body)
		}
	}
	// Another client's token: 200, and nothing happens.
	_, _, tok = f.login(cfg, flowOpts{})
	other := f.webApp(ciam.AuthSecretPost)
	if r := revoke(other, tok.RefreshToken, ""); r.Status != 200 {
		t.Errorf("revoke another client's token: %d", r.Status)
	}
	if r := revoke(other, tok.AccessToken, ""); r.Status != 200 {
		t.Errorf("revoke another client's token: %d", r.Status)
	}
	if !active(f.introspect(app, tok.RefreshToken)) || !active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("another client revoked the token")
	}
	// Public clients revoke their own tokens with client_id alone.
	pub := f.register(client.Input{Public: true, FirstParty: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	pcfg := f.config(pub, "http://127.0.0.1:5000/cb")
	_, _, ptok := f.login(pcfg, flowOpts{})
	if r := f.post("/t/default/revoke", url.Values{"token": {ptok.RefreshToken}, "client_id": {string(pub.ID)}}); r.Status != 200 {
		t.Errorf("public revoke: %d %s", r.Status, r.Body)
	}
	_, err = f.refresh(pcfg, ptok.RefreshToken)
	oauthError(t, err, "invalid_grant")

	// Errors.
	wantError(t, f.post("/t/default/revoke", url.Values{"token": {"x"}}), 401, "invalid_client")
	wantError(t, revoke(app, "", ""), 400, "invalid_request")
	if r := revoke(app, "x", "id_token"); r.Status != 400 || r.str("error") != "unsupported_token_type" {
		t.Errorf("unknown hint: %d %s", r.Status, r.Body)
	}
}

// assertionKey is a client's own key pair for private_key_jwt.
type assertionKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newAssertionKey(t *testing.T) (*assertionKey, string) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &assertionKey{priv: priv, kid: randString()}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	return k, string(b)
}

// sign makes a client assertion: the client's own statement, signed with its
// own key (not a token of the server).
func (k *assertionKey) sign(t *testing.T, c jwt.Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key, jwks := newAssertionKey(t)
	app := f.register(client.Input{Name: "JWT app", FirstParty: true, TokenAuthMethod: ciam.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs: []string{appCallback}, GrantTypes: []string{ciam.GrantAuthorizationCode, ciam.GrantRefreshToken, ciam.GrantClientCredentials}})
	if app.Secret != "" {
		t.Fatalf("a private_key_jwt client got a secret")
	}
	tokenURL := f.provider.Endpoint().TokenURL
	claimsFor := func(aud string) jwt.Claims {
		now := f.env.Clock.Now()
		return jwt.Claims{Issuer: string(app.ID), Subject: string(app.ID), Audience: jwt.Audience{aud}, ID: randString(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))}
	}
	assertion := func(a string) []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", a),
		}
	}

	// The code flow, with the assertion at the token endpoint.
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	a1 := key.sign(t, claimsFor(tokenURL))
	tok := f.exchange(r, assertion(a1)...)
	if tok.RefreshToken == "" {
		t.Fatalf("no refresh token")
	}

	// Refresh with a fresh assertion rotates as usual.
	rf := f.post("/t/default/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {key.sign(t, claimsFor(tokenURL))}})
	if rf.Status != 200 || rf.str("refresh_token") == "" || rf.str("refresh_token") == tok.RefreshToken {
		t.Fatalf("refresh with private_key_jwt: %d %s", rf.Status, rf.Body)
	}

	// The same assertion again (jti replay) is refused.
	r = f.authorize(b, cfg, flowOpts{})
	_, err := cfg.Exchange(f.ctx, f.code(r), append([]oauth2.AuthCodeOption{oauth2.VerifierOption(r.verifier)}, assertion(a1)...)...)
	oauthError(t, err, "invalid_client")
	// ... and the code is still good with a fresh assertion.
	f.exchange(r, assertion(key.sign(t, claimsFor(f.issuer)))...)

	// client_credentials with the assertion, without client_id (the sub names the client).
	ccForm := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	a2 := key.sign(t, claimsFor(tokenURL))
	if res := f.post("/t/default/token", ccForm(a2)); res.Status != 200 {
		t.Fatalf("client_credentials with private_key_jwt: %d %s", res.Status, res.Body)
	}
	wantError(t, f.post("/t/default/token", ccForm(a2)), 401, "invalid_client")
	// Introspection accepts an assertion with the introspection endpoint as aud.
	in := f.post("/t/default/introspect", url.Values{"token": {tok.AccessToken}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {key.sign(t, claimsFor(f.issuer+"/introspect"))}})
	if !active(in) {
		t.Fatalf("introspection with private_key_jwt: %s", in.Body)
	}

	// Bad assertions.
	other, _ := newAssertionKey(t)
	otherKid := *other
	otherKid.kid = key.kid
	expired := claimsFor(tokenURL)
	expired.Expiry = jwt.NewNumericDate(f.env.Clock.Now().Add(-5 * time.Minute))
	tooLong := claimsFor(tokenURL)
	tooLong.Expiry = jwt.NewNumericDate(f.env.Clock.Now().Add(time.Hour))
	wrongIss := claimsFor(tokenURL)
	wrongIss.Issuer = "someone-else"
	noJTI := claimsFor(tokenURL)
	noJTI.ID = ""
	notYet := claimsFor(tokenURL)
	notYet.NotBefore = jwt.NewNumericDate(f.env.Clock.Now().Add(5 * time.Minute))
	good := claimsFor(tokenURL)
	payload, _ := json.Marshal(good)
	unsigned := b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(string(payload)) + "."
	hmacSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(jwks)}, nil)
	hmac, _ := jwt.Signed(hmacSigner).Claims(good).Serialize()
	for name, a := range map[string]string{
		"other key":           other.sign(t, claimsFor(tokenURL)),
		"other key, our kid":  otherKid.sign(t, claimsFor(tokenURL)),
		"wrong aud":           key.sign(t, claimsFor("https://evil.example/token")),
		"expired":             key.sign(t, expired),
		"lives too long":      key.sign(t, tooLong),
		"wrong iss":           key.sign(t, wrongIss),
		"no jti":              key.sign(t, noJTI),
		"not yet valid":       key.sign(t, notYet),
		"alg none":            unsigned,
		"HS256 with the JWKS": hmac,
	} {
		res := f.post("/t/default/token", ccForm(a))
		if res.Status != 401 || res.str("error") != "invalid_client" {
			t.Errorf("%s: %d %s", name, res.Status, res.Body)
		}
	}
	// A secret does not authenticate a private_key_jwt client.
	wantError(t, f.post("/t/default/token", url.Values{"grant_type": {"client_credentials"}}, string(app.ID), "secret"), 401, "invalid_client")
	// client_id in the body must match the assertion's client.
	form := ccForm(key.sign(t, claimsFor(tokenURL)))
	web := f.webApp(ciam.AuthSecretBasic)
	form.Set("client_id", string(web.ID))
	if res := f.post("/t/default/token", form); res.Status != 401 || res.str("error") != "invalid_client" {
		t.Errorf("client_id of another client with an assertion: %d %s", res.Status, res.Body)
	}
	if res := f.post("/t/default/token", ccForm(key.sign(t, claimsFor(tokenURL)))); res.Status != http.StatusOK {
		t.Errorf("a fresh assertion after the failures is refused: %d %s", res.Status, res.Body)
	}
}
