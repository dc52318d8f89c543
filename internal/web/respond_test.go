package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := JSON(rec, http.StatusCreated, map[string]any{"id": "u1", "n": 2}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != `{"id":"u1","n":2}`+"\n" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}

	// An unencodable value writes nothing, so the error can still be rendered.
	m := NewMux(nil)
	m.Handle("GET /bad", func(w http.ResponseWriter, r *http.Request) error {
		return JSON(w, http.StatusOK, map[string]any{"f": func() {}})
	})
	rec = httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/bad", nil))
	if rec.Code != 500 || decodeError(t, rec).Code != "internal" {
		t.Errorf("got %d %q, want a rendered 500", rec.Code, rec.Body.String())
	}
}

func TestRedirectAllowed(t *testing.T) {
	const origin = "https://id.example.com"
	tests := []struct {
		target, allowed string
		want            bool
	}{
		{"/t/acme/account", origin, true},
		{"/t/acme/authorize?client_id=x&state=y", origin, true},
		{"/", "", true},
		{"/a/../b", "", true},
		{"https://id.example.com/t/acme/login", origin, true},
		{"https://ID.example.com:443/x", origin, true},
		{"https://id.example.com", "https://id.example.com/", true},
		{"http://localhost:8080/x", "http://localhost:8080", true},
		{"", origin, false},
		{"//evil.example/x", origin, false},
		{"/\\evil.example", origin, false},
		{"/x\\y", origin, false},
		{"\\\\evil.example", origin, false},
		{"/\t/evil.example", origin, false},
		{"/\n/evil.example", origin, false},
		{" /x", origin, false},
		{"relative/path", origin, false},
		{"../x", origin, false},
		{"?next=/x", origin, false},
		{"https://evil.example/x", origin, false},
		{"https://id.example.com.evil.example/", origin, false},
		{"https://id.example.com@evil.example/", origin, false},
		{"https://user@id.example.com/", origin, false},
		{"http://id.example.com/x", origin, false},
		{"https://id.example.com:8443/x", origin, false},
		{"https://id.example.com/x", "", false},
		{"javascript:alert(1)", origin, false},
		{"javascript://id.example.com/%0aalert(1)", origin, false},
		{"data:text/html,x", origin, false},
		{"https:/id.example.com/x", origin, false},
		{"https:id.example.com", origin, false},
	}
	for _, tc := range tests {
		if got := RedirectAllowed(tc.target, tc.allowed); got != tc.want {
			t.Errorf("RedirectAllowed(%q, %q) = %v, want %v", tc.target, tc.allowed, got, tc.want)
		}
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		name, target string
		code         int
		wantStatus   int
		wantLocation string
		wantErr      string // ciam code, or "any"
	}{
		{"relative", "/t/acme/account", http.StatusSeeOther, 303, "/t/acme/account", ""},
		{"allowed origin", "https://id.example.com/x", http.StatusFound, 302, "https://id.example.com/x", ""},
		{"open redirect refused", "https://evil.example/", http.StatusFound, 200, "", "unsafe_redirect"},
		{"scheme-relative refused", "//evil.example/", http.StatusFound, 200, "", "unsafe_redirect"},
		{"not a redirect status", "/x", http.StatusOK, 200, "", "any"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := Redirect(rec, httptest.NewRequest("POST", "/login", nil), tc.target, tc.code, "https://id.example.com")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Redirect = %v", err)
			case tc.wantErr == "any" && err == nil:
				t.Fatal("Redirect = nil, want an error")
			case tc.wantErr != "" && tc.wantErr != "any":
				if e := ciam.As(err); e == nil || e.Code != tc.wantErr || e.Kind != ciam.Invalid {
					t.Fatalf("Redirect = %v, want Invalid %s", err, tc.wantErr)
				}
			}
			if rec.Code != tc.wantStatus || rec.Header().Get("Location") != tc.wantLocation {
				t.Errorf("got %d Location %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.wantStatus, tc.wantLocation)
			}
		})
	}
}

func TestCookies(t *testing.T) {
	tests := []struct {
		name       string
		secure     bool
		maxAge     time.Duration
		wantName   string
		wantMaxAge int
	}{
		{"secure session cookie", true, 0, "__Host-gatehouse_session", 0},
		{"plain http", false, 0, "gatehouse_session", 0},
		{"lasting", true, 30 * 24 * time.Hour, "__Host-gatehouse_session", 30 * 24 * 3600},
		{"sub-second rounds up", true, time.Millisecond, "__Host-gatehouse_session", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			SetCookie(rec, "gatehouse_session", "v1", tc.secure, tc.maxAge)
			cks := rec.Result().Cookies()
			if len(cks) != 1 {
				t.Fatalf("%d cookies", len(cks))
			}
			ck := cks[0]
			if ck.Name != tc.wantName || ck.Value != "v1" || ck.Secure != tc.secure || !ck.HttpOnly ||
				ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge != tc.wantMaxAge {
				t.Errorf("cookie = %+v", ck)
			}

			rec = httptest.NewRecorder()
			ClearCookie(rec, "gatehouse_session", tc.secure)
			cks = rec.Result().Cookies()
			if len(cks) != 1 || cks[0].Name != tc.wantName || cks[0].MaxAge >= 0 || cks[0].Path != "/" {
				t.Errorf("cleared cookie = %+v", cks)
			}
		})
	}
}
