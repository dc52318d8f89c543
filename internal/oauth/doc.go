// Package oauth holds the OAuth 2.1 building blocks that every Gatehouse
// protocol endpoint shares and that must behave identically everywhere. It does
// no I/O beyond writing HTTP responses, keeps no state, and imports only the
// standard library and internal/ciam, so any package may use it.
//
// It owns:
//
//   - the RFC 6749 error vocabulary: [Error], a constructor per standard code
//     (RFC 6749, RFC 6750, RFC 7009, RFC 7591, OpenID Connect Core), and the
//     writers for the three places an error goes: a JSON body ([WriteJSON],
//     [WriteBasic]), a Bearer challenge ([WriteBearer]) and the query of a
//     front-channel redirect ([RedirectParams]); [As] turns any error into the
//     one the client may see without leaking causes;
//   - PKCE, S256 only ([ValidateChallenge], [VerifyS256], [CheckVerifier],
//     [S256Challenge]), RFC 7636 as profiled by OAuth 2.1 and RFC 9700;
//   - redirect URIs: what may be registered ([ValidateRedirectURI]) and the
//     exact-match rule with its one loopback-port exception
//     ([MatchRedirectURI]), RFC 9700 section 4.1 and RFC 8252 section 7.3;
//   - scopes ([ParseScope], [JoinScope], [Contains], [Subset]), RFC 6749
//     section 3.3;
//   - client-authentication parsing at the back-channel endpoints
//     ([ParseClientAuth], [Param]), RFC 6749 section 2.3 and RFC 7523. It only
//     says who the client claims to be and how; verifying secrets and
//     assertions needs the store and the keys and belongs to the caller.
//
// It does not own grants, tokens, sessions, consent, discovery documents or
// the endpoints themselves (package oidc), and it never decides policy that
// depends on a client's registration.
//
// The peer vulnerabilities this package designs out are listed in
// shared/reference/security.md section 2: lenient redirect-URI matching
// (case folding, loopback prefixes, ignored queries, path traversal, userinfo
// tricks), PKCE plain and PKCE downgrade, and unsigned client assertions.
// Every parser here is fuzzed (go test -fuzz).
package oauth
