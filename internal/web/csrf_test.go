package web

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// browser is one cookie jar's worth of CSRF state: the cookie and its token.
type browser struct {
	cookie *http.Cookie
	token  string
}

func newBrowser(t *testing.T, c *CSRF) browser {
	t.Helper()
	rec := httptest.NewRecorder()
	token := c.Token(rec, httptest.NewRequest("GET", "/login", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Token set %d cookies, want 1", len(cookies))
	}
	return browser{cookie: cookies[0], token: token}
}

func TestCSRFCookieAttributes(t *testing.T) {
	tests := []struct {
		name       string
		c          CSRF
		wantName   string
		wantSecure bool
	}{
		{"secure", CSRF{Key: testKey, Secure: true}, "__Host-gatehouse_csrf", true},
		{"plain http quick start", CSRF{Key: testKey}, "gatehouse_csrf", false},
		{"custom name", CSRF{Key: testKey, Secure: true, CookieName: "__Host-x"}, "__Host-x", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, &tc.c)
			ck := b.cookie
			if ck.Name != tc.wantName || ck.Secure != tc.wantSecure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode ||
				ck.Path != "/" || ck.Domain != "" || len(ck.Value) != 43 {
				t.Errorf("cookie = %+v, want %s, Secure=%v, HttpOnly, Lax, Path=/, no Domain, 256-bit value", ck, tc.wantName, tc.wantSecure)
			}
			if len(b.token) != 43 {
				t.Errorf("token %q is not a base64url HMAC-SHA256", b.token)
			}
		})
	}
}

func TestCSRFTokenStable(t *testing.T) {
	c := &CSRF{Key: testKey}
	b := newBrowser(t, c)

	// A later page in the same browser reuses the cookie and sets nothing.
	req := httptest.NewRequest("GET", "/login", nil)
	req.AddCookie(b.cookie)
	rec := httptest.NewRecorder()
	if got := c.Token(rec, req); got != b.token {
		t.Errorf("token = %q, want %q", got, b.token)
	}
	if got := rec.Header().Get("Set-Cookie"); got != "" {
		t.Errorf("Set-Cookie = %q, want none", got)
	}

	// Twice in one response without a cookie: one cookie, one token.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/login", nil)
	t1, t2 := c.Token(rec, req), c.Token(rec, req)
	if t1 != t2 || len(rec.Result().Cookies()) != 1 {
		t.Errorf("tokens %q %q and %d cookies, want one of each", t1, t2, len(rec.Result().Cookies()))
	}

	// A cookie this package did not issue is replaced.
	req = httptest.NewRequest("GET", "/login", nil)
	req.AddCookie(&http.Cookie{Name: "gatehouse_csrf", Value: "attacker-chosen"})
	rec = httptest.NewRecorder()
	c.Token(rec, req)
	if cks := rec.Result().Cookies(); len(cks) != 1 || cks[0].Value == "attacker-chosen" {
		t.Errorf("cookies = %+v, want a fresh one", cks)
	}
}

func TestCSRFVerify(t *testing.T) {
	c := &CSRF{Key: testKey, Secure: true}
	mine, other := newBrowser(t, c), newBrowser(t, c)
	otherKey := &CSRF{Key: bytes.Repeat([]byte{8}, 32), Secure: true}

	form := func(token string) *http.Request {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"csrf_token": {token}, "email": {"a@b.c"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		cookie *http.Cookie
		c      *CSRF
		ok     bool
	}{
		{"form token", func() *http.Request { return form(mine.token) }, mine.cookie, c, true},
		{"header token", func() *http.Request {
			r := httptest.NewRequest("POST", "/api", strings.NewReader("{}"))
			r.Header.Set("X-CSRF-Token", mine.token)
			return r
		}, mine.cookie, c, true},
		{"multipart token", func() *http.Request {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("csrf_token", mine.token)
			mw.Close()
			r := httptest.NewRequest("POST", "/upload", &buf)
			r.Header.Set("Content-Type", mw.FormDataContentType())
			return r
		}, mine.cookie, c, true},
		{"missing token", func() *http.Request { return form("") }, mine.cookie, c, false},
		{"missing cookie", func() *http.Request { return form(mine.token) }, nil, c, false},
		{"token from another session", func() *http.Request { return form(other.token) }, mine.cookie, c, false},
		{"cookie and token of another session", func() *http.Request { return form(mine.token) }, other.cookie, c, false},
		{"token in the query string only", func() *http.Request {
			r := httptest.NewRequest("POST", "/login?csrf_token="+url.QueryEscape(mine.token), strings.NewReader("email=a"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, mine.cookie, c, false},
		{"token made with another key", func() *http.Request { return form(mine.token) }, mine.cookie, otherKey, false},
		{"truncated token", func() *http.Request { return form(mine.token[:20]) }, mine.cookie, c, false},
		{"cookie value as token", func() *http.Request { return form(mine.cookie.Value) }, mine.cookie, c, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			if tc.cookie != nil {
				r.AddCookie(tc.cookie)
			}
			err := tc.c.Verify(r)
			if tc.ok {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			e := ciam.As(err)
			if e == nil || e.Kind != ciam.Forbidden || e.Code != "csrf_failed" || !strings.Contains(e.Msg, "Reload the page and try again") {
				t.Errorf("Verify = %v, want Forbidden csrf_failed asking to reload", err)
			}
		})
	}
}

// A forged request gets 403 and the handler never runs.
func TestCSRFProtect(t *testing.T) {
	c := &CSRF{Key: testKey}
	mine, other := newBrowser(t, c), newBrowser(t, c)
	changes := 0
	m := NewMux(nil)
	m.Handle("POST /t/{tenant}/account/email", c.Protect(func(w http.ResponseWriter, r *http.Request) error {
		changes++
		if r.PostForm.Get("email") == "" {
			t.Error("form not parsed for the handler")
		}
		return JSON(w, http.StatusOK, "changed")
	}))
	m.Handle("GET /t/{tenant}/account", c.Protect(func(w http.ResponseWriter, r *http.Request) error {
		return JSON(w, http.StatusOK, "page")
	}))
	tests := []struct {
		name       string
		method     string
		token      string
		wantStatus int
		wantChange int
	}{
		{"missing token", "POST", "", 403, 0},
		{"token from another session", "POST", other.token, 403, 0},
		{"valid token", "POST", mine.token, 200, 1},
		{"safe method needs no token", "GET", "", 200, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changes = 0
			path := "/t/acme/account/email"
			if tc.method == "GET" {
				path = "/t/acme/account"
			}
			body := url.Values{"email": {"new@example.com"}}
			if tc.token != "" {
				body.Set("csrf_token", tc.token)
			}
			r := httptest.NewRequest(tc.method, path, strings.NewReader(body.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(mine.cookie)
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus || changes != tc.wantChange {
				t.Errorf("status %d, %d changes; want %d, %d", rec.Code, changes, tc.wantStatus, tc.wantChange)
			}
			if tc.wantStatus == 403 && decodeError(t, rec).Code != "csrf_failed" {
				t.Errorf("body = %s, want code csrf_failed", rec.Body.String())
			}
		})
	}
}

func TestCSRFVerifyBodyTooLarge(t *testing.T) {
	c := &CSRF{Key: testKey}
	mine := newBrowser(t, c)
	m := NewMux(nil)
	m.Handle("POST /f", c.Protect(func(w http.ResponseWriter, r *http.Request) error { return nil }))
	r := httptest.NewRequest("POST", "/f", strings.NewReader("csrf_token="+strings.Repeat("x", 200)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(mine.cookie)
	rec := httptest.NewRecorder()
	Chain(m, m.BodyLimit(100)).ServeHTTP(rec, r)
	if rec.Code != 413 {
		t.Errorf("status = %d, want 413", rec.Code)
	}
}

func TestCSRFRotate(t *testing.T) {
	c := &CSRF{Key: testKey, Secure: true}
	old := newBrowser(t, c)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", nil)
	req.AddCookie(old.cookie)
	c.Token(rec, req) // a token was already used while rendering
	fresh := c.Rotate(rec)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value == old.cookie.Value || cookies[0].Name != "__Host-gatehouse_csrf" {
		t.Fatalf("cookies after Rotate = %+v, want exactly one fresh cookie", cookies)
	}
	if fresh == old.token {
		t.Error("Rotate returned the old token")
	}
	// The new pair verifies; the old token does not go with the new cookie.
	for _, tc := range []struct {
		token string
		ok    bool
	}{{fresh, true}, {old.token, false}} {
		r := httptest.NewRequest("POST", "/x", nil)
		r.Header.Set(CSRFHeader, tc.token)
		r.AddCookie(cookies[0])
		if err := c.Verify(r); (err == nil) != tc.ok {
			t.Errorf("Verify(token ok=%v) = %v", tc.ok, err)
		}
	}
	// Token after Rotate in the same response returns the rotated token.
	if got := c.Token(rec, httptest.NewRequest("GET", "/", nil)); got != fresh {
		t.Errorf("Token after Rotate = %q, want %q", got, fresh)
	}
}

func TestCSRFShortKey(t *testing.T) {
	c := &CSRF{Key: []byte("short")}
	if e := ciam.As(c.Verify(httptest.NewRequest("POST", "/", nil))); e == nil || e.Kind != ciam.Internal {
		t.Errorf("Verify with a short key = %v, want an internal error", e)
	}
	defer func() {
		if recover() == nil {
			t.Error("Token with a short key did not panic")
		}
	}()
	c.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestCrossOrigin(t *testing.T) {
	m := NewMux(nil)
	changes := 0
	m.Handle("POST /t/{tenant}/login", func(w http.ResponseWriter, r *http.Request) error {
		changes++
		return nil
	})
	h := m.CrossOrigin(m)
	tests := []struct {
		name       string
		method     string
		headers    map[string]string
		wantStatus int
	}{
		{"same origin", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"cross site", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross origin by Origin header", "POST", map[string]string{"Origin": "https://evil.example"}, 403},
		{"non-browser client", "POST", nil, 200},
		{"safe method cross site", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changes = 0
			r := httptest.NewRequest(tc.method, "http://id.example/t/acme/login", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantStatus == 403 {
				if changes != 0 || decodeError(t, rec).Code != "cross_origin_request" {
					t.Errorf("changes %d, body %s; want 0 and cross_origin_request", changes, rec.Body.String())
				}
			}
		})
	}
}
