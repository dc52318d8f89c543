package ui_test

import (
	"context"
	"encoding/base32"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/totp"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

var (
	totpSecretRE = regexp.MustCompile(`data-totp-secret>([A-Z2-7 ]+)<`)
	sealedRE     = regexp.MustCompile(`name="sealed" value="([^"]+)"`)
	recoveryRE   = regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`)
)

func setMFA(t *testing.T, e *testenv.Env, policy string) {
	t.Helper()
	if _, err := e.Server.Tenants.Update(context.Background(), tenant.DefaultSlug, tenant.Settings{MFAPolicy: &policy}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
}

// authenticator is a TOTP app in a test.
type authenticator struct {
	e      *testenv.Env
	secret []byte
}

func (a *authenticator) code(at time.Time) string {
	c, err := totp.Code(a.secret, totp.Step(at))
	if err != nil {
		panic(err)
	}
	return c
}

// now is the code of the current step.
func (a *authenticator) now() string { return a.code(a.e.Clock.Now()) }

// readTOTPSetup reads the secret and sealed enrolment off a setup page.
func readTOTPSetup(t *testing.T, e *testenv.Env, body string) (*authenticator, string) {
	t.Helper()
	m, sm := totpSecretRE.FindStringSubmatch(body), sealedRE.FindStringSubmatch(body)
	if m == nil || sm == nil {
		t.Fatalf("no TOTP setup on the page: %s", body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return &authenticator{e: e, secret: secret}, html.UnescapeString(sm[1])
}

// enrolTOTP adds an authenticator app from the account page and returns it
// with the recovery codes shown.
func enrolTOTP(t *testing.T, e *testenv.Env, b *testenv.Browser) (*authenticator, []string) {
	t.Helper()
	page := b.Get("/t/default/account/totp")
	if page.Status != http.StatusOK {
		t.Fatalf("TOTP setup page: %d %s", page.Status, page.Location)
	}
	a, sealed := readTOTPSetup(t, e, page.Body)
	if !strings.Contains(page.Body, `href="otpauth://totp/Default:`) {
		t.Errorf("the setup page has no otpauth link")
	}
	res := b.Post("/t/default/account/totp", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "sealed": {sealed}, "code": {a.now()}})
	codes := recoveryCodesIn(res.Body)
	if res.Status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("TOTP confirmation: %d, %d codes", res.Status, len(codes))
	}
	return a, codes
}

func recoveryCodesIn(body string) []string {
	var out []string
	for _, m := range recoveryRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// secondStep posts a code to the pending login's page.
func secondStep(t *testing.T, b *testenv.Browser, method, code string) *testenv.Response {
	t.Helper()
	field := "code"
	if method == "recovery" {
		field = "recovery"
	}
	return b.Submit("/t/default/mfa", "/t/default/mfa", url.Values{"method": {method}, field: {code}})
}

func pendingLogin(t *testing.T, b *testenv.Browser, email string) {
	t.Helper()
	res := login(t, b, email, goodPassword)
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/mfa" {
		t.Fatalf("password login of a user with a second factor: %d %s", res.Status, res.Location)
	}
}

func auditTypes(t *testing.T, e *testenv.Env) map[string]int {
	t.Helper()
	tn, err := e.Server.Tenants.BySlug(context.Background(), tenant.DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	err = e.Store.View(context.Background(), tn.ID, func(tx store.Tx) error {
		evs, err := tx.Audit().List(context.Background(), store.AuditFilter{Limit: 1000})
		for _, ev := range evs {
			out[ev.Type]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSecondFactorLogin(t *testing.T) {
	e := testenv.New(t)
	setMFA(t, e, ciam.MFAOptional)
	b := e.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	a, codes := enrolTOTP(t, e, b)
	if ev := auditTypes(t, e); ev[audit.TOTPAdded] != 1 || ev[audit.RecoveryCodesCreated] != 1 {
		t.Fatalf("audit after enrolment: %v", ev)
	}
	b.Submit("/t/default/account", "/t/default/logout", nil)

	// The password alone starts no session: the account page, asked for
	// directly while the second step waits, sends to the login page.
	b = e.Browser()
	pendingLogin(t, b, "ann@example.com")
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "/login") {
		t.Fatalf("account page while the second step waits: %d %s", res.Status, res.Location)
	}
	// Another browser cannot finish it: without the pending login's cookie,
	// and with a forged one.
	other := e.Browser()
	other.Get("/t/default/login")
	if res := other.Post("/t/default/mfa", url.Values{"csrf_token": {testenv.CSRF(other.Get("/t/default/login").Body)}, "method": {"totp"}, "code": {a.now()}}); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "expired") {
		t.Fatalf("second step from another browser: %d", res.Status)
	}
	u := mustURL(t, e.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "gatehouse_m_default" {
			id, _, _ := strings.Cut(c.Value, ".")
			other.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: id + ".forged-secret", Path: "/"}})
		}
	}
	if res := other.Post("/t/default/mfa", url.Values{"csrf_token": {testenv.CSRF(other.Get("/t/default/login").Body)}, "method": {"totp"}, "code": {a.now()}}); res.Status != http.StatusUnauthorized {
		t.Fatalf("second step with a forged binding: %d", res.Status)
	}

	// A code two steps away is refused; the current one logs in.
	if res := secondStep(t, b, "totp", a.code(e.Clock.Now().Add(2*totp.Period))); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "not correct") {
		t.Fatalf("code outside the window: %d", res.Status)
	}
	// (The enrolment spent the current step's code.)
	if res := secondStep(t, b, "totp", a.now()); res.Status != http.StatusUnauthorized {
		t.Fatalf("the code the enrolment used, again: %d", res.Status)
	}
	e.Clock.Advance(totp.Period)
	used := a.now()
	if res := secondStep(t, b, "totp", used); res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Fatalf("right code: %d %s", res.Status, res.Location)
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusOK {
		t.Fatalf("account after the second step: %d", res.Status)
	}

	// The same code, replayed on another login within its window, is refused.
	b2 := e.Browser()
	pendingLogin(t, b2, "ann@example.com")
	if res := secondStep(t, b2, "totp", used); res.Status != http.StatusUnauthorized {
		t.Fatalf("replayed TOTP code: %d", res.Status)
	}
	// A recovery code works once.
	if res := secondStep(t, b2, "recovery", strings.ToUpper(codes[0])); res.Status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d %s", res.Status, res.Body)
	}
	b3 := e.Browser()
	pendingLogin(t, b3, "ann@example.com")
	if res := secondStep(t, b3, "recovery", codes[0]); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, `id="recovery-error"`) {
		t.Fatalf("recovery code used twice: %d", res.Status)
	}
	// Five codes per pending login; the sixth is refused even when right.
	for range 4 { // with the recovery code above, five
		e.Clock.Advance(10 * time.Second) // past the account's progressive delay
		if res := secondStep(t, b3, "totp", "000000"); res.Status != http.StatusUnauthorized {
			t.Fatalf("wrong code: %d", res.Status)
		}
	}
	e.Clock.Advance(totp.Period)
	if res := secondStep(t, b3, "totp", a.now()); res.Status != http.StatusTooManyRequests {
		t.Fatalf("sixth code on one pending login: %d", res.Status)
	}
	if ev := auditTypes(t, e); ev[audit.RecoveryCodeUsed] != 1 || ev[audit.LoginSecondFactor] != 3 {
		t.Fatalf("audit: %v", ev)
	}
}

func TestSecondFactorRequired(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	signup(t, b, "bea@example.com", goodPassword)
	b.Submit("/t/default/account", "/t/default/logout", nil)
	setMFA(t, e, ciam.MFARequired)

	// A user without a factor must add one before any session starts.
	b = e.Browser()
	pendingLogin(t, b, "bea@example.com")
	page := b.Get("/t/default/mfa")
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `action="/t/default/mfa/enrol"`) {
		t.Fatalf("enrolment page: %d", page.Status)
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Fatalf("account while enrolment waits: %d", res.Status)
	}
	// Offering a code instead of enrolling is refused.
	if res := secondStep(t, b, "totp", "123456"); res.Status != http.StatusForbidden {
		t.Fatalf("code before enrolment: %d", res.Status)
	}
	a, sealed := readTOTPSetup(t, e, page.Body)
	if res := b.Post("/t/default/mfa/enrol", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "sealed": {sealed}, "code": {"000000"}}); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "data-totp-secret") {
		t.Fatalf("wrong first code: %d", res.Status)
	}
	res := b.Post("/t/default/mfa/enrol", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "sealed": {sealed}, "code": {a.now()}})
	if res.Status != http.StatusOK || len(recoveryCodesIn(res.Body)) != 10 {
		t.Fatalf("enrolment: %d", res.Status)
	}
	acct := b.Get("/t/default/account")
	if acct.Status != http.StatusOK {
		t.Fatalf("account after enrolment: %d", acct.Status)
	}

	// The last factor stays under the required policy.
	res = b.Submit("/t/default/account", "/t/default/account/totp/remove", nil)
	if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "last second step") {
		t.Fatalf("removing the last factor: %d", res.Status)
	}

	// After ten minutes, a sensitive change asks to confirm the login
	// first, and changes nothing until then.
	e.Clock.Advance(11 * time.Minute)
	for _, action := range []string{"/t/default/account/recovery-codes", "/t/default/account/password"} {
		res = b.Submit("/t/default/account", action, url.Values{"current_password": {goodPassword}, "new_password": {"another long passphrase"}})
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/t/default/confirm?") {
			t.Fatalf("%s with an old login: %d %s", action, res.Status, res.Location)
		}
	}
	if res := b.Get("/t/default/account/totp"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/t/default/confirm?") {
		t.Fatalf("TOTP setup with an old login: %d %s", res.Status, res.Location)
	}
	conf := b.Get("/t/default/confirm?next=/t/default/account")
	if res := b.Post("/t/default/confirm", url.Values{"csrf_token": {testenv.CSRF(conf.Body)}, "next": {"/t/default/account"}, "method": {"password"}, "password": {"wrong password here"}}); res.Status != http.StatusUnauthorized {
		t.Fatalf("confirm with a wrong password: %d", res.Status)
	}
	res = b.Post("/t/default/confirm", url.Values{"csrf_token": {testenv.CSRF(conf.Body)}, "next": {"/t/default/account"}, "method": {"password"}, "password": {goodPassword}})
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/account" {
		t.Fatalf("confirm with the password: %d %s", res.Status, res.Location)
	}
	res = b.Submit("/t/default/account", "/t/default/account/recovery-codes", nil)
	if res.Status != http.StatusOK || len(recoveryCodesIn(res.Body)) != 10 {
		t.Fatalf("new recovery codes after confirming: %d", res.Status)
	}
	if ev := auditTypes(t, e); ev[audit.SessionReauthenticated] != 1 || ev[audit.RecoveryCodesCreated] != 2 {
		t.Fatalf("audit: %v", ev)
	}
}
