package js_test

// TestJSClients runs strict third-party JavaScript clients, npm openid-client
// (v6) and oauth4webapi (v3), through the authorization code flow with PKCE
// against a whole Gatehouse. A Node script per flow (openid-client.mjs,
// oauth4webapi.mjs) discovers the provider, prints the authorization URL,
// and waits on stdin for the callback; this test drives a headless Chromium
// through the login (and consent) pages, captures the browser's request to
// the client's loopback redirect URI (a query or a form_post), hands it to
// the script, which validates every response with the library and the
// checks of common.mjs, and asserts the JSON summary the script prints.
// The libraries' only relaxation is their documented allowance of plain
// http, for the loopback test server.
//
// Without node, without interop/js/node_modules (`npm ci` there) or
// without Chromium the test is skipped with a notice.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

const (
	testEmail    = "ada@example.com"
	testPassword = "correct horse battery staple"
	scope        = "openid profile email offline_access"
)

// flow is one run of a script.
type flow struct {
	name       string
	script     string // openid-client.mjs or oauth4webapi.mjs
	auth       string // token_endpoint_auth_method
	mode       string // response_mode: query or form_post
	alg        string // the client's ID token alg
	firstParty bool   // otherwise the consent page shows
	maxAge     int    // sent as max_age when > 0
	deny       bool   // the user denies consent: the script expects access_denied
}

var flows = []flow{
	{name: "openid-client/client_secret_basic/query/ES256", script: "openid-client.mjs", auth: ciam.AuthSecretBasic, mode: "query", alg: ciam.AlgES256, firstParty: true, maxAge: 600},
	{name: "openid-client/none/form_post/RS256", script: "openid-client.mjs", auth: ciam.AuthNone, mode: "form_post", alg: ciam.AlgRS256},
	{name: "openid-client/private_key_jwt/query/EdDSA", script: "openid-client.mjs", auth: ciam.AuthPrivateKeyJWT, mode: "query", alg: ciam.AlgEdDSA, firstParty: true},
	{name: "openid-client/denied", script: "openid-client.mjs", auth: ciam.AuthNone, mode: "query", alg: ciam.AlgES256, deny: true},
	{name: "oauth4webapi/client_secret_basic/form_post/RS256", script: "oauth4webapi.mjs", auth: ciam.AuthSecretBasic, mode: "form_post", alg: ciam.AlgRS256, firstParty: true},
	{name: "oauth4webapi/none/query/EdDSA", script: "oauth4webapi.mjs", auth: ciam.AuthNone, mode: "query", alg: ciam.AlgEdDSA, maxAge: 600},
	{name: "oauth4webapi/private_key_jwt/form_post/ES256", script: "oauth4webapi.mjs", auth: ciam.AuthPrivateKeyJWT, mode: "form_post", alg: ciam.AlgES256, firstParty: true},
	{name: "oauth4webapi/denied", script: "oauth4webapi.mjs", auth: ciam.AuthSecretBasic, mode: "form_post", alg: ciam.AlgES256, deny: true},
}

// summary is what a script prints at the end of a successful flow.
type summary struct {
	Event          string            `json:"event"`
	Library        string            `json:"library"`
	Versions       map[string]string `json:"versions"`
	ClientAuth     string            `json:"client_auth"`
	ResponseMode   string            `json:"response_mode"`
	CallbackMethod string            `json:"callback_method"`
	Denied         string            `json:"denied"`
	IssChecked     bool              `json:"iss_checked"`
	Discovery      struct {
		Issuer       string `json:"issuer"`
		IssParameter bool   `json:"iss_parameter"`
	} `json:"discovery"`
	IDToken struct {
		Alg               string   `json:"alg"`
		Kid               string   `json:"kid"`
		Sub               string   `json:"sub"`
		NonceOK           bool     `json:"nonce_ok"`
		AtHashOK          bool     `json:"at_hash_ok"`
		SignatureVerified bool     `json:"signature_verified"`
		ACR               string   `json:"acr"`
		AMR               []string `json:"amr"`
		AuthTime          int64    `json:"auth_time"`
	} `json:"id_token"`
	AccessToken struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	} `json:"access_token"`
	CodeReplay          string `json:"code_replay"`
	ReplayRevokedTokens string `json:"replay_revoked_tokens"`
	Userinfo            struct {
		Sub   string `json:"sub"`
		Email string `json:"email"`
	} `json:"userinfo"`
	Refresh struct {
		Rotated            bool   `json:"rotated"`
		IDToken122         bool   `json:"id_token_12_2"`
		Reuse              string `json:"reuse"`
		ReuseRevokedFamily string `json:"reuse_revoked_family"`
	} `json:"refresh"`
	Introspection *struct {
		AccessActive  bool   `json:"access_active"`
		RefreshActive bool   `json:"refresh_active"`
		RotatedActive bool   `json:"rotated_active"`
		TokenType     string `json:"token_type"`
		Scope         string `json:"scope"`
	} `json:"introspection"`
	WrongSecret string `json:"wrong_secret"`
	Revocation  struct {
		RefreshAfter      string `json:"refresh_after"`
		UserinfoAfter     string `json:"userinfo_after"`
		AccessActiveAfter *bool  `json:"access_active_after"`
	} `json:"revocation"`
	Requests              int `json:"requests"`
	TokenResponsesNoStore int `json:"token_responses_no_store"`
}

// callback is a request the browser made to the client's redirect URI.
type callback struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body,omitempty"`
}

// prerequisites returns node's path and the pinned versions, or skips.
func prerequisites(t *testing.T) (string, map[string]string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("NOTICE: JavaScript interop test skipped: node is not installed")
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	for name := range pkg.Dependencies {
		if _, err := os.Stat(filepath.Join("node_modules", name, "package.json")); err != nil {
			t.Skipf("NOTICE: JavaScript interop test skipped: %s is not installed (run `npm ci --no-audit --no-fund` in interop/js)", name)
		}
	}
	return node, pkg.Dependencies
}

// chromium finds a Chromium (GATEHOUSE_CHROMIUM, /usr/bin/chromium or one in
// PATH) or skips the test with a notice.
func chromium(t *testing.T) string {
	t.Helper()
	return testenv.Chromium(t)
}

func TestJSClients(t *testing.T) {
	node, pins := prerequisites(t)
	exe := chromium(t)
	start := time.Now()

	env := testenv.New(t)
	ctx := context.Background()
	tn, err := env.Server.Tenants.BySlug(ctx, tenant.DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	issuer := env.URL + "/t/" + tn.Slug
	u, err := env.Server.Users.Create(ctx, tn, user.Input{Email: testEmail, Name: "Ada Lovelace", Password: testPassword, EmailVerified: true, Locale: "en"}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}

	// The clients' redirect endpoint records every request to /cb.
	var mu sync.Mutex
	var got []callback
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		c := callback{Method: r.Method, URL: "http://" + r.Host + r.URL.RequestURI()}
		if r.Method == http.MethodPost {
			c.ContentType, c.Body = r.Header.Get("Content-Type"), string(body)
		}
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("signed in"))
	}))
	defer cb.Close()
	callbacks := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	callbackN := func(n int) callback {
		mu.Lock()
		defer mu.Unlock()
		return got[n]
	}

	// One headless Chromium for all flows.
	profile, err := os.MkdirTemp("", "gatehouse-interop-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	life, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, testenv.ChromiumOptions(exe, profile)...)
	defer cancelAlloc()
	browser, closeBrowser := chromedp.NewContext(alloc)
	defer closeBrowser()
	var logMu sync.Mutex
	var console []string
	chromedp.ListenTarget(browser, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok {
			logMu.Lock()
			console = append(console, e.Entry.Text)
			logMu.Unlock()
		}
	})
	if err := chromedp.Run(browser, cdplog.Enable()); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}

	for _, fl := range flows {
		t.Run(fl.name, func(t *testing.T) {
			// The server's clock is the test's; keep it at the real time,
			// which the scripts' client assertions and checks use.
			env.Clock.Advance(time.Since(env.Clock.Now()))
			cfg := map[string]any{
				"issuer": issuer, "redirect_uri": cb.URL + "/cb", "scope": scope, "response_mode": fl.mode,
				"auth_method": fl.auth, "id_token_alg": fl.alg,
			}
			if fl.maxAge > 0 {
				cfg["max_age"] = fl.maxAge
			}
			if fl.deny {
				cfg["expect"] = "access_denied"
			}
			in := client.Input{Name: "JS " + fl.name, FirstParty: fl.firstParty, TokenAuthMethod: fl.auth, IDTokenAlg: fl.alg}
			switch fl.auth {
			case ciam.AuthNone:
				// A native app: a loopback redirect URI of any port (RFC 8252 7.3).
				in.Public, in.RedirectURIs = true, []string{"http://127.0.0.1/cb"}
			case ciam.AuthPrivateKeyJWT:
				priv, pub := clientKey(t)
				in.JWKS, cfg["private_jwk"] = pub, priv
				in.RedirectURIs = []string{cb.URL + "/cb"}
			default:
				in.RedirectURIs = []string{cb.URL + "/cb"}
			}
			c, secret, err := env.Server.Clients.Create(ctx, tn, in, "test", audit.Meta{})
			if err != nil {
				t.Fatalf("register client: %v", err)
			}
			cfg["client_id"] = string(c.ID)
			if secret != "" {
				cfg["client_secret"] = secret
			}

			// Each flow starts without cookies: no session from the flows before.
			logMu.Lock()
			console = nil
			logMu.Unlock()
			if err := chromedp.Run(browser, network.ClearBrowserCookies()); err != nil {
				t.Fatalf("clear the browser's cookies: %v", err)
			}
			decision := "allow"
			if fl.deny {
				decision = "deny"
			}
			authorize := func(authURL string) callback {
				t.Helper()
				n := callbacks()
				if err := drive(browser, authURL, decision, func() bool { return callbacks() > n }); err != nil {
					var loc string
					chromedp.Run(browser, chromedp.Location(&loc))
					logMu.Lock()
					defer logMu.Unlock()
					t.Fatalf("authorization %s: %v; the browser is at %s; console: %s", authURL, err, loc, strings.Join(console, " | "))
				}
				return callbackN(n)
			}

			var s summary
			methods := runScript(t, node, fl.script, cfg, authorize, &s)
			check(t, fl, s, pins, issuer, string(c.ID), string(u.ID), methods)
		})
	}
	t.Logf("%d flows in %v", len(flows), time.Since(start).Round(time.Millisecond))
}

// drive sends the browser to authURL and answers the login and consent
// pages until done reports that the client's redirect URI was reached.
func drive(ctx context.Context, authURL, decision string, done func() bool) error {
	nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(nctx, chromedp.Navigate(authURL)); err != nil && !done() {
		return fmt.Errorf("navigate: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if done() {
			return nil
		}
		var state string
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Run(ectx, chromedp.Evaluate(`(document.querySelector('#password') ? 'login' :
			document.querySelector('button[name="decision"]') ? 'consent' : 'other') + ' ' + location.href`, &state))
		cancel()
		if err == nil && state != last {
			kind, _, _ := strings.Cut(state, " ")
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			switch kind {
			case "login":
				err = chromedp.Run(actx, chromedp.SendKeys(`#email`, testEmail), chromedp.SendKeys(`#password`, testPassword), chromedp.Submit(`#password`))
				last = state
			case "consent":
				err = chromedp.Run(actx, chromedp.Click(`button[name="decision"][value="`+decision+`"]`))
				last = state
			}
			cancel()
			if err != nil && !done() {
				return fmt.Errorf("%s page: %w", kind, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the browser did not reach the redirect URI within 20s")
}

// runScript runs a flow's Node script: it writes cfg, answers each
// authorization URL the script prints with the callback the browser
// delivered, and decodes the summary into s. It returns the callbacks'
// methods.
func runScript(t *testing.T, node, script string, cfg map[string]any, authorize func(string) callback, s *summary) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		stdin.Close()
		cancel()
		cmd.Wait()
		t.Fatalf("%s: %s\nnode stderr:\n%s", script, fmt.Sprintf(format, args...), stderr.String())
	}
	write := func(v any) {
		b, _ := json.Marshal(v)
		if _, err := stdin.Write(append(b, '\n')); err != nil {
			fail("write to the script: %v", err)
		}
	}
	write(cfg)
	var methods []string
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var sum []byte
	for lines.Scan() {
		var msg struct {
			Event string `json:"event"`
			URL   string `json:"url"`
		}
		if err := json.Unmarshal(lines.Bytes(), &msg); err != nil {
			fail("unexpected output %q", lines.Text())
		}
		switch msg.Event {
		case "authorize":
			c := authorize(msg.URL)
			methods = append(methods, c.Method)
			write(c)
		case "summary":
			sum = slices.Clone(lines.Bytes())
		default:
			fail("unexpected message %s", lines.Text())
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s failed: %v\nnode stderr:\n%s", script, err, stderr.String())
	}
	if sum == nil {
		t.Fatalf("%s printed no summary\nnode stderr:\n%s", script, stderr.String())
	}
	if err := json.Unmarshal(sum, s); err != nil {
		t.Fatalf("summary %s: %v", sum, err)
	}
	t.Logf("%s: %s", script, sum)
	return methods
}

// check asserts a flow's summary.
func check(t *testing.T, fl flow, s summary, pins map[string]string, issuer, clientID, sub string, methods []string) {
	t.Helper()
	lib := strings.TrimSuffix(fl.script, ".mjs")
	if s.Event != "summary" || s.Library != lib {
		t.Fatalf("summary of %q, want %s", s.Library, lib)
	}
	for name, v := range s.Versions {
		if pins[name] != v {
			t.Errorf("%s %s ran, package.json pins %q", name, v, pins[name])
		}
	}
	if s.Versions[lib] == "" || s.Versions["oauth4webapi"] == "" {
		t.Errorf("versions %v", s.Versions)
	}
	wantMethod := "GET"
	if fl.mode == "form_post" {
		wantMethod = "POST"
	}
	for _, m := range methods {
		if m != wantMethod {
			t.Errorf("callback method %s, want %s for response_mode=%s", m, wantMethod, fl.mode)
		}
	}
	if fl.deny {
		if s.Denied != "access_denied" || !s.IssChecked || len(methods) != 1 {
			t.Errorf("denied flow: %+v (callbacks %v)", s, methods)
		}
		return
	}
	if len(methods) != 3 {
		t.Errorf("%d authorizations, want 3", len(methods))
	}
	if s.ClientAuth != fl.auth || s.ResponseMode != fl.mode || s.CallbackMethod != wantMethod {
		t.Errorf("ran with auth %s mode %s callback %s", s.ClientAuth, s.ResponseMode, s.CallbackMethod)
	}
	if s.Discovery.Issuer != issuer || !s.Discovery.IssParameter {
		t.Errorf("discovery %+v", s.Discovery)
	}
	id := s.IDToken
	if id.Alg != fl.alg || id.Kid == "" || id.Sub != sub || !id.NonceOK || !id.AtHashOK || !id.SignatureVerified {
		t.Errorf("ID token %+v", id)
	}
	if id.ACR != "urn:gatehouse:aal1" || !slices.Contains(id.AMR, "pwd") || id.AuthTime == 0 {
		t.Errorf("ID token acr %q amr %v auth_time %d", id.ACR, id.AMR, id.AuthTime)
	}
	if s.AccessToken.ClientID != clientID || !strings.Contains(s.AccessToken.Scope, "openid") {
		t.Errorf("access token %+v", s.AccessToken)
	}
	if s.CodeReplay != "invalid_grant" || s.ReplayRevokedTokens != "invalid_token" {
		t.Errorf("code replay %q, its tokens after %q", s.CodeReplay, s.ReplayRevokedTokens)
	}
	if s.Userinfo.Sub != sub || s.Userinfo.Email != testEmail {
		t.Errorf("userinfo %+v", s.Userinfo)
	}
	if !s.Refresh.Rotated || !s.Refresh.IDToken122 || s.Refresh.Reuse != "invalid_grant" || s.Refresh.ReuseRevokedFamily != "invalid_grant" {
		t.Errorf("refresh %+v", s.Refresh)
	}
	if fl.auth == ciam.AuthNone {
		if s.Introspection != nil {
			t.Errorf("a public client introspected")
		}
	} else if in := s.Introspection; in == nil || !in.AccessActive || !in.RefreshActive || in.RotatedActive {
		t.Errorf("introspection %+v", in)
	} else if a := s.Revocation.AccessActiveAfter; a == nil || *a {
		t.Errorf("access token active after revocation: %v", a)
	}
	if (fl.auth == ciam.AuthSecretBasic) != (s.WrongSecret == "401 basic") {
		t.Errorf("a wrong client secret: %q", s.WrongSecret)
	}
	if s.Revocation.RefreshAfter != "invalid_grant" || s.Revocation.UserinfoAfter != "invalid_token" {
		t.Errorf("revocation %+v", s.Revocation)
	}
	if s.TokenResponsesNoStore != 4 || s.Requests < 10 {
		t.Errorf("%d successful token responses, %d requests", s.TokenResponsesNoStore, s.Requests)
	}
}

// clientKey makes a private_key_jwt key pair: the private JWK for the script
// and the public JWK Set to register.
func clientKey(t *testing.T) (map[string]any, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: priv, KeyID: "interop-" + fmt.Sprint(time.Now().UnixNano()), Algorithm: "ES256", Use: "sig"}
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var private map[string]any
	if err := json.Unmarshal(b, &private); err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return private, string(set)
}
