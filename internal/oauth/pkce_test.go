package oauth

import (
	"strings"
	"testing"
)

// The example of RFC 7636 appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256Challenge(t *testing.T) {
	if got := S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Errorf("S256Challenge(RFC 7636 appendix B) = %q, want %q", got, rfcChallenge)
	}
}

func TestValidateChallenge(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		method    string
		wantErr   string // substring of the description; "" for success
	}{
		{"rfc example", rfcChallenge, "S256", ""},
		{"all dashes and underscores", strings.Repeat("-", 42) + "A", "S256", ""},
		{"missing challenge", "", "S256", "code_challenge is required"},
		{"missing challenge and method", "", "", "code_challenge is required"},
		{"missing method means plain", rfcChallenge, "", "missing, which means plain"},
		{"plain", rfcChallenge, "plain", "plain is not allowed"},
		{"plain with verifier-like challenge", rfcVerifier, "plain", "plain is not allowed"},
		{"lowercase s256", rfcChallenge, "s256", "not supported"},
		{"S512", rfcChallenge, "S512", "not supported"},
		{"method with space", rfcChallenge, "S256 ", "not supported"},
		{"too short", rfcChallenge[:42], "S256", "base64url"},
		{"too long", rfcChallenge + "A", "S256", "base64url"},
		{"padded", rfcChallenge + "=", "S256", "base64url"},
		{"standard base64 plus", "+" + rfcChallenge[1:], "S256", "base64url"},
		{"standard base64 slash", "/" + rfcChallenge[1:], "S256", "base64url"},
		{"trailing bits set", rfcChallenge[:42] + "N", "S256", "base64url"},
		{"space", " " + rfcChallenge[1:], "S256", "base64url"},
		{"non-ASCII", "é" + rfcChallenge[2:], "S256", "base64url"},
		{"verifier sent as challenge", rfcVerifier + "AAAAAAAA", "S256", "base64url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateChallenge(tc.challenge, tc.method)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateChallenge = %v, want nil", err)
				}
				return
			}
			e := As(err)
			if e == nil || e.Code != CodeInvalidRequest || !strings.Contains(e.Description, tc.wantErr) {
				t.Errorf("ValidateChallenge = %v, want invalid_request containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestVerifyS256(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		name      string
		verifier  string
		challenge string
		want      bool
	}{
		{"rfc example", rfcVerifier, rfcChallenge, true},
		{"43 chars", strings.Repeat("~", 43), S256Challenge(strings.Repeat("~", 43)), true},
		{"128 chars", long, S256Challenge(long), true},
		{"all unreserved", "ABCXYZabcxyz0189-._~" + strings.Repeat("q", 23), S256Challenge("ABCXYZabcxyz0189-._~" + strings.Repeat("q", 23)), true},
		{"wrong verifier", strings.Repeat("b", 43), rfcChallenge, false},
		{"42 chars", strings.Repeat("a", 42), S256Challenge(strings.Repeat("a", 42)), false},
		{"129 chars", long + "a", S256Challenge(long + "a"), false},
		{"plain comparison refused", rfcVerifier, rfcVerifier, false},
		{"empty", "", S256Challenge(""), false},
		{"empty both", "", "", false},
		{"plus not unreserved", strings.Repeat("a", 42) + "+", S256Challenge(strings.Repeat("a", 42) + "+"), false},
		{"slash not unreserved", strings.Repeat("a", 42) + "/", S256Challenge(strings.Repeat("a", 42) + "/"), false},
		{"space", strings.Repeat("a", 42) + " ", S256Challenge(strings.Repeat("a", 42) + " "), false},
		{"non-ASCII", strings.Repeat("a", 41) + "é", S256Challenge(strings.Repeat("a", 41) + "é"), false},
		{"padded challenge", rfcVerifier, rfcChallenge + "=", false},
		{"case-changed challenge", rfcVerifier, strings.ToLower(rfcChallenge), false},
		{"standard-base64 challenge", rfcVerifier, strings.NewReplacer("-", "+", "_", "/").Replace(rfcChallenge), false},
		{"empty challenge", rfcVerifier, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyS256(tc.verifier, tc.challenge); got != tc.want {
				t.Errorf("VerifyS256(%q, %q) = %v, want %v", tc.verifier, tc.challenge, got, tc.want)
			}
		})
	}
}

func TestCheckVerifier(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		verifier  string
		code      string // "" for success
	}{
		{"match", rfcChallenge, rfcVerifier, ""},
		{"downgrade: verifier without challenge", "", rfcVerifier, CodeInvalidGrant},
		{"no PKCE at all", "", "", CodeInvalidGrant},
		{"missing verifier", rfcChallenge, "", CodeInvalidGrant},
		{"malformed verifier", rfcChallenge, "short", CodeInvalidRequest},
		{"mismatch", rfcChallenge, strings.Repeat("x", 43), CodeInvalidGrant},
		{"plain-style: verifier equals challenge", rfcChallenge, rfcChallenge, CodeInvalidGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckVerifier(tc.challenge, tc.verifier)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("CheckVerifier = %v", err)
				}
				return
			}
			if e := As(err); e == nil || e.Code != tc.code {
				t.Errorf("CheckVerifier = %v, want %s", err, tc.code)
			}
		})
	}
}
