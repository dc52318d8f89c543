package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// The browser tests drive a real headless Chromium through the hosted pages
// the way a person does: by following links, typing into fields found by
// their labels and pressing buttons. They run when a Chromium is found
// (GATEHOUSE_CHROMIUM, /usr/bin/chromium, or chromium, chromium-browser or
// google-chrome in PATH) and are skipped otherwise. Set
// GATEHOUSE_SCREENSHOTS to a directory to keep the screenshots they take.

const (
	browserTimeout = 60 * time.Second // everything one browser context does
	stepTimeout    = 20 * time.Second // one wait for an element or a page load
	startTimeout   = 30 * time.Second // Chromium's start
	phoneWidth     = 375
	phoneHeight    = 812
)

// chromiumPath finds the browser, or skips the test with a notice.
func chromiumPath(t *testing.T) string {
	t.Helper()
	return testenv.Chromium(t)
}

// browser is one person's browser: a tab in a Chromium with a fresh profile,
// or in a separate browser context of such a Chromium.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string

	mu      sync.Mutex
	console []string // errors the page reported: CSP violations, exceptions, failed loads
}

// startChromium starts a Chromium with a fresh profile and returns its first
// tab. The browser stops when the test ends.
func startChromium(t *testing.T, e *testenv.Env, exe, name string) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "gatehouse-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeProfile(t, profile) })
	var output bytes.Buffer
	var outputMu sync.Mutex
	// The context of the first Run owns the browser: it lives at most this long.
	life, endLife := context.WithTimeout(context.Background(), startTimeout+browserTimeout)
	t.Cleanup(endLife)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, append(testenv.ChromiumOptions(exe, profile),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(lockedWriter{&outputMu, &output}),
	)...)
	t.Cleanup(cancelAlloc) // kills Chromium and waits for it; then the profile goes
	tab, closeTab := chromedp.NewContext(allocCtx)
	t.Cleanup(closeTab)
	t.Cleanup(func() {
		if t.Failed() {
			outputMu.Lock()
			defer outputMu.Unlock()
			if s := strings.TrimSpace(output.String()); s != "" {
				t.Logf("%s: Chromium's output:\n%s", name, s)
			}
		}
	})
	start, cancel := context.WithTimeout(life, startTimeout)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- chromedp.Run(tab) }()
	select {
	case err = <-started:
	case <-start.Done():
		err = fmt.Errorf("not ready after %v", startTimeout)
	}
	if err != nil {
		t.Fatalf("%s: start Chromium %s: %v", name, exe, err)
	}
	return newBrowser(t, tab, name, e.URL)
}

// removeProfile deletes a browser profile, retrying briefly while helper
// processes of the killed browser may still write to it.
func removeProfile(t *testing.T, dir string) {
	var err error
	for i := 0; i < 20; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("could not remove the browser profile %s: %v", dir, err)
}

// otherPerson opens a window in a new browser context of b's Chromium: its
// own cookies and storage, like an incognito window or another person's
// browser.
func (b *browser) otherPerson(name string) *browser {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	onBrowser := cdp.WithExecutor(ctx, chromedp.FromContext(b.ctx).Browser)
	id, err := target.CreateBrowserContext().WithDisposeOnDetach(true).Do(onBrowser)
	if err != nil {
		b.t.Fatalf("%s: new browser context: %v", name, err)
	}
	// A new window: Chromium refuses a bare tab in a context without one.
	tab, err := target.CreateTarget("about:blank").WithBrowserContextID(id).WithNewWindow(true).Do(onBrowser)
	if err != nil {
		b.t.Fatalf("%s: new window: %v", name, err)
	}
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		target.DisposeBrowserContext(id).Do(cdp.WithExecutor(ctx, chromedp.FromContext(b.ctx).Browser))
	})
	tabCtx, closeTab := chromedp.NewContext(b.ctx, chromedp.WithTargetID(tab))
	b.t.Cleanup(closeTab)
	nb := newBrowser(b.t, tabCtx, name, b.base)
	// Not b.run: the context of the first Run owns the attachment to the tab.
	if err := chromedp.Run(nb.ctx); err != nil {
		b.t.Fatalf("%s: attach to its window: %v", name, err)
	}
	return nb
}

// newBrowser drives the tab of ctx for at most browserTimeout and records
// what its pages report as errors.
func newBrowser(t *testing.T, ctx context.Context, name, base string) *browser {
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(cancel)
	b := &browser{t: t, name: name, ctx: ctx, base: base}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError {
				msg = fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
		}
		if msg != "" {
			b.mu.Lock()
			b.console = append(b.console, msg)
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() { b.checkConsole() })
	return b
}

// checkConsole fails the test for what a page should never log: CSP
// violations and script errors. Other errors are only shown.
func (b *browser) checkConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if strings.Contains(m, "Content Security Policy") || strings.HasPrefix(m, "exception") {
			b.t.Errorf("%s: the page reported: %s", b.name, m)
		} else {
			b.t.Logf("%s: browser console: %s", b.name, m)
		}
	}
	b.console = nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run runs actions as one step, failing the test with the step's name.
func (b *browser) run(step string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, step, err)
	}
}

// load runs actions that navigate (a click, a reload) and waits for the new
// page; it returns the HTTP status of the document the browser ended up on.
func (b *browser) load(step string, actions ...chromedp.Action) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, step, err)
	}
	if res == nil {
		b.t.Fatalf("%s: %s: no page loaded", b.name, step)
	}
	b.run(step+": page ready", chromedp.WaitReady("body", chromedp.ByQuery))
	return res.Status
}

// open types an address into the address bar.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	return b.load("open "+path, chromedp.Navigate(b.base+path))
}

// clickTo clicks what xpath finds and waits for the page it leads to.
func (b *browser) clickTo(what, xpath string) int64 {
	b.t.Helper()
	return b.load("click "+what, chromedp.Click(xpath, chromedp.BySearch))
}

// typeInto types text into the input labelled label.
func (b *browser) typeInto(label, text string) {
	b.t.Helper()
	b.run("type into "+label, chromedp.SendKeys(inputLabelled(label), text, chromedp.BySearch))
}

// inputLabelled finds an input by its label's text, through the label's for
// attribute, as assistive technology does.
func inputLabelled(label string) string {
	return fmt.Sprintf(`//input[@id=//label[normalize-space()=%s]/@for]`, xq(label))
}

func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%s]`, xq(text)) }
func link(text string) string   { return fmt.Sprintf(`//a[normalize-space()=%s]`, xq(text)) }

// xq quotes s as an XPath string literal.
func xq(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return `'` + s + `'`
}

// at checks the page's address (path and query) and HTTP status.
func (b *browser) at(step, wantPath string, status, wantStatus int64) {
	b.t.Helper()
	var loc string
	b.run(step+": location", chromedp.Location(&loc))
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatalf("%s: %s: location %q: %v", b.name, step, loc, err)
	}
	got := u.Path
	if u.RawQuery != "" {
		got += "?" + u.RawQuery
	}
	if got != wantPath || status != wantStatus {
		b.t.Fatalf("%s: %s: at %s (status %d), want %s (status %d); page:\n%s", b.name, step, got, status, wantPath, wantStatus, b.bodyText())
	}
}

// bodyText is the visible text of the page, for failure messages.
func (b *browser) bodyText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	var s string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &s)); err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// text returns the visible text of the first element css matches, waiting
// for it to be visible.
func (b *browser) text(css string) string {
	b.t.Helper()
	var s string
	b.run("read "+css, chromedp.WaitVisible(css, chromedp.ByQuery), chromedp.Text(css, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// wantText checks that the element css matches shows want.
func (b *browser) wantText(step, css, want string) {
	b.t.Helper()
	if got := b.text(css); !strings.Contains(got, want) {
		b.t.Errorf("%s: %s: %s shows %q, want %q", b.name, step, css, got, want)
	}
}

func (b *browser) eval(step, js string, out any) {
	b.t.Helper()
	b.run(step, chromedp.Evaluate(js, out))
}

// checkLabels checks that every input a person fills in has exactly one
// non-empty label whose for attribute is the input's (unique) id, and that
// every id named in aria-describedby exists.
func (b *browser) checkLabels(page string) {
	b.t.Helper()
	var res struct {
		Inputs   int      `json:"inputs"`
		Problems []string `json:"problems"`
	}
	b.eval("check labels on "+page, `(() => {
		const problems = [], seen = new Set();
		const inputs = document.querySelectorAll('input:not([type=hidden]), select, textarea');
		for (const el of inputs) {
			const name = el.id || el.name || el.outerHTML;
			if (!el.id) { problems.push(name + ': no id'); continue; }
			if (seen.has(el.id)) problems.push(name + ': id used twice');
			seen.add(el.id);
			const labels = [...document.querySelectorAll('label')].filter(l => l.htmlFor === el.id);
			if (labels.length !== 1) problems.push(name + ': ' + labels.length + ' labels with for=' + el.id);
			else if (!labels[0].textContent.trim()) problems.push(name + ': empty label');
			if (el.labels.length !== 1) problems.push(name + ': the browser associates ' + el.labels.length + ' labels');
			for (const ref of (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean))
				if (!document.getElementById(ref)) problems.push(name + ': aria-describedby names missing #' + ref);
		}
		return {inputs: inputs.length, problems};
	})()`, &res)
	if res.Inputs == 0 {
		b.t.Errorf("%s: %s: no inputs found to check", b.name, page)
	}
	for _, p := range res.Problems {
		b.t.Errorf("%s: %s: label problem: %s", b.name, page, p)
	}
}

// checkFits checks that nothing makes the page wider than the viewport (no
// sideways scrolling on a phone).
func (b *browser) checkFits(page string) {
	b.t.Helper()
	var res struct {
		ScrollWidth int      `json:"scrollWidth"`
		Width       int      `json:"width"`
		Wide        []string `json:"wide"`
	}
	b.eval("measure "+page, `(() => {
		const w = document.documentElement.clientWidth;
		// The innermost elements that stick out of the viewport or whose
		// content sticks out of them.
		const over = [...document.querySelectorAll('body *')].filter(el => {
			const r = el.getBoundingClientRect();
			return r.width > 0 && getComputedStyle(el).position !== 'absolute' &&
				(r.right > w + 0.5 || el.scrollWidth > el.clientWidth + 1);
		});
		const wide = over.filter(el => !over.some(o => o !== el && el.contains(o))).map(el =>
			el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + el.className : '') +
			' "' + el.textContent.trim().slice(0, 40) + '"');
		return {scrollWidth: document.documentElement.scrollWidth, width: w, wide: wide.slice(0, 5)};
	})()`, &res)
	if res.ScrollWidth > res.Width || len(res.Wide) > 0 {
		b.t.Errorf("%s: %s is wider than the %dpx viewport (scrollWidth %d): %v", b.name, page, res.Width, res.ScrollWidth, res.Wide)
	}
}

// phone sets a phone-sized viewport (375x812, like an iPhone X).
func (b *browser) phone() {
	b.t.Helper()
	b.run("phone viewport", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
}

// screenshot takes a full-page PNG and keeps it in GATEHOUSE_SCREENSHOTS if set.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Fatalf("%s: screenshot %s is not a PNG (%d bytes)", b.name, name, len(png))
	}
	if dir := os.Getenv("GATEHOUSE_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot %s", p)
	}
}

// count returns how many elements css matches, without waiting.
func (b *browser) count(css string) int {
	b.t.Helper()
	var n int
	b.eval("count "+css, fmt.Sprintf(`document.querySelectorAll(%q).length`, css), &n)
	return n
}

// TestBrowserAccountJourney signs a person up, logs them out and in, changes
// their password and ends a session of theirs on another browser.
func TestBrowserAccountJourney(t *testing.T) {
	exe := chromiumPath(t)
	e := testenv.New(t)
	const (
		email = "augusta.ada.kingnoel.lovelace@analyticalengine.example.org"
		pw1   = "a patient analytical engine"
		pw2   = "weaving algebraic patterns"
	)
	a := startChromium(t, e, exe, "browser A")

	// 1. The tenant's address sends a newcomer to the login page; they
	// follow "Create an account" and sign up.
	st := a.open("/t/default")
	a.at("open /t/default", "/t/default/login", st, 200)
	a.wantText("login page", "h1", "Log in")
	a.checkLabels("login page")
	st = a.clickTo(`"Create an account"`, link("Create an account"))
	a.at("sign-up page", "/t/default/signup", st, 200)
	a.wantText("sign-up page", "h1", "Create your account")
	a.checkLabels("sign-up page")
	a.typeInto("Email address", email)
	a.typeInto("Name", "Ada Lovelace")
	a.typeInto("Password", pw1)
	st = a.clickTo(`"Create account"`, button("Create account"))
	a.at("after sign-up", "/t/default/account", st, 200)
	a.wantText("account page", "h1", "Your account")
	a.wantText("account page", "main > p", "Signed in as "+email)
	a.checkLabels("account page")
	if v := a.value(inputLabelled("Name")); v != "Ada Lovelace" {
		t.Errorf("account page: name field shows %q, want the name given at sign-up", v)
	}

	// 2. Log out with the button, see the notice, log in again.
	st = a.clickTo(`"Log out"`, button("Log out"))
	a.at("after logout", "/t/default/login?loggedout=1", st, 200)
	a.wantText("login page after logout", "p.notice[role=status]", "You have logged out.")
	a.typeInto("Email address", email)
	a.typeInto("Password", pw1)
	st = a.clickTo(`"Log in"`, button("Log in"))
	a.at("after login", "/t/default/account", st, 200)
	a.wantText("account page after login", "main > p", "Signed in as "+email)

	// 3. Change the password.
	a.typeInto("Current password", pw1)
	a.typeInto("New password", pw2)
	st = a.clickTo(`"Change password"`, button("Change password"))
	a.at("after password change", "/t/default/account?done=password", st, 200)
	a.wantText("account page after password change", "p.notice[role=status]", "Your password is changed.")

	// 4. Another browser (a separate browser context: no shared cookies, so
	// it gets the login page) logs in with the new password.
	b := a.otherPerson("browser B")
	st = b.open("/t/default/login")
	b.at("B: login page", "/t/default/login", st, 200)
	b.typeInto("Email address", email)
	b.typeInto("Password", pw2)
	st = b.clickTo(`"Log in"`, button("Log in"))
	b.at("B: after login", "/t/default/account", st, 200)
	b.wantText("B: account page", "main > p", "Signed in as "+email)

	// A reloads its account page: two sessions, one of them its own.
	st = a.load("reload account page", chromedp.Reload())
	a.at("A: reloaded account page", "/t/default/account?done=password", st, 200)
	if n := a.count("li.session"); n != 2 {
		t.Fatalf("browser A lists %d sessions, want 2:\n%s", n, a.bodyText())
	}
	if n := a.count("li.session .tag"); n != 1 {
		t.Errorf("browser A marks %d sessions as this session, want 1", n)
	}
	a.wantText("A: own session", "li.session .tag", "This session")
	if n := a.count("li.session button"); n != 1 {
		t.Fatalf("browser A shows %d End session buttons, want 1 (for the other session only)", n)
	}
	other := `//li[contains(concat(" ", @class, " "), " session ")][not(.//*[contains(concat(" ", @class, " "), " tag ")])]`
	var device string
	a.run("read the other session's device", chromedp.Text(other+"//strong", &device, chromedp.BySearch))
	if !strings.Contains(device, "Chrome") {
		t.Errorf("the other session's device is %q, want a Chrome", device)
	}
	// On a phone, with both sessions listed, the page still fits; A ends the
	// other session there.
	a.phone()
	a.checkFits("account page at 375px")
	a.screenshot("account-phone")
	st = a.clickTo(`"End session" of the other session`, other+button("End session"))
	a.at("after ending the other session", "/t/default/account?done=session", st, 200)
	a.wantText("A: session ended notice", "p.notice[role=status]", "The session is ended.")
	if n := a.count("li.session"); n != 1 {
		t.Errorf("after ending the other session browser A lists %d sessions, want 1", n)
	}

	// B's next page load finds its session ended.
	st = b.load("B: reload", chromedp.Reload())
	b.at("B: after its session was ended", "/t/default/login?ended=1", st, 200)
	b.wantText("B: login page", "p.notice[role=status]", "Your session has ended.")
}

// value returns the current value of the input xpath finds.
func (b *browser) value(xpath string) string {
	b.t.Helper()
	var v string
	b.run("read value", chromedp.Value(xpath, &v, chromedp.BySearch))
	return v
}

// TestBrowserFormsLanguageAndPhone checks, at phone width, a failed login,
// the German pages through the language switcher, and a failed sign-up's
// error wiring for assistive technology.
func TestBrowserFormsLanguageAndPhone(t *testing.T) {
	exe := chromiumPath(t)
	e := testenv.New(t)
	signup(t, e.Browser(), "grace@example.com", goodPassword) // an existing account, set up over HTTP

	c := startChromium(t, e, exe, "browser C")
	c.phone()

	// A wrong password: a form-level alert that names neither field, the
	// email kept, the password not echoed.
	st := c.open("/t/default/login")
	c.at("login page", "/t/default/login", st, 200)
	c.typeInto("Email address", "grace@example.com")
	c.typeInto("Password", "not the right password")
	st = c.clickTo(`"Log in"`, button("Log in"))
	c.at("after a wrong password", "/t/default/login", st, 401)
	c.wantText("wrong password", "main #form-error[role=alert]", "The email address or password is not correct.")
	var formLevel struct {
		BeforeForm bool `json:"beforeForm"`
		Invalid    int  `json:"invalid"`
	}
	c.eval("locate the alert", `(() => {
		const alert = document.getElementById('form-error'), form = document.querySelector('main form');
		return {
			beforeForm: !!(alert && form && (alert.compareDocumentPosition(form) & Node.DOCUMENT_POSITION_FOLLOWING)),
			invalid: document.querySelectorAll('[aria-invalid="true"]').length,
		};
	})()`, &formLevel)
	if !formLevel.BeforeForm {
		t.Errorf("the login error is not shown above its form")
	}
	if formLevel.Invalid != 0 {
		t.Errorf("a wrong password marks %d fields invalid; it must not say which one was wrong", formLevel.Invalid)
	}
	if v := c.value(inputLabelled("Email address")); v != "grace@example.com" {
		t.Errorf("after a wrong password the email field holds %q, want it kept", v)
	}
	if v := c.value(inputLabelled("Password")); v != "" {
		t.Errorf("after a wrong password the password field holds %q, want it empty", v)
	}
	c.checkLabels("login page with an error")
	c.checkFits("login page with an error at 375px")
	c.screenshot("login-error-phone")

	// German through the language switcher.
	st = c.clickTo(`"Deutsch"`, `//nav//a[normalize-space()="Deutsch"]`)
	c.at("German login page", "/t/default/login?lang=de", st, 200)
	var lang string
	c.eval("html lang", `document.documentElement.lang`, &lang)
	if lang != "de" {
		t.Errorf("German page has lang=%q", lang)
	}
	c.wantText("German login page", "h1", "Anmelden")
	c.wantText("German login page", "nav [aria-current]", "Deutsch")
	c.run("German labels and button",
		chromedp.WaitVisible(inputLabelled("E-Mail-Adresse"), chromedp.BySearch),
		chromedp.WaitVisible(inputLabelled("Passwort"), chromedp.BySearch),
		chromedp.WaitVisible(button("Anmelden"), chromedp.BySearch))
	c.checkLabels("German login page")
	c.checkFits("German login page at 375px")
	c.screenshot("login-de-phone")
	// The choice is remembered on the next page.
	st = c.clickTo(`"Konto erstellen"`, link("Konto erstellen"))
	c.at("German sign-up page", "/t/default/signup", st, 200)
	c.wantText("German sign-up page", "h1", "Konto erstellen")
	st = c.clickTo(`"English"`, `//nav//a[normalize-space()="English"]`)
	c.at("English sign-up page", "/t/default/signup?lang=en", st, 200)
	c.wantText("English sign-up page", "h1", "Create your account")
	c.checkLabels("sign-up page")
	c.checkFits("sign-up page at 375px")

	// A failed sign-up: the password field is marked invalid and described
	// by the visible error text.
	c.typeInto("Email address", "hopper@example.com")
	c.typeInto("Name", "Grace Hopper")
	c.typeInto("Password", "too short")
	st = c.clickTo(`"Create account"`, button("Create account"))
	c.at("after a failed sign-up", "/t/default/signup", st, 400)
	var wiring struct {
		Invalid     []string `json:"invalid"`
		DescribedBy []string `json:"describedBy"`
		ErrorText   string   `json:"errorText"`
		ErrorShown  bool     `json:"errorShown"`
	}
	c.eval("error wiring", `(() => {
		const pw = document.getElementById(document.evaluate('//label[normalize-space()="Password"]/@for', document, null, XPathResult.STRING_TYPE, null).stringValue);
		const ids = (pw.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
		const err = ids.map(id => document.getElementById(id)).find(el => el && el.classList.contains('error'));
		return {
			invalid: [...document.querySelectorAll('[aria-invalid="true"]')].map(el => el.id),
			describedBy: ids,
			errorText: err ? err.textContent.trim() : '',
			errorShown: !!(err && err.getClientRects().length && getComputedStyle(err).visibility !== 'hidden'),
		};
	})()`, &wiring)
	if len(wiring.Invalid) != 1 || wiring.Invalid[0] != "password" {
		t.Errorf("after a too short password, fields marked aria-invalid: %v, want just the password", wiring.Invalid)
	}
	if !strings.Contains(wiring.ErrorText, "Use at least 15 characters") || !wiring.ErrorShown {
		t.Errorf("the password's aria-describedby %v does not point at a visible error text (found %q, shown %v)", wiring.DescribedBy, wiring.ErrorText, wiring.ErrorShown)
	}
	if v := c.value(inputLabelled("Email address")); v != "hopper@example.com" {
		t.Errorf("after a failed sign-up the email field holds %q, want it kept", v)
	}
	if v := c.value(inputLabelled("Name")); v != "Grace Hopper" {
		t.Errorf("after a failed sign-up the name field holds %q, want it kept", v)
	}
	if v := c.value(inputLabelled("Password")); v != "" {
		t.Errorf("after a failed sign-up the password field holds %q, want it empty", v)
	}
	c.checkLabels("sign-up page with an error")
	c.checkFits("sign-up page with an error at 375px")
	c.screenshot("signup-error-phone")
}
