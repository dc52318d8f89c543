package oidc_test

// OpenID Connect Back-Channel Logout 1.0: ending a session queues a logout
// token for every client with a back-channel logout URI that was issued a
// code for that session; the outbox posts it, retries a failing client, and
// the user's logout never waits for any of it. The tokens are verified with
// go-oidc, as a relying party would.

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// relyingParty is a client's back-channel logout endpoint. Each request is
// answered with the next status of script (then 200).
type relyingParty struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	hang   bool
	stop   chan struct{}
	got    []url.Values
	ctype  []string
}

func newRelyingParty(t *testing.T, script ...int) *relyingParty {
	rp := &relyingParty{script: script, stop: make(chan struct{})}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		hang := rp.hang
		rp.mu.Unlock()
		r.ParseForm()
		if hang {
			select {
			case <-r.Context().Done():
			case <-rp.stop:
			}
			return
		}
		rp.mu.Lock()
		rp.got = append(rp.got, r.PostForm)
		rp.ctype = append(rp.ctype, r.Header.Get("Content-Type"))
		status := 200
		if len(rp.script) > 0 {
			status, rp.script = rp.script[0], rp.script[1:]
		}
		rp.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rp.srv.Close)
	t.Cleanup(func() { close(rp.stop) }) // runs first: no handler outlives the test
	return rp
}

func (rp *relyingParty) uri() string { return rp.srv.URL + "/backchannel-logout" }

func (rp *relyingParty) tokens() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []string
	for _, f := range rp.got {
		out = append(out, f.Get("logout_token"))
	}
	return out
}

// backchannelApp registers a first-party web app that wants back-channel logout at uri.
func (f *fixture) backchannelApp(uri string) registered {
	return f.register(client.Input{
		Name: "Web app", FirstParty: true, TokenAuthMethod: ciam.AuthSecretBasic,
		RedirectURIs: []string{appCallback}, PostLogoutURIs: []string{"https://app.example/bye"},
		BackchannelLogoutURI: uri,
	})
}

// verifyLogoutToken checks a logout token as a relying party must (section
// 2.6): signature, iss, aud and exp through go-oidc, then typ, the event,
// sid, sub and the absence of a nonce. It returns the claims.
func (f *fixture) verifyLogoutToken(app registered, raw string) map[string]any {
	f.t.Helper()
	tok, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, raw)
	if err != nil {
		f.t.Fatalf("logout token does not verify: %v", err)
	}
	var cl map[string]any
	if err := tok.Claims(&cl); err != nil {
		f.t.Fatal(err)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		f.t.Fatal(err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders["typ"]; typ != "logout+jwt" {
		f.t.Errorf("typ %v, want logout+jwt", typ)
	}
	events, _ := cl["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok || len(events) != 1 {
		f.t.Errorf("events %v", cl["events"])
	}
	if _, ok := cl["nonce"]; ok {
		f.t.Errorf("a logout token must not carry a nonce: %v", cl)
	}
	if cl["jti"] == "" || cl["iat"] == nil || cl["sid"] == "" || cl["sub"] != string(f.user.ID) {
		f.t.Errorf("logout token claims %v", cl)
	}
	return cl
}

func sidOf(t *testing.T, f *fixture, app registered, idToken string) string {
	t.Helper()
	tok, err := f.provider.Verifier(&oidc.Config{ClientID: string(app.ID)}).Verify(f.ctx, idToken)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := claims(t, tok)["sid"].(string)
	if sid == "" {
		t.Fatal("ID token without sid")
	}
	return sid
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rp := newRelyingParty(t)
	app := f.backchannelApp(rp.uri())
	plain := f.webApp(ciam.AuthSecretBasic) // no back-channel URI: never notified

	b, _, tok := f.login(f.config(app, appCallback), flowOpts{})
	hint := idToken(t, tok)
	sid := sidOf(t, f, app, hint)
	// The same browser session signs in to the second app, and again to the first.
	f.exchange(f.authorize(b, f.config(plain, appCallback), flowOpts{}))
	f.exchange(f.authorize(b, f.config(app, appCallback), flowOpts{}))

	// Logging out answers at once; nothing has been posted yet.
	res := b.Get("/t/default/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example/bye"}}.Encode())
	if res.Status != http.StatusSeeOther || res.Location != "https://app.example/bye" {
		t.Fatalf("end_session: %d %q", res.Status, res.Location)
	}
	if len(rp.tokens()) != 0 {
		t.Fatalf("the logout waited for the back channel")
	}
	if n := f.env.DeliverOutbox(); n != 1 {
		t.Fatalf("delivered %d notices, want 1 (one client, one session)", n)
	}
	toks := rp.tokens()
	if len(toks) != 1 || rp.ctype[0] != "application/x-www-form-urlencoded" {
		t.Fatalf("posts %v (%v)", toks, rp.ctype)
	}
	cl := f.verifyLogoutToken(app, toks[0])
	if cl["sid"] != sid || cl["aud"] != string(app.ID) {
		t.Errorf("logout token sid %v aud %v; want %s, %s", cl["sid"], cl["aud"], sid, app.ID)
	}
	// Logging out again changes nothing and sends nothing.
	b.Get("/t/default/end_session?" + url.Values{"id_token_hint": {hint}}.Encode())
	if n := f.env.DeliverOutbox(); n != 0 {
		t.Errorf("a second logout queued %d notices", n)
	}

	// Discovery says so.
	var meta struct {
		Backchannel        bool `json:"backchannel_logout_supported"`
		BackchannelSession bool `json:"backchannel_logout_session_supported"`
	}
	if err := f.provider.Claims(&meta); err != nil || !meta.Backchannel || !meta.BackchannelSession {
		t.Errorf("discovery: %+v %v", meta, err)
	}
}

// Every way a session ends tells the clients: disabling the user, a password
// change (the other sessions), "log out other devices", revoking one.
func TestBackchannelLogoutOnEverySessionEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rp := newRelyingParty(t)
	app := f.backchannelApp(rp.uri())
	cfg := f.config(app, appCallback)
	sessions := func(n int) []string {
		var sids []string
		for range n {
			_, _, tok := f.login(cfg, flowOpts{})
			sids = append(sids, sidOf(t, f, app, idToken(t, tok)))
		}
		return sids
	}
	notified := func(what string, want []string) {
		t.Helper()
		before := len(rp.tokens())
		f.env.DeliverOutbox()
		got := map[string]bool{}
		for _, raw := range rp.tokens()[before:] {
			got[f.verifyLogoutToken(app, raw)["sid"].(string)] = true
		}
		if len(got) != len(want) {
			t.Errorf("%s: notified sessions %v, want %v", what, got, want)
		}
		for _, s := range want {
			if !got[s] {
				t.Errorf("%s: session %s not notified", what, s)
			}
		}
	}

	// Revoking one session from the account page.
	sids := sessions(2)
	if err := f.env.Server.Sessions.Revoke(f.ctx, f.tenant, f.user, ciam.SessionID(sids[0]), string(f.user.ID), audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	notified("revoke one", sids[:1])
	// Ending the others, keeping one.
	more := sessions(2)
	if _, err := f.env.Server.Sessions.RevokeOthers(f.ctx, f.tenant, f.user, ciam.SessionID(more[1]), string(f.user.ID), audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	notified("revoke others", []string{sids[1], more[0]})
	// A password change ends every other session.
	if err := f.env.Server.Users.ChangePassword(f.ctx, f.tenant, f.user.ID, testPassword, "a different passphrase entirely", ciam.SessionID(more[1]), audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	notified("password change", nil)
	// Disabling the user ends the rest.
	if _, err := f.env.Server.Users.SetStatus(f.ctx, f.tenant, f.user.ID, ciam.UserDisabled, "admin", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	notified("disable", more[1:])
}

// A failing client is retried with backoff; a client that rejects the token
// is given up on with an audit event; a client that hangs does not hold up
// the worker beyond its timeout; a deleted client is not called.
func TestBackchannelLogoutFailingClients(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	logout := func(app registered) {
		t.Helper()
		b, _, tok := f.login(f.config(app, appCallback), flowOpts{})
		start := time.Now()
		res := b.Get("/t/default/end_session?" + url.Values{"id_token_hint": {idToken(t, tok)}}.Encode())
		if res.Status != http.StatusSeeOther || time.Since(start) > 5*time.Second {
			t.Fatalf("logout: %d after %v", res.Status, time.Since(start))
		}
	}
	messages := func() map[string]*ciam.OutboxMessage {
		out := map[string]*ciam.OutboxMessage{}
		err := f.env.Store.View(f.ctx, f.tenant.ID, func(tx store.Tx) error {
			ms, err := tx.Outbox().List(f.ctx, store.OutboxFilter{})
			for _, m := range ms {
				out[m.ID] = m
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// 503 twice, then 200.
	flaky := newRelyingParty(t, 503, 503)
	app := f.backchannelApp(flaky.uri())
	logout(app)
	f.env.DeliverOutbox()
	var m *ciam.OutboxMessage
	for _, x := range messages() {
		m = x
	}
	if m == nil || m.Status != ciam.OutboxPending || m.Attempts != 1 || m.LastError == "" {
		t.Fatalf("after a 503: %+v", m)
	}
	f.env.Clock.Advance(13 * time.Second)
	f.env.DeliverOutbox()
	f.env.Clock.Advance(25 * time.Second)
	f.env.DeliverOutbox()
	if m = messages()[m.ID]; m.Status != ciam.OutboxSent || m.Attempts != 3 || len(flaky.tokens()) != 3 {
		t.Fatalf("after two 503s and a 200: %+v, %d posts", m, len(flaky.tokens()))
	}
	f.verifyLogoutToken(app, flaky.tokens()[2])

	// 400: the client refuses the token; retrying cannot help.
	refusing := newRelyingParty(t, 400)
	app = f.backchannelApp(refusing.uri())
	logout(app)
	f.env.DeliverOutbox()
	dead := 0
	for _, x := range messages() {
		if x.Status == ciam.OutboxDead {
			dead++
			if x.Attempts != 1 {
				t.Errorf("dead letter after %d attempts", x.Attempts)
			}
		}
	}
	if dead != 1 {
		t.Fatalf("%d dead letters, want 1", dead)
	}
	var events []*ciam.AuditEvent
	f.env.Store.View(f.ctx, f.tenant.ID, func(tx store.Tx) (err error) {
		events, err = tx.Audit().List(f.ctx, store.AuditFilter{Type: outbox.DeadLettered})
		return err
	})
	if len(events) != 1 || events[0].Data["kind"] != "backchannel_logout" || events[0].Data["reason"] != "permanent_error" {
		t.Errorf("audit %+v", events)
	}

	// A client that never answers: the attempt times out and is retried.
	hanging := newRelyingParty(t)
	hanging.hang = true
	f.env.Server.Provider.Backchannel = &http.Client{Timeout: 300 * time.Millisecond}
	app = f.backchannelApp(hanging.uri())
	logout(app)
	start := time.Now()
	f.env.DeliverOutbox()
	if time.Since(start) > 10*time.Second {
		t.Errorf("a hanging client held the worker for %v", time.Since(start))
	}
	pending := 0
	for _, x := range messages() {
		if x.Status == ciam.OutboxPending {
			pending++
		}
	}
	if pending != 1 {
		t.Errorf("%d pending after a timeout, want 1", pending)
	}

	// A notice that cannot be read is given up on at once, not retried.
	err := f.env.Server.Provider.DeliverLogoutNotice(f.ctx, &ciam.OutboxMessage{ID: "bad", TenantID: f.tenant.ID, Kind: "backchannel_logout", Payload: []byte("{not json")})
	if err == nil || !outbox.IsPermanent(err) {
		t.Errorf("a garbled notice: %v; want a permanent error", err)
	}

	// A client deleted before delivery: nothing is posted, the notice is done.
	gone := newRelyingParty(t)
	app = f.backchannelApp(gone.uri())
	b, _, tok := f.login(f.config(app, appCallback), flowOpts{})
	if err := f.env.Server.Clients.Delete(f.ctx, f.tenant.ID, app.ID, "admin", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	b.Get("/t/default/end_session?" + url.Values{"id_token_hint": {idToken(t, tok)}}.Encode())
	f.env.DeliverOutbox()
	if len(gone.tokens()) != 0 {
		t.Errorf("a deleted client was notified")
	}
}
