package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// CSRF issues and checks anti-forgery tokens for browser forms.
//
// A random 256-bit value lives in a cookie (HttpOnly, SameSite=Lax, Path=/;
// "__Host-gatehouse_csrf" and Secure when Secure, "gatehouse_csrf" without
// the prefix and without Secure for plain-HTTP local use). The form token is
// base64url(HMAC-SHA256(Key, cookie value)): a page embeds it in a hidden
// "csrf_token" field (or a script sends it as X-CSRF-Token), and [CSRF.Verify]
// accepts a request only when the token matches the browser's own cookie. A
// token copied from another browser, or a request without the cookie, fails.
//
// Key must be a secret of at least 32 bytes dedicated to this use.
type CSRF struct {
	Key []byte
	// Secure selects the __Host- cookie with the Secure attribute; set it when
	// the public URL is https.
	Secure bool
	// CookieName overrides the cookie name (used as is) when not empty.
	CookieName string
}

const (
	// CSRFField is the form field that carries the token.
	CSRFField = "csrf_token"
	// CSRFHeader is the header that carries the token for scripted requests.
	CSRFHeader = "X-CSRF-Token"

	csrfValueLen = 43 // base64url of 32 bytes, unpadded
	csrfMinKey   = 32
)

// csrfMessage is what users see when a form fails the CSRF check.
const csrfMessage = "This form has expired or was opened in another browser session. Reload the page and try again."

func (c *CSRF) name() string {
	if c.CookieName != "" {
		return c.CookieName
	}
	return CookieName("gatehouse_csrf", c.Secure)
}

// Token returns the form token for this browser, setting the cookie if the
// request has none (or one this package did not issue). Calling it more than
// once while writing one response returns the same token. It panics if Key is
// shorter than 32 bytes.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	c.mustKey()
	name := c.name()
	value := pendingCookie(w, name)
	if value == "" {
		if ck, err := r.Cookie(name); err == nil && validCSRFValue(ck.Value) {
			value = ck.Value
		}
	}
	if value == "" {
		value = newCSRFValue()
		http.SetCookie(w, c.cookie(value))
	}
	return c.sign(value)
}

// Rotate issues a fresh cookie, replacing any set earlier in this response,
// and returns its form token. Call it when the user signs in, so a value
// planted before login is worthless after it.
func (c *CSRF) Rotate(w http.ResponseWriter) string {
	c.mustKey()
	removeSetCookie(w, c.name())
	value := newCSRFValue()
	http.SetCookie(w, c.cookie(value))
	return c.sign(value)
}

// Verify checks the request's token (the X-CSRF-Token header, else the
// csrf_token field of a urlencoded or multipart body, never the query string)
// against the browser's cookie, in constant time. It returns a *ciam.Error of
// Kind Forbidden and Code "csrf_failed" when they do not match or either is
// missing, or the *http.MaxBytesError met while reading the form. Verify
// parses the form, so handlers read fields from r.PostForm afterwards.
func (c *CSRF) Verify(r *http.Request) error {
	if len(c.Key) < csrfMinKey {
		return ciam.Wrap(errors.New("web: CSRF key is shorter than 32 bytes"), ciam.Internal, "internal", internalMessage)
	}
	ck, err := r.Cookie(c.name())
	if err != nil || !validCSRFValue(ck.Value) {
		return csrfFailed("csrf: no valid cookie")
	}
	token := r.Header.Get(CSRFHeader)
	if token == "" {
		if err := parseForm(r); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return err
			}
			return csrfFailed("csrf: unreadable form: " + err.Error())
		}
		token = r.PostForm.Get(CSRFField)
	}
	if token == "" {
		return csrfFailed("csrf: no token")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(c.sign(ck.Value))) != 1 {
		return csrfFailed("csrf: token does not match cookie")
	}
	return nil
}

// Protect returns h guarded by [CSRF.Verify] for every method but GET, HEAD,
// OPTIONS and TRACE.
func (c *CSRF) Protect(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		default:
			if err := c.Verify(r); err != nil {
				return err
			}
		}
		return h(w, r)
	}
}

func csrfFailed(cause string) error {
	return ciam.Wrap(errors.New(cause), ciam.Forbidden, "csrf_failed", csrfMessage)
}

func (c *CSRF) mustKey() {
	if len(c.Key) < csrfMinKey {
		panic("web: CSRF.Key must be at least 32 bytes")
	}
}

func (c *CSRF) sign(value string) string {
	mac := hmac.New(sha256.New, c.Key)
	mac.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (c *CSRF) cookie(value string) *http.Cookie {
	ck := NewCookie("gatehouse_csrf", value, c.Secure)
	ck.Name = c.name()
	return ck
}

func newCSRFValue() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validCSRFValue(v string) bool {
	if len(v) != csrfValueLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// parseForm parses a urlencoded or multipart body into r.PostForm.
func parseForm(r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		return r.ParseMultipartForm(32 << 20)
	}
	return r.ParseForm()
}

// pendingCookie returns the value of the cookie named name that w is already
// set to send, or "".
func pendingCookie(w http.ResponseWriter, name string) string {
	value := ""
	for _, line := range w.Header()["Set-Cookie"] {
		if !strings.HasPrefix(line, name+"=") {
			continue
		}
		if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == name && ck.MaxAge >= 0 {
			value = ck.Value
		}
	}
	return value
}

// removeSetCookie drops the Set-Cookie lines for name from w's header.
func removeSetCookie(w http.ResponseWriter, name string) {
	h := w.Header()
	lines := h["Set-Cookie"]
	kept := lines[:0]
	for _, line := range lines {
		if !strings.HasPrefix(line, name+"=") {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// CrossOrigin is middleware built on [http.CrossOriginProtection]: it refuses
// non-safe (not GET, HEAD or OPTIONS) cross-origin browser requests, detected
// with Sec-Fetch-Site or Origin, with 403 and code "cross_origin_request"
// through the error renderer. It complements [CSRF] tokens on the hosted
// pages; do not put it in front of OAuth endpoints that browsers call
// cross-origin (token, revocation).
func (m *Mux) CrossOrigin(h http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Error(w, r, ciam.Errorf(ciam.Forbidden, "cross_origin_request",
			"This request came from another site and was refused. Go back to the page and try again."))
	}))
	return p.Handler(h)
}
