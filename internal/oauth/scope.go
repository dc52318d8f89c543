package oauth

import "strings"

// MaxScopeLength bounds the scope parameter, in bytes, so that parsing and
// set operations stay cheap whatever a client sends.
const MaxScopeLength = 4096

// ParseScope parses a scope parameter (RFC 6749 section 3.3) into its
// scope tokens, in order of first appearance, without duplicates (the
// parameter denotes a set; order is kept so that results are deterministic).
// Tokens are case-sensitive and kept as is.
//
// Decisions:
//
//   - "" (and a value of only spaces) is no scope: nil, nil. Whether that
//     means a default scope or an error is the endpoint's decision.
//   - The only separator is SP (%x20). RFC 6749's grammar allows exactly
//     one SP between tokens; we also accept several, and leading or trailing
//     SP, because that cannot change what any token says and clients get it
//     wrong. Tabs, newlines and every other whitespace are refused.
//   - A token is 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII except SP,
//     '"' and '\'. Anything else (control characters, DEL, non-ASCII,
//     invalid UTF-8) is refused with invalid_scope, never dropped.
//   - A value longer than [MaxScopeLength] is refused with invalid_scope.
//
// ParseScope does not know which scopes exist; see [Subset].
func ParseScope(s string) ([]string, error) {
	if len(s) > MaxScopeLength {
		return nil, InvalidScope("The scope parameter is too long.")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && !scopeChar(c) {
			return nil, InvalidScope(`The scope parameter may contain only printable ASCII characters other than '"' and '\', separated by spaces (RFC 6749 section 3.3).`)
		}
	}
	var out []string
	var seen map[string]struct{}
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if len(out) < 8 {
			// Small sets: a linear scan is cheaper than a map.
			if Contains(out, tok) {
				continue
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 16)
				for _, t := range out {
					seen[t] = struct{}{}
				}
			}
			if _, dup := seen[tok]; dup {
				continue
			}
			seen[tok] = struct{}{}
		}
		out = append(out, tok)
	}
	return out, nil
}

// scopeChar reports whether c may appear in a scope token: %x21 / %x23-5B /
// %x5D-7E (RFC 6749 section 3.3).
func scopeChar(c byte) bool {
	return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\'
}

// JoinScope joins scope tokens with single spaces: the canonical form of a
// scope parameter (RFC 6749 section 3.3). For a result of [ParseScope],
// ParseScope(JoinScope(s)) returns s again. It does not validate or
// deduplicate.
func JoinScope(scopes []string) string {
	return strings.Join(scopes, " ")
}

// Contains reports whether scopes holds scope (exact, case-sensitive).
func Contains(scopes []string, scope string) bool {
	for _, s := range scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Subset reports whether every token of requested is in allowed (exact,
// case-sensitive): the check that a request stays within what a client may
// ask for, or a refresh within what was granted (RFC 6749 section 6). An
// empty requested is a subset of anything.
func Subset(requested, allowed []string) bool {
	if len(requested)*len(allowed) <= 64 {
		for _, r := range requested {
			if !Contains(allowed, r) {
				return false
			}
		}
		return true
	}
	set := make(map[string]struct{}, len(allowed))
	for _, a := range allowed {
		set[a] = struct{}{}
	}
	for _, r := range requested {
		if _, ok := set[r]; !ok {
			return false
		}
	}
	return true
}
