package oauth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const form = "application/x-www-form-urlencoded"

// basic builds an Authorization header value the way RFC 6749 section
// 2.3.1 says: form-urlencode, then base64.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// rawBasic base64-encodes s as is.
func rawBasic(s string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(s))
}

// authRequest describes a request to the token endpoint.
type authRequest struct {
	method       string   // default POST
	contentTypes []string // default one form content type; []string{} for none
	authz        []string
	query        string
	body         string
	limit        int64 // body limit (MaxBytesReader) when > 0
}

func (a authRequest) build() *http.Request {
	method := a.method
	if method == "" {
		method = http.MethodPost
	}
	r := &http.Request{
		Method: method,
		URL:    &url.URL{Path: "/token", RawQuery: a.query},
		Header: http.Header{},
		Body:   io.NopCloser(strings.NewReader(a.body)),
	}
	r.ContentLength = int64(len(a.body))
	if a.limit > 0 {
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, a.limit)
	}
	cts := a.contentTypes
	if cts == nil {
		cts = []string{form}
	}
	for _, ct := range cts {
		r.Header.Add("Content-Type", ct)
	}
	for _, h := range a.authz {
		r.Header.Add("Authorization", h)
	}
	return r
}

const (
	jws    = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjMSJ9.c2ln"
	jwtTyp = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
)

// clientAuthCases seed the ParseClientAuth fuzzer too. The marker "s3cret"
// is in every secret and assertion so that tests can check it never leaks
// into an error description.
var clientAuthCases = []struct {
	name   string
	req    authRequest
	want   ClientCredentials
	code   string // expected error code, "" for success
	status int    // expected error status when not the code's default
}{
	// HTTP Basic (RFC 6749 section 2.3.1).
	{name: "basic", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: "grant_type=client_credentials"},
		want: ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodClientSecretBasic}},
	{name: "basic form-urlencoded", req: authRequest{authz: []string{basic("client 1:x", "s3cret+%/:é")}},
		code: CodeInvalidClient}, // é is not VSCHAR
	{name: "basic form-urlencoded VSCHAR", req: authRequest{authz: []string{basic("client 1:x", "s3cret+%/: ~")}},
		want: ClientCredentials{ID: "client 1:x", Secret: "s3cret+%/: ~", Method: AuthMethodClientSecretBasic}},
	{name: "basic unencoded plus is a space", req: authRequest{authz: []string{rawBasic("c1:s3cret+x")}},
		want: ClientCredentials{ID: "c1", Secret: "s3cret x", Method: AuthMethodClientSecretBasic}},
	{name: "basic colon in secret", req: authRequest{authz: []string{rawBasic("c1:s3cret:x")}},
		want: ClientCredentials{ID: "c1", Secret: "s3cret:x", Method: AuthMethodClientSecretBasic}},
	{name: "basic scheme case-insensitive", req: authRequest{authz: []string{"bAsIc " + strings.TrimPrefix(basic("c1", "s3cret"), "Basic ")}},
		want: ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodClientSecretBasic}},
	{name: "basic several spaces", req: authRequest{authz: []string{"Basic   " + strings.TrimPrefix(basic("c1", "s3cret"), "Basic ")}},
		want: ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodClientSecretBasic}},
	{name: "basic with same body client_id", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: "client_id=c1"},
		want: ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodClientSecretBasic}},
	{name: "basic with other body client_id", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: "client_id=c2"}, code: CodeInvalidRequest},
	{name: "basic with body client_id differing in case", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: "client_id=C1"}, code: CodeInvalidRequest},
	{name: "basic and client_secret", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: "client_id=c1&client_secret=s3cret"}, code: CodeInvalidRequest},
	{name: "basic and assertion", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: jwtTyp + "&client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "basic and assertion type only", req: authRequest{authz: []string{basic("c1", "s3cret")}, body: jwtTyp}, code: CodeInvalidRequest},
	{name: "bearer scheme", req: authRequest{authz: []string{"Bearer s3cret"}}, code: CodeInvalidClient},
	{name: "dpop scheme", req: authRequest{authz: []string{"DPoP s3cret"}}, code: CodeInvalidClient},
	{name: "basic without credentials", req: authRequest{authz: []string{"Basic"}}, code: CodeInvalidClient},
	{name: "basic with only spaces", req: authRequest{authz: []string{"Basic    "}}, code: CodeInvalidClient},
	{name: "empty authorization", req: authRequest{authz: []string{""}}, code: CodeInvalidClient},
	{name: "basic not base64", req: authRequest{authz: []string{"Basic s3cret!!"}}, code: CodeInvalidClient},
	{name: "basic base64url", req: authRequest{authz: []string{"Basic " + base64.URLEncoding.EncodeToString([]byte("c1:s3cret>>?"))}}, code: CodeInvalidClient},
	{name: "basic unpadded", req: authRequest{authz: []string{"Basic " + base64.RawStdEncoding.EncodeToString([]byte("c1:s3cret1"))}}, code: CodeInvalidClient},
	{name: "basic tab separator", req: authRequest{authz: []string{"Basic\t" + strings.TrimPrefix(basic("c1", "s3cret"), "Basic ")}}, code: CodeInvalidClient},
	{name: "basic trailing garbage", req: authRequest{authz: []string{basic("c1", "s3cret") + " x"}}, code: CodeInvalidClient},
	{name: "basic no colon", req: authRequest{authz: []string{rawBasic("c1s3cret")}}, code: CodeInvalidClient},
	{name: "basic empty id", req: authRequest{authz: []string{rawBasic(":s3cret")}}, code: CodeInvalidClient},
	{name: "basic empty secret", req: authRequest{authz: []string{rawBasic("c1:")}}, code: CodeInvalidClient},
	{name: "basic bad escape in id", req: authRequest{authz: []string{rawBasic("c%zz:s3cret")}}, code: CodeInvalidClient},
	{name: "basic bad escape in secret", req: authRequest{authz: []string{rawBasic("c1:s3cret%")}}, code: CodeInvalidClient},
	{name: "basic control character", req: authRequest{authz: []string{rawBasic("c1%0A:s3cret")}}, code: CodeInvalidClient},
	{name: "basic NUL in secret", req: authRequest{authz: []string{rawBasic("c1:s3cret\x00")}}, code: CodeInvalidClient},
	{name: "basic id too long", req: authRequest{authz: []string{basic(strings.Repeat("c", MaxClientIDLength+1), "s3cret")}}, code: CodeInvalidClient},
	{name: "basic secret too long", req: authRequest{authz: []string{basic("c1", "s3cret"+strings.Repeat("x", MaxClientSecretLength))}}, code: CodeInvalidClient},
	{name: "two authorization headers", req: authRequest{authz: []string{basic("c1", "s3cret"), basic("c2", "s3cret")}}, code: CodeInvalidClient},

	// client_secret_post.
	{name: "post", req: authRequest{body: "grant_type=client_credentials&client_id=c1&client_secret=s3cret"},
		want: ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodClientSecretPost}},
	{name: "post encoded", req: authRequest{body: "client_id=c%201&client_secret=s3cret%2B%26"},
		want: ClientCredentials{ID: "c 1", Secret: "s3cret+&", Method: AuthMethodClientSecretPost}},
	{name: "post secret without id", req: authRequest{body: "client_secret=s3cret"}, code: CodeInvalidRequest},
	{name: "post empty secret is none", req: authRequest{body: "client_id=c1&client_secret="},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "post repeated id", req: authRequest{body: "client_id=c1&client_id=c2&client_secret=s3cret"}, code: CodeInvalidRequest},
	{name: "post repeated secret", req: authRequest{body: "client_id=c1&client_secret=s3cret&client_secret="}, code: CodeInvalidRequest},
	{name: "post secret non-ASCII", req: authRequest{body: "client_id=c1&client_secret=s3cret%C3%A9"}, code: CodeInvalidClient},
	{name: "post id control character", req: authRequest{body: "client_id=c1%0D%0A&client_secret=s3cret"}, code: CodeInvalidClient},
	{name: "post secret too long", req: authRequest{body: "client_id=c1&client_secret=s3cret" + strings.Repeat("x", MaxClientSecretLength)}, code: CodeInvalidClient},

	// none (public clients).
	{name: "none", req: authRequest{body: "grant_type=authorization_code&client_id=c1&code=x"},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "none id too long", req: authRequest{body: "client_id=" + strings.Repeat("c", MaxClientIDLength+1)}, code: CodeInvalidClient},
	{name: "nothing", req: authRequest{body: "grant_type=client_credentials"}, code: CodeInvalidClient},
	{name: "empty body", req: authRequest{}, code: CodeInvalidClient},
	{name: "empty client_id", req: authRequest{body: "client_id="}, code: CodeInvalidClient},

	// private_key_jwt (RFC 7523 section 2.2).
	{name: "assertion", req: authRequest{body: "client_id=c1&" + jwtTyp + "&client_assertion=" + jws + "&s3cret="},
		want: ClientCredentials{ID: "c1", Method: AuthMethodPrivateKeyJWT, Assertion: jws}},
	{name: "assertion without client_id", req: authRequest{body: jwtTyp + "&client_assertion=" + jws},
		want: ClientCredentials{Method: AuthMethodPrivateKeyJWT, Assertion: jws}},
	{name: "assertion without type", req: authRequest{body: "client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "type without assertion", req: authRequest{body: jwtTyp}, code: CodeInvalidRequest},
	{name: "type with empty assertion", req: authRequest{body: jwtTyp + "&client_assertion="}, code: CodeInvalidRequest},
	{name: "saml assertion type", req: authRequest{body: "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Asaml2-bearer&client_assertion=s3cret"}, code: CodeInvalidClient},
	{name: "type case differs", req: authRequest{body: "client_assertion_type=URN" + jwtTyp[25:] + "&client_assertion=" + jws}, code: CodeInvalidClient},
	{name: "unsigned assertion", req: authRequest{body: jwtTyp + "&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOiJzM2NyZXQifQ."}, code: CodeInvalidClient},
	{name: "two-part assertion", req: authRequest{body: jwtTyp + "&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOiJzM2NyZXQifQ"}, code: CodeInvalidClient},
	{name: "JWE assertion", req: authRequest{body: jwtTyp + "&client_assertion=a.b.c.d.s3cret"}, code: CodeInvalidClient},
	{name: "assertion empty header", req: authRequest{body: jwtTyp + "&client_assertion=.b.s3cret"}, code: CodeInvalidClient},
	{name: "assertion with padding", req: authRequest{body: jwtTyp + "&client_assertion=a.b.s3cret%3D"}, code: CodeInvalidClient},
	{name: "assertion with space", req: authRequest{body: jwtTyp + "&client_assertion=a.b.s3cret+x"}, code: CodeInvalidClient},
	{name: "JSON serialization assertion", req: authRequest{body: jwtTyp + "&client_assertion=%7B%22payload%22%3A%22s3cret%22%7D"}, code: CodeInvalidClient},
	{name: "assertion and secret", req: authRequest{body: "client_id=c1&client_secret=s3cret&" + jwtTyp + "&client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "assertion repeated", req: authRequest{body: jwtTyp + "&client_assertion=" + jws + "&client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "assertion type repeated", req: authRequest{body: jwtTyp + "&" + jwtTyp + "&client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "assertion with bad client_id", req: authRequest{body: "client_id=c%00&" + jwtTyp + "&client_assertion=" + jws}, code: CodeInvalidClient},

	// Credentials only in the body.
	{name: "secret in query", req: authRequest{query: "client_secret=s3cret", body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "id in query", req: authRequest{query: "client_id=c1", body: "client_secret=s3cret"}, code: CodeInvalidRequest},
	{name: "assertion in query", req: authRequest{query: "client_assertion=" + jws, body: jwtTyp}, code: CodeInvalidRequest},
	{name: "assertion type in query", req: authRequest{query: jwtTyp, body: "client_assertion=" + jws}, code: CodeInvalidRequest},
	{name: "empty secret in query", req: authRequest{query: "client_secret=", body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "query with basic", req: authRequest{query: "client_id=c1", authz: []string{basic("c1", "s3cret")}}, code: CodeInvalidRequest},
	{name: "other query parameter", req: authRequest{query: "tenant=a", body: "client_id=c1"},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "malformed query", req: authRequest{query: "a=%zz", body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "semicolon query", req: authRequest{query: "a=1;client_secret=s3cret", body: "client_id=c1"}, code: CodeInvalidRequest},

	// Method, content type and body.
	{name: "GET", req: authRequest{method: http.MethodGet, query: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "PUT", req: authRequest{method: http.MethodPut, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "lowercase post", req: authRequest{method: "post", body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "no content type", req: authRequest{contentTypes: []string{}, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "json", req: authRequest{contentTypes: []string{"application/json"}, body: `{"client_id":"c1"}`}, code: CodeInvalidRequest},
	{name: "multipart", req: authRequest{contentTypes: []string{"multipart/form-data; boundary=x"}, body: "--x--"}, code: CodeInvalidRequest},
	{name: "text/plain", req: authRequest{contentTypes: []string{"text/plain"}, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "two content types", req: authRequest{contentTypes: []string{form, form}, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "malformed content type", req: authRequest{contentTypes: []string{form + "; charset"}, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "charset utf-8", req: authRequest{contentTypes: []string{form + "; charset=utf-8"}, body: "client_id=c1"},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "charset UTF-8 quoted", req: authRequest{contentTypes: []string{form + `;charset="UTF-8"`}, body: "client_id=c1"},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "content type case-insensitive", req: authRequest{contentTypes: []string{"Application/X-WWW-Form-URLEncoded"}, body: "client_id=c1"},
		want: ClientCredentials{ID: "c1", Method: AuthMethodNone}},
	{name: "charset latin-1", req: authRequest{contentTypes: []string{form + "; charset=iso-8859-1"}, body: "client_id=c1"}, code: CodeInvalidRequest},
	{name: "malformed body", req: authRequest{body: "client_id=c1&x=%zz"}, code: CodeInvalidRequest},
	{name: "semicolon body", req: authRequest{body: "client_id=c1;client_secret=s3cret"}, code: CodeInvalidRequest},
	{name: "body too large", req: authRequest{body: "client_id=c1&pad=" + strings.Repeat("x", 100), limit: 64}, code: CodeInvalidRequest, status: 413},
}

func TestParseClientAuth(t *testing.T) {
	for _, tc := range clientAuthCases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req.build()
			got, err := ParseClientAuth(r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("ParseClientAuth = %v", err)
				}
				if got != tc.want {
					t.Errorf("ParseClientAuth = %#v (secret %q, assertion %q), want %#v (secret %q, assertion %q)",
						got, got.Secret, got.Assertion, tc.want, tc.want.Secret, tc.want.Assertion)
				}
				return
			}
			e := As(err)
			if err == nil || e.Code != tc.code {
				t.Fatalf("ParseClientAuth = %#v, %v; want %s", got, err, tc.code)
			}
			if got != (ClientCredentials{}) {
				t.Errorf("credentials returned with an error: %#v", got)
			}
			want := DefaultStatus(tc.code)
			if tc.status != 0 {
				want = tc.status
			}
			if e.HTTPStatus() != want {
				t.Errorf("status = %d, want %d", e.HTTPStatus(), want)
			}
			if strings.Contains(e.Description, "s3cret") || strings.Contains(e.Description, "c3Ny") {
				t.Errorf("description leaks a credential: %q", e.Description)
			}
		})
	}
}

func TestParseClientAuthLeavesForm(t *testing.T) {
	r := authRequest{authz: []string{basic("c1", "s3cret")}, query: "q=1", body: "grant_type=authorization_code&code=abc"}.build()
	if _, err := ParseClientAuth(r); err != nil {
		t.Fatal(err)
	}
	if r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("code") != "abc" {
		t.Errorf("PostForm = %v", r.PostForm)
	}
	if r.PostForm.Has("q") {
		t.Error("the query leaked into PostForm")
	}
}

func TestParam(t *testing.T) {
	tests := []struct {
		name string
		form url.Values
		want string
		err  bool
	}{
		{"absent", url.Values{}, "", false},
		{"nil form", nil, "", false},
		{"present", url.Values{"code": {"abc"}}, "abc", false},
		{"empty is absent", url.Values{"code": {""}}, "", false},
		{"repeated", url.Values{"code": {"a", "b"}}, "", true},
		{"repeated same", url.Values{"code": {"a", "a"}}, "", true},
		{"repeated empty", url.Values{"code": {"", ""}}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Param(tc.form, "code")
			if got != tc.want || (err != nil) != tc.err {
				t.Errorf("Param = %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
			if err != nil && As(err).Code != CodeInvalidRequest {
				t.Errorf("error code = %s", As(err).Code)
			}
		})
	}
}

func TestClientCredentialsRedacted(t *testing.T) {
	c := ClientCredentials{ID: "c1", Secret: "s3cret", Method: AuthMethodPrivateKeyJWT, Assertion: "a.s3cret.b"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("auth", "client", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c), buf.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("credentials leak: %s", s)
		}
		if !strings.Contains(s, "c1") {
			t.Errorf("client id missing: %s", s)
		}
	}
}
