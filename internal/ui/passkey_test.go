package ui_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

var (
	optionsRE   = regexp.MustCompile(`data-options="([^"]*)"`)
	stateRE     = regexp.MustCompile(`name="state" value="([^"]*)"`)
	passkeyIDRE = regexp.MustCompile(`data-passkey-id="([^"]+)"`)
)

// ceremony is a passkey form read off a page.
type ceremony struct {
	csrf, options, state string
}

func ceremonyIn(t *testing.T, body string) ceremony {
	t.Helper()
	o, s := optionsRE.FindStringSubmatch(body), stateRE.FindStringSubmatch(body)
	if o == nil || s == nil {
		t.Fatalf("no passkey form on the page: %s", body)
	}
	return ceremony{csrf: testenv.CSRF(body), options: html.UnescapeString(o[1]), state: html.UnescapeString(s[1])}
}

// virtualKey is a P-256 credential whose coordinates are a full 32 bytes
// (virtualwebauthn drops leading zero bytes, which verifiers refuse).
func virtualKey() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		point, _ := k.PublicKey.Bytes()
		if point[1] == 0 || point[33] == 0 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}

func attestation(t *testing.T, c ceremony, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(c.options)
	if err != nil {
		t.Fatalf("creation options %s: %v", c.options, err)
	}
	return virtualwebauthn.CreateAttestationResponse(rp, auth, cred, *o)
}

func assertion(t *testing.T, c ceremony, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(c.options)
	if err != nil {
		t.Fatalf("request options %s: %v", c.options, err)
	}
	return virtualwebauthn.CreateAssertionResponse(rp, auth, cred, *o)
}

func passkeyCount(t *testing.T, e *testenv.Env, u *ciam.User) int {
	t.Helper()
	var n int
	err := e.Store.View(context.Background(), u.TenantID, func(tx store.Tx) error {
		ps, err := tx.Passkeys().ListByUser(context.Background(), u.ID)
		n = len(ps)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPasskeyPages drives passkey sign-up, login and account management
// through the pages with a virtual authenticator, and the ways a ceremony
// must fail: a replayed answer, a wrong origin, a counter that goes back,
// a credential registered to someone else, a passkey removed meanwhile,
// and missing user verification where the tenant requires it.
func TestPasskeyPages(t *testing.T) {
	e := testenv.NewWith(t, testenv.Options{Localhost: true})
	pub := mustURL(t, e.URL)
	rp := virtualwebauthn.RelyingParty{Name: "Default", ID: pub.Hostname(), Origin: e.URL}
	cred := virtualKey()

	// Sign up with a passkey and no password.
	b := e.Browser()
	page := b.Submit("/t/default/signup", "/t/default/signup/passkey", url.Values{"email": {"pia@example.com"}, "name": {"Pia"}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `data-passkey="create"`) {
		t.Fatalf("passkey sign-up, first step: %d %s", page.Status, page.Body)
	}
	c := ceremonyIn(t, page.Body)
	signupForm := url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "email": {"pia@example.com"}, "name": {"Pia"},
		"credential": {attestation(t, c, rp, virtualwebauthn.NewAuthenticator(), cred)}, "passkey_name": {"Laptop"}}
	res := b.Post("/t/default/signup/passkey", signupForm)
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/account" {
		t.Fatalf("passkey sign-up: %d %s %s", res.Status, res.Location, res.Body)
	}
	pia := userByEmail(t, e, "pia@example.com")
	if n := passkeyCount(t, e, pia); n != 1 {
		t.Fatalf("%d passkeys after sign-up", n)
	}
	if acct := b.Get("/t/default/account"); !strings.Contains(acct.Body, "Laptop") {
		t.Fatalf("the account page does not list the passkey")
	}
	// The same answer again is refused and creates nothing.
	replay := e.Browser()
	signupForm.Set("csrf_token", testenv.CSRF(replay.Get("/t/default/signup").Body))
	if res := replay.Post("/t/default/signup/passkey", signupForm); res.Status != http.StatusUnauthorized {
		t.Fatalf("a replayed sign-up answer was accepted")
	}
	if n := countUsers(t, e, "default"); n != 1 {
		t.Fatalf("%d users after a replayed sign-up", n)
	}

	// Log in without a username.
	auth := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(pia.ID)})
	b2 := e.Browser()
	c = ceremonyIn(t, b2.Get("/t/default/login").Body)
	loginForm := url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, rp, auth, cred)}}
	if res := b2.Post("/t/default/passkey/login", loginForm); res.Status != http.StatusSeeOther || res.Location != "/t/default/account" {
		t.Fatalf("passkey login: %d %s", res.Status, res.Location)
	}
	// A replayed assertion is refused.
	replay = e.Browser()
	loginForm.Set("csrf_token", testenv.CSRF(replay.Get("/t/default/login").Body))
	if res := replay.Post("/t/default/passkey/login", loginForm); res.Status != http.StatusUnauthorized {
		t.Fatalf("replayed assertion: %d", res.Status)
	}
	// An assertion made for another origin is refused.
	b3 := e.Browser()
	c = ceremonyIn(t, b3.Get("/t/default/login").Body)
	evil := virtualwebauthn.RelyingParty{Name: "Evil", ID: pub.Hostname(), Origin: "https://evil.example"}
	res = b3.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, evil, auth, cred)}})
	if res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "could not be verified") {
		t.Fatalf("assertion for another origin: %d", res.Status)
	}

	// A signature counter that goes back is refused and audited.
	cred.Counter = 5
	c = ceremonyIn(t, b3.Get("/t/default/login").Body)
	if res := b3.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, rp, auth, cred)}}); res.Status != http.StatusSeeOther {
		t.Fatalf("login with counter 5: %d", res.Status)
	}
	cred.Counter = 3
	b4 := e.Browser()
	c = ceremonyIn(t, b4.Get("/t/default/login").Body)
	if res := b4.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, rp, auth, cred)}}); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "copy") {
		t.Fatalf("login with a counter that went back: %d", res.Status)
	}
	if ev := auditTypes(t, e); ev[audit.PasskeyRefused] < 2 {
		t.Fatalf("refused passkey ceremonies are not audited: %v", ev)
	}
	cred.Counter = 6

	// The same credential cannot be registered to another account.
	bob := e.Browser()
	signup(t, bob, "bob@example.com", goodPassword)
	c = ceremonyIn(t, bob.Get("/t/default/account").Body)
	res = bob.Post("/t/default/account/passkeys", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {attestation(t, c, rp, virtualwebauthn.NewAuthenticator(), cred)}})
	if res.Status != http.StatusConflict || !strings.Contains(res.Body, "already registered") {
		t.Fatalf("another account registering the credential: %d", res.Status)
	}
	if n := passkeyCount(t, e, userByEmail(t, e, "bob@example.com")); n != 0 {
		t.Fatalf("bob has %d passkeys", n)
	}

	// Another account cannot rename or remove it: it is not theirs.
	piaKey := passkeyIDRE.FindStringSubmatch(b.Get("/t/default/account").Body)[1]
	for _, action := range []string{"rename", "remove"} {
		res := bob.Submit("/t/default/account", "/t/default/account/passkeys/"+piaKey+"/"+action, url.Values{"name": {"Mine now"}})
		if res.Status != http.StatusNotFound {
			t.Fatalf("another account's passkey, %s: %d", action, res.Status)
		}
	}
	if acct := b.Get("/t/default/account"); !strings.Contains(acct.Body, "Laptop") || passkeyCount(t, e, pia) != 1 {
		t.Fatalf("another account changed the passkey")
	}
	// An empty name is refused on the page.
	if res := b.Submit("/t/default/account", "/t/default/account/passkeys/"+piaKey+"/rename", url.Values{"name": {"  "}}); res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "Enter a name") {
		t.Fatalf("rename to an empty name: %d", res.Status)
	}

	// A passkey removed in one session no longer logs in in another.
	waiting := e.Browser()
	c = ceremonyIn(t, waiting.Get("/t/default/login").Body)
	answer := assertion(t, c, rp, auth, cred)
	acct := b.Get("/t/default/account")
	id := passkeyIDRE.FindStringSubmatch(acct.Body)[1]
	if res := b.Submit("/t/default/account", "/t/default/account/passkeys/"+id+"/remove", nil); res.Status != http.StatusSeeOther {
		t.Fatalf("remove passkey: %d %s", res.Status, res.Body)
	}
	if res := waiting.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {answer}}); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "not registered") {
		t.Fatalf("login with a removed passkey: %d", res.Status)
	}

	// Where the tenant requires user verification, a passkey that did not
	// verify its user is refused.
	cred2 := virtualKey()
	c = ceremonyIn(t, b.Get("/t/default/account").Body)
	if res := b.Post("/t/default/account/passkeys", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {attestation(t, c, rp, virtualwebauthn.NewAuthenticator(), cred2)}}); res.Status != http.StatusSeeOther {
		t.Fatalf("add a passkey: %d %s", res.Status, res.Body)
	}
	required := ciam.UVRequired
	if _, err := e.Server.Tenants.Update(context.Background(), tenant.DefaultSlug, tenant.Settings{PasskeyUserVerification: &required}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	noUV := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(pia.ID), UserNotVerified: true})
	b5 := e.Browser()
	c = ceremonyIn(t, b5.Get("/t/default/login").Body)
	if res := b5.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, rp, noUV, cred2)}}); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "PIN") {
		t.Fatalf("assertion without user verification where required: %d", res.Status)
	}
	c = ceremonyIn(t, b5.Get("/t/default/login").Body)
	if res := b5.Post("/t/default/passkey/login", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "credential": {assertion(t, c, rp, auth, cred2)}}); res.Status != http.StatusSeeOther {
		t.Fatalf("assertion with user verification: %d", res.Status)
	}
	if ev := auditTypes(t, e); ev[audit.PasskeyAdded] != 2 || ev[audit.PasskeyRemoved] != 1 {
		t.Fatalf("audit: %v", ev)
	}
}

// TestPasskeyTwiceIsOneFactor checks that a passkey that did not verify its
// user cannot be the second factor of a login that began with a passkey,
// and that an account made with a passkey can set a password and change
// its address without knowing a password.
func TestPasskeyTwiceIsOneFactor(t *testing.T) {
	e := testenv.NewWith(t, testenv.Options{Localhost: true})
	setMFA(t, e, ciam.MFAOptional)
	rp := virtualwebauthn.RelyingParty{Name: "Default", ID: mustURL(t, e.URL).Hostname(), Origin: e.URL}
	cred := virtualKey()
	noUV := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})

	// Sign up with a passkey that does not verify its user: one factor, and
	// the user now has a passkey, so the optional policy asks for a second.
	b := e.Browser()
	page := b.Submit("/t/default/signup", "/t/default/signup/passkey", url.Values{"email": {"kim@example.com"}, "name": {"Kim"}})
	c := ceremonyIn(t, page.Body)
	res := b.Post("/t/default/signup/passkey", url.Values{"csrf_token": {c.csrf}, "state": {c.state}, "email": {"kim@example.com"}, "name": {"Kim"},
		"credential": {attestation(t, c, rp, noUV, cred)}})
	if res.Status != http.StatusSeeOther || res.Location != "/t/default/mfa" {
		t.Fatalf("sign-up with a passkey without user verification: %d %s", res.Status, res.Location)
	}
	kim := userByEmail(t, e, "kim@example.com")
	noUV.Options.UserHandle = []byte(kim.ID)
	c = ceremonyIn(t, b.Get("/t/default/mfa").Body)
	if res := b.Post("/t/default/mfa", url.Values{"csrf_token": {c.csrf}, "method": {"passkey"}, "state": {c.state}, "credential": {assertion(t, c, rp, noUV, cred)}}); res.Status != http.StatusUnauthorized {
		t.Fatalf("the same passkey again, unverified, as the second factor: %d", res.Status)
	}
	uv := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(kim.ID)})
	c = ceremonyIn(t, b.Get("/t/default/mfa").Body)
	if res := b.Post("/t/default/mfa", url.Values{"csrf_token": {c.csrf}, "method": {"passkey"}, "state": {c.state}, "credential": {assertion(t, c, rp, uv, cred)}}); res.Status != http.StatusSeeOther || res.Location != "/t/default/account" {
		t.Fatalf("the passkey with user verification as the second factor: %d %s", res.Status, res.Location)
	}

	// No password to confirm with: the recent login stands for it.
	acct := b.Get("/t/default/account")
	if strings.Contains(acct.Body, `name="current_password"`) || strings.Contains(acct.Body, `name="email_password"`) {
		t.Fatalf("the account page asks a user without a password for it")
	}
	if res := b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"kim@example.org"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("change the address without a password: %d %s", res.Status, res.Body)
	}
	if res := b.Submit("/t/default/account", "/t/default/account/password", url.Values{"new_password": {goodPassword}}); res.Status != http.StatusSeeOther {
		t.Fatalf("set a first password: %d %s", res.Status, res.Body)
	}
	// Now the password is the first factor, and the passkey the second.
	b2 := e.Browser()
	pendingLogin(t, b2, "kim@example.com")
}

// TestEnrolPasskeyAtLogin checks that, where the tenant requires a second
// factor, a user without one can add a passkey to finish logging in, under
// the name they gave it, and gets recovery codes.
func TestEnrolPasskeyAtLogin(t *testing.T) {
	e := testenv.NewWith(t, testenv.Options{Localhost: true})
	rp := virtualwebauthn.RelyingParty{Name: "Default", ID: mustURL(t, e.URL).Hostname(), Origin: e.URL}
	signup(t, e.Browser(), "lea@example.com", goodPassword)
	setMFA(t, e, ciam.MFARequired)

	b := e.Browser()
	pendingLogin(t, b, "lea@example.com")
	page := b.Get("/t/default/mfa")
	c := ceremonyIn(t, page.Body)
	res := b.Post("/t/default/mfa/enrol", url.Values{"csrf_token": {c.csrf}, "method": {"passkey"}, "state": {c.state}, "passkey_name": {"Phone"},
		"credential": {attestation(t, c, rp, virtualwebauthn.NewAuthenticator(), virtualKey())}})
	if res.Status != http.StatusOK || len(recoveryCodesIn(res.Body)) != 10 {
		t.Fatalf("passkey enrolment at login: %d %s", res.Status, res.Body)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusOK || !strings.Contains(acct.Body, "<strong>Phone</strong>") {
		t.Fatalf("after enrolment the account page does not list the passkey by its name (%d)", acct.Status)
	}
	// The pending login is spent: posting the enrolment again changes nothing.
	if res := b.Post("/t/default/mfa/enrol", url.Values{"csrf_token": {testenv.CSRF(b.Get("/t/default/account").Body)}, "method": {"passkey"}, "state": {c.state}}); res.Status != http.StatusUnauthorized {
		t.Fatalf("enrolment posted again: %d", res.Status)
	}
	if n := passkeyCount(t, e, userByEmail(t, e, "lea@example.com")); n != 1 {
		t.Fatalf("%d passkeys", n)
	}
}
