package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name     string
		sh       SecurityHeaders
		wantHSTS string
		wantCSP  string // prefix before the nonce
	}{
		{"plain http", SecurityHeaders{}, "", DefaultCSP},
		{"https", SecurityHeaders{HTTPS: true}, "max-age=31536000", DefaultCSP},
		{"custom csp", SecurityHeaders{CSP: "default-src 'none'; connect-src 'self'"}, "", "default-src 'none'; connect-src 'self'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nonce string
			h := tc.sh.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nonce = CSPNonce(r.Context())
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			want := map[string]string{
				"Content-Security-Policy":    tc.wantCSP + "; script-src 'nonce-" + nonce + "'",
				"X-Frame-Options":            "DENY",
				"X-Content-Type-Options":     "nosniff",
				"Referrer-Policy":            "no-referrer",
				"Cross-Origin-Opener-Policy": "same-origin",
				"Permissions-Policy":         PermissionsPolicy,
				"Cache-Control":              "no-store",
				"Strict-Transport-Security":  tc.wantHSTS,
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if len(nonce) != 22 {
				t.Errorf("nonce = %q, want 22 base64url characters", nonce)
			}
		})
	}
}

func TestSecurityHeadersOverridable(t *testing.T) {
	h := SecurityHeaders{}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/app.css", nil))
	if got := rec.Header().Get("Cache-Control"); got != "public, max-age=3600" {
		t.Errorf("Cache-Control = %q, want the handler's own", got)
	}
}

func TestCSPNonceFreshPerRequest(t *testing.T) {
	seen := map[string]bool{}
	h := SecurityHeaders{}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := CSPNonce(r.Context())
		if seen[n] {
			t.Fatalf("nonce %q reused", n)
		}
		seen[n] = true
	}))
	for range 100 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if got := CSPNonce(httptest.NewRequest("GET", "/", nil).Context()); got != "" {
		t.Errorf("CSPNonce without the middleware = %q, want empty", got)
	}
}

func TestAllowFormAction(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		want    string // the form-action directive
	}{
		{"https origin", []string{"https://App.example.com/cb?x=1"}, "form-action 'self' https://app.example.com"},
		{"with port", []string{"http://localhost:3000/cb"}, "form-action 'self' http://localhost:3000"},
		{"native app scheme", []string{"com.example.app:/oauth2redirect"}, "form-action 'self' com.example.app:"},
		{"two", []string{"https://a.example", "https://b.example/x"}, "form-action 'self' https://a.example https://b.example"},
		{"directive injection", []string{"https://a.example; script-src *"}, "form-action 'self'"},
		{"quote injection", []string{"https://a.example/'unsafe-inline'"}, "form-action 'self'"},
		{"javascript", []string{"javascript:alert(1)"}, "form-action 'self'"},
		{"data", []string{"data:text/html,hi"}, "form-action 'self'"},
		{"wildcard host", []string{"https://*.example.com/"}, "form-action 'self'"},
		{"relative", []string{"/cb"}, "form-action 'self'"},
		{"userinfo", []string{"https://u:p@a.example/"}, "form-action 'self'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := SecurityHeaders{}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				AllowFormAction(w, tc.targets...)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			csp := rec.Header().Get("Content-Security-Policy")
			var got []string
			for _, d := range strings.Split(csp, ";") {
				if d = strings.TrimSpace(d); strings.HasPrefix(d, "form-action") {
					got = append(got, d)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("form-action directives = %q, want [%q] (CSP %q)", got, tc.want, csp)
			}
			if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP %q lost other directives", csp)
			}
		})
	}
}

func TestAllowFormActionAddsMissingDirective(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Security-Policy", "default-src 'none'")
	AllowFormAction(rec, "https://a.example/cb")
	if got := rec.Header().Get("Content-Security-Policy"); got != "default-src 'none'; form-action 'self' https://a.example" {
		t.Errorf("CSP = %q", got)
	}
}
