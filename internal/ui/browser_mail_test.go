package ui_test

import (
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// TestBrowserMailJourney: in headless Chromium a new user signs up,
// receives the verification mail through a real SMTP server, verifies,
// logs out, resets the password through the mail, and logs in with a
// magic link.
func TestBrowserMailJourney(t *testing.T) {
	exe := chromiumPath(t)
	m := newMailEnv(t, testenv.MailpitOptions{})
	const (
		email = "grace@example.org"
		pw1   = "a compiler for business English"
		pw2   = "nanoseconds are eleven inches long"
	)
	a := startChromium(t, m.Env, exe, "browser A")

	st := a.open("/t/default/signup")
	a.at("sign-up page", "/t/default/signup", st, 200)
	a.typeInto("Email address", email)
	a.typeInto("Name", "Grace Hopper")
	a.typeInto("Password", pw1)
	st = a.clickTo(`"Create account"`, button("Create account"))
	a.at("after sign-up", "/t/default/account", st, 200)
	a.wantText("account page", "#verify-h", "Verify your email address")
	a.checkLabels("account page with verification")

	// The verification mail's link, opened and confirmed.
	verify := m.pathOf(t, linkIn(t, m.deliver(t, 1, email)))
	st = a.open(verify)
	a.at("verification link", verify, st, 200)
	a.wantText("verification page", "h1", "Verify your email address")
	st = a.clickTo(`"Confirm my email address"`, button("Confirm my email address"))
	a.at("after verification", "/t/default/account?done=verified", st, 200)
	a.wantText("verified notice", "p.notice[role=status]", "Your email address is verified.")
	if n := a.count("#verify-h"); n != 0 {
		t.Errorf("the account page still asks for verification")
	}

	st = a.clickTo(`"Log out"`, button("Log out"))
	a.at("after logout", "/t/default/login?loggedout=1", st, 200)

	// Forgot password: the mail's link leads to a form for the new one.
	st = a.clickTo(`"Forgot your password?"`, link("Forgot your password?"))
	a.at("forgot page", "/t/default/forgot", st, 200)
	a.checkLabels("forgot page")
	a.typeInto("Email address", email)
	st = a.clickTo(`"Send the link"`, button("Send the link"))
	a.at("after the reset request", "/t/default/forgot", st, 200)
	a.wantText("reset request notice", "p.notice[role=status]", "If an account exists for that address")
	reset := m.pathOf(t, linkIn(t, m.deliver(t, 2, email)))
	st = a.open(reset)
	a.at("reset link", reset, st, 200)
	a.checkLabels("reset page")
	a.typeInto("New password", pw2)
	st = a.clickTo(`"Save the new password"`, button("Save the new password"))
	a.at("after the reset", "/t/default/login?reset=1", st, 200)
	a.wantText("reset notice", "p.notice[role=status]", "Your password was changed")
	if changed := m.deliver(t, 3, email); !strings.Contains(changed.Subject, "changed") {
		t.Errorf("after the reset: mail %q, want the password-changed notice", changed.Subject)
	}

	// Log in with a magic link, in the browser that asked for it.
	st = a.clickTo(`"Log in with a link or code by email"`, link("Log in with a link or code by email"))
	a.at("email login page", "/t/default/login/email", st, 200)
	a.checkLabels("email login page")
	a.typeInto("Email address", email)
	st = a.clickTo(`"Email me a link"`, button("Email me a link"))
	a.at("after asking for a link", "/t/default/login/email", st, 200)
	a.wantText("link sent notice", "p.notice[role=status]", "we sent a login link")
	magic := m.pathOf(t, linkIn(t, m.deliver(t, 4, email)))
	st = a.open(magic)
	a.at("after the magic link", "/t/default/account", st, 200)
	a.wantText("account page after the magic link", "main > p", "Signed in as "+email)

	// The new password works too, in another browser.
	b := a.otherPerson("browser B")
	st = b.open("/t/default/login")
	b.at("B: login page", "/t/default/login", st, 200)
	b.typeInto("Email address", email)
	b.typeInto("Password", pw2)
	st = b.clickTo(`"Log in"`, button("Log in"))
	b.at("B: after login", "/t/default/account", st, 200)
}
