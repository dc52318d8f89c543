package oauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Client authentication methods, as named in the token_endpoint_auth_method
// client metadata (RFC 7591 section 2) and in
// token_endpoint_auth_methods_supported (RFC 8414).
const (
	AuthMethodClientSecretBasic = "client_secret_basic" // RFC 6749 section 2.3.1, HTTP Basic
	AuthMethodClientSecretPost  = "client_secret_post"  // RFC 6749 section 2.3.1, in the body
	AuthMethodPrivateKeyJWT     = "private_key_jwt"     // RFC 7523 section 2.2, OIDC Core section 9
	AuthMethodNone              = "none"                // public client: client_id only
)

// AssertionTypeJWTBearer is the only client_assertion_type accepted (RFC 7523
// section 2.2).
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Length limits on parsed credentials, in bytes. Gatehouse's own client ids
// and secrets are far shorter; the limits keep oversized values out of
// lookups and logs.
const (
	MaxClientIDLength     = 255
	MaxClientSecretLength = 1024
)

// ClientCredentials is what a request at a back-channel endpoint (token,
// revocation, introspection, pushed authorization) says about its client.
// Nothing in it is verified: the caller looks the client up by ID, checks
// that Method is the client's registered token_endpoint_auth_method, and
// then verifies Secret (constant time, against the stored hash) or Assertion
// (signature with the client's keys, alg allow-list without "none" or HMAC,
// iss = sub = client id, aud, exp, and jti replay: RFC 7523 section 3,
// security.md 2.4).
//
// Method is one of the AuthMethod constants. With AuthMethodPrivateKeyJWT,
// ID is the body's client_id, which is optional (RFC 7521 section 4.2): when
// it is empty the client is identified by the assertion's sub, and when it
// is not the caller must check that it equals that sub.
//
// The String, GoString and LogValue methods redact Secret and Assertion, so
// credentials printed or logged by mistake do not leak.
type ClientCredentials struct {
	ID        string
	Secret    string
	Method    string
	Assertion string
}

// String describes c without its secret or assertion.
func (c ClientCredentials) String() string {
	return fmt.Sprintf("client_id=%q method=%s", c.ID, c.Method)
}

// GoString describes c without its secret or assertion (for %#v).
func (c ClientCredentials) GoString() string {
	return fmt.Sprintf("oauth.ClientCredentials{ID: %q, Method: %q, Secret: <redacted>, Assertion: <redacted>}", c.ID, c.Method)
}

// LogValue logs c without its secret or assertion.
func (c ClientCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", c.ID), slog.String("method", c.Method))
}

// isCredentialParam reports whether name is a parameter that carries client
// credentials.
func isCredentialParam(name string) bool {
	switch name {
	case "client_id", "client_secret", "client_assertion", "client_assertion_type":
		return true
	}
	return false
}

// ParseClientAuth reads the client credentials of a back-channel request
// (RFC 6749 section 2.3, RFC 7521 section 4.2, RFC 7523 section 2.2) and
// parses the form body as a side effect, so r.PostForm is ready for the
// caller (read parameters with [Param]).
//
// Protocol misuse is invalid_request (400); malformed or unusable
// credentials are invalid_client (401 by default; write with [WriteBasic]).
// In order:
//
//   - the method must be POST (RFC 6749 section 3.2);
//   - there must be one Content-Type, application/x-www-form-urlencoded,
//     with no charset or charset UTF-8 (RFC 6749 section 3.2, appendix B);
//     the body is parsed only then, with r.ParseForm, whose reads are bounded
//     by the body-limit middleware (an *http.MaxBytesError becomes
//     invalid_request with status 413);
//   - the query must parse, and must not carry client_id, client_secret,
//     client_assertion or client_assertion_type: credentials in URLs end up
//     in logs and histories, and only the body counts (RFC 6749 section
//     2.3.1: "MUST NOT be included in the request URI");
//   - each credential parameter appears in the body at most once (RFC 6749
//     section 3.2); an empty one counts as absent (section 3.1);
//   - at most one Authorization header; if there is one, it must be
//     "Basic" (case-insensitive) SP base64(form-urlencoded(id) ":"
//     form-urlencoded(secret)) with standard, padded base64 (RFC 7617
//     section 2, RFC 6749 section 2.3.1), a non-empty id and secret;
//     anything else (Bearer, DPoP, malformed) is invalid_client;
//   - the client may use one method only (RFC 6749 section 2.3): Basic with
//     client_secret or a client_assertion in the body, or client_secret with
//     a client_assertion, is invalid_request; a body client_id next to Basic
//     must equal the Basic one;
//   - a client_assertion needs client_assertion_type and vice versa
//     (invalid_request); the type must be [AssertionTypeJWTBearer] and the
//     assertion a JWS compact serialisation with three non-empty base64url
//     parts: an unsigned JWT ("header.payload.") or a JWE is invalid_client
//     before any key is looked up (security.md 2.4);
//   - client_secret needs client_id (invalid_request); client_id alone is
//     [AuthMethodNone];
//   - ids and secrets must be VSCHAR (%x20-7E, RFC 6749 appendix A.1, A.2)
//     and at most [MaxClientIDLength] / [MaxClientSecretLength] bytes
//     (invalid_client);
//   - no credentials at all is invalid_client.
//
// Error descriptions never contain a secret or an assertion.
func ParseClientAuth(r *http.Request) (ClientCredentials, error) {
	var none ClientCredentials
	if r.Method != http.MethodPost {
		return none, InvalidRequest("The request must use POST (RFC 6749 section 3.2).")
	}
	if err := checkFormContentType(r.Header); err != nil {
		return none, err
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return none, InvalidRequest("The query string is malformed.").WithCause(err)
		}
		for k := range q {
			if isCredentialParam(k) {
				return none, InvalidRequest("Client credentials must be sent in the request body, not in the URL (RFC 6749 section 2.3.1).")
			}
		}
	}
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return none, InvalidRequest("The request body is too large.").WithStatus(http.StatusRequestEntityTooLarge).WithCause(err)
		}
		return none, InvalidRequest("The request body is not valid application/x-www-form-urlencoded.").WithCause(err)
	}

	form := r.PostForm
	id, err := Param(form, "client_id")
	if err != nil {
		return none, err
	}
	secret, err := Param(form, "client_secret")
	if err != nil {
		return none, err
	}
	assertionType, err := Param(form, "client_assertion_type")
	if err != nil {
		return none, err
	}
	assertion, err := Param(form, "client_assertion")
	if err != nil {
		return none, err
	}
	hasAssertion := assertionType != "" || assertion != ""

	switch authz := r.Header.Values("Authorization"); len(authz) {
	case 0:
	case 1:
		basicID, basicSecret, err := parseBasic(authz[0])
		if err != nil {
			return none, err
		}
		if secret != "" || hasAssertion {
			return none, tooManyMethods()
		}
		if id != "" && id != basicID {
			return none, InvalidRequest("The client_id in the body differs from the one in the Authorization header.")
		}
		return ClientCredentials{ID: basicID, Secret: basicSecret, Method: AuthMethodClientSecretBasic}, nil
	default:
		return none, InvalidClient("The request has more than one Authorization header.")
	}

	if id != "" {
		if err := checkCredential("client_id", id, MaxClientIDLength); err != nil {
			return none, err
		}
	}
	switch {
	case hasAssertion:
		if secret != "" {
			return none, tooManyMethods()
		}
		if assertionType == "" {
			return none, InvalidRequest("client_assertion_type is required with client_assertion (RFC 7521 section 4.2).")
		}
		if assertion == "" {
			return none, InvalidRequest("client_assertion is required with client_assertion_type (RFC 7521 section 4.2).")
		}
		if assertionType != AssertionTypeJWTBearer {
			return none, InvalidClient("client_assertion_type must be " + AssertionTypeJWTBearer + " (RFC 7523 section 2.2).")
		}
		if !jwsCompact(assertion) {
			return none, InvalidClient("client_assertion must be a signed JWT in JWS compact serialization (RFC 7523 section 3); unsigned and encrypted assertions are not accepted.")
		}
		return ClientCredentials{ID: id, Method: AuthMethodPrivateKeyJWT, Assertion: assertion}, nil
	case secret != "":
		if id == "" {
			return none, InvalidRequest("client_secret requires client_id (RFC 6749 section 2.3.1).")
		}
		if err := checkCredential("client_secret", secret, MaxClientSecretLength); err != nil {
			return none, err
		}
		return ClientCredentials{ID: id, Secret: secret, Method: AuthMethodClientSecretPost}, nil
	case id != "":
		return ClientCredentials{ID: id, Method: AuthMethodNone}, nil
	}
	return none, InvalidClient("Client authentication is missing: send HTTP Basic credentials, client_id with client_secret, a client_assertion, or client_id alone for a public client.")
}

func tooManyMethods() *Error {
	return InvalidRequest("The request uses more than one client authentication method; use exactly one (RFC 6749 section 2.3).")
}

// checkFormContentType requires exactly one Content-Type header of
// application/x-www-form-urlencoded, optionally with charset UTF-8.
func checkFormContentType(h http.Header) error {
	const msg = "The request body must be application/x-www-form-urlencoded in UTF-8 (RFC 6749 section 3.2)."
	cts := h.Values("Content-Type")
	if len(cts) != 1 {
		return InvalidRequest(msg)
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return InvalidRequest(msg)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return InvalidRequest(msg)
	}
	return nil
}

// parseBasic parses an Authorization header value carrying HTTP Basic
// client credentials (RFC 7617 section 2, RFC 6749 section 2.3.1).
func parseBasic(h string) (id, secret string, err error) {
	scheme, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", InvalidClient("The Authorization header must use the Basic scheme to authenticate the client (RFC 6749 section 2.3.1).")
	}
	cred = strings.TrimLeft(cred, " ")
	if cred == "" {
		return "", "", InvalidClient("The Basic credentials are missing.")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(cred)
	if err != nil {
		return "", "", InvalidClient("The Basic credentials are not valid base64 (RFC 7617 section 2).")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", InvalidClient("The Basic credentials must be client_id:client_secret (RFC 7617 section 2).")
	}
	if id, err = url.QueryUnescape(user); err != nil {
		return "", "", InvalidClient("The client_id in the Basic credentials is not form-urlencoded correctly (RFC 6749 section 2.3.1).")
	}
	if secret, err = url.QueryUnescape(pass); err != nil {
		return "", "", InvalidClient("The client secret in the Basic credentials is not form-urlencoded correctly (RFC 6749 section 2.3.1).")
	}
	if id == "" {
		return "", "", InvalidClient("The client_id in the Basic credentials is empty.")
	}
	if secret == "" {
		return "", "", InvalidClient("The client secret in the Basic credentials is empty; a public client sends only client_id, in the body.")
	}
	if err := checkCredential("client_id", id, MaxClientIDLength); err != nil {
		return "", "", err
	}
	if err := checkCredential("client_secret", secret, MaxClientSecretLength); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// checkCredential checks that v is VSCHAR (RFC 6749 appendix A) and short
// enough. The description names the parameter, never the value.
func checkCredential(name, v string, max int) error {
	if len(v) > max {
		return InvalidClient(fmt.Sprintf("%s is too long.", name))
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return InvalidClient(fmt.Sprintf("%s may contain only printable ASCII characters (RFC 6749 appendix A).", name))
		}
	}
	return nil
}

// jwsCompact reports whether s looks like a JWS in compact serialization:
// three non-empty base64url parts (RFC 7515 section 7.1). This is only a
// shape check; the verifier parses and verifies it.
func jwsCompact(s string) bool {
	parts := 0
	partLen := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if partLen == 0 {
				return false
			}
			parts++
			partLen = 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			partLen++
		default:
			return false
		}
	}
	return parts == 2 && partLen > 0
}

// Param returns the value of parameter name in form (usually r.PostForm
// after [ParseClientAuth], or r.Form at the authorization endpoint). A
// parameter sent without a value is treated as omitted and returns "" (RFC
// 6749 section 3.1); a parameter sent more than once is invalid_request (RFC
// 6749 sections 3.1 and 3.2: "MUST NOT be included more than once"), which
// defeats parameter-pollution tricks where two components read different
// copies.
func Param(form url.Values, name string) (string, error) {
	vs := form[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", InvalidRequest("The parameter " + name + " is repeated (RFC 6749 section 3.1).")
	}
}
