package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// DefaultCSP is the Content-Security-Policy of every response unless
// [SecurityHeaders].CSP replaces it. [SecurityHeaders] appends a script-src
// directive carrying the request's nonce (see [CSPNonce]).
const DefaultCSP = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// PermissionsPolicy turns off powerful features the hosted pages never use.
// WebAuthn (publickey-credentials-*) keeps its default, 'self'.
const PermissionsPolicy = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

// SecurityHeaders is middleware that sets the browser security headers on
// every response:
//
//   - Content-Security-Policy: CSP (default [DefaultCSP]) plus
//     "script-src 'nonce-…'" with a fresh per-request nonce ([CSPNonce]);
//   - X-Frame-Options: DENY, X-Content-Type-Options: nosniff,
//     Referrer-Policy: no-referrer (auth URLs carry codes),
//     Cross-Origin-Opener-Policy: same-origin, Permissions-Policy;
//   - Cache-Control: no-store, as a default that handlers serving cacheable
//     content (static assets, JWKS, discovery) override by setting their own;
//   - Strict-Transport-Security only when HTTPS is true.
//
// Handlers may replace any of these by setting the header themselves.
type SecurityHeaders struct {
	// HTTPS is true when the configured public URL is https; only then is
	// Strict-Transport-Security sent.
	HTTPS bool
	// CSP replaces DefaultCSP when not empty. It must not contain script-src,
	// which is added with the nonce.
	CSP string
}

// Wrap returns next with the headers set.
func (s SecurityHeaders) Wrap(next http.Handler) http.Handler {
	csp := s.CSP
	if csp == "" {
		csp = DefaultCSP
	}
	hsts := s.HTTPS
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, st := withState(r)
		st.nonce = newNonce()
		h := w.Header()
		h.Set("Content-Security-Policy", csp+"; script-src 'nonce-"+st.nonce+"'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", PermissionsPolicy)
		h.Set("Cache-Control", "no-store")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CSPNonce returns this request's CSP nonce, for <script nonce="…"> in
// templates. The Content-Security-Policy set by [SecurityHeaders] allows
// scripts carrying it and no others. It returns "" when SecurityHeaders is not
// in the chain (and then no script may run).
func CSPNonce(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.nonce
	}
	return ""
}

// AllowFormAction widens the form-action directive of the response's
// Content-Security-Policy to the origins of targets, for one response: a page
// that posts a form to a client (response_mode=form_post), or a form whose
// submission ends in a redirect to a client, which browsers also check
// against form-action. Each target is an absolute URL; http(s) URLs add their
// origin, other schemes (native apps' "com.example.app:/cb") add the scheme.
// Targets that do not parse as such are ignored. Call it before writing the
// response.
func AllowFormAction(w http.ResponseWriter, targets ...string) {
	var sources []string
	for _, t := range targets {
		if src, ok := cspSource(t); ok {
			sources = append(sources, src)
		}
	}
	h := w.Header()
	csp := h.Get("Content-Security-Policy")
	if len(sources) == 0 || csp == "" {
		return
	}
	extra := strings.Join(sources, " ")
	directives := strings.Split(csp, ";")
	found := false
	for i, d := range directives {
		name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
		if strings.EqualFold(name, "form-action") {
			directives[i] = " " + strings.Replace(strings.TrimSpace(d), " 'none'", "", 1) + " " + extra
			found = true
		}
	}
	if !found {
		directives = append(directives, " form-action 'self' "+extra)
	}
	h.Set("Content-Security-Policy", strings.TrimSpace(strings.Join(directives, ";")))
}

// cspSource returns the CSP source expression for target's origin, refusing
// anything that could smuggle a directive into the header.
func cspSource(target string) (string, bool) {
	if strings.ContainsAny(target, " \t\r\n;,'\"\\") {
		return "", false
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	switch scheme {
	case "http", "https":
	case "javascript", "data", "vbscript", "blob", "filesystem", "file":
		return "", false
	default:
		return scheme + ":", true
	}
	host := strings.ToLower(u.Host)
	if host == "" || u.User != nil {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return "", false
		}
	}
	return scheme + "://" + host, true
}
