package oidc_test

import (
	"encoding/base32"
	"html"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/totp"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

var (
	totpSecretRE = regexp.MustCompile(`data-totp-secret>([A-Z2-7 ]+)<`)
	sealedRE     = regexp.MustCompile(`name="sealed" value="([^"]+)"`)
)

// enrolTOTP sets up an authenticator app on the account page of browser b
// (whose login is recent) and returns a function giving the code of the
// current step, moving the clock on by one step each call so no code is
// a replay.
func (f *fixture) enrolTOTP(b *testenv.Browser) func() string {
	f.t.Helper()
	page := b.Get("/t/" + f.tenant.Slug + "/account/totp")
	m, sm := totpSecretRE.FindStringSubmatch(page.Body), sealedRE.FindStringSubmatch(page.Body)
	if page.Status != 200 || m == nil || sm == nil {
		f.t.Fatalf("TOTP setup page: status %d: %s", page.Status, page.Body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
	if err != nil {
		f.t.Fatal(err)
	}
	code := func() string {
		c, err := totp.Code(secret, totp.Step(f.env.Clock.Now()))
		if err != nil {
			f.t.Fatal(err)
		}
		return c
	}
	res := b.Post("/t/"+f.tenant.Slug+"/account/totp", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "sealed": {html.UnescapeString(sm[1])}, "code": {code()}})
	if res.Status != 200 || !strings.Contains(res.Body, "data-recovery-codes") {
		f.t.Fatalf("TOTP confirmation: status %d: %s", res.Status, res.Body)
	}
	return func() string {
		f.env.Clock.Advance(totp.Period)
		return code()
	}
}

// TestStepUpACR checks that a client asking for multi-factor with
// acr_values gets it without a new login: the confirmation page asks the
// missing factor of the same session, and the tokens say aal2 with the
// methods used.
func TestStepUpACR(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	optional := ciam.MFAOptional
	var err error
	if f.tenant, err = f.env.Server.Tenants.Update(f.ctx, tenant.DefaultSlug, tenant.Settings{MFAPolicy: &optional}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	verifier := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)})
	idClaims := func(tok *oauth2.Token) map[string]any {
		idt, err := verifier.Verify(f.ctx, idToken(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		return claims(t, idt)
	}
	amr := func(c map[string]any) []string {
		var out []string
		for _, x := range c["amr"].([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	aal2 := oauth2.SetAuthURLParam("acr_values", ciam.ACRMultiFactor)

	// A password login is one factor.
	b := f.env.Browser()
	first := idClaims(f.exchange(f.authorize(b, cfg, flowOpts{login: true})))
	if first["acr"] != ciam.ACRSingleFactor || !slices.Equal(amr(first), []string{"pwd"}) {
		t.Fatalf("password login: acr %v amr %v", first["acr"], first["amr"])
	}
	code := f.enrolTOTP(b)

	// A client that accepts either level gets a code silently.
	f.exchange(f.authorize(b, cfg, flowOpts{}, oauth2.SetAuthURLParam("acr_values", ciam.ACRSingleFactor+" "+ciam.ACRMultiFactor), oauth2.SetAuthURLParam("prompt", "none")))
	// One that requires multi-factor cannot be answered without the user.
	if e := f.redirectError(f.authorize(b, cfg, flowOpts{}, aal2, oauth2.SetAuthURLParam("prompt", "none"))); e != "interaction_required" {
		t.Fatalf("prompt=none with acr_values=aal2 on a one-factor session: %q", e)
	}
	// Without a code the walk stops on the confirmation page, which offers
	// no password (a password is no second factor after a password).
	r := f.authorize(b, cfg, flowOpts{}, aal2)
	if !r.result.SawConfirm || r.result.SawLogin || r.result.Page == nil {
		t.Fatalf("acr_values=aal2: confirm %v login %v", r.result.SawConfirm, r.result.SawLogin)
	}
	if strings.Contains(r.result.Page.Body, `value="password"`) {
		t.Errorf("the step-up page offers the password as a second factor")
	}
	// A wrong code is refused on the page, and nothing changes.
	page := r.result.Page.Body
	next := html.UnescapeString(nextFieldRE.FindStringSubmatch(page)[1])
	bad := b.Post("/t/default/confirm", url.Values{"csrf_token": {testenv.CSRF(page)}, "next": {next}, "acr": {"2"}, "method": {"totp"}, "code": {"000000"}})
	if bad.Status != 401 || !strings.Contains(bad.Body, "not correct") {
		t.Fatalf("wrong code at step-up: %d", bad.Status)
	}

	// With the code the same session steps up.
	f.env.Clock.Advance(time.Minute)
	r = f.authorize(b, cfg, flowOpts{code: code}, aal2)
	if !r.result.SawConfirm || r.result.SawLogin {
		t.Fatalf("step-up: confirm %v login %v", r.result.SawConfirm, r.result.SawLogin)
	}
	tok := f.exchange(r)
	up := idClaims(tok)
	if up["acr"] != ciam.ACRMultiFactor || !slices.Contains(amr(up), "otp") || !slices.Contains(amr(up), "mfa") || !slices.Contains(amr(up), "pwd") {
		t.Fatalf("after step-up: acr %v amr %v", up["acr"], up["amr"])
	}
	if up["sid"] != first["sid"] {
		t.Errorf("step-up started another session")
	}
	if at := up["auth_time"].(float64); at <= first["auth_time"].(float64) {
		t.Errorf("auth_time did not move at step-up")
	}
	in := f.introspect(app, tok.AccessToken)
	if in.str("acr") != ciam.ACRMultiFactor {
		t.Errorf("access token acr %q after step-up", in.str("acr"))
	}
	// Now the session is multi-factor: the same request passes silently.
	f.exchange(f.authorize(b, cfg, flowOpts{}, aal2, oauth2.SetAuthURLParam("prompt", "none")))

	// The next login of this user asks for the second step first.
	b2 := f.env.Browser()
	r = f.authorize(b2, cfg, flowOpts{login: true})
	if !r.result.SawMFA || r.result.Redirect != nil {
		t.Fatalf("a user with TOTP under the optional policy got past the login without the second step")
	}
	r = f.authorize(b2, cfg, flowOpts{login: true, code: code})
	if c := idClaims(f.exchange(r)); c["acr"] != ciam.ACRMultiFactor {
		t.Fatalf("login with the second step: acr %v", c["acr"])
	}
}
