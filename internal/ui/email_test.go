package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
	"github.com/gatehouse-id/gatehouse/internal/ui"
)

// mailEnv is a server that sends through a real SMTP server (mailpit).
type mailEnv struct {
	*testenv.Env
	mp *testenv.MailpitServer
}

func newMailEnv(t *testing.T, o testenv.MailpitOptions) *mailEnv {
	t.Helper()
	mp := testenv.MailpitWith(t, o)
	e := testenv.NewWith(t, testenv.Options{Mail: mail.Config{
		Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: mail.TLSNone, From: "no-reply@gatehouse.test",
	}})
	return &mailEnv{Env: e, mp: mp}
}

var (
	csrfValue = regexp.MustCompile(`name="csrf_token" value="[^"]*"`)
	mailLink  = regexp.MustCompile(`https?://[^\s"<>]+\?token=[A-Za-z0-9_\-]+`)
	mailCode  = regexp.MustCompile(`\b[0-9]{6}\b`)
	// mailLinkAny is any link into the server, with a token or not.
	mailLinkAny = regexp.MustCompile(`https?://127\.0\.0\.1:[0-9]+/[^\s"<>]*`)
)

// deliver runs the outbox and returns the newest message to addr (of
// want messages received in all).
func (m *mailEnv) deliver(t *testing.T, want int, addr string) *testenv.MailMessage {
	t.Helper()
	m.DeliverOutbox()
	for _, s := range m.mp.WaitMessages(want) {
		if len(s.To) == 1 && s.To[0].Address == addr {
			return m.mp.Message(s.ID)
		}
	}
	t.Fatalf("no mail to %s", addr)
	return nil
}

func linkIn(t *testing.T, msg *testenv.MailMessage) string {
	t.Helper()
	l := mailLink.FindString(msg.Text)
	if l == "" {
		t.Fatalf("no link in mail %q:\n%s", msg.Subject, msg.Text)
	}
	return l
}

func codeIn(t *testing.T, msg *testenv.MailMessage) string {
	t.Helper()
	c := mailCode.FindString(msg.Text)
	if c == "" {
		t.Fatalf("no code in mail %q:\n%s", msg.Subject, msg.Text)
	}
	return c
}

// pathOf returns the path and query of a link, after checking it points at
// the server's public URL.
func (m *mailEnv) pathOf(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, m.URL+"/") {
		t.Fatalf("link %s does not start with the public URL %s", link, m.URL)
	}
	return strings.TrimPrefix(link, m.URL)
}

func userByEmail(t *testing.T, e *testenv.Env, email string) *ciam.User {
	t.Helper()
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	var u *ciam.User
	err := e.Store.View(context.Background(), tn.ID, func(tx store.Tx) (err error) {
		u, err = tx.Users().ByEmail(context.Background(), email)
		return err
	})
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u
}

func TestVerifyByLinkAndByCode(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	if res := signup(t, b, "ann@example.com", goodPassword); res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Fatalf("sign-up: %d %s", res.Status, res.Location)
	}
	msg := m.deliver(t, 1, "ann@example.com")
	if !strings.Contains(msg.Subject, "Verify") && !strings.Contains(msg.Subject, "verify") && !strings.Contains(msg.Subject, "Confirm") {
		t.Logf("subject %q", msg.Subject)
	}
	if acct := b.Get("/t/default/account"); !strings.Contains(acct.Body, `action="/t/default/verify"`) {
		t.Errorf("the account page of an unverified user offers no verification")
	}
	link := m.pathOf(t, linkIn(t, msg))
	// Opening the link changes nothing until the person confirms (mail
	// scanners open links too).
	other := m.Browser()
	page := other.Get(link)
	if page.Status != http.StatusOK || userByEmail(t, m.Env, "ann@example.com").EmailVerified {
		t.Fatalf("GET of the link: %d, or it verified already", page.Status)
	}
	token := mustURL(t, link).Query().Get("token")
	res := other.Post("/t/default/verify", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {token}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "verified=1") {
		t.Fatalf("confirm: %d %s %s", res.Status, res.Location, res.Body)
	}
	if !userByEmail(t, m.Env, "ann@example.com").EmailVerified {
		t.Fatal("the address is not verified after the link")
	}
	// The link is single-use.
	again := other.Post("/t/default/verify", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {token}})
	if again.Status != http.StatusBadRequest || !strings.Contains(again.Body, "not valid any more") {
		t.Errorf("reused link: %d", again.Status)
	}

	// Bob verifies with the code, on the account page.
	bob := m.Browser()
	signup(t, bob, "bob@example.com", goodPassword)
	code := codeIn(t, m.deliver(t, 2, "bob@example.com"))
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	res = bob.Submit("/t/default/account", "/t/default/verify", url.Values{"code": {wrong}})
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "not correct") {
		t.Fatalf("wrong code: %d", res.Status)
	}
	res = bob.Submit("/t/default/account", "/t/default/verify", url.Values{"code": {code[:3] + " " + code[3:]}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "done=verified") {
		t.Fatalf("code: %d %s", res.Status, res.Location)
	}
	if !userByEmail(t, m.Env, "bob@example.com").EmailVerified {
		t.Fatal("not verified after the code")
	}
}

func TestVerificationRequiredBeforeLogin(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	yes := true
	if _, err := m.Server.Tenants.Update(context.Background(), "default", tenant.Settings{RequireVerifiedEmail: &yes}, "test", audit.Meta{}); err != nil {
		t.Fatal(err)
	}
	b := m.Browser()
	res := signup(t, b, "ann@example.com", goodPassword)
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "/verify?sent=1") {
		t.Fatalf("sign-up: %d %s", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
		t.Fatalf("a session exists before verification: %d", acct.Status)
	}
	first := codeIn(t, m.deliver(t, 1, "ann@example.com"))

	// Logging in sends a new mail and refuses; the first code is superseded.
	m.Clock.Advance(2 * time.Minute)
	res = login(t, b, "ann@example.com", goodPassword)
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "unverified=1") {
		t.Fatalf("login before verification: %d %s", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
		t.Fatalf("login before verification gave a session")
	}
	second := codeIn(t, m.deliver(t, 2, "ann@example.com"))
	if first != second {
		res = b.Submit("/t/default/verify", "/t/default/verify", url.Values{"code": {first}})
		if res.Status != http.StatusBadRequest {
			t.Fatalf("superseded code: %d", res.Status)
		}
	}
	// The code works in the browser the mail was asked from, not in another.
	other := m.Browser()
	if res := other.Submit("/t/default/verify", "/t/default/verify", url.Values{"code": {second}}); res.Status != http.StatusBadRequest {
		t.Fatalf("code in another browser: %d", res.Status)
	}
	res = b.Submit("/t/default/verify", "/t/default/verify", url.Values{"code": {second}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "verified=1") {
		t.Fatalf("code: %d %s %s", res.Status, res.Location, res.Body)
	}
	if res := login(t, b, "ann@example.com", goodPassword); res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Fatalf("login after verification: %d %s", res.Status, res.Location)
	}
}

func TestResendIsThrottled(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	res := b.Submit("/t/default/account", "/t/default/verify/resend", nil)
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("resend right after sign-up: %d", res.Status)
	}
	m.Clock.Advance(61 * time.Second)
	if res := b.Submit("/t/default/account", "/t/default/verify/resend", nil); res.Status != http.StatusSeeOther {
		t.Fatalf("resend after a minute: %d", res.Status)
	}
	m.DeliverOutbox()
	if n := len(m.mp.WaitMessages(2)); n != 2 {
		t.Fatalf("%d mails, want 2", n)
	}
}

func TestPasswordResetThroughMail(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	laptop := m.Browser()
	login(t, laptop, "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")
	m.mp.DeleteAll()

	// A forged Host and X-Forwarded-Host do not reach the link.
	anon := m.Browser()
	page := anon.Get("/t/default/forgot")
	req, _ := http.NewRequest("POST", m.URL+"/t/default/forgot", strings.NewReader(url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "email": {"Ann@Example.com"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example") // consistent with the forged Host, as a script sends it
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	for _, c := range anon.Jar.Cookies(mustURL(t, m.URL)) {
		req.AddCookie(c) // the jar files cookies under the request's Host
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("reset request: %d %s", res.StatusCode, body)
	}
	msg := m.deliver(t, 1, "ann@example.com")
	if strings.Contains(msg.Text+msg.HTML, "evil.example") {
		t.Fatal("the reset mail points at the forged host")
	}
	first := m.pathOf(t, linkIn(t, msg))

	// A newer link supersedes the first.
	m.Clock.Advance(2 * time.Minute)
	anon.Submit("/t/default/forgot", "/t/default/forgot", url.Values{"email": {"ann@example.com"}})
	second := m.pathOf(t, linkIn(t, m.deliver(t, 2, "ann@example.com")))
	if res := anon.Get(first); res.Status != http.StatusBadRequest {
		t.Fatalf("superseded link: %d", res.Status)
	}
	form := anon.Get(second)
	if form.Status != http.StatusOK {
		t.Fatalf("reset form: %d", form.Status)
	}
	token := mustURL(t, second).Query().Get("token")
	weak := anon.Post("/t/default/reset", url.Values{"csrf_token": {testenv.CSRF(form.Body)}, "token": {token}, "new_password": {"short"}})
	if weak.Status != http.StatusBadRequest || !strings.Contains(weak.Body, "at least") {
		t.Fatalf("weak password: %d", weak.Status)
	}
	const newPassword = "a brand new passphrase for ann"
	res2 := anon.Post("/t/default/reset", url.Values{"csrf_token": {testenv.CSRF(form.Body)}, "token": {token}, "new_password": {newPassword}})
	if res2.Status != http.StatusSeeOther || !strings.Contains(res2.Location, "reset=1") {
		t.Fatalf("reset: %d %s %s", res2.Status, res2.Location, res2.Body)
	}
	// Every earlier session ended; the link is spent; a notice went out.
	for _, br := range []*testenv.Browser{b, laptop} {
		if res := br.Get("/t/default/account"); res.Status != http.StatusSeeOther {
			t.Errorf("a session survived the reset: %d", res.Status)
		}
	}
	if res := anon.Get(second); res.Status != http.StatusBadRequest {
		t.Errorf("reused reset link: %d", res.Status)
	}
	// The reset itself logs nobody in: the next login passes every factor.
	if res := anon.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Errorf("the reset started a session: %d", res.Status)
	}
	notice := m.deliver(t, 3, "ann@example.com")
	if notice.Subject == msg.Subject {
		t.Errorf("no password-changed notice, newest is %q", notice.Subject)
	}
	// Its link leads to a working page: asking for a new reset link.
	if l := m.pathOf(t, mailLinkAny.FindString(notice.Text)); l != "/t/default/forgot" || anon.Get(l).Status != http.StatusOK {
		t.Errorf("the password-changed notice links %q", l)
	}
	if res := login(t, anon, "ann@example.com", goodPassword); res.Status == http.StatusSeeOther {
		t.Error("the old password still works")
	}
	if res := login(t, m.Browser(), "ann@example.com", newPassword); res.Status != http.StatusSeeOther {
		t.Errorf("the new password does not work: %d", res.Status)
	}
	if !userByEmail(t, m.Env, "ann@example.com").EmailVerified {
		t.Error("a completed reset did not verify the address")
	}
}

func TestPasswordResetUnknownAddressAndExpiry(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	signup(t, m.Browser(), "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")
	m.mp.DeleteAll()

	answer := func(email string) (int, string) {
		b := m.Browser()
		page := b.Get("/t/default/forgot")
		start := time.Now()
		res := b.Post("/t/default/forgot", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "email": {email}})
		// Both answers wait for the same floor, so the work behind a known
		// address does not show in the time.
		if took := time.Since(start); took < ui.AnswerFloor {
			t.Errorf("reset request for %s answered after %v, before the floor %v", email, took, ui.AnswerFloor)
		}
		return res.Status, csrfValue.ReplaceAllString(res.Body, "")
	}
	ks, kb := answer("ann@example.com")
	us, ub := answer("nobody@example.com")
	if ks != us || kb != ub {
		t.Fatalf("known and unknown addresses answer differently: %d vs %d", ks, us)
	}
	m.DeliverOutbox()
	list := m.mp.WaitMessages(1)
	if len(list) != 1 || list[0].To[0].Address != "ann@example.com" {
		t.Fatalf("mails: %+v", list)
	}
	if res := m.Browser().Submit("/t/default/forgot", "/t/default/forgot", url.Values{"email": {"not an address"}}); res.Status != http.StatusBadRequest {
		t.Errorf("malformed address: %d", res.Status)
	}
	link := m.pathOf(t, linkIn(t, m.mp.Message(list[0].ID)))
	m.Clock.Advance(31 * time.Minute)
	if res := m.Browser().Get(link); res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "not valid any more") {
		t.Errorf("expired link: %d", res.Status)
	}
}

func TestEmailLoginLinkBoundToBrowser(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	signup(t, m.Browser(), "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")

	b := m.Browser()
	res := b.Submit("/t/default/login/email", "/t/default/login/email", url.Values{"email": {"ann@example.com"}, "method": {"link"}})
	if res.Status != http.StatusOK {
		t.Fatalf("ask for a link: %d", res.Status)
	}
	link := m.pathOf(t, linkIn(t, m.deliver(t, 2, "ann@example.com")))
	// Another browser is asked, and logs in only when it confirms.
	other := m.Browser()
	ask := other.Get(link)
	if ask.Status != http.StatusOK || !strings.Contains(ask.Body, "another browser") {
		t.Fatalf("link in another browser: %d", ask.Status)
	}
	if acct := other.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
		t.Fatal("opening the link in another browser logged it in")
	}
	// In the browser that asked, the link logs in.
	res = b.Get(link)
	if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Fatalf("link in its browser: %d %s", res.Status, res.Location)
	}
	if acct := b.Get("/t/default/account"); acct.Status != http.StatusOK {
		t.Fatalf("no session after the link: %d", acct.Status)
	}
	// Spent now, also for the other browser's confirmation.
	res = other.Post(link[:strings.Index(link, "?")], url.Values{"csrf_token": {testenv.CSRF(ask.Body)}, "token": {mustURL(t, link).Query().Get("token")}})
	if res.Status != http.StatusBadRequest {
		t.Fatalf("confirming a spent link: %d", res.Status)
	}

	// A fresh link confirmed in another browser logs that one in, and the
	// browser that asked cannot use it after.
	m.Clock.Advance(2 * time.Minute)
	b2 := m.Browser()
	b2.Submit("/t/default/login/email", "/t/default/login/email", url.Values{"email": {"ann@example.com"}, "method": {"link"}})
	link = m.pathOf(t, linkIn(t, m.deliver(t, 3, "ann@example.com")))
	ask = other.Get(link)
	res = other.Post("/t/default/login/link", url.Values{"csrf_token": {testenv.CSRF(ask.Body)}, "token": {mustURL(t, link).Query().Get("token")}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("confirm in another browser: %d %s", res.Status, res.Body)
	}
	if acct := other.Get("/t/default/account"); acct.Status != http.StatusOK {
		t.Fatalf("no session after confirming: %d", acct.Status)
	}
	if res := b2.Get(link); res.Status != http.StatusBadRequest {
		t.Fatalf("the asking browser used a link confirmed elsewhere: %d", res.Status)
	}
}

func TestEmailCodeLoginAttempts(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	signup(t, m.Browser(), "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")

	b := m.Browser()
	res := b.Submit("/t/default/login/email", "/t/default/login/email", url.Values{"email": {"ann@example.com"}, "method": {"code"}})
	if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/login/code") {
		t.Fatalf("ask for a code: %d %s", res.Status, res.Location)
	}
	code := codeIn(t, m.deliver(t, 2, "ann@example.com"))
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	// The code is bound to the browser that asked for it.
	if res := m.Browser().Submit("/t/default/login/code", "/t/default/login/code", url.Values{"code": {code}}); res.Status != http.StatusBadRequest {
		t.Fatalf("code in another browser: %d", res.Status)
	}
	for i := range 5 {
		res := b.Submit("/t/default/login/code", "/t/default/login/code", url.Values{"code": {wrong}})
		if res.Status != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i+1, res.Status)
		}
	}
	// The sixth try is refused, even with the right code.
	res = b.Submit("/t/default/login/code", "/t/default/login/code", url.Values{"code": {code}})
	if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "cannot be used any more") {
		t.Fatalf("right code after 5 wrong ones: %d", res.Status)
	}
	// A new code works, once.
	m.Clock.Advance(2 * time.Minute)
	b.Submit("/t/default/login/email", "/t/default/login/email", url.Values{"email": {"ann@example.com"}, "method": {"code"}})
	code = codeIn(t, m.deliver(t, 3, "ann@example.com"))
	res = b.Submit("/t/default/login/code", "/t/default/login/code", url.Values{"code": {code}})
	if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Fatalf("new code: %d %s", res.Status, res.Location)
	}
	if res := b.Submit("/t/default/login/code", "/t/default/login/code", url.Values{"code": {code}}); res.Status != http.StatusBadRequest {
		t.Fatalf("reused code: %d", res.Status)
	}
	// An unknown address answers like a known one and sends nothing.
	u := m.Browser()
	res = u.Submit("/t/default/login/email", "/t/default/login/email", url.Values{"email": {"nobody@example.com"}, "method": {"code"}})
	if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/login/code") {
		t.Fatalf("unknown address: %d %s", res.Status, res.Location)
	}
	m.DeliverOutbox()
	if n := len(m.mp.Messages()); n != 3 {
		t.Fatalf("%d mails after an unknown address, want 3", n)
	}
}

// The SMTP server refusing mail leaves it queued; the person is told it is
// on its way; it is delivered once the server accepts again.
func TestMailQueuedWhileSMTPRefuses(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{Args: []string{"--enable-chaos"}})
	m.mp.SetChaos(testenv.MailpitChaos{Recipient: testenv.MailpitTrigger{ErrorCode: 451, Probability: 100}})
	b := m.Browser()
	if res := signup(t, b, "ann@example.com", goodPassword); res.Status != http.StatusSeeOther {
		t.Fatalf("sign-up while SMTP refuses: %d", res.Status)
	}
	m.DeliverOutbox()
	if n := len(m.mp.Messages()); n != 0 {
		t.Fatalf("%d mails while refusing", n)
	}
	tn, _ := m.Server.Tenants.BySlug(context.Background(), "default")
	var pending []*ciam.OutboxMessage
	m.Store.View(context.Background(), tn.ID, func(tx store.Tx) (err error) {
		pending, err = tx.Outbox().List(context.Background(), store.OutboxFilter{Kind: notify.Kind, Status: ciam.OutboxPending})
		return err
	})
	if len(pending) != 1 || pending[0].Attempts != 1 {
		t.Fatalf("pending mail: %+v", pending)
	}
	m.mp.SetChaos(testenv.MailpitChaos{})
	m.Clock.Advance(time.Minute)
	m.DeliverOutbox()
	if n := len(m.mp.WaitMessages(1)); n != 1 {
		t.Fatalf("%d mails after SMTP recovered", n)
	}
	m.Clock.Advance(time.Hour)
	m.DeliverOutbox()
	if n := len(m.mp.Messages()); n != 1 {
		t.Fatalf("%d mails: delivered twice", n)
	}
}

// Without SMTP the mail is kept in the outbox and its secrets are sealed.
func TestMailKeptLocallyIsSealed(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	if n := e.DeliverOutbox(); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	var msgs []*ciam.OutboxMessage
	e.Store.View(context.Background(), tn.ID, func(tx store.Tx) (err error) {
		msgs, err = tx.Outbox().List(context.Background(), store.OutboxFilter{Kind: notify.Kind})
		return err
	})
	if len(msgs) != 1 || msgs[0].Status != ciam.OutboxSent {
		t.Fatalf("local mail: %+v", msgs)
	}
	pv, err := e.Server.Mailer.Render(tn, msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if pv.Delivered || pv.Code == "" || !strings.Contains(pv.Link, "token=") {
		t.Fatalf("preview: %+v", pv)
	}
	token := mustURL(t, pv.Link).Query().Get("token")
	if strings.Contains(string(msgs[0].Payload), token) || strings.Contains(string(msgs[0].Payload), pv.Code) {
		t.Fatal("the outbox keeps the link secret or the code in clear")
	}
}

func TestEmailChangeConfirmAndUndo(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")
	signup(t, m.Browser(), "bob@example.com", goodPassword)
	m.deliver(t, 2, "bob@example.com")

	if res := b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"ann@new.example"}, "email_password": {"wrong password here"}}); res.Status != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", res.Status)
	}
	if res := b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"ANN@example.com"}, "email_password": {goodPassword}}); res.Status != http.StatusBadRequest {
		t.Fatalf("unchanged address: %d", res.Status)
	}
	res := b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"ann@new.example"}, "email_password": {goodPassword}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "email_sent") {
		t.Fatalf("request: %d %s", res.Status, res.Location)
	}
	if u := userByEmail(t, m.Env, "ann@example.com"); u.Email != "ann@example.com" {
		t.Fatal("the address changed before confirmation")
	}
	confirm := m.pathOf(t, linkIn(t, m.deliver(t, 3, "ann@new.example")))
	page := b.Get(confirm)
	res = b.Post("/t/default/email/confirm", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, confirm).Query().Get("token")}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "email_changed") {
		t.Fatalf("confirm: %d %s %s", res.Status, res.Location, res.Body)
	}
	u := userByEmail(t, m.Env, "ann@new.example")
	if !u.EmailVerified {
		t.Error("the confirmed address is not verified")
	}
	notice := m.deliver(t, 4, "ann@example.com")
	if strings.Contains(notice.Text, "ann@new.example") {
		t.Error("the notice to the old address shows the new address unmasked")
	}
	undo := m.pathOf(t, linkIn(t, notice))

	// Two days later the old address undoes it: every session ends.
	m.Clock.Advance(48 * time.Hour)
	other := m.Browser()
	page = other.Get(undo)
	if page.Status != http.StatusOK {
		t.Fatalf("undo page: %d", page.Status)
	}
	res = other.Post("/t/default/email/undo", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, undo).Query().Get("token")}})
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Location, "email_restored") {
		t.Fatalf("undo: %d %s %s", res.Status, res.Location, res.Body)
	}
	if u := userByEmail(t, m.Env, "ann@example.com"); u.ID == "" {
		t.Fatal("old address not restored")
	}
	if res := b.Get("/t/default/account"); res.Status != http.StatusSeeOther {
		t.Errorf("a session survived the undo: %d", res.Status)
	}
	page = other.Get(undo)
	if res := other.Post("/t/default/email/undo", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, undo).Query().Get("token")}}); res.Status != http.StatusBadRequest {
		t.Errorf("second undo: %d", res.Status)
	}

	// A change to an address another account uses fails at confirmation,
	// and changes nothing.
	login(t, b, "ann@example.com", goodPassword)
	m.Clock.Advance(2 * time.Minute)
	b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"bob@example.com"}, "email_password": {goodPassword}})
	taken := m.pathOf(t, linkIn(t, m.deliver(t, 5, "bob@example.com")))
	page = b.Get(taken)
	res = b.Post("/t/default/email/confirm", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, taken).Query().Get("token")}})
	if res.Status != http.StatusConflict {
		t.Fatalf("confirm to a taken address: %d", res.Status)
	}
	if u := userByEmail(t, m.Env, "ann@example.com"); u.Email != "ann@example.com" {
		t.Fatal("a failed confirmation changed the address")
	}

	// A second request within a minute sends nothing; an undo link dies
	// after 72 hours.
	if res := b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"ann@third.example"}, "email_password": {goodPassword}}); res.Status != http.StatusTooManyRequests {
		t.Fatalf("request within a minute: %d", res.Status)
	}
	m.Clock.Advance(2 * time.Minute)
	b.Submit("/t/default/account", "/t/default/account/email", url.Values{"new_email": {"ann@third.example"}, "email_password": {goodPassword}})
	c := m.pathOf(t, linkIn(t, m.deliver(t, 6, "ann@third.example")))
	page = b.Get(c)
	b.Post("/t/default/email/confirm", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, c).Query().Get("token")}})
	late := m.pathOf(t, linkIn(t, m.deliver(t, 7, "ann@example.com")))
	m.Clock.Advance(73 * time.Hour)
	page = other.Get(late)
	if res := other.Post("/t/default/email/undo", url.Values{"csrf_token": {testenv.CSRF(page.Body)}, "token": {mustURL(t, late).Query().Get("token")}}); res.Status != http.StatusBadRequest {
		t.Fatalf("undo after 72 hours: %d", res.Status)
	}
}

// Platform administrators read the locally kept mail in the browser; a
// tenant's user cannot, and mail of a tenant with SMTP is not shown.
func TestAdminReadsLocalMail(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	link, err := e.Server.SetupLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := mustURL(t, link)
	admin := e.Browser()
	admin.Submit(u.Path+"?"+u.RawQuery, "/setup", url.Values{"token": {u.Query().Get("token")}, "email": {"admin@example.com"}, "password": {goodPassword}})

	user := e.Browser()
	signup(t, user, "ann@example.com", goodPassword)
	e.DeliverOutbox()
	page := admin.Get("/admin/mail")
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "ann@example.com") || !strings.Contains(page.Body, "/t/default/verify?token=") {
		t.Fatalf("admin mail page: %d\n%s", page.Status, page.Body)
	}
	code := mailCode.FindString(page.Body[strings.Index(page.Body, "<code>"):])
	if res := user.Submit("/t/default/account", "/t/default/verify", url.Values{"code": {code}}); res.Status != http.StatusSeeOther {
		t.Fatalf("the code from the admin page does not verify: %d", res.Status)
	}
	if res := user.Get("/admin/mail"); res.Status != http.StatusSeeOther {
		t.Fatalf("a tenant user reads the local mail: %d", res.Status)
	}
	// A tenant with its own SMTP server: its mail is not on the page.
	host := "smtp.acme.test"
	from := "Acme <no-reply@acme.test>"
	yes := true
	tn, err := e.Server.Tenants.Create(ctx, "acme", tenant.Settings{SignupOpen: &yes}, "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	tn.Mail = ciam.TenantMail{Host: host, From: from}
	if err := e.Store.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Tenant().Update(ctx, tn) }); err != nil {
		t.Fatal(err)
	}
	b := e.Browser()
	b.Submit("/t/acme/signup", "/t/acme/signup", url.Values{"email": {"bob@acme.test"}, "password": {goodPassword}})
	if page := admin.Get("/admin/mail"); strings.Contains(page.Body, "bob@acme.test") {
		t.Fatal("mail of a tenant with SMTP is shown to administrators")
	}
}

// A process that dies after claiming a mail and before sending it leaves
// the mail to be sent once its claim lapses; two server processes working
// the same outbox send each mail once.
func TestMailSurvivesCrashAndSendsOnce(t *testing.T) {
	mp := testenv.Mailpit(t)
	cfg := mail.Config{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: mail.TLSNone, From: "no-reply@gatehouse.test"}
	kek := bytes.Repeat([]byte{7}, 32)
	a := testenv.NewWith(t, testenv.Options{Mail: cfg, KEK: kek})
	b := testenv.NewWith(t, testenv.Options{Mail: cfg, Store: a.Store, KEK: kek})
	for i := range 6 {
		signup(t, a.Browser(), fmt.Sprintf("user%d@example.com", i), goodPassword)
	}
	// The "crashed" process claims two mails and is never heard of again.
	claimed, err := a.Store.System().ClaimOutbox(context.Background(), "dead-process", a.Clock.Now(), a.Clock.Now().Add(2*time.Minute), 2)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	var wg sync.WaitGroup
	for _, e := range []*testenv.Env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				e.Server.Outbox.RunOnce(context.Background())
			}
		}()
	}
	wg.Wait()
	if n := len(mp.WaitMessages(4)); n != 4 {
		t.Fatalf("%d mails before the claim lapsed, want 4", n)
	}
	a.Clock.Advance(3 * time.Minute)
	b.Clock.Advance(3 * time.Minute)
	a.DeliverOutbox()
	b.DeliverOutbox()
	list := mp.WaitMessages(6)
	seen := map[string]bool{}
	for _, m := range list {
		if seen[m.To[0].Address] {
			t.Errorf("%s got two mails", m.To[0].Address)
		}
		seen[m.To[0].Address] = true
	}
	if len(list) != 6 {
		t.Fatalf("%d mails, want 6", len(list))
	}
}

// Skipping steps: posting to the reset, code and confirmation endpoints
// without what the earlier step hands out changes nothing.
func TestEmailFlowsCannotBeSkipped(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")
	anon := m.Browser()
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/t/default/reset", url.Values{"new_password": {"a completely new passphrase"}}},
		{"/t/default/reset", url.Values{"token": {"forged-token"}, "new_password": {"a completely new passphrase"}}},
		{"/t/default/login/code", url.Values{"code": {"123456"}}},
		{"/t/default/login/link", url.Values{"token": {"forged-token"}}},
		{"/t/default/email/confirm", url.Values{"token": {"forged-token"}}},
		{"/t/default/email/undo", url.Values{"token": {"forged-token"}}},
		{"/t/default/verify", url.Values{"code": {"123456"}}},
		{"/t/default/verify", url.Values{"token": {"forged-token"}}},
	} {
		res := anon.Submit("/t/default/login", c.path, c.form)
		if res.Status != http.StatusBadRequest {
			t.Errorf("POST %s %v: %d, want 400", c.path, c.form, res.Status)
		}
		if acct := anon.Get("/t/default/account"); acct.Status != http.StatusSeeOther {
			t.Fatalf("POST %s gave a session", c.path)
		}
	}
	if res := anon.Get("/t/default/reset?token=forged"); res.Status != http.StatusBadRequest {
		t.Errorf("reset form with a forged token: %d", res.Status)
	}
	if res := login(t, m.Browser(), "ann@example.com", goodPassword); res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Location, "/account") {
		t.Errorf("the password changed: %d", res.Status)
	}
}

// With the SMTP server unreachable, sign-up and reset still answer; the
// mail waits in the outbox for the next attempt.
func TestSMTPUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	e := testenv.NewWith(t, testenv.Options{Mail: mail.Config{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: "no-reply@gatehouse.test"}})
	b := e.Browser()
	if res := signup(t, b, "ann@example.com", goodPassword); res.Status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d", res.Status)
	}
	if res := e.Browser().Submit("/t/default/forgot", "/t/default/forgot", url.Values{"email": {"ann@example.com"}}); res.Status != http.StatusOK || !strings.Contains(res.Body, "we sent a link") {
		t.Fatalf("reset request: %d", res.Status)
	}
	e.DeliverOutbox()
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	var pending []*ciam.OutboxMessage
	e.Store.View(context.Background(), tn.ID, func(tx store.Tx) (err error) {
		pending, err = tx.Outbox().List(context.Background(), store.OutboxFilter{Kind: notify.Kind, Status: ciam.OutboxPending})
		return err
	})
	if len(pending) != 2 {
		t.Fatalf("%d mails pending, want 2", len(pending))
	}
	for _, p := range pending {
		if p.Attempts != 1 || p.LastError == "" || !p.NextAttemptAt.After(e.Clock.Now()) {
			t.Errorf("pending mail: attempts %d, error %q, next %v", p.Attempts, p.LastError, p.NextAttemptAt)
		}
	}
}

// A reset link dies when the password changes another way.
func TestResetLinkDiesWithPasswordChange(t *testing.T) {
	m := newMailEnv(t, testenv.MailpitOptions{})
	b := m.Browser()
	signup(t, b, "ann@example.com", goodPassword)
	m.deliver(t, 1, "ann@example.com")
	m.Browser().Submit("/t/default/forgot", "/t/default/forgot", url.Values{"email": {"ann@example.com"}})
	link := m.pathOf(t, linkIn(t, m.deliver(t, 2, "ann@example.com")))
	res := b.Submit("/t/default/account", "/t/default/account/password", url.Values{"current_password": {goodPassword}, "new_password": {"another fine passphrase here"}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("password change: %d", res.Status)
	}
	if res := m.Browser().Get(link); res.Status != http.StatusBadRequest {
		t.Fatalf("reset link after a password change: %d", res.Status)
	}
}
