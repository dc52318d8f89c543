package oidc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
)

// TestDisabledUserAndDeletedClient: tokens stop working when their user is
// disabled or their client deleted.
func TestDisabledUserAndDeletedClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b, _, tok := f.login(cfg, flowOpts{})
	r := f.authorize(b, cfg, flowOpts{})
	pending := f.code(r)

	if _, err := f.env.Server.Users.SetStatus(f.ctx, f.tenant, f.user.ID, ciam.UserDisabled, "test", audit0); err != nil {
		t.Fatal(err)
	}
	wantInvalidToken(t, f.userinfo("default", tok.AccessToken))
	_, err := f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
	_, err = cfg.Exchange(f.ctx, pending, oauth2.VerifierOption(r.verifier))
	oauthError(t, err, "invalid_grant")
	if active(f.introspect(app, tok.AccessToken)) {
		t.Errorf("access token of a disabled user active at introspection")
	}
	if active(f.introspect(app, tok.RefreshToken)) {
		t.Errorf("refresh token of a disabled user active at introspection")
	}
	if _, err := f.env.Server.Users.SetStatus(f.ctx, f.tenant, f.user.ID, ciam.UserActive, "test", audit0); err != nil {
		t.Fatal(err)
	}

	// Enabled again, the user logs in afresh (the sessions were ended).
	_, _, tok = f.login(cfg, flowOpts{})
	if f.userinfo("default", tok.AccessToken).Status != 200 {
		t.Fatalf("userinfo after re-enabling")
	}

	// A deleted client's tokens are dead: userinfo, refresh.
	if err := f.env.Server.Clients.Delete(f.ctx, f.tenant.ID, app.ID, "test", audit0); err != nil {
		t.Fatal(err)
	}
	wantInvalidToken(t, f.userinfo("default", tok.AccessToken))
	_, err = f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_client")
	// Nor can an authorization start for it.
	wantPage(t, "deleted client", b.Get(f.local(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))))
}

// TestClientRegistrationRules: registrations the provider must refuse.
func TestClientRegistrationRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key, jwks := newAssertionKey(t)
	privJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.priv, KeyID: "k", Algorithm: "ES256"}}})
	octJWKS := `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}`
	web := client.Input{Name: "x", RedirectURIs: []string{appCallback}}
	with := func(change func(*client.Input)) client.Input {
		in := web
		change(&in)
		return in
	}
	for name, in := range map[string]client.Input{
		"no name":                      with(func(in *client.Input) { in.Name = "" }),
		"no redirect URI":              with(func(in *client.Input) { in.RedirectURIs = nil }),
		"http redirect":                with(func(in *client.Input) { in.RedirectURIs = []string{"http://app.example/cb"} }),
		"wildcard redirect":            with(func(in *client.Input) { in.RedirectURIs = []string{"https://*.app.example/cb"} }),
		"fragment":                     with(func(in *client.Input) { in.RedirectURIs = []string{"https://app.example/cb#x"} }),
		"javascript":                   with(func(in *client.Input) { in.RedirectURIs = []string{"javascript:alert(1)"} }),
		"userinfo":                     with(func(in *client.Input) { in.RedirectURIs = []string{"https://a@app.example/cb"} }),
		"localhost. prefix":            with(func(in *client.Input) { in.RedirectURIs = []string{"http://localhost.evil.example/cb"} }),
		"bad post-logout URI":          with(func(in *client.Input) { in.PostLogoutURIs = []string{"http://evil.example/bye"} }),
		"implicit":                     with(func(in *client.Input) { in.GrantTypes = []string{"implicit"} }),
		"password":                     with(func(in *client.Input) { in.GrantTypes = []string{"password"} }),
		"public client_credentials":    with(func(in *client.Input) { in.Public = true; in.GrantTypes = []string{ciam.GrantClientCredentials} }),
		"public with a secret method":  with(func(in *client.Input) { in.Public = true; in.TokenAuthMethod = ciam.AuthSecretBasic }),
		"confidential with none":       with(func(in *client.Input) { in.TokenAuthMethod = ciam.AuthNone }),
		"private_key_jwt without keys": with(func(in *client.Input) { in.TokenAuthMethod = ciam.AuthPrivateKeyJWT }),
		"private_key_jwt private key":  with(func(in *client.Input) { in.TokenAuthMethod = ciam.AuthPrivateKeyJWT; in.JWKS = string(privJWKS) }),
		"private_key_jwt HMAC key":     with(func(in *client.Input) { in.TokenAuthMethod = ciam.AuthPrivateKeyJWT; in.JWKS = octJWKS }),
		"unknown auth method":          with(func(in *client.Input) { in.TokenAuthMethod = "tls_client_auth" }),
		"ID token alg none":            with(func(in *client.Input) { in.IDTokenAlg = "none" }),
		"ID token alg HS256":           with(func(in *client.Input) { in.IDTokenAlg = "HS256" }),
		"access token TTL 2 days":      with(func(in *client.Input) { in.AccessTokenTTL = 48 * time.Hour }),
		"bad scope":                    with(func(in *client.Input) { in.Scopes = []string{"a b"} }),
	} {
		if c, _, err := f.env.Server.Clients.Create(f.ctx, f.tenant, in, "test", audit0); err == nil {
			t.Errorf("%s: registered %+v", name, c)
		}
	}
	// And the allowed shapes register.
	for name, in := range map[string]client.Input{
		"loopback": with(func(in *client.Input) {
			in.Public = true
			in.RedirectURIs = []string{"http://127.0.0.1/cb", "http://[::1]/cb"}
		}),
		"native scheme":   with(func(in *client.Input) { in.Public = true; in.RedirectURIs = []string{"com.example.app:/cb"} }),
		"private_key_jwt": with(func(in *client.Input) { in.TokenAuthMethod = ciam.AuthPrivateKeyJWT; in.JWKS = jwks }),
		"service":         {Name: "svc", GrantTypes: []string{ciam.GrantClientCredentials}},
	} {
		if _, _, err := f.env.Server.Clients.Create(f.ctx, f.tenant, in, "test", audit0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A client secret is shown once and kept only as a hash.
	c := f.webApp(ciam.AuthSecretBasic)
	stored, err := f.env.Server.Clients.Get(f.ctx, f.tenant.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Secret) < 43 || strings.Contains(string(stored.SecretHash), c.Secret) || len(stored.SecretHash) != 32 {
		t.Errorf("secret %d chars, stored hash %d bytes", len(c.Secret), len(stored.SecretHash))
	}
}
