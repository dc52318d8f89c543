package ui_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/totp"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// The passkey browser test drives the hosted pages' passkeys and second
// factors in a real headless Chromium. Passkeys come from Chrome's virtual
// authenticators (the DevTools WebAuthn domain). The server runs as
// http://localhost:PORT, the one plain-http origin where browsers allow
// WebAuthn (an IP address cannot be an RP ID).
//
// Passkey autofill (conditional mediation) needs care: with a virtual
// authenticator Chromium shows no autofill list to pick from, it answers a
// conditional request at once, so every visit to the login page would log
// the person straight back in. So each tab gets a script (webauthnProbe)
// that runs before the pages' own: it records every navigator.credentials
// call in sessionStorage, and holds a conditional request the way a browser
// does while the person has not picked a passkey from the autofill. Where
// the person uses the autofill (browser A), focusing the email field
// (autocomplete "username webauthn") hands the request to the browser's
// real conditional mediation, which the virtual authenticator answers;
// elsewhere it stays held. Aborting the held request (the "Log in with a
// passkey" button does) rejects it with an AbortError, as the browser would.

// webauthnProbe is the script evaluated in every new document of a tab;
// with autofill, focusing the email field releases the conditional request.
func webauthnProbe(autofill bool) string {
	return fmt.Sprintf(`(() => {
	const autofill = %t;
	const creds = navigator.credentials;
	if (!creds || !window.PublicKeyCredential) return;
	const record = (s) => {
		try {
			const a = JSON.parse(sessionStorage.getItem('gh.webauthn') || '[]');
			a.push(s);
			sessionStorage.setItem('gh.webauthn', JSON.stringify(a));
		} catch (e) {}
	};
	const realGet = creds.get.bind(creds);
	const realCreate = creds.create.bind(creds);
	creds.create = (o) => { record('create'); return realCreate(o); };
	creds.get = (o) => {
		const mediation = (o && o.mediation) || 'optional';
		record('get:' + mediation);
		if (mediation !== 'conditional') return realGet(o);
		return new Promise((resolve, reject) => {
			let done = false;
			const abort = () => {
				if (done) return;
				done = true;
				document.removeEventListener('focusin', pick, true);
				record('abort:conditional');
				reject(new DOMException('The operation was aborted.', 'AbortError'));
			};
			const pick = (ev) => {
				const el = ev.target;
				if (done || !el || !el.matches || !el.matches('input[autocomplete~="webauthn"]')) return;
				done = true;
				document.removeEventListener('focusin', pick, true);
				record('release:conditional');
				realGet(o).then(resolve, reject);
			};
			if (o.signal) {
				if (o.signal.aborted) return abort();
				o.signal.addEventListener('abort', abort);
			}
			if (autofill) document.addEventListener('focusin', pick, true);
		});
	};
})()`, autofill)
}

// platformAuthenticator is a device's built-in authenticator: it keeps
// passkeys (discoverable credentials), verifies its user (fingerprint, PIN)
// and confirms presence without a touch.
var platformAuthenticator = webauthn.VirtualAuthenticatorOptions{
	Protocol:                    webauthn.AuthenticatorProtocolCtap2,
	Ctap2version:                webauthn.Ctap2versionCtap21,
	Transport:                   webauthn.AuthenticatorTransportInternal,
	HasResidentKey:              true,
	HasUserVerification:         true,
	IsUserVerified:              true,
	AutomaticPresenceSimulation: true,
}

// noUVAuthenticator is a device's authenticator that cannot verify its
// user (no screen lock): it keeps passkeys, but each is one factor.
// (Chromium makes no passkey on a USB security key without a PIN, and
// never answers a login without a username from one that cannot verify
// its user; so such a passkey only serves as a second factor.)
var noUVAuthenticator = webauthn.VirtualAuthenticatorOptions{
	Protocol:                    webauthn.AuthenticatorProtocolCtap2,
	Ctap2version:                webauthn.Ctap2versionCtap21,
	Transport:                   webauthn.AuthenticatorTransportInternal,
	HasResidentKey:              true,
	AutomaticPresenceSimulation: true,
}

// TestBrowserPasskeys: sign-up with a passkey and no password, passkey
// login by button and by autofill, an authenticator app with recovery codes
// as the second step of a password login, a passkey as a second step,
// renaming and removing a passkey, and a tenant that requires a second
// factor.
func TestBrowserPasskeys(t *testing.T) {
	exe := chromiumPath(t)
	e := testenv.NewWith(t, testenv.Options{Localhost: true})
	if !strings.HasPrefix(e.URL, "http://localhost:") {
		t.Fatalf("the environment serves %s, want http://localhost:PORT", e.URL)
	}
	srv := passkeyServer{e}
	const (
		adaEmail   = "ada@analytical.example" // signs up with a passkey
		graceEmail = "grace@compilers.example"
		gracePW    = "a compiler for business English"
		kathEmail  = "katherine@orbits.example"
		kathPW     = "trajectories computed by hand"
	)
	// Katherine's account exists before the tenant requires a second
	// factor (sign-up itself is not what her part tests).
	hb := e.Browser()
	if res := signup(t, hb, kathEmail, kathPW); res.Status != 303 {
		t.Fatalf("set up %s: sign-up status %d", kathEmail, res.Status)
	}
	if res := hb.Submit("/t/default/account", "/t/default/logout", nil); res.Status != 303 {
		t.Fatalf("set up %s: logout status %d", kathEmail, res.Status)
	}

	a := startChromium(t, e, exe, "browser A")
	auth := a.addAuthenticator(platformAuthenticator, true)
	var ada *ciam.User
	nameOptional := false

	ok := t.Run("sign up with a passkey", func(t *testing.T) {
		a := a.on(t)
		st := a.open("/t/default/signup")
		a.at("sign-up page", "/t/default/signup", st, 200)
		a.wantText("sign-up page", "#passkey-signup-h", "Or sign up without a password")
		a.checkLabels("sign-up page with passkeys")
		section := `//section[@aria-labelledby="passkey-signup-h"]`
		a.typeIn("passkey sign-up: email", inputIn(section, "Email address"), adaEmail)
		a.typeIn("passkey sign-up: name", inputIn(section, "Name"), "Ada Lovelace")
		st = a.clickTo(`"Continue with a passkey"`, button("Continue with a passkey"))
		a.at("passkey sign-up page", "/t/default/signup/passkey", st, 200)
		a.wantText("passkey sign-up page", "h1", "Create your passkey")
		a.wantText("passkey sign-up page", "main > p", adaEmail)
		a.checkLabels("passkey sign-up page")
		if u, _ := srv.findUser(adaEmail); u != nil {
			t.Fatalf("the account exists before the browser made its passkey")
		}
		a.eval("can the form go without a passkey name", `document.querySelector('form[data-passkey="create"]').checkValidity()`, &nameOptional)
		a.typeIn("passkey name", inputLabelled("Name for this passkey"), "Ada's laptop")
		st = a.clickTo(`"Create passkey and account"`, button("Create passkey and account"))
		a.at("after the passkey sign-up", "/t/default/account", st, 200)
		a.wantText("account page", "main > p", "Signed in as "+adaEmail)
		a.wantText("passkey list", `[data-section="passkeys"] li.passkey-item strong`, "Ada's laptop")
		a.wantText("passkey list", `[data-section="passkeys"] li.passkey-item dl`, "never")
		if n := a.count(`[data-section="passkeys"] li.passkey-item`); n != 1 {
			t.Errorf("the account page lists %d passkeys, want 1", n)
		}
		if got := a.webauthnCalls(); !slices.Equal(got, []string{"create"}) {
			t.Errorf("WebAuthn calls of the sign-up: %v, want one create", got)
		}

		ada = srv.user(t, adaEmail)
		if ada.Name != "Ada Lovelace" {
			t.Errorf("the new account's name is %q", ada.Name)
		}
		if srv.hasPassword(t, ada.ID) {
			t.Errorf("the passkey account has a password")
		}
		pks := srv.passkeys(t, ada.ID)
		if len(pks) != 1 || pks[0].Name != "Ada's laptop" || !pks[0].UserVerified {
			t.Fatalf("passkeys stored: %+v, want one named \"Ada's laptop\" that verified its user", pks)
		}
		creds := a.credentials(auth)
		if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
			t.Fatalf("the authenticator holds %+v, want one discoverable credential for localhost", creds)
		}
		if id, _ := base64.StdEncoding.DecodeString(creds[0].UserHandle); string(id) != string(ada.ID) {
			t.Errorf("the credential's user handle is %q, want the user id %q", id, ada.ID)
		}
		if id, _ := base64.StdEncoding.DecodeString(creds[0].CredentialID); string(id) != string(pks[0].CredentialID) {
			t.Errorf("the authenticator's credential is not the one stored")
		}
		if ev := srv.lastEvent(t, audit.UserSignup); ev == nil || ev.Data["method"] != "passkey" || ev.TargetID != string(ada.ID) {
			t.Errorf("audit: sign-up %+v, want method passkey for the new user", ev)
		}
		if ev := srv.lastEvent(t, audit.PasskeyAdded); ev == nil || ev.TargetID != pks[0].ID {
			t.Errorf("audit: passkey.added %+v, want the new passkey", ev)
		}
		a.logout()
		// The login page asked for autofill; the request waits for the
		// person, so the page stays.
		a.waitCall("get:conditional")
		a.atPath("login page after logout", "/t/default/login")
	})
	if !ok {
		return
	}

	t.Run("the passkey name is optional", func(t *testing.T) {
		// The hint says "Optional", and the server names an unnamed passkey
		// "Passkey": the form must go without one.
		if !nameOptional {
			t.Errorf("the passkey forms cannot be sent without a name: the browser's form validation refuses it")
		}
	})

	ok = t.Run("log in with the passkey button", func(t *testing.T) {
		a := a.on(t)
		a.clearCalls()
		logins := len(srv.events(t, audit.LoginSucceeded))
		st := a.open("/t/default/login")
		a.at("login page", "/t/default/login", st, 200)
		a.waitCall("get:conditional")
		before := a.credentials(auth)[0].SignCount

		// The authenticator fails to verify the person: the page says so
		// and stays, and the button works again.
		a.run("user verification fails", webauthn.SetUserVerified(auth, false))
		a.run(`click "Log in with a passkey" (refused)`, chromedp.Click(button("Log in with a passkey"), chromedp.BySearch),
			chromedp.WaitVisible(`form[data-passkey="get"] [data-passkey-error]`, chromedp.ByQuery))
		a.wantText("refused passkey", `form[data-passkey="get"] [data-passkey-error]`, "The passkey could not be used.")
		a.atPath("after a refused passkey", "/t/default/login")
		var busy bool
		a.eval("form busy", `document.querySelector('form[data-passkey="get"]').hasAttribute('data-busy')`, &busy)
		if busy {
			t.Errorf("after a failed ceremony the passkey form stays busy")
		}
		if n := len(srv.events(t, audit.LoginSucceeded)); n != logins {
			t.Errorf("a login happened without user verification")
		}

		a.run("user verification works", webauthn.SetUserVerified(auth, true))
		st = a.clickTo(`"Log in with a passkey"`, button("Log in with a passkey"))
		a.at("after the passkey login", "/t/default/account", st, 200)
		a.wantText("account page", "main > p", "Signed in as "+adaEmail)
		calls := a.webauthnCalls()
		if len(calls) < 3 || !slices.Equal(calls[:3], []string{"get:conditional", "abort:conditional", "get:optional"}) || slices.Index(calls, "release:conditional") >= 0 ||
			len(slices.DeleteFunc(slices.Clone(calls), func(s string) bool { return s != "get:optional" })) != 2 {
			t.Errorf("WebAuthn calls: %v, want the autofill request aborted for the button's, then the button's again", calls)
		}
		if after := a.credentials(auth)[0].SignCount; after <= before {
			t.Errorf("the authenticator's counter went from %d to %d: it signed nothing", before, after)
		}
		if s := a.text(`[data-section="passkeys"] li.passkey-item dl`); strings.Contains(s, "never") {
			t.Errorf("after a login with it the passkey shows %q, want its last use", s)
		}
		ev := srv.lastEvent(t, audit.LoginSucceeded)
		if n := len(srv.events(t, audit.LoginSucceeded)); n != logins+1 || ev.ActorID != string(ada.ID) || ev.Data["method"] != "passkey" || ev.Data["acr"] != ciam.ACRMultiFactor {
			t.Errorf("audit: %d logins, the last %+v; want one multi-factor passkey login of the user", n-logins, ev)
		}
		a.logout()
	})
	if !ok {
		return
	}

	ok = t.Run("log in through autofill", func(t *testing.T) {
		a := a.on(t)
		a.clearCalls()
		logins := len(srv.events(t, audit.LoginSucceeded))
		st := a.open("/t/default/login")
		a.at("login page", "/t/default/login", st, 200)
		var ac string
		a.eval("email autocomplete", `document.getElementById(document.evaluate('//label[normalize-space()="Email address"]/@for', document, null, XPathResult.STRING_TYPE, null).stringValue).getAttribute('autocomplete')`, &ac)
		if ac != "username webauthn" {
			t.Errorf("the email field has autocomplete=%q, want \"username webauthn\"", ac)
		}
		a.waitCall("get:conditional")
		time.Sleep(200 * time.Millisecond)
		a.atPath("login page with a pending autofill request", "/t/default/login")
		if n := len(srv.events(t, audit.LoginSucceeded)); n != logins {
			t.Fatalf("a login happened before the person picked the passkey")
		}
		// The person clicks into the email field and picks the passkey
		// offered there: no typing, no button.
		st = a.load("pick the passkey in the email field", chromedp.Click(inputLabelled("Email address"), chromedp.BySearch))
		a.at("after the autofill login", "/t/default/account", st, 200)
		a.wantText("account page", "main > p", "Signed in as "+adaEmail)
		if got := a.webauthnCalls(); !slices.Equal(got, []string{"get:conditional", "release:conditional"}) {
			t.Errorf("WebAuthn calls: %v, want only the conditional request", got)
		}
		ev := srv.lastEvent(t, audit.LoginSucceeded)
		if n := len(srv.events(t, audit.LoginSucceeded)); n != logins+1 || ev.ActorID != string(ada.ID) || ev.Data["method"] != "passkey" {
			t.Errorf("audit: %d logins, the last %+v; want one passkey login of the user", n-logins, ev)
		}
		a.logout()
	})
	if !ok {
		return
	}

	srv.setPolicy(t, ciam.MFAOptional)
	b := a.otherPerson("browser B")
	var grace *ciam.User
	var graceSecret []byte

	ok = t.Run("authenticator app and recovery codes as the second step", func(t *testing.T) {
		b := b.on(t)
		st := b.open("/t/default/signup")
		b.at("sign-up page", "/t/default/signup", st, 200)
		form := `//form[@action="/t/default/signup"]`
		b.typeIn("email", inputIn(form, "Email address"), graceEmail)
		b.typeIn("name", inputIn(form, "Name"), "Grace Hopper")
		b.typeIn("password", inputIn(form, "Password"), gracePW)
		st = b.clickTo(`"Create account"`, button("Create account"))
		b.at("after sign-up", "/t/default/account", st, 200)
		grace = srv.user(t, graceEmail)
		b.wantText("account page", "#mfa-h", "Two-step verification")
		b.wantText("account page", `[data-section="mfa"]`, "No authenticator app is set up.")

		st = b.clickTo(`"Set up an authenticator app"`, link("Set up an authenticator app"))
		b.at("authenticator setup", "/t/default/account/totp", st, 200)
		b.wantText("authenticator setup", "h1", "Set up an authenticator app")
		b.checkLabels("authenticator setup")
		var qr struct {
			Width int    `json:"width"`
			Alt   string `json:"alt"`
		}
		b.eval("QR code", `(() => { const i = document.querySelector('img.qr'); return {width: i ? i.naturalWidth : 0, alt: i ? i.alt : ''}; })()`, &qr)
		if qr.Width == 0 || qr.Alt == "" {
			t.Errorf("the QR code is not shown (width %d, alt %q)", qr.Width, qr.Alt)
		}
		graceSecret = b.totpSecret()
		b.typeIn("first code", inputLabelled("Code from the app"), srv.code(t, graceSecret))
		st = b.clickTo(`"Turn on"`, button("Turn on"))
		b.at("recovery codes", "/t/default/account/totp", st, 200)
		b.wantText("recovery codes", "h1", "Your recovery codes")
		codes := b.recoveryCodes()
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes shown, want 10: %v", len(codes), codes)
		}
		st = b.clickTo(`"I have saved my codes"`, link("I have saved my codes"))
		b.at("account page", "/t/default/account?done=totp_added", st, 200)
		b.wantText("account page", "p.notice[role=status]", "Your authenticator app is set up.")
		b.wantText("account page", `[data-section="mfa"]`, "An authenticator app is set up.")
		b.wantText("account page", `[data-section="mfa"]`, "Unused recovery codes: 10")
		if n := b.count("[data-recovery-codes]"); n != 0 {
			t.Errorf("the account page shows the recovery codes again")
		}
		if !srv.hasTOTP(t, grace.ID) || srv.recoveryLeft(t, grace.ID) != 10 {
			t.Errorf("store: authenticator %v, %d recovery codes; want one and 10", srv.hasTOTP(t, grace.ID), srv.recoveryLeft(t, grace.ID))
		}
		if ev := srv.lastEvent(t, audit.TOTPAdded); ev == nil || ev.ActorID != string(grace.ID) {
			t.Errorf("audit: mfa.totp_added %+v, want one by the user", ev)
		}
		b.logout()

		// A password login now asks for the second step; the app's next
		// code passes it (the enrolment spent the current one).
		b.passwordLogin(graceEmail, gracePW)
		b.atPath("second step", "/t/default/mfa")
		b.wantText("second step", "h1", "Two-step verification")
		b.checkLabels("second step")
		if n := len(srv.sessions(t, grace.ID)); n != 0 {
			t.Errorf("%d sessions exist before the second step", n)
		}
		e.Clock.Advance(totp.Period)
		code := srv.code(t, graceSecret)
		b.typeIn("app code", inputLabelled("Code from your authenticator app"), code)
		st = b.clickTo(`"Verify"`, totpForm+button("Verify"))
		b.at("after the app code", "/t/default/account", st, 200)
		if ev := srv.lastEvent(t, audit.LoginSucceeded); ev == nil || ev.ActorID != string(grace.ID) || ev.Data["method"] != "password+totp" || ev.Data["acr"] != ciam.ACRMultiFactor {
			t.Errorf("audit: login %+v, want password+totp, multi-factor", ev)
		}
		b.logout()

		// The same code again is refused; a recovery code gets through.
		b.passwordLogin(graceEmail, gracePW)
		b.atPath("second step", "/t/default/mfa")
		b.typeIn("replayed app code", inputLabelled("Code from your authenticator app"), code)
		st = b.clickTo(`"Verify"`, totpForm+button("Verify"))
		b.at("after a replayed code", "/t/default/mfa", st, 401)
		b.wantText("replayed code", "#code-error", "already used")
		b.run("open the recovery form", chromedp.Click(`//summary[normalize-space()="Use a recovery code instead"]`, chromedp.BySearch))
		b.typeIn("recovery code", inputLabelled("Recovery code"), codes[0])
		st = b.clickTo(`"Verify" (recovery)`, recoveryForm+button("Verify"))
		b.at("after a recovery code", "/t/default/account", st, 200)
		b.wantText("account page", `[data-section="mfa"]`, "Unused recovery codes: 9")
		if ev := srv.lastEvent(t, audit.RecoveryCodeUsed); ev == nil || ev.Data["remaining"] != "9" {
			t.Errorf("audit: recovery code use %+v, want 9 remaining", ev)
		}
		if ev := srv.lastEvent(t, audit.LoginSucceeded); ev == nil || ev.Data["method"] != "password+recovery" {
			t.Errorf("audit: login %+v, want password+recovery", ev)
		}
		b.logout()

		// A used recovery code is refused the second time (typed as a
		// person might, in capitals); the app's next code works after it.
		b.passwordLogin(graceEmail, gracePW)
		b.atPath("second step", "/t/default/mfa")
		b.run("open the recovery form", chromedp.Click(`//summary[normalize-space()="Use a recovery code instead"]`, chromedp.BySearch))
		b.typeIn("used recovery code", inputLabelled("Recovery code"), strings.ToUpper(codes[0]))
		st = b.clickTo(`"Verify" (recovery)`, recoveryForm+button("Verify"))
		b.at("after a used recovery code", "/t/default/mfa", st, 401)
		b.wantText("used recovery code", "#recovery-error", "already used")
		var open bool
		b.eval("recovery form open", `document.querySelector('details').open`, &open)
		if !open {
			t.Errorf("the recovery form with its error is folded away")
		}
		e.Clock.Advance(totp.Period)
		b.typeIn("app code", inputLabelled("Code from your authenticator app"), srv.code(t, graceSecret))
		st = b.clickTo(`"Verify"`, totpForm+button("Verify"))
		b.at("after the next app code", "/t/default/account", st, 200)
		if n := srv.recoveryLeft(t, grace.ID); n != 9 {
			t.Errorf("%d recovery codes left, want 9", n)
		}
		b.logout()
	})
	if !ok {
		return
	}

	ok = t.Run("passkey without user verification as the second step", func(t *testing.T) {
		// Grace adds a passkey on a device that cannot verify her: it is
		// one factor, her second after the password.
		b := b.on(t)
		key := b.addAuthenticator(noUVAuthenticator, false)
		b.passwordLogin(graceEmail, gracePW)
		b.atPath("second step", "/t/default/mfa")
		e.Clock.Advance(totp.Period)
		b.typeIn("app code", inputLabelled("Code from your authenticator app"), srv.code(t, graceSecret))
		st := b.clickTo(`"Verify"`, totpForm+button("Verify"))
		b.at("after the app code", "/t/default/account", st, 200)
		b.wantText("passkey list", `[data-section="passkeys"]`, "You have no passkeys yet.")
		b.typeIn("passkey name", inputLabelled("Name for this passkey"), "Phone")
		st = b.clickTo(`"Add a passkey"`, button("Add a passkey"))
		b.at("after adding a passkey", "/t/default/account?done=passkey_added", st, 200)
		b.wantText("added notice", "p.notice[role=status]", "Your passkey was added.")
		b.wantText("passkey list", `[data-section="passkeys"] li.passkey-item strong`, "Phone")
		pks := srv.passkeys(t, grace.ID)
		if len(pks) != 1 || pks[0].Name != "Phone" || pks[0].UserVerified {
			t.Fatalf("passkeys stored: %+v, want one that did not verify its user", pks)
		}
		if n := len(b.credentials(key)); n != 1 {
			t.Errorf("the authenticator holds %d credentials, want 1", n)
		}
		b.logout()

		b.passwordLogin(graceEmail, gracePW)
		b.atPath("second step", "/t/default/mfa")
		st = b.clickTo(`"Use a passkey"`, button("Use a passkey"))
		b.at("after the passkey", "/t/default/account", st, 200)
		ev := srv.lastEvent(t, audit.LoginSucceeded)
		if ev == nil || ev.ActorID != string(grace.ID) || ev.Data["method"] != "password+passkey" || ev.Data["passkey"] != pks[0].ID || ev.Data["acr"] != ciam.ACRMultiFactor {
			t.Errorf("audit: login %+v, want password+passkey with that passkey, multi-factor", ev)
		}
		b.logout()
	})
	if !ok {
		return
	}

	ok = t.Run("rename and remove a passkey", func(t *testing.T) {
		a := a.on(t)
		st := a.open("/t/default/login")
		a.at("login page", "/t/default/login", st, 200)
		st = a.clickTo(`"Log in with a passkey"`, button("Log in with a passkey"))
		a.at("after the passkey login", "/t/default/account", st, 200)
		pk := srv.passkeys(t, ada.ID)[0]
		item := fmt.Sprintf(`//li[@data-passkey-id=%s]`, xq(pk.ID))
		a.run("clear the passkey's name", chromedp.Clear(inputIn(item, "Name"), chromedp.BySearch))
		a.typeIn("passkey name", inputIn(item, "Name"), "Analytical engine")
		st = a.clickTo(`"Rename"`, item+button("Rename"))
		a.at("after renaming", "/t/default/account?done=passkey_renamed", st, 200)
		a.wantText("renamed notice", "p.notice[role=status]", "Your passkey was renamed.")
		a.wantText("passkey list", `[data-section="passkeys"] li.passkey-item strong`, "Analytical engine")
		if got := srv.passkeys(t, ada.ID)[0].Name; got != "Analytical engine" {
			t.Errorf("stored name %q after renaming", got)
		}
		if ev := srv.lastEvent(t, audit.PasskeyRenamed); ev == nil || ev.TargetID != pk.ID {
			t.Errorf("audit: passkey.renamed %+v", ev)
		}

		st = a.clickTo(`"Remove"`, `//button[@aria-label="Remove: Analytical engine"]`)
		a.at("after removing", "/t/default/account?done=passkey_removed", st, 200)
		a.wantText("removed notice", "p.notice[role=status]", "Your passkey was removed.")
		a.wantText("passkey list", `[data-section="passkeys"]`, "You have no passkeys yet.")
		if n := len(srv.passkeys(t, ada.ID)); n != 0 {
			t.Errorf("%d passkeys stored after removing the only one", n)
		}
		if ev := srv.lastEvent(t, audit.PasskeyRemoved); ev == nil || ev.TargetID != pk.ID {
			t.Errorf("audit: passkey.removed %+v", ev)
		}
		a.logout()

		// The authenticator still offers it; the server refuses it.
		if n := len(a.credentials(auth)); n != 1 {
			t.Fatalf("the authenticator holds %d credentials, want the removed one still", n)
		}
		logins := len(srv.events(t, audit.LoginSucceeded))
		st = a.clickTo(`"Log in with a passkey"`, button("Log in with a passkey"))
		// The login page again, with the error, as the answer to the post.
		a.at("after a removed passkey", "/t/default/passkey/login", st, 401)
		a.wantText("login page with the error", "h1", "Log in")
		a.wantText("removed passkey", "main [role=alert]", "This passkey is not registered here.")
		if ev := srv.lastEvent(t, audit.PasskeyRefused); ev == nil || ev.Data["reason"] != "passkey_unknown" {
			t.Errorf("audit: refusal %+v, want reason passkey_unknown", ev)
		}
		if n := len(srv.events(t, audit.LoginSucceeded)); n != logins {
			t.Errorf("a removed passkey logged in")
		}
	})
	if !ok {
		return
	}

	srv.setPolicy(t, ciam.MFARequired)
	t.Run("required second factor", func(t *testing.T) {
		c := a.otherPerson("browser C").on(t)
		kath := srv.user(t, kathEmail)
		c.passwordLogin(kathEmail, kathPW)
		c.atPath("enrolment", "/t/default/mfa")
		c.wantText("enrolment", "main", "This service requires a second step when you log in.")
		c.wantText("enrolment", "main", "With an authenticator app")
		c.checkLabels("enrolment")
		if ev := srv.lastEvent(t, audit.LoginSecondFactor); ev == nil || ev.ActorID != string(kath.ID) || ev.Data["enrol"] != "true" {
			t.Errorf("audit: %+v, want a pending login that must enrol", ev)
		}
		// No session yet: the account page sends the browser to log in.
		st := c.open("/t/default/account")
		c.at("account page while the second step is pending", "/t/default/login", st, 200)
		c.wantText("login page", "h1", "Log in")
		if n := len(srv.sessions(t, kath.ID)); n != 0 {
			t.Errorf("%d sessions exist before a second factor is enrolled", n)
		}

		st = c.open("/t/default/mfa")
		c.at("enrolment again", "/t/default/mfa", st, 200)
		secret := c.totpSecret()
		c.typeIn("first code", inputLabelled("Code from the app"), srv.code(t, secret))
		st = c.clickTo(`"Turn on"`, button("Turn on"))
		c.at("recovery codes", "/t/default/mfa/enrol", st, 200)
		c.wantText("recovery codes", "h1", "Your recovery codes")
		if n := len(c.recoveryCodes()); n != 10 {
			t.Errorf("%d recovery codes shown, want 10", n)
		}
		st = c.clickTo(`"I have saved my codes"`, link("I have saved my codes"))
		c.at("account page", "/t/default/account", st, 200)
		c.wantText("account page", "main > p", "Signed in as "+kathEmail)
		c.wantText("account page", `[data-section="mfa"]`, "An authenticator app is set up.")
		if !srv.hasTOTP(t, kath.ID) || len(srv.sessions(t, kath.ID)) != 1 {
			t.Errorf("store: authenticator %v, %d sessions; want one of each", srv.hasTOTP(t, kath.ID), len(srv.sessions(t, kath.ID)))
		}
		ev := srv.lastEvent(t, audit.LoginSucceeded)
		if ev == nil || ev.ActorID != string(kath.ID) || ev.Data["method"] != "password+totp" || ev.Data["enrolled"] != "totp" || ev.Data["acr"] != ciam.ACRMultiFactor {
			t.Errorf("audit: login %+v, want password+totp after enrolling, multi-factor", ev)
		}
	})
}

// The forms of the second step, by the method they post.
const (
	totpForm     = `//form[input[@name="method"][@value="totp"]]`
	recoveryForm = `//form[input[@name="method"][@value="recovery"]]`
)

// on returns b driven by the (sub)test t: its failures stop t, not the
// test that started the browser.
func (b *browser) on(t *testing.T) *browser {
	return &browser{t: t, name: b.name, ctx: b.ctx, base: b.base}
}

// addAuthenticator gives the tab a virtual authenticator made with o and
// webauthnProbe, and returns the authenticator's id.
func (b *browser) addAuthenticator(o webauthn.VirtualAuthenticatorOptions, autofill bool) webauthn.AuthenticatorID {
	b.t.Helper()
	var id webauthn.AuthenticatorID
	b.run("virtual authenticator", webauthn.Enable(), chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		if id, err = webauthn.AddVirtualAuthenticator(&o).Do(ctx); err != nil {
			return err
		}
		_, err = page.AddScriptToEvaluateOnNewDocument(webauthnProbe(autofill)).Do(ctx)
		return err
	}))
	return id
}

// credentials returns what a virtual authenticator holds.
func (b *browser) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	var out []*webauthn.Credential
	b.run("read the authenticator", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		out, err = webauthn.GetCredentials(id).Do(ctx)
		return err
	}))
	return out
}

// webauthnCalls returns what webauthnProbe recorded in this tab.
func (b *browser) webauthnCalls() []string {
	b.t.Helper()
	var s string
	b.eval("WebAuthn calls", `sessionStorage.getItem('gh.webauthn') || '[]'`, &s)
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		b.t.Fatalf("%s: WebAuthn calls %q: %v", b.name, s, err)
	}
	return out
}

func (b *browser) clearCalls() {
	b.t.Helper()
	b.eval("forget WebAuthn calls", `sessionStorage.removeItem('gh.webauthn'); true`, nil)
}

// waitCall waits until the page made the WebAuthn call want.
func (b *browser) waitCall(want string) {
	b.t.Helper()
	b.run("wait for "+want, chromedp.Poll(fmt.Sprintf(`JSON.parse(sessionStorage.getItem('gh.webauthn') || '[]').includes(%q)`, want),
		nil, chromedp.WithPollingInterval(20*time.Millisecond)))
}

// inputIn finds the input labelled label inside what scope (an XPath)
// finds: for pages where two forms have fields of the same label.
func inputIn(scope, label string) string {
	return fmt.Sprintf(`%s//input[@id=%s//label[normalize-space()=%s]/@for]`, scope, scope, xq(label))
}

// typeIn types text into the input xpath finds.
func (b *browser) typeIn(what, xpath, text string) {
	b.t.Helper()
	b.run("type into "+what, chromedp.SendKeys(xpath, text, chromedp.BySearch))
}

// atPath checks the page's path, without its query.
func (b *browser) atPath(step, want string) {
	b.t.Helper()
	var loc string
	b.run(step+": location", chromedp.Location(&loc))
	if i := strings.IndexAny(loc, "?#"); i >= 0 {
		loc = loc[:i]
	}
	if loc != b.base+want {
		b.t.Fatalf("%s: %s: at %s, want %s; page:\n%s", b.name, step, loc, b.base+want, b.bodyText())
	}
}

func (b *browser) logout() {
	b.t.Helper()
	st := b.clickTo(`"Log out"`, button("Log out"))
	b.at("after logout", "/t/default/login?loggedout=1", st, 200)
}

// passwordLogin logs in on the login page with an email and password.
func (b *browser) passwordLogin(email, pw string) {
	b.t.Helper()
	st := b.open("/t/default/login")
	b.at("login page", "/t/default/login", st, 200)
	b.typeInto("Email address", email)
	b.typeInto("Password", pw)
	if st = b.clickTo(`"Log in"`, button("Log in")); st != 200 {
		b.t.Fatalf("%s: password login: status %d:\n%s", b.name, st, b.bodyText())
	}
}

// totpSecret reads the authenticator app's key shown as text.
func (b *browser) totpSecret() []byte {
	b.t.Helper()
	text := b.text("[data-totp-secret]")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.ReplaceAll(text, " ", "")))
	if err != nil || len(secret) < 16 {
		b.t.Fatalf("%s: the key %q is not a secret in base32: %v", b.name, text, err)
	}
	return secret
}

// recoveryCodes reads the recovery codes shown once.
func (b *browser) recoveryCodes() []string {
	b.t.Helper()
	var codes []string
	b.run("read the recovery codes", chromedp.WaitVisible("ul[data-recovery-codes]", chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('ul[data-recovery-codes] li')].map(li => li.textContent.trim())`, &codes))
	return codes
}

// passkeyServer reads and sets what the browser test checks on the server:
// the default tenant's policy, store and audit trail.
type passkeyServer struct{ e *testenv.Env }

// code is an authenticator app's code at the server's clock.
func (s passkeyServer) code(t *testing.T, secret []byte) string {
	t.Helper()
	c, err := totp.Code(secret, totp.Step(s.e.Clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s passkeyServer) setPolicy(t *testing.T, policy string) {
	t.Helper()
	if _, err := s.e.Server.Tenants.Update(context.Background(), tenant.DefaultSlug, tenant.Settings{MFAPolicy: &policy}, "test", audit.Meta{}); err != nil {
		t.Fatalf("set the MFA policy to %s: %v", policy, err)
	}
}

// view reads the default tenant's store.
func (s passkeyServer) view(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	tn, err := s.e.Server.Tenants.BySlug(context.Background(), tenant.DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.e.Store.View(context.Background(), tn.ID, fn); err != nil {
		t.Fatalf("read the store: %v", err)
	}
}

func (s passkeyServer) findUser(email string) (*ciam.User, error) {
	tn, err := s.e.Server.Tenants.BySlug(context.Background(), tenant.DefaultSlug)
	if err != nil {
		return nil, err
	}
	var u *ciam.User
	err = s.e.Store.View(context.Background(), tn.ID, func(tx store.Tx) (err error) {
		u, err = tx.Users().ByEmail(context.Background(), email)
		return err
	})
	return u, err
}

func (s passkeyServer) user(t *testing.T, email string) *ciam.User {
	t.Helper()
	u, err := s.findUser(email)
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u
}

// exists reports whether a Get found its row.
func (passkeyServer) exists(err error) (bool, error) {
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s passkeyServer) hasPassword(t *testing.T, u ciam.UserID) (has bool) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		_, err = tx.Passwords().Get(context.Background(), u)
		has, err = s.exists(err)
		return err
	})
	return has
}

func (s passkeyServer) hasTOTP(t *testing.T, u ciam.UserID) (has bool) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		_, err = tx.TOTP().Get(context.Background(), u)
		has, err = s.exists(err)
		return err
	})
	return has
}

func (s passkeyServer) recoveryLeft(t *testing.T, u ciam.UserID) (n int) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		n, err = tx.RecoveryCodes().Remaining(context.Background(), u)
		return err
	})
	return n
}

func (s passkeyServer) passkeys(t *testing.T, u ciam.UserID) (out []*ciam.Passkey) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		out, err = tx.Passkeys().ListByUser(context.Background(), u)
		return err
	})
	return out
}

// sessions returns u's live sessions.
func (s passkeyServer) sessions(t *testing.T, u ciam.UserID) (out []*ciam.Session) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		out, err = tx.Sessions().ListActive(context.Background(), u, s.e.Clock.Now())
		return err
	})
	return out
}

// events returns the audit events of type typ, oldest first.
func (s passkeyServer) events(t *testing.T, typ string) (out []*ciam.AuditEvent) {
	t.Helper()
	s.view(t, func(tx store.Tx) (err error) {
		out, err = tx.Audit().List(context.Background(), store.AuditFilter{Type: typ, Limit: 1000})
		return err
	})
	return out
}

// lastEvent returns the newest audit event of type typ, or nil.
func (s passkeyServer) lastEvent(t *testing.T, typ string) *ciam.AuditEvent {
	t.Helper()
	evs := s.events(t, typ)
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1]
}

// TestBrowserStepUp: an application that asks for multi-factor
// (acr_values) gets it from a one-factor session without a new login: in
// Chromium, the confirmation page asks for the passkey, the same session
// steps up, and the browser returns to the application with a code whose
// ID token says aal2 with the methods used.
func TestBrowserStepUp(t *testing.T) {
	exe := chromiumPath(t)
	e := testenv.NewWith(t, testenv.Options{Localhost: true})
	if !strings.HasPrefix(e.URL, "http://localhost:") {
		t.Fatalf("the environment serves %s, want http://localhost:PORT", e.URL)
	}
	srv := passkeyServer{e}
	const (
		email    = "barbara@clu.example"
		password = "abstraction and data types"
		callback = "https://app.example/cb"
	)
	ctx := oidc.ClientContext(context.Background(), e.HTTP.Client())
	tn, err := e.Server.Tenants.BySlug(ctx, tenant.DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	if tn.MFAPolicy != ciam.MFAOptional {
		t.Fatalf("the default tenant's policy is %s, want %s", tn.MFAPolicy, ciam.MFAOptional)
	}
	app, secret, err := e.Server.Clients.Create(ctx, tn, client.Input{
		Name: "Web app", FirstParty: true, TokenAuthMethod: ciam.AuthSecretBasic, RedirectURIs: []string{callback},
	}, "test", audit.Meta{})
	if err != nil {
		t.Fatalf("register the application: %v", err)
	}
	issuer := e.URL + "/t/" + tn.Slug
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s): %v", issuer, err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	cfg := &oauth2.Config{ClientID: string(app.ID), ClientSecret: secret, Endpoint: ep, RedirectURL: callback,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}

	a := startChromium(t, e, exe, "browser A")
	auth := a.addAuthenticator(platformAuthenticator, false)
	a.interceptApp("https://app.example/*")

	t.Run("step-up for an application", func(t *testing.T) {
		a := a.on(t)
		// The account: a password from the sign-up, then a password login
		// (no second factor yet: one factor), then a passkey added from
		// the account page in that session.
		st := a.open("/t/default/signup")
		a.at("sign-up page", "/t/default/signup", st, 200)
		form := `//form[@action="/t/default/signup"]`
		a.typeIn("email", inputIn(form, "Email address"), email)
		a.typeIn("name", inputIn(form, "Name"), "Barbara Liskov")
		a.typeIn("password", inputIn(form, "Password"), password)
		st = a.clickTo(`"Create account"`, button("Create account"))
		a.at("after sign-up", "/t/default/account", st, 200)
		a.logout()
		a.passwordLogin(email, password)
		a.atPath("after the password login", "/t/default/account")
		u := srv.user(t, email)
		sessions := srv.sessions(t, u.ID)
		if len(sessions) != 1 || sessions[0].ACR != ciam.ACRSingleFactor {
			t.Fatalf("after the password login: sessions %+v, want one of one factor", sessions)
		}
		sid := sessions[0].ID
		a.typeIn("passkey name", inputLabelled("Name for this passkey"), "Laptop")
		st = a.clickTo(`"Add a passkey"`, button("Add a passkey"))
		a.at("after adding a passkey", "/t/default/account?done=passkey_added", st, 200)
		if n := len(srv.passkeys(t, u.ID)); n != 1 {
			t.Fatalf("%d passkeys stored, want 1", n)
		}
		if s := srv.sessions(t, u.ID); len(s) != 1 || s[0].ID != sid || s[0].ACR != ciam.ACRSingleFactor {
			t.Fatalf("after adding a passkey: sessions %+v, want the same one, still of one factor", s)
		}

		aal2 := oauth2.SetAuthURLParam("acr_values", ciam.ACRMultiFactor)
		authorize := func(step string, opts ...oauth2.AuthCodeOption) (state, verifier string, st int64) {
			state, verifier = rand.Text(), oauth2.GenerateVerifier()
			u := cfg.AuthCodeURL(state, append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), aal2}, opts...)...)
			return state, verifier, a.load(step, chromedp.Navigate(u))
		}
		// atApp returns the query of the application's callback the
		// browser is at.
		atApp := func(step, state string) url.Values {
			t.Helper()
			var loc string
			a.run(step+": location", chromedp.Location(&loc))
			u, err := url.Parse(loc)
			if err != nil || u.Scheme+"://"+u.Host+u.Path != callback {
				t.Fatalf("%s: at %s, want %s; page:\n%s", step, loc, callback, a.bodyText())
			}
			q := u.Query()
			if q.Get("state") != state || q.Get("iss") != issuer {
				t.Errorf("%s: state %q iss %q, want %q and %q", step, q.Get("state"), q.Get("iss"), state, issuer)
			}
			return q
		}

		// A silent request cannot step up.
		state, _, st := authorize("authorize with prompt=none", oauth2.SetAuthURLParam("prompt", "none"))
		if q := atApp("prompt=none", state); st != 200 || q.Get("error") != "interaction_required" || q.Get("code") != "" {
			t.Errorf("prompt=none on a one-factor session: status %d, %v; want error=interaction_required", st, q)
		}

		// The confirmation page asks for the passkey, not the password.
		state, verifier, st := authorize("authorize")
		if st != 200 {
			t.Fatalf("authorize: status %d", st)
		}
		a.atPath("confirmation page", "/t/default/confirm")
		var loc string
		a.run("location", chromedp.Location(&loc))
		if lu, _ := url.Parse(loc); lu == nil || lu.Query().Get("acr") != "2" || !strings.HasPrefix(lu.Query().Get("next"), "/t/default/authorize?") {
			t.Errorf("the confirmation page is at %s, want acr=2 and next the authorization", loc)
		}
		a.wantText("confirmation page", "main", "Use a passkey")
		if n := a.count(`input[type=password]`); n != 0 {
			t.Errorf("the step-up page has %d password fields: a password is no second factor after a password", n)
		}
		if n := a.count(`input[name=method][value=password]`); n != 0 {
			t.Errorf("the step-up page offers the password")
		}
		creds := a.credentials(auth)
		if len(creds) != 1 {
			t.Fatalf("the authenticator holds %d credentials, want 1", len(creds))
		}
		before := creds[0].SignCount
		// The passkey form posts to the confirmation, which returns through
		// the authorization endpoint to the application: the page's CSP
		// (form-action) must let its redirects reach the application.
		a.run(`click "Use a passkey"`, chromedp.Click(button("Use a passkey"), chromedp.BySearch))
		if !a.arrives(callback+"?", 10*time.Second) {
			var loc string
			a.run("location", chromedp.Location(&loc))
			t.Fatalf("after the passkey the browser is at %s, not back at the application %s; page:\n%s", loc, callback, a.bodyText())
		}
		q := atApp("after the passkey", state)
		if q.Get("code") == "" || q.Get("error") != "" {
			t.Fatalf("after the passkey: %v; want a code", q)
		}
		if after := a.credentials(auth)[0].SignCount; after <= before {
			t.Errorf("the authenticator's counter went from %d to %d: it signed nothing", before, after)
		}

		// The application redeems the code; the ID token says multi-factor
		// for the session the password login started.
		tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			t.Fatalf("the token response has no ID token")
		}
		idt, err := provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify the ID token: %v", err)
		}
		var claims struct {
			ACR string   `json:"acr"`
			AMR []string `json:"amr"`
			SID string   `json:"sid"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != string(u.ID) {
			t.Errorf("ID token subject %q, want %q", idt.Subject, u.ID)
		}
		key := slices.Contains(claims.AMR, "hwk") || slices.Contains(claims.AMR, "swk")
		if claims.ACR != ciam.ACRMultiFactor || !slices.Contains(claims.AMR, "pwd") || !slices.Contains(claims.AMR, "mfa") || !key {
			t.Errorf("ID token: acr %q amr %v; want %s with pwd, mfa and a passkey", claims.ACR, claims.AMR, ciam.ACRMultiFactor)
		}
		if claims.SID != string(sid) {
			t.Errorf("ID token sid %q, want the password login's session %q", claims.SID, sid)
		}
		if s := srv.sessions(t, u.ID); len(s) != 1 || s[0].ID != sid || s[0].ACR != ciam.ACRMultiFactor {
			t.Errorf("after the step-up: sessions %+v, want the same one, now multi-factor", s)
		}
		if ev := srv.lastEvent(t, audit.SessionReauthenticated); ev == nil || ev.TargetID != string(sid) || ev.Data["acr"] != ciam.ACRMultiFactor {
			t.Errorf("audit: %+v, want the session reauthenticated to multi-factor", ev)
		}

		// Now the same request passes silently.
		state, _, st = authorize("authorize again with prompt=none", oauth2.SetAuthURLParam("prompt", "none"))
		if q := atApp("prompt=none after the step-up", state); st != 200 || q.Get("code") == "" {
			t.Errorf("prompt=none on a multi-factor session: status %d, %v; want a code", st, q)
		}
	})
}

// arrives waits at most d for the tab's address to start with prefix and
// its page to be loaded. (Not chromedp.Poll: the navigation destroys the
// page the poll runs in.)
func (b *browser) arrives(prefix string, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		var loc, state string
		err := chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.readyState`, &state))
		cancel()
		if err == nil && strings.HasPrefix(loc, prefix) && state == "complete" {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// interceptApp answers, in place of the network, every request of the tab
// to pattern (an application that does not exist) with a small page, so
// the browser can arrive at the application and its address be read.
func (b *browser) interceptApp(pattern string) {
	b.t.Helper()
	chromedp.ListenTarget(b.ctx, func(ev any) {
		p, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			c := chromedp.FromContext(b.ctx)
			ctx := cdp.WithExecutor(b.ctx, c.Target)
			body := base64.StdEncoding.EncodeToString([]byte("<!doctype html><title>App</title><p>The application</p>"))
			fetch.FulfillRequest(p.RequestID, 200).
				WithResponseHeaders([]*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}}).
				WithBody(body).Do(ctx)
		}()
	})
	b.run("intercept "+pattern, fetch.Enable().WithPatterns([]*fetch.RequestPattern{{URLPattern: pattern, RequestStage: fetch.RequestStageRequest}}))
}
