// Package testenv starts a whole Gatehouse for tests: server.New over a real
// SQLite store in a temporary directory (or PostgreSQL in a fresh schema),
// served by httptest, with a controllable clock and browser-like clients.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"github.com/redis/go-redis/v9"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	_ "github.com/jackc/pgx/v5/stdlib" // for dropping test schemas
)

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Env is a running test server.
type Env struct {
	T      testing.TB
	Server *server.Server
	Store  store.Store
	HTTP   *httptest.Server
	URL    string
	Clock  *Clock
}

// Options adjust a test environment.
type Options struct {
	Store store.Store           // default: SQLite in t.TempDir()
	Mail  mail.Config           // default: no SMTP (mail kept locally)
	KEK   []byte                // default: a random key; two servers over one store share one
	Redis redis.UniversalClient // default: none (failed-login counters in memory)
	// Localhost serves the environment as http://localhost:PORT instead of
	// http://127.0.0.1:PORT (the listener is the same): passkeys need a
	// public URL whose host is a domain name, not an IP address.
	Localhost bool
}

// New starts a Gatehouse on SQLite in a temporary directory.
func New(t testing.TB) *Env { return NewWith(t, Options{}) }

// NewWith starts a Gatehouse with options.
func NewWith(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	st := o.Store
	if st == nil {
		var err error
		st, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "gatehouse.db")})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
	}
	t.Cleanup(func() { st.Close() })
	if o.KEK == nil {
		o.KEK = kek()
	}
	clock := NewClock(time.Now().UTC())
	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	t.Cleanup(hs.Close)
	pub, _ := url.Parse(hs.URL)
	if o.Localhost {
		pub.Host = "localhost:" + pub.Port()
	}
	srv, err := server.New(ctx, server.Config{
		PublicURL: pub, Now: clock.Now, Version: "test", KEK: o.KEK, Mail: o.Mail, Redis: o.Redis,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs.Config.Handler = srv.Handler()
	return &Env{T: t, Server: srv, Store: st, HTTP: hs, URL: pub.String(), Clock: clock}
}

// PostgresDSN returns the DSN of the test PostgreSQL server, or skips the
// test with a notice when GATEHOUSE_TEST_POSTGRES is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("set GATEHOUSE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run this test on PostgreSQL")
	}
	return dsn
}

// Postgres opens a store in a fresh schema of the test PostgreSQL server,
// dropped when the test ends; it skips the test when none is configured.
func Postgres(t testing.TB) store.Store {
	t.Helper()
	dsn := PostgresDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "testenv_" + hex.EncodeToString(b[:])
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		if db, err := sql.Open("pgx", dsn); err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	return st
}

// Browser is an HTTP client with its own cookie jar that does not follow
// redirects, so tests see every step.
type Browser struct {
	env    *Env
	Client *http.Client
	Jar    *cookiejar.Jar
	UA     string
}

// Browser returns a new client with an empty cookie jar.
func (e *Env) Browser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{env: e, Jar: jar, UA: "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36", Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// Response is a read response.
type Response struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
}

func (b *Browser) do(req *http.Request) *Response {
	b.env.T.Helper()
	req.Header.Set("User-Agent", b.UA)
	res, err := b.Client.Do(req)
	if err != nil {
		b.env.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &Response{Status: res.StatusCode, Header: res.Header, Body: string(body), Location: res.Header.Get("Location")}
}

// Get fetches path.
func (b *Browser) Get(path string) *Response {
	b.env.T.Helper()
	req, _ := http.NewRequest("GET", b.env.URL+path, nil)
	return b.do(req)
}

// Post submits a form to path as is.
func (b *Browser) Post(path string, form url.Values) *Response {
	b.env.T.Helper()
	req, _ := http.NewRequest("POST", b.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.env.URL)
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// CSRF returns the CSRF token from a page's form.
func CSRF(body string) string {
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// Submit loads the page at formPath, then posts form to action with the
// page's CSRF token, as a browser would.
func (b *Browser) Submit(formPath, action string, form url.Values) *Response {
	b.env.T.Helper()
	page := b.Get(formPath)
	if page.Status != http.StatusOK {
		b.env.T.Fatalf("GET %s: status %d", formPath, page.Status)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", CSRF(page.Body))
	return b.Post(action, form)
}

func kek() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// Chromium returns the path of the Chromium the browser tests drive:
// GATEHOUSE_CHROMIUM, /usr/bin/chromium, or chromium, chromium-browser or
// google-chrome in PATH. Without one the test is skipped with a notice; a
// GATEHOUSE_CHROMIUM that is not an executable fails it.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GATEHOUSE_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("GATEHOUSE_CHROMIUM=%q is not an executable: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("NOTICE: browser test skipped: no Chromium found. Install it (Debian/Ubuntu: apt-get install chromium) or set GATEHOUSE_CHROMIUM to the browser's path.")
	return ""
}

// DeliverOutbox runs the outbox worker until no message is due at the
// clock's time, and returns how many delivery attempts it made.
func (e *Env) DeliverOutbox() int {
	e.T.Helper()
	total := 0
	for {
		n, err := e.Server.Outbox.RunOnce(context.Background())
		if err != nil {
			e.T.Fatalf("outbox: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}
