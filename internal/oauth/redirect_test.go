package oauth

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// validRedirectURIs are accepted at registration. They also seed the fuzzer.
var validRedirectURIs = []string{
	"https://app.example.com/callback",
	"https://app.example.com/",
	"https://app.example.com:8443/cb",
	"https://app.example.com/cb?tenant=a&x=1",
	"https://app.example.com/cb?a",
	"https://app.example.com/a/b/c/",
	"https://app.example.com/CallBack",
	"https://app-1.example.com/cb",
	"https://xn--bcher-kva.example/cb",
	"https://xn--pple-43d.com/cb",
	"https://192.0.2.1/cb",
	"https://[2001:db8::1]/cb",
	"https://[2001:db8::1]:8443/cb",
	"https://app.example.com/cb%20x",
	"https://app.example.com/p;a=b",
	"https://app.example.com/a:b@c",
	"https://app.example.com/!$&'()+,;=",
	"https://app.example.com/cb?next=%2Fhome",
	"https://app.example.com/cb?x=a%20b&y=%C3%A9",
	"https://app.example.com/.well-known/cb",
	"https://app.example.com/..foo/...",
	"https://localhost/cb",
	"https://127.0.0.1/cb",
	"http://127.0.0.1/cb",
	"http://127.0.0.1:8080/cb",
	"http://127.0.0.1:65535/cb?x=1",
	"http://[::1]/cb",
	"http://[::1]:53123/cb",
	"http://localhost:3000/cb",
	"http://localhost/cb",
	"com.example.app:/oauth2redirect",
	"com.example.app:/oauth2redirect/example-provider",
	"com.example.app:/",
	"com.googleusercontent.apps.123-abc:/oauth2redirect",
	"com.example.app://callback",
	"com.example.app://callback/path?x=1",
	"msauth.com.example.app://auth",
	"com.example+app.v2:/cb",
}

func TestValidateRedirectURIAccepts(t *testing.T) {
	longest := "https://app.example.com/" + strings.Repeat("a", MaxRedirectURILength-24)
	for _, raw := range append(validRedirectURIs, longest) {
		t.Run(raw, func(t *testing.T) {
			if err := ValidateRedirectURI(raw); err != nil {
				t.Errorf("ValidateRedirectURI(%q) = %v", raw, err)
			}
		})
	}
}

// invalidRedirectURIs are refused at registration, each with a word of the
// description that says why. They also seed the fuzzer.
var invalidRedirectURIs = []struct {
	raw  string
	want string // substring of the description
}{
	// Emptiness, length, relative references.
	{"", "is empty"},
	{"https://app.example.com/" + strings.Repeat("a", MaxRedirectURILength-23), "longer than 2000"},
	{"/callback", "absolute URI"},
	{"app.example.com/cb", "absolute URI"},
	{"//app.example.com/cb", "absolute URI"},
	{":/cb", "absolute URI"},

	// Fragments and wildcards.
	{"https://app.example.com/cb#frag", "fragment"},
	{"https://app.example.com/cb#", "fragment"},
	{"https://app.example.com/cb?x=1#", "fragment"},
	{"https://*.example.com/cb", "wildcard"},
	{"https://app.example.com/*", "wildcard"},
	{"https://app.example.com/cb?x=*", "wildcard"},

	// Characters that are not in URIs, whitespace, non-ASCII, IDN look-alikes.
	{"https://app.example.com/cb\\x", "backslash"},
	{"https:\\\\evil.example\\cb", "backslash"},
	{"https://app.example.com\\@evil.example/cb", "backslash"},
	{"https://app.example.com/c b", "space"},
	{" https://app.example.com/cb", "space"},
	{"https://app.example.com/cb ", "space"},
	{"https://app.example.com/cb\t", "control character"},
	{"https://app.example.com/cb\n", "control character"},
	{"https://app.example.com/cb\x00", "control character"},
	{"https://app.example.com/cb\x7f", "control character"},
	{"https://bücher.example/cb", "non-ASCII"},
	{"https://аpple.com/cb", "non-ASCII"},                     // Cyrillic а
	{"https://app.example.com\u3002evil.com/cb", "non-ASCII"}, // ideographic full stop
	{"https://app.example.com/<script>", "not allowed in a URI"},
	{"https://app.example.com/cb?x={y}", "not allowed in a URI"},
	{"https://app.example.com/cb?x=\"", "not allowed in a URI"},
	{"https://app.example.com/a|b", "not allowed in a URI"},

	// Dangerous schemes, in any case.
	{"javascript:alert(1)", "javascript: scheme"},
	{"JaVaScRiPt:alert(1)", "javascript: scheme"},
	{"data:text/html;base64,PHNjcmlwdD4=", "data: scheme"},
	{"vbscript:msgbox(1)", "vbscript: scheme"},
	{"file:///etc/passwd", "file: scheme"},
	{"FILE:///etc/passwd", "file: scheme"},
	{"blob:https://app.example.com/uuid", "blob: scheme"},
	{"about:blank", "about: scheme"},

	// Scheme syntax and case.
	{"HTTPS://app.example.com/cb", "lowercase scheme"},
	{"Https://app.example.com/cb", "lowercase scheme"},
	{"1com.example:/cb", "invalid scheme"},
	{".example.app:/cb", "invalid scheme"},
	{"com.example.:/cb", "invalid scheme"},
	{"com..example:/cb", "invalid scheme"},
	{"com_example.app:/cb", "invalid scheme"},

	// https / http authority.
	{"https:app.example.com/cb", "must have a host"},
	{"https:/app.example.com/cb", "must have a host"},
	{"https:///cb", "must have a host"},
	{"https://app.example.com", "must have a path"},
	{"https://app.example.com?x=1", "must have a path"},
	{"http://app.example.com/cb", "http only for a loopback"},
	{"http://localhost.evil.test/cb", "http only for a loopback"},
	{"http://127.0.0.1.evil.test/cb", "http only for a loopback"},
	{"http://127.0.0.2/cb", "http only for a loopback"},
	{"http://localhost./cb", "ends with a dot"},
	{"http://[::2]/cb", "http only for a loopback"},

	// User information, however it is spelled.
	{"https://user@app.example.com/cb", "user information"},
	{"https://user:pass@app.example.com/cb", "user information"},
	{"https://a@b@evil.example/cb", "user information"},
	{"https://app.example.com@evil.example/cb", "user information"},
	{"https://@app.example.com/cb", "user information"},
	{"http://127.0.0.1:8080@evil.example/cb", "user information"},
	{"com.example.app://user@callback/", "user information"},

	// Host form.
	{"https://APP.example.com/cb", "lowercase host"},
	{"https://app.Example.com/cb", "lowercase host"},
	{"https://app.example.com./cb", "ends with a dot"},
	{"https://app..example.com/cb", "empty label"},
	{"https://.app.example.com/cb", "empty label"},
	{"https://exa_mple.com/cb", "only letters, digits"},
	{"https://ex%61mple.com/cb", "only letters, digits"},
	{"https://ex!mple.com/cb", "only letters, digits"},
	{"https://-app.example.com/cb", "starts or ends with '-'"},
	{"https://app-.example.com/cb", "starts or ends with '-'"},
	{"https://" + strings.Repeat("a", 64) + ".example/cb", "longer than 63"},
	{"https://" + strings.Repeat("a.", 127) + "example/cb", "longer than 253"},
	{"https://127.1/cb", "dotted-decimal"},
	{"http://127.1/cb", "dotted-decimal"},
	{"https://0x7f.0.0.1/cb", "dotted-decimal"},
	{"https://2130706433/cb", "dotted-decimal"},
	{"https://0177.0.0.1/cb", "dotted-decimal"},
	{"https://1.2.3.04/cb", "dotted-decimal"},
	{"https://1.2.3.4.5/cb", "dotted-decimal"},
	{"https://256.0.0.1/cb", "dotted-decimal"},
	{"https://app.0x10/cb", "dotted-decimal"},
	{"http://[::ffff:127.0.0.1]/cb", "IPv4-mapped"},
	{"http://[0:0:0:0:0:0:0:1]/cb", "canonical form, [::1]"},
	{"https://[2001:DB8::1]/cb", "canonical form"},
	{"http://[fe80::1%25eth0]/cb", "zones"},
	{"https://[127.0.0.1]/cb", "invalid IPv6"},
	{"https://[::1/cb", "invalid IPv6"},
	{"https://[::1]x/cb", "invalid IPv6"},

	// Ports.
	{"https://app.example.com:443/cb", "default port :443"},
	{"http://127.0.0.1:80/cb", "default port :80"},
	{"http://localhost:80/cb", "default port :80"},
	{"https://app.example.com:/cb", "invalid port"},
	{"https://app.example.com:0/cb", "invalid port"},
	{"https://app.example.com:65536/cb", "invalid port"},
	{"https://app.example.com:08443/cb", "invalid port"},
	{"https://app.example.com:80a/cb", "invalid port"},
	{"https://app.example.com:1:2/cb", "invalid port"},
	{"http://[::1]:/cb", "invalid port"},

	// Path traversal and path tricks.
	{"https://app.example.com/cb/../admin", "'..' path segments"},
	{"https://app.example.com/cb/./x", "'..' path segments"},
	{"https://app.example.com/..", "'..' path segments"},
	{"https://app.example.com/cb/..", "'..' path segments"},
	{"https://app.example.com/cb/%2e%2e/admin", "'..' path segments"},
	{"https://app.example.com/cb/%2E%2E/admin", "'..' path segments"},
	{"https://app.example.com/cb/.%2e/admin", "'..' path segments"},
	{"https://app.example.com/cb/%2e./admin", "'..' path segments"},
	{"https://app.example.com/cb/%2e/admin", "'..' path segments"},
	{"https://app.example.com/cb/..;/admin", "'..' path segments"},
	{"https://app.example.com/cb/..;jsessionid=x/admin", "'..' path segments"},
	{"https://app.example.com/cb/%2e%2e;x/admin", "'..' path segments"},
	{"https://app.example.com/cb/.;/admin", "'..' path segments"},
	{"com.example.app:/cb/../x", "'..' path segments"},
	{"https://app.example.com//cb", "empty path segment"},
	{"https://app.example.com/a//b", "empty path segment"},
	{"https://app.example.com/cb%2Fx", "encoded '/'"},
	{"https://app.example.com/cb%2fx", "encoded '/'"},
	{"https://app.example.com/cb%5Cx", "encoded '/'"},
	{"https://app.example.com/a[b]", "'[' or ']'"},
	{"https://app.example.com/cb?x=[1]", "'[' or ']'"},

	// Percent-encoding.
	{"https://app.example.com/cb%2e", "percent-encode letters"},
	{"https://app.example.com/%41", "percent-encode letters"},
	{"https://app.example.com/cb?x=%7E", "percent-encode letters"},
	{"https://app.example.com/cb?x=%2e%2e", "percent-encode letters"},
	{"https://app.example.com/cb%2", "malformed percent-encoding"},
	{"https://app.example.com/cb%", "malformed percent-encoding"},
	{"https://app.example.com/cb%zz", "malformed percent-encoding"},
	{"https://app.example.com/cb?x=%g0", "malformed percent-encoding"},
	{"https://app.example.com/cb%3a", "uppercase hex"},
	{"https://app.example.com/cb?x=%c3%a9", "uppercase hex"},
	{"https://app.example.com/cb%00", "control characters"},
	{"https://app.example.com/cb?x=%0D%0ALocation:x", "control characters"},
	{"https://app.example.com/cb%7F", "control characters"},

	// Query.
	{"https://app.example.com/cb?", "empty query"},
	{"http://127.0.0.1:8080/cb?", "empty query"},

	// Private-use schemes.
	{"myapp:/cb", "reverse domain name"},
	{"myapp://cb", "reverse domain name"},
	{"ws://app.example.com/cb", "reverse domain name"},
	{"mailto:a@example.com", "reverse domain name"},
	{"urn:ietf:wg:oauth:2.0:oob", "reverse domain name"},
	{"com.example.app:cb", "of the form com.example.app:/path"},
	{"com.example.app:", "of the form com.example.app:/path"},
	{"com.example.app:?x=1", "of the form com.example.app:/path"},
	{"com.example.app:///cb", "empty host"},
	{"com.example.app://CALLBACK/", "lowercase host"},
}

func TestValidateRedirectURIRefuses(t *testing.T) {
	for _, tc := range invalidRedirectURIs {
		t.Run(tc.raw, func(t *testing.T) {
			err := ValidateRedirectURI(tc.raw)
			e := As(err)
			if err == nil || e.Code != CodeInvalidRedirectURI || e.HTTPStatus() != 400 {
				t.Fatalf("ValidateRedirectURI(%q) = %v, want invalid_redirect_uri", tc.raw, err)
			}
			if !strings.Contains(e.Description, tc.want) {
				t.Errorf("ValidateRedirectURI(%q) = %q, want it to mention %q", tc.raw, e.Description, tc.want)
			}
			if ce := ciam.As(err); ce == nil || ce.Kind != ciam.Invalid || ce.Code != CodeInvalidRedirectURI {
				t.Errorf("ciam.As = %+v, want Kind Invalid", ce)
			}
		})
	}
}

// matchRegistered and matchCases drive TestMatchRedirectURI and seed the
// fuzzer.
var matchRegistered = []string{
	"https://app.example.com/callback",
	"https://app.example.com/cb?x=1",
	"http://127.0.0.1/loop",
	"http://[::1]:8080/loop6",
	"http://localhost:3000/dev",
	"com.example.app:/oauth2redirect",
}

var matchCases = []struct {
	requested string
	want      string // the registered value matched, "" for no match
}{
	// Exact matches.
	{"https://app.example.com/callback", "https://app.example.com/callback"},
	{"https://app.example.com/cb?x=1", "https://app.example.com/cb?x=1"},
	{"http://127.0.0.1/loop", "http://127.0.0.1/loop"},
	{"http://[::1]:8080/loop6", "http://[::1]:8080/loop6"},
	{"http://localhost:3000/dev", "http://localhost:3000/dev"},
	{"com.example.app:/oauth2redirect", "com.example.app:/oauth2redirect"},

	// Case (CVE-2020-15234), trailing slash, query and fragment leniency.
	{"https://app.example.com/Callback", ""},
	{"https://app.example.com/CALLBACK", ""},
	{"https://APP.example.com/callback", ""},
	{"HTTPS://app.example.com/callback", ""},
	{"https://app.example.com/callback/", ""},
	{"https://app.example.com/callbac", ""},
	{"https://app.example.com/callback?x=1", ""},
	{"https://app.example.com/callback?", ""},
	{"https://app.example.com/cb", ""},
	{"https://app.example.com/cb?x=1&y=2", ""},
	{"https://app.example.com/cb?x=2", ""},
	{"https://app.example.com/cb?X=1", ""},
	{"https://app.example.com/cb?x=1#", ""},
	{"https://app.example.com/callback#frag", ""},
	{"https://app.example.com/callback#", ""},

	// Path traversal and encodings (CVE-2026-3872).
	{"https://app.example.com/callback/../callback", ""},
	{"https://app.example.com/x/../callback", ""},
	{"https://app.example.com/callback/..;/admin", ""},
	{"https://app.example.com/./callback", ""},
	{"https://app.example.com//callback", ""},
	{"https://app.example.com/%63allback", ""},
	{"https://app.example.com/callback%2F", ""},
	{"https://app.example.com/cb?x=%31", ""},
	{"https%3A%2F%2Fapp.example.com%2Fcallback", ""},

	// Authority tricks (CVE-2026-7504, CVE-2026-18211).
	{"https://app.example.com@evil.example/callback", ""},
	{"https://evil.example@app.example.com/callback", ""},
	{"https://evil.example\\@app.example.com/callback", ""},
	{"https://app.example.com\\@evil.example/callback", ""},
	{"https://app.example.com.evil.example/callback", ""},
	{"https://app.example.com./callback", ""},
	{"https://app.example.com:443/callback", ""},
	{"https://app.example.com:8443/callback", ""},
	{"http://app.example.com/callback", ""},
	{"https:/app.example.com/callback", ""},
	{"https:app.example.com/callback", ""},
	{"//app.example.com/callback", ""},

	// Whitespace, backslashes, IDN look-alikes.
	{"https://app.example.com/callback ", ""},
	{" https://app.example.com/callback", ""},
	{"https://app.example.com/callback\t", ""},
	{"https://app.example.com/callback\n", ""},
	{"https://app.example.com/callback\x00", ""},
	{"https:\\\\app.example.com\\callback", ""},
	{"https://app.exаmple.com/callback", ""}, // Cyrillic а
	{"https://xn--app-exmple-4ng.com/callback", ""},
	{"https://app.example.com/callback\u200b", ""},

	// Loopback IP: only the port may vary (RFC 8252 section 7.3).
	{"http://127.0.0.1:51234/loop", "http://127.0.0.1/loop"},
	{"http://127.0.0.1:1/loop", "http://127.0.0.1/loop"},
	{"http://127.0.0.1:65535/loop", "http://127.0.0.1/loop"},
	{"http://127.0.0.1:80/loop", "http://127.0.0.1/loop"},
	{"http://[::1]:9999/loop6", "http://[::1]:8080/loop6"},
	{"http://[::1]/loop6", "http://[::1]:8080/loop6"},
	{"http://127.0.0.1:65536/loop", ""},
	{"http://127.0.0.1:0/loop", ""},
	{"http://127.0.0.1:08080/loop", ""},
	{"http://127.0.0.1:/loop", ""},
	{"http://127.0.0.1:abc/loop", ""},
	{"http://127.0.0.1:123456/loop", ""},
	{"http://127.0.0.1:8080/loop/", ""},
	{"http://127.0.0.1:8080/Loop", ""},
	{"http://127.0.0.1:8080/loop?x=1", ""}, // CVE-2020-15233
	{"http://127.0.0.1:8080/loop?", ""},
	{"http://127.0.0.1:8080/loop#x", ""},
	{"http://127.0.0.1:8080/loop/../loop", ""},
	{"http://127.0.0.1:8080/loopx", ""},
	{"http://127.0.0.1:8080/", ""},
	{"http://127.0.0.1:8080", ""},
	{"http://127.0.0.1:8080\\loop", ""},
	{"http://127.0.0.1:8080@evil.example/loop", ""},
	{"http://127.0.0.1.evil.example/loop", ""},
	{"http://127.0.0.1:8080.evil.example/loop", ""},
	{"http://127.0.0.10/loop", ""},
	{"http://127.0.0.1 /loop", ""},
	{"https://127.0.0.1:8080/loop", ""},
	{"HTTP://127.0.0.1:8080/loop", ""},
	{"http://localhost:8080/loop", ""}, // localhost is not 127.0.0.1
	{"http://localhost/loop", ""},
	{"http://[::1]:8080/loop", ""}, // IPv6 is not IPv4
	{"http://127.0.0.2:8080/loop", ""},
	{"http://127.1:8080/loop", ""},
	{"http://2130706433:8080/loop", ""},
	{"http://[0:0:0:0:0:0:0:1]:9999/loop6", ""},
	{"http://[::ffff:127.0.0.1]:9999/loop6", ""},
	{"http://127.0.0.1:9999/loop6", ""},

	// localhost registrations are exact (CVE-2024-8883).
	{"http://localhost:3001/dev", ""},
	{"http://localhost/dev", ""},
	{"http://127.0.0.1:3000/dev", ""},
	{"http://[::1]:3000/dev", ""},
	{"http://localhost.evil.example:3000/dev", ""},

	// Private-use schemes.
	{"com.example.app:/oauth2redirect/", ""},
	{"COM.example.app:/oauth2redirect", ""},
	{"com.example.app://oauth2redirect", ""},
	{"com.example.app:oauth2redirect", ""},
	{"com.example.evil:/oauth2redirect", ""},

	// Nothing matches nothing.
	{"", ""},
	{"javascript:alert(1)", ""},
}

func TestMatchRedirectURI(t *testing.T) {
	for _, r := range matchRegistered {
		if err := ValidateRedirectURI(r); err != nil {
			t.Fatalf("registered %q does not validate: %v", r, err)
		}
	}
	for _, tc := range matchCases {
		t.Run(tc.requested, func(t *testing.T) {
			got, ok := MatchRedirectURI(matchRegistered, tc.requested)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("MatchRedirectURI(%q) = %q, %v; want %q", tc.requested, got, ok, tc.want)
			}
		})
	}
}

func TestMatchRedirectURIEdges(t *testing.T) {
	tests := []struct {
		name       string
		registered []string
		requested  string
		want       string
		ok         bool
	}{
		{"no registrations", nil, "https://app.example.com/cb", "", false},
		{"empty registration never matches", []string{""}, "", "", false},
		{"first exact wins", []string{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb"}, "http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb", true},
		{"exact beats loopback", []string{"http://127.0.0.1:4000/cb", "http://127.0.0.1:5000/cb"}, "http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb", true},
		{"loopback registered with port", []string{"http://127.0.0.1:4000/cb"}, "http://127.0.0.1/cb", "http://127.0.0.1:4000/cb", true},
		{"loopback with query", []string{"http://127.0.0.1/cb?a=b"}, "http://127.0.0.1:7/cb?a=b", "http://127.0.0.1/cb?a=b", true},
		{"loopback query differs", []string{"http://127.0.0.1/cb?a=b"}, "http://127.0.0.1:7/cb?a=c", "", false},
		{"loopback without path is not matched on port", []string{"http://127.0.0.1"}, "http://127.0.0.1:7", "", false},
		{"invalid registration matched only exactly", []string{"HTTP://127.0.0.1/cb"}, "HTTP://127.0.0.1:5/cb", "", false},
		{"registered invalid port", []string{"http://127.0.0.1:99999/cb"}, "http://127.0.0.1:5/cb", "", false},
		{"https loopback gets no port leniency", []string{"https://127.0.0.1/cb"}, "https://127.0.0.1:5/cb", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MatchRedirectURI(tc.registered, tc.requested)
			if got != tc.want || ok != tc.ok {
				t.Errorf("MatchRedirectURI = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Mutation classes of security.md 2.1, applied by mutationAt.
var (
	mutationInserts  = []string{"/", ".", "..", "/..", "/../", "..;/", "@", "\\", " ", "\t", "%00", "#", "?", "*", ":", "%2e%2e", "\u0430"}
	mutationSuffixes = []string{"/", "?", "?x=1", "&x=1", "#", "#x", ".", "/.", "/..", "%20", " ", "\n", "@evil.example", ".evil.example"}
)

// mutationsPerByte is the number of mutations mutationAt makes at each byte:
// case toggle, deletion, percent-encoding in upper and lower case, inserts.
var mutationsPerByte = 4 + len(mutationInserts)

// mutationCount is the number of mutations of s.
func mutationCount(s string) int {
	return len(s)*mutationsPerByte + len(mutationSuffixes) + 6
}

// mutationAt returns mutation k (0 <= k < mutationCount(s)) of s. Some
// mutations leave s unchanged (a case toggle of a non-letter, the https
// mutations of a URI that is not https).
func mutationAt(s string, k int) string {
	if n := len(s) * mutationsPerByte; k < n {
		i, kind := k/mutationsPerByte, k%mutationsPerByte
		c := s[i]
		switch kind {
		case 0:
			switch {
			case c >= 'a' && c <= 'z':
				return s[:i] + string(c-32) + s[i+1:]
			case c >= 'A' && c <= 'Z':
				return s[:i] + string(c+32) + s[i+1:]
			}
			return s
		case 1:
			return s[:i] + s[i+1:]
		case 2:
			return s[:i] + fmt.Sprintf("%%%02X", c) + s[i+1:]
		case 3:
			return s[:i] + fmt.Sprintf("%%%02x", c) + s[i+1:]
		default:
			return s[:i] + mutationInserts[kind-4] + s[i:]
		}
	} else {
		k -= n
	}
	if k < len(mutationSuffixes) {
		return s + mutationSuffixes[k]
	}
	k -= len(mutationSuffixes)
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return s
	}
	host, p, _ := strings.Cut(rest, "/")
	switch k {
	case 0:
		return "http://" + rest
	case 1:
		return "https://evil.example@" + rest
	case 2:
		return "https://" + host + ":443/" + p
	case 3:
		return "https://" + host + "./" + p
	case 4:
		return "https://" + host + ".evil.example/" + p
	default:
		return "https://" + host + "@evil.example/" + p
	}
}

// mutations returns every mutation of s.
func mutations(s string) []string {
	out := make([]string, 0, mutationCount(s))
	for k := range mutationCount(s) {
		out = append(out, mutationAt(s, k))
	}
	return out
}

func TestMatchRedirectURIMutations(t *testing.T) {
	for _, reg := range validRedirectURIs {
		t.Run(reg, func(t *testing.T) {
			for _, m := range mutations(reg) {
				got, ok := MatchRedirectURI([]string{reg}, m)
				if !ok {
					continue
				}
				if got != reg {
					t.Fatalf("MatchRedirectURI(%q) returned %q, not the registered value", m, got)
				}
				if m != reg && !loopbackPortVariant(reg, m) {
					t.Errorf("mutation %q of %q matched", m, reg)
				}
			}
		})
	}
}

// loopbackIP splits a loopback-IP redirect URI into the scheme and host,
// the port and the rest, independently of splitLoopbackIP.
var loopbackIP = regexp.MustCompile(`(?s)^(http://(?:127\.0\.0\.1|\[::1\]))(?::([1-9][0-9]{0,4}))?(/.*)$`)

// loopbackPortVariant reports whether a and b are http loopback-IP URIs that
// differ at most in their port, which must be 1-65535.
func loopbackPortVariant(a, b string) bool {
	ma, mb := loopbackIP.FindStringSubmatch(a), loopbackIP.FindStringSubmatch(b)
	if ma == nil || mb == nil || ma[1] != mb[1] || ma[3] != mb[3] {
		return false
	}
	for _, p := range []string{ma[2], mb[2]} {
		if n, err := strconv.Atoi(p); p != "" && (err != nil || n < 1 || n > 65535) {
			return false
		}
	}
	return true
}

func TestValidateRedirectURIMutations(t *testing.T) {
	// A mutation that still validates must name a different resource, never
	// be a second spelling of the original: registration admits one canonical
	// spelling per URI, so exact matching cannot be side-stepped.
	for _, reg := range validRedirectURIs {
		for _, m := range mutations(reg) {
			if m == reg || ValidateRedirectURI(m) != nil {
				continue
			}
			if equivalent(m, reg) {
				t.Errorf("mutation %q of %q validated but is equivalent to it", m, reg)
			}
		}
	}
}

// equivalent reports whether a and b are the same URI after RFC 3986
// section 6.2.2 and 6.2.3 normalisation: case of scheme, host and
// percent-encodings, decoding of unreserved characters, dot segments, the
// default port and the empty http(s) path. Percent-encoded reserved
// characters stay distinct (RFC 3986 section 2.2).
func equivalent(a, b string) bool {
	norm := func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			return "unparsable:" + s
		}
		scheme := strings.ToLower(u.Scheme)
		host := strings.ToLower(u.Host)
		p := decodeUnreserved(u.EscapedPath())
		switch scheme {
		case "https":
			host = strings.TrimSuffix(host, ":443")
		case "http":
			host = strings.TrimSuffix(host, ":80")
		}
		if (scheme == "https" || scheme == "http") && p == "" {
			p = "/"
		}
		if p != "" {
			c := path.Clean(p)
			if strings.HasSuffix(p, "/") && c != "/" {
				c += "/"
			}
			p = c
		}
		return scheme + "://" + host + p + "?" + decodeUnreserved(u.RawQuery)
	}
	return norm(a) == norm(b)
}

// decodeUnreserved decodes percent-encoded unreserved characters and
// uppercases the hex digits of the others.
func decodeUnreserved(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c := unhex(s[i+1])<<4 | unhex(s[i+2])
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
				b.WriteByte(c)
			} else {
				b.WriteString(strings.ToUpper(s[i : i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestValidateRedirectURIErrorIsSafe(t *testing.T) {
	err := ValidateRedirectURI("https://app.example.com/cb\"><script>")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %v", err)
	}
	checkAllowed(t, "description", sanitizeText(e.Description, maxDescription))
}
