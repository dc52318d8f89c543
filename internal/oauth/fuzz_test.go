package oauth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The fuzzers run their seed corpora (the table tests' inputs plus
// testdata/fuzz) on every go test; run one with, for example,
//
//	go test ./internal/oauth/ -run '^$' -fuzz '^FuzzRedirectURI$' -fuzztime 60s

// FuzzRedirectURI checks ValidateRedirectURI and MatchRedirectURI together:
// nothing panics; a match returns the registered value and implies that the
// requested URI is that value or differs from it only in the port of a
// loopback IP URI; a URI that validates is canonical, matches itself and has
// no second spelling that also validates.
func FuzzRedirectURI(f *testing.F) {
	for _, r := range validRedirectURIs {
		f.Add(r, r)
		f.Add(r, r+"/")
	}
	for _, tc := range invalidRedirectURIs {
		f.Add(tc.raw, "https://app.example.com/callback")
	}
	for _, r := range matchRegistered {
		for _, tc := range matchCases {
			f.Add(r, tc.requested)
		}
	}
	f.Fuzz(checkRedirectPair)
}

// FuzzRedirectURIMutation starts from URIs that validate and applies one of
// the systematic mutations of TestMatchRedirectURIMutations, so that the
// properties of FuzzRedirectURI are checked on pairs that are close to each
// other, which random pairs almost never are.
func FuzzRedirectURIMutation(f *testing.F) {
	for _, r := range validRedirectURIs {
		f.Add(r, uint16(0))
		f.Add(r, uint16(len(r)*7))
	}
	f.Fuzz(func(t *testing.T, registered string, i uint16) {
		m := mutationAt(registered, int(i)%mutationCount(registered))
		checkRedirectPair(t, registered, m)
	})
}

// checkRedirectPair checks the properties of FuzzRedirectURI for one pair.
func checkRedirectPair(t *testing.T, registered, requested string) {
	regErr := ValidateRedirectURI(registered)
	reqErr := ValidateRedirectURI(requested)
	for _, err := range []error{regErr, reqErr} {
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidRedirectURI || e.HTTPStatus() != 400 {
			t.Fatalf("error %v is not invalid_redirect_uri", err)
		}
	}
	if regErr == nil {
		u, err := url.Parse(registered)
		if err != nil || u.String() != registered || u.User != nil || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("%q validated but is not canonical", registered)
		}
		if strings.ContainsAny(registered, "#*\\ \t\r\n") {
			t.Fatalf("%q validated with a forbidden character", registered)
		}
		if got, ok := MatchRedirectURI([]string{registered}, registered); !ok || got != registered {
			t.Fatalf("%q does not match itself", registered)
		}
		if reqErr == nil && requested != registered && equivalent(registered, requested) {
			t.Fatalf("%q and %q both validated but are equivalent", registered, requested)
		}
	}

	got, ok := MatchRedirectURI([]string{registered}, requested)
	if !ok {
		if got != "" {
			t.Fatalf("no match but returned %q", got)
		}
		return
	}
	if got != registered {
		t.Fatalf("matched %q but returned %q", registered, got)
	}
	if requested != registered && !loopbackPortVariant(registered, requested) {
		t.Fatalf("%q matched registered %q", requested, registered)
	}
}

// FuzzParseScope checks that ParseScope never panics, returns only valid,
// distinct tokens, and round-trips through JoinScope.
func FuzzParseScope(f *testing.F) {
	for _, tc := range scopeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := ParseScope(s)
		if err != nil {
			if e := As(err); e.Code != CodeInvalidScope || toks != nil {
				t.Fatalf("ParseScope(%q) = %q, %v", s, toks, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tok := range toks {
			if tok == "" || seen[tok] {
				t.Fatalf("ParseScope(%q) has an empty or repeated token: %q", s, toks)
			}
			seen[tok] = true
			for i := 0; i < len(tok); i++ {
				if !scopeChar(tok[i]) {
					t.Fatalf("ParseScope(%q) token %q has byte %#x", s, tok, tok[i])
				}
			}
			if !strings.Contains(s, tok) {
				t.Fatalf("ParseScope(%q) invented %q", s, tok)
			}
		}
		for _, tok := range strings.Fields(s) {
			if !seen[tok] {
				t.Fatalf("ParseScope(%q) lost %q", s, tok)
			}
		}
		joined := JoinScope(toks)
		if len(joined) > len(s) {
			t.Fatalf("JoinScope(ParseScope(%q)) = %q is longer", s, joined)
		}
		again, err := ParseScope(joined)
		if err != nil || len(again) != len(toks) || JoinScope(again) != joined {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
		if !Subset(toks, toks) || !Subset(nil, toks) {
			t.Fatal("Subset is not reflexive")
		}
	})
}

// FuzzParseClientAuth feeds raw methods, headers, queries and bodies to
// ParseClientAuth. Headers with several values are given separated by "\n".
// It checks that nothing panics and that every success is internally
// consistent and every failure an invalid_request or invalid_client.
func FuzzParseClientAuth(f *testing.F) {
	for _, tc := range clientAuthCases {
		method := tc.req.method
		if method == "" {
			method = http.MethodPost
		}
		cts := tc.req.contentTypes
		if cts == nil {
			cts = []string{form}
		}
		f.Add(method, strings.Join(cts, "\n"), strings.Join(tc.req.authz, "\n"), tc.req.query, tc.req.body)
	}
	f.Fuzz(func(t *testing.T, method, contentType, authz, query, body string) {
		r := &http.Request{
			Method: method,
			URL:    &url.URL{Path: "/token", RawQuery: query},
			Header: http.Header{},
			Body:   http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(body)), 1<<16),
		}
		if contentType != "" {
			r.Header["Content-Type"] = strings.Split(contentType, "\n")
		}
		if authz != "" {
			r.Header["Authorization"] = strings.Split(authz, "\n")
		}
		c, err := ParseClientAuth(r)
		if err != nil {
			e := As(err)
			if (e.Code != CodeInvalidRequest && e.Code != CodeInvalidClient) || c != (ClientCredentials{}) {
				t.Fatalf("ParseClientAuth = %#v, %v", c, err)
			}
			return
		}
		if method != http.MethodPost {
			t.Fatalf("accepted method %q", method)
		}
		if q, _ := url.ParseQuery(query); q.Has("client_secret") || q.Has("client_id") || q.Has("client_assertion") {
			t.Fatalf("accepted credentials in the query %q", query)
		}
		checkVSCHAR := func(what, v string, max int) {
			if len(v) > max {
				t.Fatalf("%s too long: %d", what, len(v))
			}
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					t.Fatalf("%s %q has byte %#x", what, v, v[i])
				}
			}
		}
		checkVSCHAR("id", c.ID, MaxClientIDLength)
		checkVSCHAR("secret", c.Secret, MaxClientSecretLength)
		switch c.Method {
		case AuthMethodClientSecretBasic:
			if len(r.Header["Authorization"]) != 1 || c.ID == "" || c.Secret == "" || c.Assertion != "" {
				t.Fatalf("inconsistent basic credentials %#v", c)
			}
			if r.PostForm.Get("client_secret") != "" || r.PostForm.Get("client_assertion") != "" {
				t.Fatalf("basic accepted with body credentials: %q", body)
			}
			if id := r.PostForm.Get("client_id"); id != "" && id != c.ID {
				t.Fatalf("basic accepted with another body client_id: %q", body)
			}
		case AuthMethodClientSecretPost:
			if c.ID == "" || c.Secret == "" || c.Assertion != "" || len(r.Header["Authorization"]) != 0 {
				t.Fatalf("inconsistent post credentials %#v", c)
			}
		case AuthMethodPrivateKeyJWT:
			if c.Secret != "" || !jwsCompact(c.Assertion) || len(r.Header["Authorization"]) != 0 {
				t.Fatalf("inconsistent assertion credentials %#v", c)
			}
			if r.PostForm.Get("client_assertion_type") != AssertionTypeJWTBearer {
				t.Fatalf("assertion accepted with type %q", r.PostForm.Get("client_assertion_type"))
			}
		case AuthMethodNone:
			if c.ID == "" || c.Secret != "" || c.Assertion != "" || len(r.Header["Authorization"]) != 0 {
				t.Fatalf("inconsistent public client %#v", c)
			}
		default:
			t.Fatalf("unknown method %q", c.Method)
		}
		for _, k := range []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
			if len(r.PostForm[k]) > 1 {
				t.Fatalf("accepted repeated %s", k)
			}
		}
	})
}

// FuzzVerifyS256 checks the PKCE functions against each other.
func FuzzVerifyS256(f *testing.F) {
	f.Add(rfcVerifier, rfcChallenge)
	f.Add(rfcVerifier, rfcVerifier)
	f.Add("", "")
	f.Add(strings.Repeat("~", 128), S256Challenge(strings.Repeat("~", 128)))
	f.Add(strings.Repeat("a", 129), S256Challenge(strings.Repeat("a", 129)))
	f.Fuzz(func(t *testing.T, verifier, challenge string) {
		ok := VerifyS256(verifier, challenge)
		if ok && (!validVerifier(verifier) || S256Challenge(verifier) != challenge) {
			t.Fatalf("VerifyS256(%q, %q) = true", verifier, challenge)
		}
		if ok && ValidateChallenge(challenge, ChallengeMethodS256) != nil {
			t.Fatalf("verified against a challenge that does not validate: %q", challenge)
		}
		if got := VerifyS256(verifier, S256Challenge(verifier)); got != validVerifier(verifier) {
			t.Fatalf("VerifyS256(%q, its own challenge) = %v", verifier, got)
		}
		if err := CheckVerifier(challenge, verifier); (err == nil) != ok {
			t.Fatalf("CheckVerifier(%q, %q) = %v but VerifyS256 = %v", challenge, verifier, err, ok)
		}
		if err := ValidateChallenge(challenge, ChallengeMethodS256); err == nil && len(challenge) != 43 {
			t.Fatalf("ValidateChallenge accepted %q", challenge)
		}
	})
}

// FuzzWriters checks that whatever a description, realm or error_uri holds,
// the headers and bodies written stay well-formed: one quoted-string per
// value, only RFC 6749's characters, valid JSON.
func FuzzWriters(f *testing.F) {
	f.Add("invalid_token", "The token expired.", "api", "https://docs.example/e")
	f.Add("invalid_client", "a\"b\\c\r\nd", "realm\"", "javascript:x")
	f.Add("bad code", "x", "", "")
	f.Fuzz(func(t *testing.T, code, desc, realm, uri string) {
		e := &Error{Code: code, Description: desc, URI: uri}
		for _, write := range []func(http.ResponseWriter){
			func(w http.ResponseWriter) { WriteJSON(w, e) },
			func(w http.ResponseWriter) { WriteBasic(w, realm, e) },
			func(w http.ResponseWriter) { WriteBearer(w, realm, e) },
		} {
			rec := httptest.NewRecorder()
			write(rec)
			if h := rec.Header().Get("WWW-Authenticate"); h != "" {
				for i := 0; i < len(h); i++ {
					if !allowedText(h[i]) && h[i] != '"' {
						t.Fatalf("WWW-Authenticate %q has byte %#x", h, h[i])
					}
				}
				if strings.Count(h, `"`)%2 != 0 {
					t.Fatalf("WWW-Authenticate %q has unbalanced quotes", h)
				}
			}
			var b struct {
				Error, Description, URI string
			}
			var raw map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			b.Error, b.Description, b.URI = raw["error"], raw["error_description"], raw["error_uri"]
			if !validCode(b.Error) {
				t.Fatalf("error code %q", b.Error)
			}
			for _, s := range []string{b.Description, b.URI} {
				for i := 0; i < len(s); i++ {
					if !allowedText(s[i]) {
						t.Fatalf("%q has byte %#x", s, s[i])
					}
				}
			}
			if len(b.Description) > maxDescription {
				t.Fatalf("description of %d bytes", len(b.Description))
			}
		}
		v := RedirectParams(e, "state", "https://id.example")
		if v.Get("error") == "" {
			t.Fatal("RedirectParams without error")
		}
	})
}
