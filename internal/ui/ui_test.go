package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

const goodPassword = "correct horse battery staple"

func signup(t *testing.T, b *testenv.Browser, email, pw string) *testenv.Response {
	t.Helper()
	return b.Submit("/t/default/signup", "/t/default/signup", url.Values{"email": {email}, "password": {pw}, "name": {"Ada"}})
}

func login(t *testing.T, b *testenv.Browser, email, pw string) *testenv.Response {
	t.Helper()
	return b.Submit("/t/default/login", "/t/default/login", url.Values{"email": {email}, "password": {pw}})
}

func countUsers(t *testing.T, e *testenv.Env, slug string) int {
	t.Helper()
	tn, err := e.Server.Tenants.BySlug(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	us, err := e.Server.Users.List(context.Background(), tn, store.UserFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}

var sessionRow = regexp.MustCompile(`data-session="([^"]+)"`)

func TestSignupAccountLogoutLoginPasswordSessions(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()

	res := signup(t, b, "Ada@Example.com", goodPassword)
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/account" {
		t.Fatalf("signup: status %d location %q body %s", res.Status, res.Location, res.Body)
	}
	acct := b.Get("/t/default/account")
	if acct.Status != 200 || !strings.Contains(acct.Body, "ada@example.com") {
		t.Fatalf("account page: %d %s", acct.Status, acct.Body)
	}

	// Log out, and the account page sends us to login.
	res = b.Submit("/t/default/account", "/t/default/logout", nil)
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "/t/default/login") {
		t.Fatalf("logout: %d %q", res.Status, res.Location)
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "/login") {
		t.Fatalf("account after logout: %d %q", res.Status, res.Location)
	}

	// Log in again; change the password.
	if res := login(t, b, "ada@example.com", goodPassword); res.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", res.Status, res.Body)
	}
	newPW := "a different long passphrase"
	res = b.Submit("/t/default/account", "/t/default/account/password", url.Values{"current_password": {goodPassword}, "new_password": {newPW}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", res.Status, res.Body)
	}
	if res := login(t, e.Browser(), "ada@example.com", goodPassword); res.Status != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", res.Status)
	}

	// A second browser logs in; the first sees two sessions and ends the other.
	b2 := e.Browser()
	b2.UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Firefox/130.0"
	if res := login(t, b2, "ada@example.com", newPW); res.Status != http.StatusSeeOther {
		t.Fatalf("second login: %d %s", res.Status, res.Body)
	}
	acct = b.Get("/t/default/account")
	ids := sessionRow.FindAllStringSubmatch(acct.Body, -1)
	if len(ids) != 2 || !strings.Contains(acct.Body, "Firefox on macOS") {
		t.Fatalf("want 2 sessions listed, got %d: %s", len(ids), acct.Body)
	}
	var other string
	for _, block := range strings.Split(acct.Body, `<li class="session"`)[1:] {
		if !strings.Contains(block, "This session") {
			other = sessionRow.FindStringSubmatch(block)[1]
		}
	}
	if other == "" {
		t.Fatal("could not tell the other session from this one")
	}
	res = b.Submit("/t/default/account", "/t/default/account/sessions/"+other+"/revoke", nil)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("end session: %d %s", res.Status, res.Body)
	}
	if res := b2.Get("/t/default/account"); res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "ended=1") {
		t.Fatalf("revoked session still works: %d %q", res.Status, res.Location)
	}
	if res := b.Get("/t/default/account"); res.Status != 200 {
		t.Fatalf("own session ended too: %d", res.Status)
	}
	// Ending the same session again is a clear 404 and changes nothing.
	res = b.Submit("/t/default/account", "/t/default/account/sessions/"+other+"/revoke", nil)
	if res.Status != http.StatusNotFound {
		t.Fatalf("ending an ended session: %d", res.Status)
	}
}

func TestSignupUnhappyPaths(t *testing.T) {
	e := testenv.New(t)
	if res := signup(t, e.Browser(), "taken@example.com", goodPassword); res.Status != http.StatusSeeOther {
		t.Fatalf("first signup: %d %s", res.Status, res.Body)
	}
	cases := []struct {
		name, email, pw string
		status          int
		want            string
	}{
		{"duplicate email", "TAKEN@example.com", goodPassword, 409, "exists already"},
		{"malformed email", "not-an-email", goodPassword, 400, "Enter an email address"},
		{"too short", "a@example.com", "short pass", 400, "at least 15 characters"},
		{"too long", "b@example.com", strings.Repeat("x", 257), 400, "at most 256 characters"},
		{"blocklisted", "c@example.com", "1qaz2wsx3edc4rfv", 400, "most commonly used passwords"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := signup(t, e.Browser(), c.email, c.pw)
			if res.Status != c.status || !strings.Contains(res.Body, c.want) {
				t.Fatalf("status %d, want %d with %q; body %s", res.Status, c.status, c.want, res.Body)
			}
			if !strings.Contains(res.Body, `aria-invalid="true"`) {
				t.Errorf("error not tied to a field")
			}
		})
	}
	if n := countUsers(t, e, "default"); n != 1 {
		t.Fatalf("want 1 user after failed sign-ups, have %d", n)
	}
}

func TestConcurrentSignupsOneEmail(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { concurrentSignups(t, testenv.New(t)) })
	t.Run("postgres", func(t *testing.T) {
		concurrentSignups(t, testenv.NewWith(t, testenv.Options{Store: testenv.Postgres(t)}))
	})
}

func concurrentSignups(t *testing.T, e *testenv.Env) {
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for i := 0; i < 20; i++ {
		b := e.Browser()
		page := b.Get("/t/default/signup")
		token := testenv.CSRF(page.Body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := b.Post("/t/default/signup", url.Values{"csrf_token": {token}, "email": {"race@example.com"}, "password": {goodPassword}})
			statuses <- res.Status
		}()
	}
	wg.Wait()
	close(statuses)
	won := 0
	for s := range statuses {
		switch s {
		case http.StatusSeeOther:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if won != 1 || countUsers(t, e, "default") != 1 {
		t.Fatalf("%d sign-ups won, %d users exist; want exactly one", won, countUsers(t, e, "default"))
	}
}

func TestLoginUnhappyPaths(t *testing.T) {
	e := testenv.New(t)
	signup(t, e.Browser(), "user@example.com", goodPassword)

	wrong := login(t, e.Browser(), "user@example.com", "not the right password")
	unknown := login(t, e.Browser(), "nobody@example.com", "not the right password")
	if wrong.Status != 401 || unknown.Status != 401 {
		t.Fatalf("statuses %d %d", wrong.Status, unknown.Status)
	}
	strip := func(s string) string { return regexp.MustCompile(`value="[^"]*"`).ReplaceAllString(s, "") }
	if strip(wrong.Body) != strip(unknown.Body) {
		t.Errorf("an unknown email and a wrong password answer differently")
	}

	// Disabled account.
	ctx := context.Background()
	tn, _ := e.Server.Tenants.BySlug(ctx, "default")
	u, err := e.Server.Users.ByEmail(ctx, tn, "user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b := e.Browser()
	login(t, b, "user@example.com", goodPassword)
	if _, err := e.Server.Users.SetStatus(ctx, tn, u.ID, ciam.UserDisabled, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Errorf("disabled user's session still works: %d", res.Status)
	}
	if res := login(t, e.Browser(), "user@example.com", goodPassword); res.Status != 403 || !strings.Contains(res.Body, "disabled") {
		t.Errorf("disabled login: %d %s", res.Status, res.Body)
	}
}

func TestLoginThrottled(t *testing.T) {
	e := testenv.New(t)
	signup(t, e.Browser(), "victim@example.com", goodPassword)
	// Failures first cost nothing, then each must wait a growing delay, then
	// the account locks.
	var delays []string
	var last *testenv.Response
	for i := 0; i < 30; i++ {
		last = login(t, e.Browser(), "victim@example.com", fmt.Sprintf("wrong password %d!", i))
		if last.Status != http.StatusTooManyRequests {
			if last.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i, last.Status)
			}
			continue
		}
		if strings.Contains(last.Body, "Try again in 15 minutes") {
			break
		}
		if !strings.Contains(last.Body, "then try again") {
			t.Fatalf("throttled without a clear message: %s", last.Body)
		}
		ra := last.Header.Get("Retry-After")
		delays = append(delays, ra)
		var secs int
		fmt.Sscan(ra, &secs)
		e.Clock.Advance(time.Duration(secs) * time.Second)
	}
	if !strings.Contains(last.Body, "Too many failed attempts. Try again in 15 minutes") || last.Header.Get("Retry-After") == "" {
		t.Fatalf("no lock: %d %q %s", last.Status, last.Header.Get("Retry-After"), last.Body)
	}
	if strings.Join(delays, ",") != "1,2,4,8,8,8,8" {
		t.Errorf("progressive delays %v", delays)
	}
	// Even the right password is refused while locked; it works after the lock.
	if res := login(t, e.Browser(), "victim@example.com", goodPassword); res.Status != http.StatusTooManyRequests {
		t.Fatalf("locked account accepted a login: %d", res.Status)
	}
	e.Clock.Advance(16 * time.Minute)
	if res := login(t, e.Browser(), "victim@example.com", goodPassword); res.Status != http.StatusSeeOther {
		t.Fatalf("login after the lock: %d %s", res.Status, res.Body)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	signup(t, b, "idle@example.com", goodPassword)
	e.Clock.Advance(23 * time.Hour)
	if res := b.Get("/t/default/account"); res.Status != 200 {
		t.Fatalf("session ended before its idle lifetime: %d", res.Status)
	}
	e.Clock.Advance(23 * time.Hour) // used 23h ago: still within the moved idle window
	if res := b.Get("/t/default/account"); res.Status != 200 {
		t.Fatalf("idle window did not move with use: %d", res.Status)
	}
	e.Clock.Advance(25 * time.Hour)
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "/login") {
		t.Fatalf("idle session still works: %d", res.Status)
	}
	// Absolute lifetime.
	b = e.Browser()
	signup(t, b, "abs@example.com", goodPassword)
	for i := 0; i < 32; i++ {
		e.Clock.Advance(23 * time.Hour)
		b.Get("/t/default/account")
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Fatalf("session outlived its absolute lifetime: %d", res.Status)
	}
}

func TestCSRF(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	signup(t, b, "csrf@example.com", goodPassword)
	other := e.Browser()
	otherToken := testenv.CSRF(other.Get("/t/default/login").Body)

	for name, token := range map[string]string{"missing": "", "another browser's": otherToken, "garbage": "abc"} {
		t.Run(name, func(t *testing.T) {
			form := url.Values{"name": {"Mallory"}}
			if token != "" {
				form.Set("csrf_token", token)
			}
			res := b.Post("/t/default/account/profile", form)
			if res.Status != http.StatusForbidden {
				t.Fatalf("status %d", res.Status)
			}
			if acct := b.Get("/t/default/account"); strings.Contains(acct.Body, "Mallory") {
				t.Fatal("the forged request changed the name")
			}
		})
	}
	// A login without a token is refused as well (login CSRF).
	if res := e.Browser().Post("/t/default/login", url.Values{"email": {"csrf@example.com"}, "password": {goodPassword}}); res.Status != http.StatusForbidden {
		t.Fatalf("login without token: %d", res.Status)
	}
}

func TestPagesBasics(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	res := b.Get("/t/no-such-tenant/login")
	if res.Status != 404 || !strings.Contains(res.Body, "There is no service at this address") {
		t.Fatalf("unknown tenant: %d %s", res.Status, res.Body)
	}
	big := url.Values{"email": {strings.Repeat("a", 70000)}}
	if res := b.Post("/t/default/signup", big); res.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", res.Status)
	}
	res = b.Get("/t/default/login")
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options"} {
		if res.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP lacks frame-ancestors: %s", res.Header.Get("Content-Security-Policy"))
	}
	// German from Accept-Language, and the switcher.
	req, _ := http.NewRequest("GET", e.URL+"/t/default/login", nil)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.5")
	r2, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	body, _ := io.ReadAll(r2.Body)
	if !strings.Contains(string(body), "Anmelden") {
		t.Errorf("Accept-Language de did not give German")
	}
	if res := b.Get("/t/default/login?lang=de"); !strings.Contains(res.Body, `lang="de"`) {
		t.Errorf("switcher did not give German")
	}
	if res := b.Get("/t/default/signup"); !strings.Contains(res.Body, "Konto erstellen") {
		t.Errorf("language choice not remembered")
	}
}

func TestLandingListsOnlyDefaultAndListed(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	yes := true
	if _, err := e.Server.Tenants.Create(ctx, "shown", tenant.Settings{Listed: &yes}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Server.Tenants.Create(ctx, "hidden", tenant.Settings{}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	res := e.Browser().Get("/")
	if !strings.Contains(res.Body, "/t/default/login") || !strings.Contains(res.Body, "/t/shown/login") {
		t.Errorf("landing page lacks default or listed tenant: %s", res.Body)
	}
	if strings.Contains(res.Body, "hidden") || strings.Contains(res.Body, "/t/platform") {
		t.Errorf("landing page lists an unlisted tenant: %s", res.Body)
	}
}

func TestFirstRunSetup(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	link, err := e.Server.SetupLink(ctx)
	if err != nil || link == "" {
		t.Fatalf("setup link: %q %v", link, err)
	}
	u, _ := url.Parse(link)
	b := e.Browser()
	path := u.Path + "?" + u.RawQuery
	res := b.Submit(path, "/setup", url.Values{"token": {u.Query().Get("token")}, "email": {"admin@example.com"}, "password": {goodPassword}})
	if res.Status != http.StatusSeeOther || res.Location != "/admin" {
		t.Fatalf("setup: %d %q %s", res.Status, res.Location, res.Body)
	}
	if res := b.Get("/admin"); res.Status != 200 || !strings.Contains(res.Body, "default") {
		t.Fatalf("admin home: %d %s", res.Status, res.Body)
	}
	// The link works once.
	if res := e.Browser().Get(path); res.Status != http.StatusForbidden {
		t.Fatalf("setup link reused: %d", res.Status)
	}
	if again, _ := e.Server.SetupLink(ctx); again != "" {
		t.Fatalf("a second setup link was issued after the administrator exists")
	}
	// Not an administrator: a default-tenant user gets the login page of the platform.
	if res := e.Browser().Get("/admin"); res.Status != http.StatusSeeOther {
		t.Fatalf("admin without session: %d", res.Status)
	}
}

func TestLoginRotatesSession(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	signup(t, b, "rotate@example.com", goodPassword)
	before := b.Jar.Cookies(mustURL(t, e.URL))
	// POST the login form directly: the GET of the form would redirect a
	// logged-in browser to its account.
	token := testenv.CSRF(b.Get("/t/default/account").Body)
	res := b.Post("/t/default/login", url.Values{"csrf_token": {token}, "email": {"rotate@example.com"}, "password": {goodPassword}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", res.Status, res.Body)
	}
	// The old session secret no longer works.
	old := e.Browser()
	old.Jar.SetCookies(mustURL(t, e.URL), before)
	if res := old.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Fatalf("the session from before the login still works: %d", res.Status)
	}
	acct := b.Get("/t/default/account")
	if n := len(sessionRow.FindAllString(acct.Body, -1)); n != 1 {
		t.Fatalf("want 1 live session after re-login, have %d", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// With Redis, failed logins count across server processes: guesses spread
// over two nodes meet the same delay as guesses at one.
func TestLoginThrottledAcrossNodes(t *testing.T) {
	u := os.Getenv("GATEHOUSE_TEST_REDIS")
	if u == "" {
		t.Skip("NOTICE: multi-node throttling test skipped: set GATEHOUSE_TEST_REDIS=redis://127.0.0.1:6379/0 to run it.")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	a := testenv.NewWith(t, testenv.Options{Redis: rc})
	b := testenv.NewWith(t, testenv.Options{Redis: rc, Store: a.Store})
	signup(t, a.Browser(), "victim@example.com", goodPassword)
	nodes := []*testenv.Env{a, b, a}
	for i, e := range nodes {
		if res := login(t, e.Browser(), "victim@example.com", fmt.Sprintf("wrong password %d!", i)); res.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, res.Status)
		}
	}
	// The fourth attempt, at the node that saw one failure, must wait.
	res := login(t, b.Browser(), "victim@example.com", goodPassword)
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("after 3 failures over two nodes: %d, Retry-After %q", res.Status, res.Header.Get("Retry-After"))
	}
}
