package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// ChallengeMethodS256 is the only PKCE code_challenge_method Gatehouse
// accepts (RFC 7636 section 4.2). "plain" is refused: OAuth 2.1 still allows
// it, but RFC 9700 section 2.1.1 says to use S256 and ASVS 10.4.6 forbids
// plain (security.md section 1.2). Advertise exactly this value in
// code_challenge_methods_supported (RFC 8414).
const ChallengeMethodS256 = "S256"

// Verifier length bounds (RFC 7636 section 4.1).
const (
	MinVerifierLength = 43
	MaxVerifierLength = 128
)

// challengeLength is the length of base64url(SHA-256(x)) without padding.
const challengeLength = 43

// ValidateChallenge checks the code_challenge and code_challenge_method of an
// authorization (or pushed authorization) request. PKCE is mandatory for
// every client in Gatehouse (DESIGN.md section 7, OAuth 2.1 section 4.1.1),
// so an empty challenge is an error. method must be exactly "S256"
// (case-sensitive, RFC 7636 section 4.3); an omitted method means "plain"
// (RFC 7636 section 4.3) and is refused like "plain" itself. challenge must be
// the unpadded base64url encoding of 32 bytes: 43 characters of
// [A-Za-z0-9_-] whose last character carries no stray bits (RFC 7636 section
// 4.2). Errors are invalid_request (RFC 7636 section 4.4.1).
func ValidateChallenge(challenge, method string) error {
	if challenge == "" {
		return InvalidRequest("code_challenge is required: this server requires PKCE with code_challenge_method=S256 (RFC 7636).")
	}
	switch method {
	case ChallengeMethodS256:
	case "":
		return InvalidRequest("code_challenge_method is missing, which means plain; only S256 is supported.")
	case "plain":
		return InvalidRequest("code_challenge_method plain is not allowed; use S256.")
	default:
		return InvalidRequest("code_challenge_method is not supported; use S256.")
	}
	if !validChallenge(challenge) {
		return InvalidRequest("code_challenge must be the base64url encoding (without padding) of a SHA-256 hash: 43 characters of A-Z, a-z, 0-9, '-' and '_'.")
	}
	return nil
}

// validChallenge reports whether c is the canonical unpadded base64url
// encoding of 32 bytes.
func validChallenge(c string) bool {
	if len(c) != challengeLength {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// validVerifier reports whether v is a well-formed code_verifier: 43 to 128
// characters of the unreserved set [A-Za-z0-9-._~] (RFC 7636 section 4.1).
func validVerifier(v string) bool {
	if len(v) < MinVerifierLength || len(v) > MaxVerifierLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// S256Challenge returns BASE64URL-ENCODE(SHA256(ASCII(verifier))), the S256
// code_challenge for verifier (RFC 7636 section 4.2). It does not check the
// verifier; clients (Gatehouse as a relying party) generate it.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyS256 reports whether verifier is well-formed (see [MinVerifierLength])
// and its S256 challenge equals challenge (RFC 7636 section 4.6). The
// comparison takes constant time for equal-length inputs.
func VerifyS256(verifier, challenge string) bool {
	if !validVerifier(verifier) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}

// CheckVerifier is the PKCE check of the token endpoint for the
// authorization_code grant, with downgrade protection in one place. challenge
// is the code_challenge stored with the authorization code (always S256, see
// [ValidateChallenge]); verifier is the request's code_verifier.
//
//   - no stored challenge: invalid_grant. A verifier sent for a code issued
//     without a challenge is the PKCE downgrade attack (RFC 9700 section
//     2.1.1 / 4.8, security.md section 2.2) and MUST be refused; with no
//     verifier either, the code broke Gatehouse's PKCE-for-everyone rule.
//   - no verifier: invalid_grant (the code is bound to a challenge).
//   - malformed verifier: invalid_request (RFC 7636 section 4.1 syntax).
//   - mismatch: invalid_grant (RFC 7636 section 4.6).
func CheckVerifier(challenge, verifier string) error {
	switch {
	case challenge == "" && verifier != "":
		return InvalidGrant("code_verifier was sent, but the authorization request had no code_challenge.")
	case challenge == "":
		return InvalidGrant("The authorization code was issued without PKCE.")
	case verifier == "":
		return InvalidGrant("code_verifier is required: the authorization request had a code_challenge.")
	case !validVerifier(verifier):
		return InvalidRequest("code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 section 4.1).")
	case !VerifyS256(verifier, challenge):
		return InvalidGrant("code_verifier does not match the code_challenge.")
	}
	return nil
}
