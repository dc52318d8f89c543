package oauth

import (
	"net/netip"
	"net/url"
	"strings"
)

// MaxRedirectURILength is the longest redirect URI that may be registered, in
// bytes. Browsers and proxies start truncating URLs past about 2000
// characters, and the authorization response appends code, state and iss.
const MaxRedirectURILength = 2000

// ValidateRedirectURI checks a redirect URI at registration (admin API, CLI,
// dynamic client registration). Because [MatchRedirectURI] compares strings
// exactly (RFC 9700 section 4.1.3), only URIs in one canonical spelling are
// accepted, so that the value registered is the value a client will send.
// The error is an *Error with code invalid_redirect_uri (RFC 7591 section
// 3.2.2) and a description saying what to fix; it also reads as a
// *ciam.Error of Kind Invalid (see [Error]).
//
// The rules, in the order they are checked:
//
//   - 1 to [MaxRedirectURILength] bytes, all printable ASCII: no spaces,
//     control characters or non-ASCII characters (internationalised host
//     names must be registered in their xn-- form, which also keeps IDN
//     look-alikes visible); none of the characters RFC 3986 section 2 leaves
//     out of URIs (" < > \ ^ ` { | }), so no backslash tricks.
//   - no fragment, no '#' at all (RFC 6749 section 3.1.2);
//   - no '*' anywhere: there is no wildcard or pattern matching (RFC 9700
//     section 2.1);
//   - an absolute URI with a lowercase scheme (RFC 3986 section 6.2.2.1);
//     javascript:, data:, vbscript:, file:, blob:, filesystem: and about: are
//     refused whatever their case (security.md 2.1, CVE-2026-9086).
//   - https: an authority with a host is required.
//   - http: only for loopback (OAuth 2.1 section 2.3.1, RFC 8252 section
//     7.3): the host must be exactly 127.0.0.1, [::1] or localhost. RFC 8252
//     section 8.3 recommends the IP literals; localhost is accepted for
//     development but gets exact matching only, with no port leniency.
//   - any other scheme is a private-use scheme for native apps (RFC 8252
//     section 7.1): it must be a reverse domain name with at least one dot
//     (com.example.app), and the URI must be hierarchical:
//     com.example.app:/path or com.example.app://host/path, never opaque
//     (com.example.app:path).
//   - the authority has no user information ('@' anywhere in it is refused,
//     however many there are: security.md 2.1, CVE-2026-7504); the host is a
//     lowercase DNS name of letters, digits and '-' without a trailing dot,
//     a dotted-decimal IPv4 address, or a bracketed IPv6 address in RFC 5952
//     form without a zone. A host that a browser would read as a number
//     (127.1, 0x7f.0.0.1, 2130706433) is refused.
//   - a port, if written, is 1-65535 without leading zeros and is not the
//     scheme's default (no :443 for https, no :80 for http; RFC 3986 section
//     6.2.3).
//   - http(s) URIs have a non-empty path (https://app.example/ rather than
//     https://app.example; RFC 3986 section 6.2.3).
//   - the path has no dot segments ("." or ".."), plain, percent-encoded in
//     any case, or followed by ";params" (security.md 2.1, CVE-2026-3872's
//     "..;/"), no empty segments ("//"), and no encoded '/' or '\' (%2F,
//     %5C); '[' and ']' appear only around an IPv6 host.
//   - percent-encodings are well-formed, use uppercase hex, do not encode an
//     unreserved character and do not encode a control character (RFC 3986
//     sections 2.1, 6.2.2.1, 6.2.2.2).
//   - a query, which RFC 6749 section 3.1.2 allows, is not empty ("cb?").
//   - finally, Go's URL parser must accept it and serialise it back to the
//     same string.
func ValidateRedirectURI(raw string) error {
	if raw == "" {
		return badRedirect("is empty.")
	}
	if len(raw) > MaxRedirectURILength {
		return badRedirect("is longer than 2000 characters.")
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c <= ' ' || c >= 0x7f:
			return badRedirect("contains a space, a control character or a non-ASCII character; write international host names in their xn-- (punycode) form.")
		case c == '#':
			return badRedirect("must not contain a fragment ('#') (RFC 6749 section 3.1.2).")
		case c == '*':
			return badRedirect("must not contain a wildcard ('*'): redirect URIs are compared exactly.")
		case c == '\\':
			return badRedirect("must not contain a backslash.")
		case strings.IndexByte("\"<>^`{|}", c) >= 0:
			return badRedirect("contains a character that is not allowed in a URI (RFC 3986 section 2): one of \" < > ^ ` { | }.")
		}
	}

	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return badRedirect("must be an absolute URI that starts with a scheme such as https: (RFC 6749 section 3.1.2).")
	}
	switch strings.ToLower(scheme) {
	case "javascript", "data", "vbscript", "file", "blob", "filesystem", "about":
		return badRedirect("must not use the " + strings.ToLower(scheme) + ": scheme.")
	}
	if err := checkScheme(scheme); err != nil {
		return err
	}

	hasAuthority := strings.HasPrefix(rest, "//")
	var authority string
	pathQuery := rest
	if hasAuthority {
		a := rest[2:]
		end := strings.IndexAny(a, "/?")
		if end < 0 {
			end = len(a)
		}
		authority, pathQuery = a[:end], a[end:]
	}
	path, query, hasQuery := strings.Cut(pathQuery, "?")

	switch scheme {
	case "https", "http":
		if !hasAuthority || authority == "" {
			return badRedirect("must have a host (" + scheme + "://host/path).")
		}
		host, err := checkAuthority(authority, scheme)
		if err != nil {
			return err
		}
		if scheme == "http" && host != "127.0.0.1" && host != "[::1]" && host != "localhost" {
			return badRedirect("may use http only for a loopback host (127.0.0.1, [::1] or localhost); use https (OAuth 2.1 section 2.3.1, RFC 8252 section 7.3).")
		}
		if path == "" {
			return badRedirect("must have a path: add a trailing '/' after the host (RFC 3986 section 6.2.3).")
		}
	default:
		if !strings.Contains(scheme, ".") {
			return badRedirect("uses a custom scheme that is not a reverse domain name: use one like com.example.app (RFC 8252 section 7.1), or https.")
		}
		if hasAuthority {
			if authority == "" {
				return badRedirect("has an empty host ('//' followed by no host); write " + scheme + ":/path instead.")
			}
			if _, err := checkAuthority(authority, scheme); err != nil {
				return err
			}
		} else if !strings.HasPrefix(path, "/") {
			return badRedirect("must be of the form " + scheme + ":/path (RFC 8252 section 7.1).")
		}
	}
	if path != "" {
		if err := checkPath(path); err != nil {
			return err
		}
	}
	if hasQuery && query == "" {
		return badRedirect("has an empty query ('?' with nothing after it); remove the '?'.")
	}
	if strings.ContainsAny(pathQuery, "[]") {
		return badRedirect("may contain '[' or ']' only around an IPv6 host.")
	}
	if err := checkPercent(pathQuery); err != nil {
		return err
	}

	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return badRedirect("is not a valid URI.")
	}
	if s := u.String(); s != raw {
		return badRedirect("is not in canonical form; write it as " + s)
	}
	return nil
}

func badRedirect(msg string) *Error {
	return New(CodeInvalidRedirectURI, "The redirect URI "+msg)
}

// checkScheme checks RFC 3986 section 3.1's ALPHA *( ALPHA / DIGIT / "+" /
// "-" / "." ), lowercase only.
func checkScheme(scheme string) error {
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		switch {
		case c >= 'A' && c <= 'Z':
			return badRedirect("must have a lowercase scheme (RFC 3986 section 6.2.2.1).")
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return badRedirect("has an invalid scheme (RFC 3986 section 3.1).")
		}
	}
	if scheme[0] == '.' || scheme[len(scheme)-1] == '.' || strings.Contains(scheme, "..") {
		return badRedirect("has an invalid scheme (RFC 3986 section 3.1).")
	}
	return nil
}

// checkAuthority checks host[:port] and returns the host (IPv6 in brackets).
func checkAuthority(authority, scheme string) (string, error) {
	if strings.Contains(authority, "@") {
		return "", badRedirect("must not contain user information ('@' before the host).")
	}
	var host, portPart string
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", badRedirect("has an invalid IPv6 host.")
		}
		ip := authority[1:end]
		addr, err := netip.ParseAddr(ip)
		if err != nil || !addr.Is6() || addr.Zone() != "" || addr.Is4In6() {
			return "", badRedirect("has an invalid IPv6 host (zones and IPv4-mapped addresses are not allowed).")
		}
		if addr.String() != ip {
			return "", badRedirect("must write its IPv6 host in canonical form, [" + addr.String() + "] (RFC 5952).")
		}
		host, portPart = authority[:end+1], authority[end+1:]
		if portPart != "" && portPart[0] != ':' {
			return "", badRedirect("has an invalid IPv6 host.")
		}
	} else {
		host = authority
		if i := strings.IndexByte(authority, ':'); i >= 0 {
			host, portPart = authority[:i], authority[i:]
		}
		if err := checkHostName(host); err != nil {
			return "", err
		}
	}
	if portPart != "" {
		port := portPart[1:]
		if !validPort(port) {
			return "", badRedirect("has an invalid port: use 1 to 65535, without leading zeros.")
		}
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			return "", badRedirect("must not spell out the default port :" + port + " (RFC 3986 section 6.2.3).")
		}
	}
	return host, nil
}

// validPort reports whether p is a decimal port 1-65535 without leading zeros.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// checkHostName checks a registered name or IPv4 address (RFC 3986 section
// 3.2.2, restricted to DNS host names: RFC 1123 section 2.1).
func checkHostName(h string) error {
	if h == "" {
		return badRedirect("has no host.")
	}
	if len(h) > 253 {
		return badRedirect("has a host name longer than 253 characters.")
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if l == "" {
			if i == len(labels)-1 {
				return badRedirect("must not have a host that ends with a dot.")
			}
			return badRedirect("has a host with an empty label ('..').")
		}
		if len(l) > 63 {
			return badRedirect("has a host label longer than 63 characters.")
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			case c >= 'A' && c <= 'Z':
				return badRedirect("must have a lowercase host (RFC 3986 section 6.2.2.1).")
			default:
				return badRedirect("may have only letters, digits, '-' and '.' in its host; write international names in their xn-- (punycode) form.")
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return badRedirect("has a host label that starts or ends with '-'.")
		}
	}
	// WHATWG URL parsing treats a host whose last label is a number as an
	// IPv4 address in any of several notations; allow only the canonical one.
	if last := labels[len(labels)-1]; allDigits(last) || (strings.HasPrefix(last, "0x") && allHex(last[2:])) {
		addr, err := netip.ParseAddr(h)
		if err != nil || !addr.Is4() || addr.String() != h {
			return badRedirect("has a host that looks like an IPv4 address but is not in dotted-decimal form (like 192.0.2.1).")
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// checkPath checks a path that is either empty or starts with '/'.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return badRedirect("has an invalid path.")
	}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if seg == "" && i != len(segs)-1 {
			return badRedirect("must not contain an empty path segment ('//').")
		}
		d := strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
		if j := strings.IndexByte(d, ';'); j >= 0 {
			d = d[:j]
		}
		if d == "." || d == ".." {
			return badRedirect("must not contain '.' or '..' path segments, encoded or not (RFC 3986 section 5.2.4).")
		}
		if u := strings.ToUpper(seg); strings.Contains(u, "%2F") || strings.Contains(u, "%5C") {
			return badRedirect("must not contain an encoded '/' or '\\' (%2F, %5C) in its path.")
		}
	}
	return nil
}

// checkPercent checks every percent-encoding in s.
func checkPercent(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return badRedirect("has a malformed percent-encoding ('%' must be followed by two hex digits).")
		}
		hi, lo := s[i+1], s[i+2]
		b := unhex(hi)<<4 | unhex(lo)
		if b < 0x20 || b == 0x7f {
			return badRedirect("must not percent-encode control characters.")
		}
		if b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~' {
			return badRedirect("must not percent-encode letters, digits, '-', '.', '_' or '~' (RFC 3986 section 6.2.2.2).")
		}
		if hi >= 'a' || lo >= 'a' {
			return badRedirect("must use uppercase hex digits in percent-encodings (RFC 3986 section 6.2.2.1).")
		}
		i += 2
	}
	return nil
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// MatchRedirectURI finds requested among a client's registered redirect URIs
// and returns the registered value it matched.
//
// Matching is exact string comparison (RFC 9700 sections 2.1 and 4.1.3,
// OAuth 2.1 section 2.3.1): no case folding, no normalisation, no
// percent-decoding, no trailing-slash or query leniency, no prefix or pattern
// matching. Empty registered entries never match.
//
// The one exception is RFC 8252 section 7.3: a native app listening on a
// loopback IP address picks its port at run time. If requested is
// http://127.0.0.1[:port]/... or http://[::1][:port]/..., with a valid port
// (1-65535, no leading zeros) or none, it matches a registered URI with the
// same IP literal, with or without a port, whose remainder (path and query,
// which must start with '/') is byte-for-byte the same. Only the port may
// differ: scheme, host, path and query may not (security.md 2.1,
// CVE-2020-15233, CVE-2024-8883). http://localhost is not a loopback IP
// literal and is matched exactly, and localhost never matches 127.0.0.1.
//
// On a loopback match the client must be redirected to requested (the port
// it listens on), not to the returned value; the token endpoint must compare
// its redirect_uri with the requested value byte for byte.
func MatchRedirectURI(registered []string, requested string) (string, bool) {
	if requested == "" {
		return "", false
	}
	for _, r := range registered {
		if r == requested {
			return r, true
		}
	}
	host, _, rest, ok := splitLoopbackIP(requested)
	if !ok {
		return "", false
	}
	for _, r := range registered {
		if h, _, rr, ok := splitLoopbackIP(r); ok && h == host && rr == rest {
			return r, true
		}
	}
	return "", false
}

// splitLoopbackIP splits a loopback-IP redirect URI into its
// scheme-and-host prefix ("http://127.0.0.1" or "http://[::1]"), its port
// ("" when none) and the rest, which must start with '/'. It works on the
// string alone, so nothing is normalised.
func splitLoopbackIP(s string) (prefix, port, rest string, ok bool) {
	for _, p := range [...]string{"http://127.0.0.1", "http://[::1]"} {
		if !strings.HasPrefix(s, p) {
			continue
		}
		rest = s[len(p):]
		if strings.HasPrefix(rest, ":") {
			end := 1
			for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
				end++
			}
			port = rest[1:end]
			if !validPort(port) {
				return "", "", "", false
			}
			rest = rest[end:]
		}
		if !strings.HasPrefix(rest, "/") {
			return "", "", "", false
		}
		return p, port, rest, true
	}
	return "", "", "", false
}
