// Package js holds the interoperability test with strict third-party
// JavaScript clients: interop_test.go runs npm openid-client (v6) and
// oauth4webapi (v3), pinned in package.json, through the authorization code
// flow with PKCE against a whole Gatehouse, with headless Chromium at the
// login and consent pages. The Node scripts (*.mjs) validate every response
// with the libraries; the test asserts their summaries. It is skipped with a
// notice until `npm ci` has installed node_modules here.
package js
