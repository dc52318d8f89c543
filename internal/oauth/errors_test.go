package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestConstructors(t *testing.T) {
	tests := []struct {
		new    func(string) *Error
		code   string
		status int
	}{
		{InvalidRequest, "invalid_request", 400},
		{InvalidClient, "invalid_client", 401},
		{InvalidGrant, "invalid_grant", 400},
		{UnauthorizedClient, "unauthorized_client", 400},
		{UnsupportedGrantType, "unsupported_grant_type", 400},
		{InvalidScope, "invalid_scope", 400},
		{AccessDenied, "access_denied", 400},
		{UnsupportedResponseType, "unsupported_response_type", 400},
		{ServerError, "server_error", 500},
		{TemporarilyUnavailable, "temporarily_unavailable", 503},
		{LoginRequired, "login_required", 400},
		{ConsentRequired, "consent_required", 400},
		{InteractionRequired, "interaction_required", 400},
		{AccountSelectionRequired, "account_selection_required", 400},
		{InvalidRequestURI, "invalid_request_uri", 400},
		{InvalidRequestObject, "invalid_request_object", 400},
		{RequestNotSupported, "request_not_supported", 400},
		{InvalidToken, "invalid_token", 401},
		{InsufficientScope, "insufficient_scope", 403},
		{UnsupportedTokenType, "unsupported_token_type", 400},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			e := tc.new("some description")
			if e.Code != tc.code || e.Status != tc.status || e.Description != "some description" || e.URI != "" || e.Cause != nil {
				t.Errorf("got %+v, want code %s status %d", e, tc.code, tc.status)
			}
			if !knownCode(e.Code) || !validCode(e.Code) {
				t.Errorf("code %q not known or not valid", e.Code)
			}
			if got := DefaultStatus(tc.code); got != tc.status {
				t.Errorf("DefaultStatus(%q) = %d, want %d", tc.code, got, tc.status)
			}
		})
	}
	for _, code := range []string{"", "unknown_code", CodeInvalidRedirectURI, CodeRequestURINotSupported} {
		if got := DefaultStatus(code); got != 400 {
			t.Errorf("DefaultStatus(%q) = %d, want 400", code, got)
		}
	}
}

func TestErrorMethods(t *testing.T) {
	cause := errors.New("db: connection refused")
	e := InvalidGrant("code expired")
	c := e.WithCause(cause).WithStatus(409).WithURI("https://docs.example/e")
	if e.Cause != nil || e.Status != 400 || e.URI != "" {
		t.Errorf("With* mutated the original: %+v", e)
	}
	if c.Cause != cause || c.Status != 409 || c.URI != "https://docs.example/e" {
		t.Errorf("With* result = %+v", c)
	}
	if !errors.Is(c, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got, want := c.Error(), "oauth: invalid_grant: code expired: db: connection refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		status, want int
	}{{0, 400}, {200, 400}, {302, 400}, {399, 400}, {400, 400}, {405, 405}, {599, 599}, {600, 400}} {
		if got := (&Error{Code: CodeInvalidRequest, Status: tc.status}).HTTPStatus(); got != tc.want {
			t.Errorf("HTTPStatus with Status %d = %d, want %d", tc.status, got, tc.want)
		}
	}
}

func TestAs(t *testing.T) {
	grant := InvalidGrant("expired")
	tests := []struct {
		name     string
		err      error
		code     string
		status   int
		desc     string
		sameAsIn bool // the result is the *Error found in the chain
	}{
		{"nil", nil, "", 0, "", false},
		{"typed nil", (*Error)(nil), "server_error", 500, genericServerError, false},
		{"oauth error", grant, "invalid_grant", 400, "expired", true},
		{"wrapped", fmt.Errorf("token: %w", grant), "invalid_grant", 400, "expired", true},
		{"joined", errors.Join(errors.New("x"), grant), "invalid_grant", 400, "expired", true},
		{"plain error never leaks", errors.New("pq: password authentication failed for user admin"), "server_error", 500, genericServerError, false},
		{"max bytes", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), "invalid_request", 413, "The request body is too large.", false},
		{"ciam invalid", ciam.Errorf(ciam.Invalid, "bad_thing", "Fix the thing."), "invalid_request", 400, "Fix the thing.", false},
		{"ciam with oauth code", ciam.Errorf(ciam.Invalid, "invalid_scope", "Unknown scope."), "invalid_scope", 400, "Unknown scope.", false},
		{"ciam with server_error code", ciam.Errorf(ciam.Invalid, "server_error", "x"), "invalid_request", 400, "x", false},
		{"ciam too large", ciam.Errorf(ciam.TooLarge, "body_too_large", "Too big."), "invalid_request", 413, "Too big.", false},
		{"ciam throttled", ciam.Errorf(ciam.TooManyRequests, "throttled", "Slow down."), "temporarily_unavailable", 429, "Slow down.", false},
		{"ciam unavailable", ciam.Errorf(ciam.Unavailable, "db_down", "Try later."), "temporarily_unavailable", 503, "Try later.", false},
		{"ciam not found", ciam.Errorf(ciam.NotFound, "no_client", "No such client."), "server_error", 500, genericServerError, false},
		{"ciam internal", ciam.Wrap(errors.New("secret detail"), ciam.Internal, "internal", "x"), "server_error", 500, genericServerError, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := As(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("As(nil) = %+v", got)
				}
				return
			}
			if got.Code != tc.code || got.HTTPStatus() != tc.status || got.Description != tc.desc {
				t.Errorf("As = %+v, want %s %d %q", got, tc.code, tc.status, tc.desc)
			}
			if tc.sameAsIn && got != grant {
				t.Error("As did not return the *Error in the chain")
			}
			if !tc.sameAsIn && got.Cause != tc.err {
				t.Error("As did not keep the original error as the cause")
			}
		})
	}
}

func TestErrorAsCiam(t *testing.T) {
	inner := ciam.Errorf(ciam.Unavailable, "db_down", "Database down.")
	tests := []struct {
		name string
		err  error
		kind ciam.Kind
		code string
		msg  string
		ok   bool
	}{
		{"invalid_redirect_uri", badRedirect("is empty."), ciam.Invalid, "invalid_redirect_uri", "The redirect URI is empty.", true},
		{"invalid_client", InvalidClient("Bad \"secret\"\n"), ciam.Unauthenticated, "invalid_client", "Bad 'secret'", true},
		{"insufficient_scope", InsufficientScope("x"), ciam.Forbidden, "insufficient_scope", "x", true},
		{"413", InvalidRequest("big").WithStatus(413), ciam.TooLarge, "invalid_request", "big", true},
		{"temporarily_unavailable", TemporarilyUnavailable("later"), ciam.Unavailable, "temporarily_unavailable", "later", true},
		{"server_error is not shown", ServerError("x"), 0, "", "", false},
		{"server_error defers to its cause", ServerError("x").WithCause(inner), ciam.Unavailable, "db_down", "Database down.", true},
		{"bad code", &Error{Code: "Bad Code", Status: 400}, 0, "", "", false},
		{"typed nil", (*Error)(nil), 0, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ce := ciam.As(fmt.Errorf("wrapped: %w", tc.err))
			if !tc.ok {
				if ce != nil {
					t.Fatalf("ciam.As = %+v, want nil", ce)
				}
				return
			}
			if ce == nil {
				t.Fatal("ciam.As = nil")
			}
			if ce.Kind != tc.kind || ce.Code != tc.code || ce.Msg != tc.msg {
				t.Errorf("ciam.As = %+v, want %v %s %q", ce, tc.kind, tc.code, tc.msg)
			}
		})
	}
}

type jsonBody struct {
	Error       string  `json:"error"`
	Description *string `json:"error_description"`
	URI         *string `json:"error_uri"`
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) jsonBody {
	t.Helper()
	var b jsonBody
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return b
}

func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func TestWriteJSON(t *testing.T) {
	long := strings.Repeat("a", 600)
	tests := []struct {
		name       string
		err        error
		preset     string // WWW-Authenticate set by the caller
		status     int
		code       string
		desc       string // "<absent>" when omitted
		uri        string
		retryAfter string
	}{
		{"invalid_request", InvalidRequest("grant_type is missing."), "", 400, "invalid_request", "grant_type is missing.", "<absent>", ""},
		{"empty description omitted", InvalidRequest(""), "", 400, "invalid_request", "<absent>", "<absent>", ""},
		{"invalid_client without challenge is 400", InvalidClient("Unknown client."), "", 400, "invalid_client", "Unknown client.", "<absent>", ""},
		{"invalid_client with caller's challenge is 401", InvalidClient("x"), `DPoP algs="ES256"`, 401, "invalid_client", "x", "<absent>", ""},
		{"invalid_token without challenge is 400", InvalidToken("x"), "", 400, "invalid_token", "x", "<absent>", ""},
		{"insufficient_scope 403", InsufficientScope("x"), "", 403, "insufficient_scope", "x", "<absent>", ""},
		{"server_error 500", ServerError("Try again."), "", 500, "server_error", "Try again.", "<absent>", ""},
		{"temporarily_unavailable 503", TemporarilyUnavailable("Busy."), "", 503, "temporarily_unavailable", "Busy.", "<absent>", ""},
		{"status override", UnsupportedGrantType("x").WithStatus(405), "", 405, "unsupported_grant_type", "x", "<absent>", ""},
		{"description sanitised", InvalidScope("scope \"a\\b\"\n\tnot\x00 allowed: caf\u00e9 \xff\u2028"), "", 400, "invalid_scope", "scope 'a/b' not allowed: caf? ??", "<absent>", ""},
		{"description truncated", InvalidRequest(long), "", 400, "invalid_request", long[:509] + "...", "<absent>", ""},
		{"description only spaces", InvalidRequest(" \n\t "), "", 400, "invalid_request", "<absent>", "<absent>", ""},
		{"valid error_uri", InvalidGrant("x").WithURI("https://docs.example.com/errors#grant"), "", 400, "invalid_grant", "x", "https://docs.example.com/errors#grant", ""},
		{"javascript error_uri dropped", InvalidGrant("x").WithURI("javascript:alert(1)"), "", 400, "invalid_grant", "x", "<absent>", ""},
		{"relative error_uri dropped", InvalidGrant("x").WithURI("/errors"), "", 400, "invalid_grant", "x", "<absent>", ""},
		{"error_uri with quote dropped", InvalidGrant("x").WithURI(`https://a.example/"x`), "", 400, "invalid_grant", "x", "<absent>", ""},
		{"error_uri with space dropped", InvalidGrant("x").WithURI("https://a.example/ x"), "", 400, "invalid_grant", "x", "<absent>", ""},
		{"error_uri with userinfo dropped", InvalidGrant("x").WithURI("https://u@a.example/"), "", 400, "invalid_grant", "x", "<absent>", ""},
		{"plain error is generic", errors.New("sql: secret=hunter2"), "", 500, "server_error", genericServerError, "<absent>", ""},
		{"nil is generic", nil, "", 500, "server_error", genericServerError, "<absent>", ""},
		{"typed nil is generic", (*Error)(nil), "", 500, "server_error", genericServerError, "<absent>", ""},
		{"malformed code is generic", &Error{Code: "bad\"code", Description: "x"}, "", 500, "server_error", genericServerError, "<absent>", ""},
		{"max bytes", &http.MaxBytesError{Limit: 1}, "", 413, "invalid_request", "The request body is too large.", "<absent>", ""},
		{"throttled with Retry-After", &ciam.Error{Kind: ciam.TooManyRequests, Code: "throttled", Msg: "Slow down.", RetryAfter: 30}, "", 429, "temporarily_unavailable", "Slow down.", "<absent>", "30"},
		{"unavailable with Retry-After", TemporarilyUnavailable("x").WithCause(&ciam.Error{Kind: ciam.Unavailable, RetryAfter: 5}), "", 503, "temporarily_unavailable", "x", "<absent>", "5"},
		{"no Retry-After on 400", InvalidRequest("x").WithCause(&ciam.Error{Kind: ciam.Invalid, RetryAfter: 5}), "", 400, "invalid_request", "x", "<absent>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tc.preset != "" {
				rec.Header().Set("WWW-Authenticate", tc.preset)
			}
			WriteJSON(rec, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			h := rec.Header()
			if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
				t.Errorf("headers = %v", h)
			}
			if got := h.Get("WWW-Authenticate"); got != tc.preset {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.preset)
			}
			if got := h.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			raw := rec.Body.String()
			b := decodeBody(t, rec)
			if b.Error != tc.code || str(b.Description) != tc.desc || str(b.URI) != tc.uri {
				t.Errorf("body = %s, want %s %q %q", raw, tc.code, tc.desc, tc.uri)
			}
			if strings.Contains(raw, "hunter2") {
				t.Error("the cause leaked into the body")
			}
			checkAllowed(t, "error_description", str(b.Description))
		})
	}
}

// checkAllowed fails unless s uses only RFC 6749's %x20-21 / %x23-5B / %x5D-7E.
func checkAllowed(t *testing.T, what, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if !allowedText(s[i]) {
			t.Errorf("%s %q has disallowed byte %#x", what, s, s[i])
			return
		}
	}
}

func TestWriteBasic(t *testing.T) {
	tests := []struct {
		name   string
		realm  string
		err    error
		status int
		header string
	}{
		{"invalid_client", "gatehouse", InvalidClient("Wrong secret."), 401, `Basic realm="gatehouse"`},
		{"realm sanitised", "a\"b\\c\r\nSet-Cookie: x", InvalidClient("x"), 401, `Basic realm="a'b/c Set-Cookie: x"`},
		{"empty realm", "", InvalidClient("x"), 401, `Basic realm=""`},
		{"invalid_request gets no challenge", "gatehouse", InvalidRequest("x"), 400, ""},
		{"server_error gets no challenge", "gatehouse", errors.New("boom"), 500, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteBasic(rec, tc.realm, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.header {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.header)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
			decodeBody(t, rec)
		})
	}
}

func TestWriteBearer(t *testing.T) {
	tests := []struct {
		name   string
		realm  string
		err    error
		status int
		header string
		body   string // error code in the body, "" for no body
	}{
		{"no token", "api", nil, 401, `Bearer realm="api"`, ""},
		{"no token no realm", "", nil, 401, `Bearer`, ""},
		{"invalid_token", "api", InvalidToken("The access token expired."), 401,
			`Bearer realm="api", error="invalid_token", error_description="The access token expired."`, "invalid_token"},
		{"insufficient_scope", "api", InsufficientScope("Needs scope admin."), 403,
			`Bearer realm="api", error="insufficient_scope", error_description="Needs scope admin."`, "insufficient_scope"},
		{"invalid_request", "api", InvalidRequest("Two tokens sent."), 400,
			`Bearer realm="api", error="invalid_request", error_description="Two tokens sent."`, "invalid_request"},
		{"no realm", "", InvalidToken("x"), 401, `Bearer error="invalid_token", error_description="x"`, "invalid_token"},
		{"no description", "api", InvalidToken(""), 401, `Bearer realm="api", error="invalid_token"`, "invalid_token"},
		{"with error_uri", "api", InvalidToken("x").WithURI("https://docs.example/t"), 401,
			`Bearer realm="api", error="invalid_token", error_description="x", error_uri="https://docs.example/t"`, "invalid_token"},
		{"quoted-string injection", "a\"pi", InvalidToken(`x", error="insufficient_scope`), 401,
			`Bearer realm="a'pi", error="invalid_token", error_description="x', error='insufficient_scope"`, "invalid_token"},
		{"wrapped", "api", fmt.Errorf("userinfo: %w", InvalidToken("x")), 401, `Bearer realm="api", error="invalid_token", error_description="x"`, "invalid_token"},
		{"server_error has no challenge", "api", errors.New("boom"), 500, "", "server_error"},
		{"unavailable has no challenge", "api", TemporarilyUnavailable("x"), 503, "", "temporarily_unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteBearer(rec, tc.realm, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.header {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.header)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
			if tc.body == "" {
				if rec.Body.Len() != 0 {
					t.Errorf("body = %q, want none", rec.Body.String())
				}
				return
			}
			if b := decodeBody(t, rec); b.Error != tc.body {
				t.Errorf("body error = %q, want %q", b.Error, tc.body)
			}
		})
	}
}

func TestRedirectParams(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		state string
		iss   string
		want  url.Values
	}{
		{"full", AccessDenied("The user said no."), "xyz", "https://id.example.com",
			url.Values{"error": {"access_denied"}, "error_description": {"The user said no."}, "state": {"xyz"}, "iss": {"https://id.example.com"}}},
		{"no state", LoginRequired("Sign in first."), "", "https://id.example.com",
			url.Values{"error": {"login_required"}, "error_description": {"Sign in first."}, "iss": {"https://id.example.com"}}},
		{"state kept verbatim", InvalidScope(""), "a b&c=d\"", "https://id.example.com",
			url.Values{"error": {"invalid_scope"}, "state": {"a b&c=d\""}, "iss": {"https://id.example.com"}}},
		{"error_uri", InvalidRequest("x").WithURI("https://docs.example/e"), "s", "i",
			url.Values{"error": {"invalid_request"}, "error_description": {"x"}, "error_uri": {"https://docs.example/e"}, "state": {"s"}, "iss": {"i"}}},
		{"plain error", errors.New("secret"), "s", "i",
			url.Values{"error": {"server_error"}, "error_description": {genericServerError}, "state": {"s"}, "iss": {"i"}}},
		{"sanitised", InvalidRequest("bad\nline"), "", "",
			url.Values{"error": {"invalid_request"}, "error_description": {"bad line"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedirectParams(tc.err, tc.state, tc.iss); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RedirectParams = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSanitizeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text.", "plain text."},
		{"  lead and trail  ", "lead and trail"},
		{"a\r\nb", "a b"},
		{"a\x7fb", "a b"},
		{"a\u0085b", "a b"},
		{`say "hi" \o/`, "say 'hi' /o/"},
		{"naïve ☃", "na?ve ?"},
		{"\xff\xfe", "??"},
	}
	for _, tc := range tests {
		if got := sanitizeText(tc.in, maxDescription); got != tc.want {
			t.Errorf("sanitizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
