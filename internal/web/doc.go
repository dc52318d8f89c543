// Package web is the HTTP plumbing shared by every transport package (oidc, ui,
// admin, scim, console).
//
// It owns:
//
//   - [Mux], a thin layer over [http.ServeMux] whose handlers return an error
//     ([HandlerFunc]), and [Mux.Error], the one place where a [ciam.Kind]
//     becomes an HTTP status ([Status]) and a client-facing error body;
//   - middleware: request ids ([AssignRequestID], [RequestID]), panic recovery
//     ([Mux.Recover]), access logs ([AccessLog]), Prometheus metrics
//     ([Metrics]), security headers and CSP nonces ([SecurityHeaders],
//     [CSPNonce]), body limits ([Mux.BodyLimit]) and cross-origin protection
//     ([Mux.CrossOrigin]);
//   - browser helpers: CSRF tokens ([CSRF]), cookies with the house attributes
//     ([NewCookie]), open-redirect-safe redirects ([Redirect]), JSON responses
//     ([JSON]) and the client address behind trusted proxies ([ClientIP]).
//
// It does not own routes, authentication, sessions, templates or the OAuth
// error format (RFC 6749 errors belong to package oauth). It imports only the
// standard library, internal/ciam and the Prometheus client, so any transport
// may import it.
//
// A server typically assembles the chain like this, outermost first:
//
//	m := web.NewMux(log)
//	h := web.Chain(m,
//		web.AssignRequestID,
//		web.AccessLog(log),
//		metrics.Wrap,
//		m.Recover,
//		web.SecurityHeaders{HTTPS: publicURLIsHTTPS}.Wrap,
//		m.BodyLimit(1<<20),
//	)
//
// Middleware that needs the matched route (access log, metrics) reads it from
// per-request state that Mux fills in, so the order above may change freely.
// [Mux.CrossOrigin] and [CSRF.Protect] belong on the browser-facing form
// routes only: OAuth endpoints such as /token legitimately receive
// cross-origin requests.
package web
