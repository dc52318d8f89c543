package oidc_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// TestRefreshRotation checks rotation through x/oauth2's TokenSource, that a
// reused (rotated) refresh token is invalid_grant and revokes its family,
// and scope narrowing.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	_, _, tok0 := f.login(cfg, flowOpts{})

	// oauth2.TokenSource refreshes an expired token by itself.
	expired := *tok0
	expired.Expiry = time.Now().Add(-time.Hour)
	tok1, err := cfg.TokenSource(f.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("TokenSource refresh: %v", err)
	}
	if tok1.RefreshToken == "" || tok1.RefreshToken == tok0.RefreshToken || tok1.AccessToken == tok0.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", tok1)
	}
	idt, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken(t, tok1))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	if idt.Subject != string(f.user.ID) || idt.VerifyAccessToken(tok1.AccessToken) != nil {
		t.Errorf("refreshed ID token sub %s / at_hash", idt.Subject)
	}
	tok2, err := f.refresh(cfg, tok1.RefreshToken)
	if err != nil || tok2.RefreshToken == tok1.RefreshToken {
		t.Fatalf("second rotation: %v", err)
	}
	if !active(f.introspect(app, tok1.AccessToken)) || !active(f.introspect(app, tok2.RefreshToken)) {
		t.Fatalf("tokens inactive before the reuse")
	}
	if active(f.introspect(app, tok1.RefreshToken)) {
		t.Errorf("a rotated refresh token is still active at introspection")
	}

	// Scope: a refresh may narrow, never widen.
	narrow := f.postAs(app, "/t/default/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok2.RefreshToken}, "scope": {"openid"}})
	if narrow.Status != 200 || narrow.str("scope") != "openid" {
		t.Fatalf("narrowing refresh: %d %s", narrow.Status, narrow.Body)
	}
	tok3 := narrow.str("refresh_token")
	wide := f.postAs(app, "/t/default/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok3}, "scope": {"openid admin"}})
	wantError(t, wide, 400, "invalid_scope")
	// The refused request did not spend the token, and it keeps the full grant.
	tok4, err := f.refresh(cfg, tok3)
	if err != nil {
		t.Fatalf("refresh after a refused one: %v", err)
	}
	if s, _ := tok4.Extra("scope").(string); s != "openid profile email offline_access" {
		t.Errorf("scope after a narrowed refresh: %q", s)
	}

	// Another client cannot use the token (and does not spend it).
	other := f.webApp(ciam.AuthSecretBasic)
	_, err = f.refresh(f.config(other, appCallback), tok4.RefreshToken)
	oauthError(t, err, "invalid_grant")

	// Reuse of a rotated token: invalid_grant, and the whole family goes.
	_, err = f.refresh(cfg, tok0.RefreshToken)
	oauthError(t, err, "invalid_grant")
	_, err = f.refresh(cfg, tok4.RefreshToken)
	oauthError(t, err, "invalid_grant")
	for name, at := range map[string]string{"first": tok0.AccessToken, "rotated": tok1.AccessToken, "newest": tok4.AccessToken} {
		if active(f.introspect(app, at)) {
			t.Errorf("%s access token of a revoked family still active", name)
		}
		wantInvalidToken(t, f.userinfo("default", at))
	}
	if active(f.introspect(app, tok4.RefreshToken)) {
		t.Errorf("newest refresh token of a revoked family still active")
	}

	// An unrelated grant of the same user and client is untouched.
	_, _, fresh := f.login(cfg, flowOpts{})
	if _, err := f.refresh(cfg, fresh.RefreshToken); err != nil {
		t.Fatalf("another family was revoked too: %v", err)
	}
}

// raceRefresh presents one refresh token n times at once: exactly one
// rotation may win, and the family must not fork into two live branches.
func raceRefresh(t *testing.T, f *fixture, n int) {
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	_, _, tok := f.login(cfg, flowOpts{})

	results := make([]*apiResponse, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			results[i] = f.post("/t/default/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, string(app.ID), app.Secret)
		}()
	}
	start.Done()
	done.Wait()
	var winners []*apiResponse
	for _, r := range results {
		switch {
		case r.Status == 200:
			winners = append(winners, r)
		case r.Status == 400 && r.str("error") == "invalid_grant":
		default:
			t.Errorf("racing refresh: %d %s", r.Status, r.Body)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d racing rotations won, want exactly 1", len(winners), n)
	}
	// No fork: the original is spent, and at most the winner's successor
	// lives (the losers were reuses, which revoke the family).
	if active(f.introspect(app, tok.RefreshToken)) {
		t.Errorf("the raced refresh token is still active")
	}
	live := 0
	for _, r := range winners {
		if active(f.introspect(app, r.str("refresh_token"))) {
			live++
		}
	}
	if live > 1 {
		t.Errorf("%d live branches of one family", live)
	}
	t.Logf("after the race: %d live successor(s)", live)
	_, err := f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
}

// raceCode redeems one authorization code n times at once: exactly one wins.
func raceCode(t *testing.T, f *fixture, n int) {
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	b := f.env.Browser()
	r := f.authorize(b, cfg, flowOpts{login: true})
	code := f.code(r)
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			_, errs[i] = cfg.Exchange(f.ctx, code, oauth2.VerifierOption(r.verifier))
		}()
	}
	start.Done()
	done.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		oauthError(t, err, "invalid_grant")
	}
	if wins != 1 {
		t.Fatalf("%d of %d racing redemptions won, want exactly 1", wins, n)
	}
}

func TestRefreshRace(t *testing.T) {
	t.Parallel()
	raceRefresh(t, newFixture(t), 20)
}

func TestCodeRace(t *testing.T) {
	t.Parallel()
	raceCode(t, newFixture(t), 10)
}

// TestRacesPostgres runs both races on PostgreSQL (GATEHOUSE_TEST_POSTGRES),
// where racing transactions really overlap.
func TestRacesPostgres(t *testing.T) {
	t.Parallel()
	st := testenv.Postgres(t)
	f := fixtureOn(t, testenv.NewWith(t, testenv.Options{Store: st}))
	t.Run("refresh", func(t *testing.T) { raceRefresh(t, f, 20) })
	t.Run("code", func(t *testing.T) { raceCode(t, f, 10) })
}

// TestRefreshWithSession checks a client whose refresh tokens end with the
// browser session: after RP-initiated logout the refresh token fails.
func TestRefreshWithSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.register(client.Input{FirstParty: true, RedirectURIs: []string{appCallback}, PostLogoutURIs: []string{"https://app.example/bye"}, RefreshWithSession: true})
	cfg := f.config(app, appCallback)
	b, _, tok := f.login(cfg, flowOpts{})
	tok, err := f.refresh(cfg, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	res := b.Get("/t/default/end_session?" + url.Values{"id_token_hint": {idToken(t, tok)}}.Encode())
	if res.Status != http.StatusSeeOther {
		t.Fatalf("end_session: %d", res.Status)
	}
	_, err = f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
}

// TestRefreshExpiry: the idle and the absolute lifetime of a refresh-token
// family, on the server's clock.
func TestRefreshExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.register(client.Input{FirstParty: true, RedirectURIs: []string{appCallback}, RefreshIdleTTL: time.Hour, RefreshMaxTTL: 3 * time.Hour})
	cfg := f.config(app, appCallback)
	_, _, tok := f.login(cfg, flowOpts{})
	rt := tok.RefreshToken
	// Used within the idle time, a family lives until its absolute end.
	for i := 0; i < 3; i++ {
		f.env.Clock.Advance(50 * time.Minute)
		next, err := f.refresh(cfg, rt)
		if err != nil {
			t.Fatalf("refresh after %d×50 minutes: %v", i+1, err)
		}
		rt = next.RefreshToken
	}
	f.env.Clock.Advance(40 * time.Minute) // 3h10m after the login
	_, err := f.refresh(cfg, rt)
	oauthError(t, err, "invalid_grant")

	// Left idle longer than the idle time, a token expires.
	_, _, tok = f.login(cfg, flowOpts{})
	f.env.Clock.Advance(61 * time.Minute)
	_, err = f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
	if active(f.introspect(app, tok.RefreshToken)) {
		t.Errorf("an idle-expired refresh token is active at introspection")
	}
}

// TestRevokeRotatedRefreshToken: revoking (RFC 7009) a refresh token that
// was already rotated away still revokes its family, for its own client
// only.
func TestRevokeRotatedRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	_, _, tok0 := f.login(cfg, flowOpts{})
	tok1, err := f.refresh(cfg, tok0.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// Another client's revocation of the spent token changes nothing.
	other := f.webApp(ciam.AuthSecretBasic)
	if res := f.postAs(other, "/t/default/revoke", url.Values{"token": {tok0.RefreshToken}}); res.Status != 200 {
		t.Fatalf("revoke by another client: %d %s", res.Status, res.Body)
	}
	if !active(f.introspect(app, tok1.RefreshToken)) {
		t.Fatal("another client's revocation of a spent token revoked the family")
	}
	if res := f.postAs(app, "/t/default/revoke", url.Values{"token": {tok0.RefreshToken}}); res.Status != 200 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if active(f.introspect(app, tok1.RefreshToken)) || active(f.introspect(app, tok1.AccessToken)) {
		t.Error("revoking a rotated refresh token left its family active")
	}
}

// TestPasswordChangeRevokesRefreshTokens: a password change ends the
// refresh tokens that are not tied to the session it was made in.
func TestPasswordChangeRevokesRefreshTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.webApp(ciam.AuthSecretBasic)
	cfg := f.config(app, appCallback)
	_, _, tok := f.login(cfg, flowOpts{})
	if err := f.env.Server.Users.ChangePassword(f.ctx, f.tenant, f.user.ID, testPassword, "a different passphrase entirely", "", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.refresh(cfg, tok.RefreshToken)
	oauthError(t, err, "invalid_grant")
	if active(f.introspect(app, tok.AccessToken)) {
		t.Error("an access token of a revoked family is still active after the password change")
	}
}
