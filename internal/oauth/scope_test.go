package oauth

import (
	"reflect"
	"strings"
	"testing"
)

// scopeCases seed the ParseScope fuzzer too.
var scopeCases = []struct {
	name string
	in   string
	want []string // nil with ok=false means an error
	ok   bool
}{
	{"empty", "", nil, true},
	{"only spaces", "   ", nil, true},
	{"one", "openid", []string{"openid"}, true},
	{"several", "openid profile email", []string{"openid", "profile", "email"}, true},
	{"order kept", "email openid", []string{"email", "openid"}, true},
	{"duplicates collapse, first wins", "openid email openid profile email", []string{"openid", "email", "profile"}, true},
	{"case-sensitive", "openid OpenID OPENID", []string{"openid", "OpenID", "OPENID"}, true},
	{"double space", "openid  profile", []string{"openid", "profile"}, true},
	{"leading and trailing space", " openid profile ", []string{"openid", "profile"}, true},
	{"URL-like and punctuation", "https://api.example.com/read user:write a!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
		[]string{"https://api.example.com/read", "user:write", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, true},
	{"many distinct", "a b c d e f g h i j k l a b c", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}, true},
	{"tab", "openid\tprofile", nil, false},
	{"newline", "openid\nprofile", nil, false},
	{"carriage return", "openid\r\nprofile", nil, false},
	{"NUL", "openid\x00", nil, false},
	{"DEL", "openid\x7f", nil, false},
	{"double quote", `openid "profile"`, nil, false},
	{"backslash", `openid pro\file`, nil, false},
	{"non-ASCII", "openid profilé", nil, false},
	{"non-breaking space", "openid\u00a0profile", nil, false},
	{"invalid UTF-8", "openid \xff", nil, false},
	{"too long", strings.Repeat("a", MaxScopeLength+1), nil, false},
	{"longest", strings.Repeat("a", MaxScopeLength), []string{strings.Repeat("a", MaxScopeLength)}, true},
}

func TestParseScope(t *testing.T) {
	for _, tc := range scopeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScope(tc.in)
			if !tc.ok {
				if e := As(err); e == nil || e.Code != CodeInvalidScope {
					t.Fatalf("ParseScope(%q) = %q, %v; want invalid_scope", tc.in, got, err)
				}
				if got != nil {
					t.Errorf("ParseScope returned tokens with an error: %q", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseScope(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			again, err := ParseScope(JoinScope(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip: ParseScope(JoinScope(%q)) = %q, %v", got, again, err)
			}
		})
	}
}

func TestJoinScope(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{}, ""},
		{[]string{"openid"}, "openid"},
		{[]string{"openid", "profile", "email"}, "openid profile email"},
	}
	for _, tc := range tests {
		if got := JoinScope(tc.in); got != tc.want {
			t.Errorf("JoinScope(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContains(t *testing.T) {
	scopes := []string{"openid", "profile", "api:read"}
	tests := []struct {
		scope string
		want  bool
	}{
		{"openid", true},
		{"api:read", true},
		{"OpenID", false},
		{"open", false},
		{"openid ", false},
		{"", false},
		{"api", false},
	}
	for _, tc := range tests {
		if got := Contains(scopes, tc.scope); got != tc.want {
			t.Errorf("Contains(%q) = %v, want %v", tc.scope, got, tc.want)
		}
	}
	if Contains(nil, "openid") {
		t.Error("Contains(nil, ...) = true")
	}
}

func TestSubset(t *testing.T) {
	many := strings.Fields("a b c d e f g h i j k l m n o p q r s t")
	tests := []struct {
		name               string
		requested, allowed []string
		want               bool
	}{
		{"empty requested", nil, []string{"openid"}, true},
		{"both empty", nil, nil, true},
		{"equal", []string{"openid", "email"}, []string{"openid", "email"}, true},
		{"proper subset", []string{"email"}, []string{"openid", "email"}, true},
		{"order does not matter", []string{"email", "openid"}, []string{"openid", "email"}, true},
		{"extra scope", []string{"openid", "admin"}, []string{"openid", "email"}, false},
		{"nothing allowed", []string{"openid"}, nil, false},
		{"case-sensitive", []string{"OpenID"}, []string{"openid"}, false},
		{"no prefix match", []string{"api:read:all"}, []string{"api:read"}, false},
		{"large subset (map path)", many[:15], many, true},
		{"large not subset (map path)", append(many[:10:10], "z"), many, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Subset(tc.requested, tc.allowed); got != tc.want {
				t.Errorf("Subset(%q, %q) = %v, want %v", tc.requested, tc.allowed, got, tc.want)
			}
		})
	}
}
