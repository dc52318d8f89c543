package oidc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// chromium finds a Chromium (GATEHOUSE_CHROMIUM, /usr/bin/chromium or one in
// PATH) or skips the test with a notice.
func chromium(t *testing.T) string {
	t.Helper()
	return testenv.Chromium(t)
}

// TestBrowserCodeFlow runs the authorization code flow in a real headless
// Chromium, from the authorization request through the login form and the
// consent form to a native app's loopback redirect URI. A browser applies
// the form page's CSP form-action to the redirects that follow a form
// submission, which the cookie-jar browser of the other tests cannot show.
func TestBrowserCodeFlow(t *testing.T) {
	exe := chromium(t)
	t.Parallel()
	f := newFixture(t)

	var mu sync.Mutex
	var got []url.Values
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		mu.Lock()
		got = append(got, r.URL.Query())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("signed in"))
	}))
	defer cb.Close()
	callbacks := func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		return append([]url.Values(nil), got...)
	}

	profile, err := os.MkdirTemp("", "gatehouse-oidc-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	life, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, testenv.ChromiumOptions(exe, profile)...)
	defer cancelAlloc()
	ctx, closeTab := chromedp.NewContext(alloc)
	defer closeTab()
	var logMu sync.Mutex
	var console []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok {
			logMu.Lock()
			console = append(console, e.Entry.Text)
			logMu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, cdplog.Enable()); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// waitCallback waits until the browser reached the client n times.
	waitCallback := func(n int, what string) url.Values {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if cs := callbacks(); len(cs) >= n {
				return cs[n-1]
			}
			time.Sleep(50 * time.Millisecond)
		}
		var loc string
		chromedp.Run(ctx, chromedp.Location(&loc))
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("%s: the browser never reached the client; it is at %s; console: %s", what, loc, strings.Join(console, " | "))
		return nil
	}
	step := func(what string, actions ...chromedp.Action) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Run(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// A first-party native app: the login form leads to the client.
	app := f.register(client.Input{Name: "Desktop", Public: true, FirstParty: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	cfg := f.config(app, cb.URL+"/cb")
	verifier := oauth2.GenerateVerifier()
	step("login page", chromedp.Navigate(cfg.AuthCodeURL("first", oauth2.S256ChallengeOption(verifier))), chromedp.WaitVisible(`#email`))
	step("log in", chromedp.SendKeys(`#email`, testEmail), chromedp.SendKeys(`#password`, testPassword), chromedp.Submit(`#password`))
	q := waitCallback(1, "login")
	if q.Get("state") != "first" || q.Get("iss") != f.issuer || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	if _, err := cfg.Exchange(f.ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange: %v", err)
	}

	// A third-party one: the consent form leads to the client.
	partner := f.register(client.Input{Name: "Partner CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	pcfg := f.config(partner, cb.URL+"/cb", "openid", "profile")
	verifier = oauth2.GenerateVerifier()
	step("consent page", chromedp.Navigate(pcfg.AuthCodeURL("second", oauth2.S256ChallengeOption(verifier))), chromedp.WaitVisible(`button[value="allow"]`))
	step("allow", chromedp.Click(`button[value="allow"]`))
	q = waitCallback(2, "consent")
	if q.Get("state") != "second" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	if _, err := pcfg.Exchange(f.ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange: %v", err)
	}
}
