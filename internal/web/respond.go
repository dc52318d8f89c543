package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// JSON writes v as a JSON response with status. v is encoded before anything
// is written, so an encoding error (returned, wrapped) leaves the response
// untouched for the error renderer. A write error is returned as is.
func JSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("web: encode json response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// Redirect redirects to target with code (a 3xx status) if target is safe
// (see [RedirectAllowed]); otherwise it writes nothing and returns a
// *ciam.Error of Kind Invalid and Code "unsafe_redirect". allowedOrigin is
// the one origin ("https://id.example.com") absolute targets may have; ""
// allows relative paths only.
func Redirect(w http.ResponseWriter, r *http.Request, target string, code int, allowedOrigin string) error {
	if code < 300 || code > 399 {
		return fmt.Errorf("web: redirect with status %d", code)
	}
	if !RedirectAllowed(target, allowedOrigin) {
		return ciam.Errorf(ciam.Invalid, "unsafe_redirect", "The address to continue to is not allowed.")
	}
	http.Redirect(w, r, target, code)
	return nil
}

// RedirectAllowed reports whether target is safe to redirect to: a relative
// path that starts with exactly one "/" (not "//", not "/\"), or an absolute
// http(s) URL without user info whose origin equals allowedOrigin. Targets
// with backslashes, control characters or spaces are refused everywhere,
// since browsers rewrite them into other URLs.
func RedirectAllowed(target, allowedOrigin string) bool {
	if target == "" {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	if target[0] == '/' {
		if len(target) > 1 && target[1] == '/' {
			return false
		}
		u, err := url.Parse(target)
		return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
	}
	if allowedOrigin == "" {
		return false
	}
	want, ok := origin(allowedOrigin)
	if !ok {
		return false
	}
	got, ok := origin(target)
	return ok && got == want
}

// origin returns the serialized origin of an absolute http(s) URL, with the
// scheme and host in lower case and the default port dropped.
func origin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	switch {
	case scheme == "https" && port == "443", scheme == "http" && port == "80":
		port = ""
	case scheme != "https" && scheme != "http":
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// CookieName returns name with the "__Host-" prefix when secure. Browsers
// accept a __Host- cookie only with Secure, Path=/ and no Domain, which pins
// it to this exact host.
func CookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// NewCookie returns a cookie with the house attributes: named by
// [CookieName], Path=/, HttpOnly, SameSite=Lax, Secure when secure, no Domain,
// and no expiry (a browser-session cookie; set MaxAge for a longer life).
func NewCookie(name, value string, secure bool) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName(name, secure),
		Value:    value,
		Path:     "/",
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// SetCookie sets a cookie made by [NewCookie] that lives for maxAge (0: until
// the browser session ends).
func SetCookie(w http.ResponseWriter, name, value string, secure bool, maxAge time.Duration) {
	ck := NewCookie(name, value, secure)
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
		if ck.MaxAge == 0 {
			ck.MaxAge = 1
		}
	}
	http.SetCookie(w, ck)
}

// ClearCookie tells the browser to delete the cookie set by [SetCookie] with
// the same name and secure.
func ClearCookie(w http.ResponseWriter, name string, secure bool) {
	ck := NewCookie(name, "", secure)
	ck.MaxAge = -1
	http.SetCookie(w, ck)
}
