package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// Error codes. The first group is RFC 6749 (sections 4.1.2.1 and 5.2), then
// OpenID Connect Core 1.0 section 3.1.2.6, RFC 6750 section 3.1, RFC 7009
// section 2.2.1 and RFC 7591 section 3.2.2.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidScope            = "invalid_scope"
	CodeAccessDenied            = "access_denied"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeServerError             = "server_error"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"

	CodeLoginRequired            = "login_required"
	CodeConsentRequired          = "consent_required"
	CodeInteractionRequired      = "interaction_required"
	CodeAccountSelectionRequired = "account_selection_required"
	CodeInvalidRequestURI        = "invalid_request_uri"
	CodeInvalidRequestObject     = "invalid_request_object"
	CodeRequestNotSupported      = "request_not_supported"
	CodeRequestURINotSupported   = "request_uri_not_supported"
	CodeRegistrationNotSupported = "registration_not_supported"

	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"

	CodeUnsupportedTokenType = "unsupported_token_type"

	CodeInvalidRedirectURI    = "invalid_redirect_uri"
	CodeInvalidClientMetadata = "invalid_client_metadata"
)

// genericServerError is the description sent for an error that was not
// classified as an OAuth error: the cause's text is for logs only.
const genericServerError = "The server encountered an unexpected error."

// maxDescription bounds error_description, which may quote client input.
const maxDescription = 512

// Error is an OAuth error response: RFC 6749 section 5.2 at the token,
// revocation (RFC 7009) and introspection (RFC 7662) endpoints, section
// 4.1.2.1 in a front-channel redirect, RFC 6750 section 3 at a resource.
//
// Code is the registered error code (one of the Code constants). Description
// is the human-readable error_description: meant for the client developer,
// so it must never contain secrets; it is sanitised to the characters RFC 6749
// allows when written. Status is the HTTP status; zero (or anything outside
// 400-599) means [DefaultStatus] of Code. URI is the optional error_uri, sent
// only if it is an absolute http(s) URI made of the characters RFC 6749
// allows. Cause is the underlying error: logged, unwrapped by [errors.Is] and
// [errors.As], never sent.
//
// An *Error whose status is below 500, or 503, also answers [errors.As] for a
// *ciam.Error (Kind from the status, Code, Msg = the sanitised description),
// so it renders sensibly through the house error machinery (package web) when
// it escapes an OAuth endpoint, for example from [ValidateRedirectURI] in the
// admin API. Any other 5xx *Error does not, so its cause chain decides (and
// an unclassified cause stays an internal error).
type Error struct {
	Code        string
	Description string
	Status      int
	URI         string
	Cause       error
}

// New returns an error with code, description and [DefaultStatus] of code.
func New(code, description string) *Error {
	return &Error{Code: code, Description: description, Status: DefaultStatus(code)}
}

// Constructors, one per standard code, each with its default status.

// InvalidRequest returns an invalid_request error: a required parameter is
// missing, a parameter is repeated or malformed (RFC 6749 sections 4.1.2.1,
// 5.2; RFC 6750 section 3.1). 400.
func InvalidRequest(description string) *Error { return New(CodeInvalidRequest, description) }

// InvalidClient returns an invalid_client error: client authentication failed
// (RFC 6749 section 5.2). 401; see [WriteJSON] and [WriteBasic] for when 401
// is actually sent.
func InvalidClient(description string) *Error { return New(CodeInvalidClient, description) }

// InvalidGrant returns an invalid_grant error: the grant or refresh token is
// invalid, expired, revoked, was issued to another client or does not match
// the redirect URI or PKCE verifier (RFC 6749 section 5.2). 400.
func InvalidGrant(description string) *Error { return New(CodeInvalidGrant, description) }

// UnauthorizedClient returns an unauthorized_client error: the client may not
// use this grant or response type (RFC 6749 sections 4.1.2.1, 5.2). 400.
func UnauthorizedClient(description string) *Error { return New(CodeUnauthorizedClient, description) }

// UnsupportedGrantType returns an unsupported_grant_type error: the server
// does not support the grant type (RFC 6749 section 5.2). 400.
func UnsupportedGrantType(description string) *Error {
	return New(CodeUnsupportedGrantType, description)
}

// InvalidScope returns an invalid_scope error: the scope is invalid, unknown,
// malformed or exceeds what was granted (RFC 6749 sections 4.1.2.1, 5.2). 400.
func InvalidScope(description string) *Error { return New(CodeInvalidScope, description) }

// AccessDenied returns an access_denied error: the resource owner or the
// server denied the request (RFC 6749 section 4.1.2.1). 400 when written as
// JSON; normally sent by redirect.
func AccessDenied(description string) *Error { return New(CodeAccessDenied, description) }

// UnsupportedResponseType returns an unsupported_response_type error: the
// server does not support this response_type (RFC 6749 section 4.1.2.1). 400.
func UnsupportedResponseType(description string) *Error {
	return New(CodeUnsupportedResponseType, description)
}

// ServerError returns a server_error error: an unexpected condition (RFC 6749
// sections 4.1.2.1, 5.2 as amended by OAuth 2.1). 500. The description is
// sent: keep it generic.
func ServerError(description string) *Error { return New(CodeServerError, description) }

// TemporarilyUnavailable returns a temporarily_unavailable error: overload or
// maintenance (RFC 6749 section 4.1.2.1). 503.
func TemporarilyUnavailable(description string) *Error {
	return New(CodeTemporarilyUnavailable, description)
}

// LoginRequired returns a login_required error: prompt=none but the end-user
// is not authenticated (OpenID Connect Core section 3.1.2.6). 400.
func LoginRequired(description string) *Error { return New(CodeLoginRequired, description) }

// ConsentRequired returns a consent_required error: prompt=none but consent is
// needed (OpenID Connect Core section 3.1.2.6). 400.
func ConsentRequired(description string) *Error { return New(CodeConsentRequired, description) }

// InteractionRequired returns an interaction_required error: prompt=none but
// some user interaction is needed (OpenID Connect Core section 3.1.2.6). 400.
func InteractionRequired(description string) *Error {
	return New(CodeInteractionRequired, description)
}

// AccountSelectionRequired returns an account_selection_required error:
// prompt=none but the end-user must choose an account (OpenID Connect Core
// section 3.1.2.6). 400.
func AccountSelectionRequired(description string) *Error {
	return New(CodeAccountSelectionRequired, description)
}

// InvalidRequestURI returns an invalid_request_uri error: the request_uri is
// invalid or expired (OpenID Connect Core section 3.1.2.6, RFC 9126 section
// 4). 400.
func InvalidRequestURI(description string) *Error { return New(CodeInvalidRequestURI, description) }

// InvalidRequestObject returns an invalid_request_object error: the request
// object is invalid (OpenID Connect Core section 3.1.2.6, RFC 9101 section
// 6.3). 400.
func InvalidRequestObject(description string) *Error {
	return New(CodeInvalidRequestObject, description)
}

// RequestNotSupported returns a request_not_supported error: the request
// parameter is not supported (OpenID Connect Core section 3.1.2.6). 400.
func RequestNotSupported(description string) *Error { return New(CodeRequestNotSupported, description) }

// InvalidToken returns an invalid_token error: the access token is missing,
// malformed, expired or revoked (RFC 6750 section 3.1). 401; write it with
// [WriteBearer].
func InvalidToken(description string) *Error { return New(CodeInvalidToken, description) }

// InsufficientScope returns an insufficient_scope error: the access token
// lacks the scope the resource needs (RFC 6750 section 3.1). 403; write it
// with [WriteBearer].
func InsufficientScope(description string) *Error { return New(CodeInsufficientScope, description) }

// UnsupportedTokenType returns an unsupported_token_type error: the revocation
// endpoint cannot revoke this token type (RFC 7009 section 2.2.1). 400.
func UnsupportedTokenType(description string) *Error {
	return New(CodeUnsupportedTokenType, description)
}

// DefaultStatus is the HTTP status for an error code: 401 for invalid_client
// (RFC 6749 section 5.2) and invalid_token (RFC 6750 section 3.1), 403 for
// insufficient_scope (RFC 6750 section 3.1), 500 for server_error, 503 for
// temporarily_unavailable, and 400 for every other code, known or not
// (RFC 6749 section 5.2: "400 (Bad Request) unless specified otherwise").
func DefaultStatus(code string) int {
	switch code {
	case CodeInvalidClient, CodeInvalidToken:
		return http.StatusUnauthorized
	case CodeInsufficientScope:
		return http.StatusForbidden
	case CodeServerError:
		return http.StatusInternalServerError
	case CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// knownCode reports whether code is one of the Code constants.
func knownCode(code string) bool {
	switch code {
	case CodeInvalidRequest, CodeInvalidClient, CodeInvalidGrant, CodeUnauthorizedClient,
		CodeUnsupportedGrantType, CodeInvalidScope, CodeAccessDenied, CodeUnsupportedResponseType,
		CodeServerError, CodeTemporarilyUnavailable, CodeLoginRequired, CodeConsentRequired,
		CodeInteractionRequired, CodeAccountSelectionRequired, CodeInvalidRequestURI,
		CodeInvalidRequestObject, CodeRequestNotSupported, CodeRequestURINotSupported,
		CodeRegistrationNotSupported, CodeInvalidToken, CodeInsufficientScope,
		CodeUnsupportedTokenType, CodeInvalidRedirectURI, CodeInvalidClientMetadata:
		return true
	}
	return false
}

// Error describes e for logs, cause included. It is never sent to a client.
func (e *Error) Error() string {
	if e == nil {
		return "oauth: <nil>"
	}
	s := "oauth: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Cause
}

// WithCause returns a copy of e with cause err (for logs; never sent).
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Cause = err
	return &c
}

// WithStatus returns a copy of e with HTTP status code.
func (e *Error) WithStatus(code int) *Error {
	c := *e
	c.Status = code
	return &c
}

// WithURI returns a copy of e with error_uri uri.
func (e *Error) WithURI(uri string) *Error {
	c := *e
	c.URI = uri
	return &c
}

// HTTPStatus is the status e is written with: Status if it is a 4xx or 5xx
// status, else [DefaultStatus] of Code.
func (e *Error) HTTPStatus() int {
	if e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return DefaultStatus(e.Code)
}

// As lets errors.As find a *ciam.Error in an *Error whose status is below 500
// or 503 (see [Error]). It is not meant to be called directly.
func (e *Error) As(target any) bool {
	p, ok := target.(**ciam.Error)
	if !ok || e == nil {
		return false
	}
	status := e.HTTPStatus()
	if !validCode(e.Code) || status >= 500 && status != http.StatusServiceUnavailable {
		return false
	}
	w := wire(e)
	*p = &ciam.Error{Kind: kindOf(status), Code: w.Code, Msg: w.Description, Err: e.Cause}
	return true
}

func kindOf(status int) ciam.Kind {
	switch status {
	case http.StatusUnauthorized:
		return ciam.Unauthenticated
	case http.StatusForbidden:
		return ciam.Forbidden
	case http.StatusNotFound:
		return ciam.NotFound
	case http.StatusConflict:
		return ciam.Conflict
	case http.StatusRequestEntityTooLarge:
		return ciam.TooLarge
	case http.StatusTooManyRequests:
		return ciam.TooManyRequests
	case http.StatusServiceUnavailable:
		return ciam.Unavailable
	default:
		return ciam.Invalid
	}
}

// As returns the error a client may see for err, or nil if err is nil:
//
//   - the first *Error in err's chain, as is;
//   - else, for an *http.MaxBytesError (a body over the middleware's limit),
//     invalid_request with status 413;
//   - else, for a *ciam.Error (which is classified and safe to show): its Code
//     if that is a known OAuth code other than server_error, else by Kind:
//     Invalid is invalid_request, TooLarge invalid_request with 413,
//     TooManyRequests temporarily_unavailable with 429, Unavailable
//     temporarily_unavailable with 503; the description is its Msg. The other
//     kinds (Unauthenticated, Forbidden, NotFound, Conflict, Internal) have no
//     OAuth meaning independent of the endpoint, so they become server_error:
//     endpoints must translate them (to invalid_client, invalid_grant, ...);
//   - else server_error with a generic description: the cause's text is never
//     sent.
//
// Except for the first case, the result is new and its Cause is err.
func As(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok && e != nil {
		return e
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &Error{Code: CodeInvalidRequest, Description: "The request body is too large.", Status: http.StatusRequestEntityTooLarge, Cause: err}
	}
	if ce := ciam.As(err); ce != nil {
		if knownCode(ce.Code) && ce.Code != CodeServerError {
			return &Error{Code: ce.Code, Description: ce.Msg, Status: DefaultStatus(ce.Code), Cause: err}
		}
		switch ce.Kind {
		case ciam.Invalid:
			return &Error{Code: CodeInvalidRequest, Description: ce.Msg, Status: http.StatusBadRequest, Cause: err}
		case ciam.TooLarge:
			return &Error{Code: CodeInvalidRequest, Description: ce.Msg, Status: http.StatusRequestEntityTooLarge, Cause: err}
		case ciam.TooManyRequests:
			return &Error{Code: CodeTemporarilyUnavailable, Description: ce.Msg, Status: http.StatusTooManyRequests, Cause: err}
		case ciam.Unavailable:
			return &Error{Code: CodeTemporarilyUnavailable, Description: ce.Msg, Status: http.StatusServiceUnavailable, Cause: err}
		}
	}
	return &Error{Code: CodeServerError, Description: genericServerError, Status: http.StatusInternalServerError, Cause: err}
}

// wireError is what is sent: the JSON body of RFC 6749 section 5.2.
type wireError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
	status      int
}

// wire sanitises e for sending. A nil e, or one whose code is not a
// well-formed code, becomes a generic server_error.
func wire(e *Error) wireError {
	if e == nil || !validCode(e.Code) {
		return wireError{Code: CodeServerError, Description: genericServerError, status: http.StatusInternalServerError}
	}
	return wireError{
		Code:        e.Code,
		Description: sanitizeText(e.Description, maxDescription),
		URI:         sanitizeErrorURI(e.URI),
		status:      e.HTTPStatus(),
	}
}

// validCode reports whether code is a well-formed error code. RFC 6749
// section 5.2 allows %x20-21 / %x23-5B / %x5D-7E; we are stricter and accept
// only what registered codes look like: 1-64 of [a-z0-9_].
func validCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// allowedText reports whether c may appear in error_description, a realm or
// any quoted-string we send: RFC 6749 section 5.2's %x20-21 / %x23-5B /
// %x5D-7E (printable ASCII without '"' and '\'), which needs no escaping in
// JSON or in an RFC 9110 quoted-string.
func allowedText(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

// sanitizeText makes s sendable (see allowedText): a double quote becomes an
// apostrophe, a backslash becomes a slash, control characters become spaces,
// every other rune outside printable ASCII (and every invalid UTF-8 byte)
// becomes '?'; runs of spaces collapse, ends are trimmed, and the result is
// cut to max bytes (ending in "..." when cut).
func sanitizeText(s string, max int) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		var c byte
		switch {
		case r == '"':
			c = '\''
		case r == '\\':
			c = '/'
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == ' ':
			c = ' '
		case r > 0x7f:
			c = '?'
		default:
			c = byte(r)
		}
		if c == ' ' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	out := b.String()
	if len(out) > max {
		out = strings.TrimRight(out[:max-3], " ") + "..."
	}
	return out
}

// sanitizeErrorURI returns uri if it may be sent as error_uri: an absolute
// http or https URI with a host, at most 2000 bytes, made only of the
// characters RFC 6749 section 5.2 allows (%x21 / %x23-5B / %x5D-7E); else "".
func sanitizeErrorURI(uri string) string {
	if uri == "" || len(uri) > MaxRedirectURILength {
		return ""
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c == ' ' || !allowedText(c) {
			return ""
		}
	}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	return uri
}

// WriteJSON writes err as an RFC 6749 section 5.2 error response: a JSON
// object with "error", "error_description" (sanitised, omitted when empty) and
// "error_uri" (omitted unless valid), Content-Type application/json,
// Cache-Control: no-store and Pragma: no-cache (RFC 6749 section 5.1). err is
// turned into an *Error by [As], so an unclassified error is sent as a generic
// server_error; a nil err is treated the same way (it is a bug to call
// WriteJSON without an error). A 429 or 503 whose cause chain holds a
// *ciam.Error with RetryAfter gets a Retry-After header.
//
// 401 needs a challenge (RFC 9110 section 15.5.2), and RFC 6749 section 5.2
// sends invalid_client as 401 only when the client tried HTTP
// authentication, with a WWW-Authenticate header. So if the status is 401 and
// the caller has not already set WWW-Authenticate, WriteJSON sends 400
// instead (RFC 6749's default). Use [WriteBasic] after a failed HTTP Basic
// authentication, and [WriteBearer] at a resource.
func WriteJSON(w http.ResponseWriter, err error) {
	e := As(err)
	we := wire(e)
	if we.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		we.status = http.StatusBadRequest
	}
	writeJSON(w, e, we)
}

// WriteBasic writes err like [WriteJSON] and, when its status is 401, with
// the challenge WWW-Authenticate: Basic realm="<realm>" that RFC 6749 section
// 5.2 requires when the client authenticated (or tried to) with the
// Authorization header. Use it for invalid_client whenever
// [ParseClientAuth] reported [AuthMethodClientSecretBasic] or failed on the
// Authorization header; it may also be used for any client-authentication
// failure, which then gets 401 too. realm is sanitised like a description.
func WriteBasic(w http.ResponseWriter, realm string, err error) {
	e := As(err)
	we := wire(e)
	if we.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+sanitizeText(realm, 256)+`"`)
	}
	writeJSON(w, e, we)
}

func writeJSON(w http.ResponseWriter, e *Error, we wireError) {
	body, _ := json.Marshal(we) // cannot fail: three strings
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if we.status == http.StatusTooManyRequests || we.status == http.StatusServiceUnavailable {
		if e != nil {
			if ce := ciam.As(e.Cause); ce != nil && ce.RetryAfter > 0 {
				h.Set("Retry-After", strconv.Itoa(ce.RetryAfter))
			}
		}
	}
	w.WriteHeader(we.status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteBearer writes an error at a resource that accepts bearer tokens (the
// UserInfo endpoint, any protected API), per RFC 6750 section 3:
//
//   - err == nil means the request carried no token: 401 with a bare
//     WWW-Authenticate: Bearer realm="<realm>" and no error information
//     (RFC 6750 section 3.1: "SHOULD NOT include an error code");
//   - invalid_request (400), invalid_token (401) and insufficient_scope (403)
//     get WWW-Authenticate: Bearer realm="…", error="…",
//     error_description="…" (and error_uri="…") plus the same JSON body as
//     [WriteJSON];
//   - any other error is written by [WriteJSON] without a challenge (a
//     server_error is not a bearer-token problem).
//
// realm is sanitised and omitted when empty. Values are sanitised to
// characters that need no escaping in a quoted-string. The optional "scope"
// attribute of insufficient_scope is not sent.
func WriteBearer(w http.ResponseWriter, realm string, err error) {
	realm = sanitizeText(realm, 256)
	h := w.Header()
	if err == nil {
		if realm == "" {
			h.Set("WWW-Authenticate", "Bearer")
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		}
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	e := As(err)
	we := wire(e)
	switch we.Code {
	case CodeInvalidRequest, CodeInvalidToken, CodeInsufficientScope:
	default:
		WriteJSON(w, err)
		return
	}
	var params []string
	if realm != "" {
		params = append(params, `realm="`+realm+`"`)
	}
	params = append(params, `error="`+we.Code+`"`)
	if we.Description != "" {
		params = append(params, `error_description="`+we.Description+`"`)
	}
	if we.URI != "" {
		params = append(params, `error_uri="`+we.URI+`"`)
	}
	h.Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	writeJSON(w, e, we)
}

// RedirectParams returns the parameters of a front-channel error response
// (RFC 6749 section 4.1.2.1): error, error_description (sanitised, when not
// empty), error_uri (when valid), state (when not empty, exactly as the client
// sent it) and iss (when not empty; RFC 9207 section 2, which Gatehouse always
// sends). err is resolved by [As] like for [WriteJSON].
//
// The caller encodes them into the query (or fragment, or form_post) of the
// redirect URI, and must only do so once the client and its redirect URI are
// verified: an invalid client_id or redirect_uri is shown to the user, never
// redirected (RFC 9700 section 4.11, RFC 6749 section 4.1.2.1). Codes meant
// for the back channel (invalid_client, invalid_grant, ...) are passed
// through unchanged; not sending them here is the caller's job.
func RedirectParams(err error, state, iss string) url.Values {
	we := wire(As(err))
	v := url.Values{"error": {we.Code}}
	if we.Description != "" {
		v.Set("error_description", we.Description)
	}
	if we.URI != "" {
		v.Set("error_uri", we.URI)
	}
	if state != "" {
		v.Set("state", state)
	}
	if iss != "" {
		v.Set("iss", iss)
	}
	return v
}
