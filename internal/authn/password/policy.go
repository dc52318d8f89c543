package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// Codes of the errors Check returns: stable identifiers that clients and
// message catalogues key on.
const (
	CodeRequired           = "password_required"            // empty
	CodeInvalid            = "password_invalid"             // not valid UTF-8
	CodeOnlyWhitespace     = "password_only_whitespace"     // nothing but spaces
	CodeTooShort           = "password_too_short"           // fewer characters than the tenant's minimum
	CodeTooLong            = "password_too_long"            // more than ciam.PasswordMaxLength characters
	CodeContainsIdentifier = "password_contains_identifier" // the user's email or username, or little else
	CodeCommon             = "password_common"              // on the blocklist
)

// Field is the form field Check's errors belong to.
const Field = "password"

// Policy is what a new password must be, after NIST SP 800-63B-4: long
// enough, not too long, not common, not the account's own identifier. It has
// no composition rules (no "one digit, one symbol"): they make passwords
// harder to remember, not to guess.
type Policy struct {
	// Blocklist holds the common passwords to refuse; nil refuses none.
	Blocklist *Blocklist
}

// NewPolicy returns a Policy that refuses the passwords of the embedded
// blocklist (LoadBlocklist).
func NewPolicy() (*Policy, error) {
	b, err := LoadBlocklist()
	if err != nil {
		return nil, err
	}
	return &Policy{Blocklist: b}, nil
}

// Check returns nil if pw may be set as a password, and otherwise a
// *ciam.Error of Kind Invalid on Field with one of the Code constants and a
// message that says what to do instead.
//
// Length is counted in characters (Unicode code points) of pw's NFKC form,
// the form that is hashed. minLen is the tenant's minimum
// (ciam.Tenant.EffectivePasswordMin); below ciam.PasswordMinMultiFactor, the
// lowest a tenant may set, that is used instead. identifiers are the
// account's email address, username and the like: a password that is one of
// them, or one of them with too little added to be a password on its own, is
// refused. Nothing is truncated.
func (p *Policy) Check(pw string, minLen int, identifiers ...string) error {
	minLen = max(minLen, ciam.PasswordMinMultiFactor)
	minLen = min(minLen, ciam.PasswordMaxLength)
	switch {
	case pw == "":
		return invalid(CodeRequired, "Enter a password.")
	case !utf8.ValidString(pw):
		return invalid(CodeInvalid, "The password contains bytes that are not text. Type it again.")
	}
	n := Normalize(pw)
	if strings.TrimFunc(n, unicode.IsSpace) == "" {
		return invalid(CodeOnlyWhitespace, "A password can't be only spaces. A short sentence or several unrelated words work well.")
	}
	switch count := utf8.RuneCountInString(n); {
	case count < minLen:
		return invalid(CodeTooShort, "Use at least %d characters. A short sentence or several unrelated words work well.", minLen)
	case count > ciam.PasswordMaxLength:
		return invalid(CodeTooLong, "Use at most %d characters; this password has %d.", ciam.PasswordMaxLength, count)
	}
	if containsIdentifier(n, minLen, identifiers) {
		return invalid(CodeContainsIdentifier, "Don't build your password from your email address or username: they are the first thing an attacker tries. Choose something unrelated to your account.")
	}
	if p != nil && (p.Blocklist.Contains(n) || p.Blocklist.Contains(strings.TrimFunc(n, unicode.IsSpace))) {
		return invalid(CodeCommon, "This password is one of the most commonly used passwords, so attackers try it first. Choose another one: a short sentence or several unrelated words work well.")
	}
	return nil
}

// containsIdentifier reports whether pw (NFKC) is one of the identifiers, or
// the local part of an email address among them, ignoring case; or contains
// one of them (of at least 3 characters) with fewer than minLen characters
// besides, as "alice2024" does for alice@example.com.
func containsIdentifier(pw string, minLen int, identifiers []string) bool {
	fp := fold(pw)
	for _, id := range identifiers {
		id = strings.TrimFunc(fold(id), unicode.IsSpace)
		if id == "" {
			continue
		}
		parts := []string{id}
		if i := strings.LastIndexByte(id, '@'); i > 0 {
			parts = append(parts, id[:i])
		}
		for _, part := range parts {
			if fp == part {
				return true
			}
			if utf8.RuneCountInString(part) >= 3 && strings.Contains(fp, part) {
				rest := strings.TrimFunc(strings.ReplaceAll(fp, part, ""), unicode.IsSpace)
				if utf8.RuneCountInString(rest) < minLen {
					return true
				}
			}
		}
	}
	return false
}

func invalid(code, format string, args ...any) *ciam.Error {
	e := ciam.Errorf(ciam.Invalid, code, format, args...)
	e.Field = Field
	return e
}
