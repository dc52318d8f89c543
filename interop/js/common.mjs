// Shared parts of the interoperability scripts: the line protocol with
// interop_test.go, a fetch that records every exchange with the provider,
// and the checks the specifications ask of a relying party that the
// libraries leave to the application (at_hash, the rules for ID tokens
// from a refresh, claim types, headers).
//
// Protocol (one JSON object per line): the Go test writes the flow's
// configuration on stdin; the script prints {"event":"authorize","url":...};
// the Go test drives a browser and writes the callback it received
// ({"method","url","content_type","body"}); the script prints
// {"event":"summary",...} and exits 0. Any failed check prints the error on
// stderr and exits 1, so a summary means every check passed; its fields say
// which ran and what was seen. Diagnostics go to stderr only.

import { createHash, webcrypto } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import * as oauth from 'oauth4webapi'

const lines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]()

/** readJSON reads the next line of stdin as JSON. */
export async function readJSON(what) {
  const { value, done } = await lines.next()
  if (done) throw new Error(`stdin closed while waiting for ${what}`)
  return JSON.parse(value)
}

/** send prints one protocol message. */
export function send(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** version returns the installed version of an npm package. */
export function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')).version
}

export class CheckError extends Error {}

/** expect fails the flow with msg (which names the spec clause) unless cond. */
export function expect(cond, msg) {
  if (!cond) throw new CheckError(msg)
}

/**
 * recordingFetch is a fetch for the libraries' customFetch option. Every
 * request must stay on the issuer's origin; every exchange is recorded in
 * trace for checkTrace.
 */
export function recordingFetch(trace, issuer) {
  const origin = new URL(issuer).origin
  return async (url, init = {}) => {
    const u = new URL(url)
    expect(u.origin === origin, `a request went to ${u.origin}, not to the issuer's origin ${origin}`)
    const res = await fetch(url, init)
    trace.push({
      method: init.method ?? 'GET',
      path: u.pathname,
      status: res.status,
      contentType: res.headers.get('content-type'),
      cacheControl: res.headers.get('cache-control'),
      pragma: res.headers.get('pragma'),
    })
    return res
  }
}

/**
 * checkTrace checks what the libraries do not: media types (they look at
 * Content-Type only when a body fails to parse as JSON) and caching headers.
 * It returns the number of successful token responses.
 */
export function checkTrace(trace, as) {
  const path = (ep) => new URL(as[ep]).pathname
  const tokenPath = path('token_endpoint')
  const json = {
    // RFC 6749 5.1 and 5.2, RFC 7662 2.2 and 2.3, OpenID Connect Core 5.3.2.
    [tokenPath]: 'token response (RFC 6749 5.1, 5.2)',
    [path('introspection_endpoint')]: 'introspection response (RFC 7662 2.2)',
    [path('userinfo_endpoint')]: 'UserInfo response (OpenID Connect Core 5.3.2)',
  }
  let tokenResponses = 0
  for (const t of trace) {
    const mediaType = t.contentType?.split(';')[0].trim().toLowerCase()
    if (t.path.includes('/.well-known/')) {
      // OpenID Connect Discovery 4.2, RFC 8414 3.2.
      expect(t.status === 200 && mediaType === 'application/json', `metadata ${t.path}: ${t.status} ${t.contentType}`)
    } else if (t.path === path('jwks_uri')) {
      expect(mediaType === 'application/json' || mediaType === 'application/jwk-set+json', `JWKS Content-Type ${t.contentType} (RFC 7517 8.5)`)
    } else if (json[t.path] && (t.status === 200 || (t.status === 400 && t.path === tokenPath))) {
      expect(mediaType === 'application/json', `${json[t.path]} with Content-Type ${t.contentType}`)
    }
    if (t.path === tokenPath && t.status === 200) {
      tokenResponses++
      // RFC 6749 section 5.1: "The authorization server MUST include the
      // HTTP "Cache-Control" response header field with a value of "no-store"".
      expect(/(^|,)\s*no-store\s*(,|$)/i.test(t.cacheControl ?? ''), `token response without Cache-Control: no-store (RFC 6749 section 5.1): ${t.cacheControl}`)
    }
  }
  return tokenResponses
}

/** checkMetadata checks the discovered metadata a strict client relies on. */
export function checkMetadata(as, issuer) {
  expect(as.issuer === issuer, `metadata issuer ${as.issuer}, want ${issuer}`)
  for (const ep of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
    expect(typeof as[ep] === 'string' && as[ep].startsWith(issuer + '/'), `metadata ${ep} ${as[ep]} is not under the issuer`)
  }
  // OAuth 2.1 section 7.5.2 / RFC 7636: S256 must be offered; plain must not.
  expect(as.code_challenge_methods_supported?.includes('S256'), 'metadata lacks code_challenge_methods_supported S256')
  expect(!as.code_challenge_methods_supported?.includes('plain'), 'metadata offers PKCE plain')
  // RFC 9207 section 3: the provider says it sends iss, so clients require it.
  expect(as.authorization_response_iss_parameter_supported === true, 'metadata lacks authorization_response_iss_parameter_supported (RFC 9207)')
  expect(as.response_types_supported?.includes('code'), 'metadata lacks response_type code')
  expect(as.subject_types_supported?.length > 0, 'metadata lacks subject_types_supported (OpenID Connect Discovery 3, REQUIRED)')
  expect(as.id_token_signing_alg_values_supported?.includes('RS256'), 'metadata lacks RS256 in id_token_signing_alg_values_supported (OpenID Connect Discovery 3: MUST include RS256)')
}

function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
}

/** decodeJwt returns a JWS's header and payload, unverified (the library verified). */
export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.')
  return { header: b64json(h), claims: b64json(p) }
}

function hashFor(alg) {
  switch (alg) {
    case 'RS256': case 'PS256': case 'ES256': return 'sha256'
    case 'RS384': case 'PS384': case 'ES384': return 'sha384'
    // OpenID Connect Core 1.0 (errata set 2) 3.1.3.6 and 3.3.2.11: EdDSA
    // with Ed25519 hashes with SHA-512.
    case 'RS512': case 'PS512': case 'ES512': case 'EdDSA': case 'Ed25519': return 'sha512'
  }
  throw new CheckError(`no at_hash hash function for alg ${alg}`)
}

/** leftHalfHash is at_hash (OpenID Connect Core 3.1.3.6, 3.2.2.9). */
export function leftHalfHash(alg, value) {
  const d = createHash(hashFor(alg)).update(Buffer.from(value, 'ascii')).digest()
  return d.subarray(0, d.length / 2).toString('base64url')
}

/**
 * checkIdToken adds to the library's ID token validation (signature, iss,
 * aud, exp, iat, nonce, azp) what OpenID Connect Core asks beyond it:
 * the registered alg, at_hash, claim types, auth_time, acr.
 */
export function checkIdToken(idToken, claims, { as, clientId, alg, accessToken, scope, nonce }) {
  const { header, claims: raw } = decodeJwt(idToken)
  expect(JSON.stringify(raw) === JSON.stringify(claims), 'the library returned claims other than the token\'s')
  expect(header.alg === alg, `ID token alg ${header.alg}, registered ${alg} (OpenID Connect Registration id_token_signed_response_alg)`)
  expect(typeof header.kid === 'string' && header.kid.length > 0, 'ID token header without kid')
  const now = Math.floor(Date.now() / 1000)
  expect(claims.iss === as.issuer, `iss ${claims.iss}`)
  expect(claims.aud === clientId || (Array.isArray(claims.aud) && claims.aud.includes(clientId)), `aud ${claims.aud}`)
  expect(claims.azp === undefined || claims.azp === clientId, `azp ${claims.azp} (OpenID Connect Core 2)`)
  expect(typeof claims.sub === 'string' && claims.sub.length > 0 && claims.sub.length <= 255, 'sub must be a string of at most 255 characters (OpenID Connect Core 2)')
  expect(Number.isInteger(claims.exp) && claims.exp > now, 'exp must be an integer in the future')
  expect(Number.isInteger(claims.iat) && claims.iat <= now + 5 && claims.iat < claims.exp, 'iat must be an integer, not in the future, before exp')
  expect(Number.isInteger(claims.auth_time) && claims.auth_time <= claims.iat, 'auth_time must be an integer not after iat (OpenID Connect Core 2)')
  if (nonce !== undefined) expect(claims.nonce === nonce, 'nonce mismatch (OpenID Connect Core 3.1.3.7 item 11)')
  // OpenID Connect Core 3.1.3.8 (at_hash OPTIONAL in the code flow; when
  // present it must match).
  expect(typeof claims.at_hash === 'string', 'ID token without at_hash')
  expect(claims.at_hash === leftHalfHash(header.alg, accessToken), `at_hash ${claims.at_hash} does not match the access token (OpenID Connect Core 3.1.3.8, 3.2.2.9)`)
  if (claims.acr !== undefined) expect(as.acr_values_supported?.includes(claims.acr), `acr ${claims.acr} is not in acr_values_supported`)
  if (claims.amr !== undefined) expect(Array.isArray(claims.amr) && claims.amr.every((x) => typeof x === 'string'), 'amr must be an array of strings (OpenID Connect Core 2)')
  if (claims.sid !== undefined) expect(typeof claims.sid === 'string', 'sid must be a string')
  checkStandardClaims(claims, scope)
  return { header, claims }
}

/** checkStandardClaims checks the types of OpenID Connect Core 5.1 claims the scopes release. */
export function checkStandardClaims(claims, scope) {
  const scopes = scope.split(' ')
  if (scopes.includes('email')) {
    expect(typeof claims.email === 'string', 'email scope without an email claim')
    expect(typeof claims.email_verified === 'boolean', 'email_verified must be a JSON boolean (OpenID Connect Core 5.1)')
  }
  if (scopes.includes('profile')) {
    expect(claims.name === undefined || typeof claims.name === 'string', 'name must be a string')
    expect(claims.updated_at === undefined || Number.isInteger(claims.updated_at), 'updated_at must be a JSON number of seconds (OpenID Connect Core 5.1)')
  }
}

/** checkRefreshedIdToken applies OpenID Connect Core 12.2 to an ID token from a refresh. */
export function checkRefreshedIdToken(first, second) {
  for (const c of ['iss', 'sub', 'auth_time']) {
    expect(second[c] === first[c], `refreshed ID token ${c} ${second[c]} differs from the original ${first[c]} (OpenID Connect Core 12.2)`)
  }
  expect(JSON.stringify(second.aud) === JSON.stringify(first.aud), 'refreshed ID token aud differs (OpenID Connect Core 12.2)')
  expect(second.azp === first.azp, 'refreshed ID token azp differs (OpenID Connect Core 12.2)')
  expect(second.iat >= first.iat, 'refreshed ID token iat is older than the original (OpenID Connect Core 12.2)')
}

/** checkTokenResponse checks a token endpoint response's fields (RFC 6749 5.1). */
export function checkTokenResponse(t, scope, wantRefresh) {
  expect(t.token_type === 'bearer', `token_type ${t.token_type}`)
  expect(Number.isInteger(t.expires_in) && t.expires_in > 0, `expires_in ${t.expires_in}`)
  // RFC 6749 5.1: scope is OPTIONAL if identical to the requested scope,
  // REQUIRED otherwise; when present it must be what was granted.
  if (t.scope !== undefined) {
    expect([...t.scope.split(' ')].sort().join(' ') === [...scope.split(' ')].sort().join(' '), `granted scope ${t.scope}, requested ${scope}`)
  }
  if (wantRefresh) expect(typeof t.refresh_token === 'string' && t.refresh_token.length > 0, 'no refresh_token for offline_access')
}

/**
 * checkAccessToken validates the access token as a resource server would,
 * with oauth4webapi's RFC 9068 validation (typ at+jwt, signature through
 * the JWKS, iss, exp, aud, sub, iat, jti, client_id).
 */
export async function checkAccessToken(as, accessToken, clientId, userSub, fetchFn) {
  const req = new Request(as.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } })
  const claims = await oauth.validateJwtAccessToken(as, req, clientId, {
    [oauth.allowInsecureRequests]: true, // plain http on loopback only
    [oauth.customFetch]: fetchFn,
  })
  expect(claims.client_id === clientId, `access token client_id ${claims.client_id}`)
  expect(claims.sub === userSub, 'access token sub differs from the ID token sub (RFC 9068 2.2)')
  expect(typeof claims.scope === 'string', 'access token without scope (RFC 9068 2.2.3)')
  return claims
}

/** checkIntrospection checks an RFC 7662 answer for an active token. */
export function checkIntrospection(r, { as, clientId, sub }) {
  expect(r.active === true, 'token is not active')
  expect(r.client_id === clientId, `introspection client_id ${r.client_id}`)
  expect(r.sub === sub, `introspection sub ${r.sub}`)
  expect(r.iss === undefined || r.iss === as.issuer, `introspection iss ${r.iss}`)
  expect(r.exp === undefined || Number.isInteger(r.exp), 'introspection exp must be an integer (RFC 7662 2.2)')
  expect(r.scope === undefined || typeof r.scope === 'string', 'introspection scope must be a space-separated string (RFC 7662 2.2)')
}

/** expectRejected runs f and returns the OAuth error it must fail with. */
export async function expectRejected(f, what) {
  try {
    await f()
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      return { kind: 'body', error: err.error, status: err.status }
    }
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      const c = err.cause?.[0]
      return { kind: 'challenge', scheme: c?.scheme, error: c?.parameters?.error, status: err.status }
    }
    if (err instanceof oauth.AuthorizationResponseError) {
      return { kind: 'authorization', error: err.error }
    }
    throw err
  }
  throw new CheckError(`${what} succeeded, want it refused`)
}

/** importPrivateKey imports the private_key_jwt key the Go test made. */
export async function importPrivateKey(jwk) {
  const { kid, alg, use, ...key } = jwk
  const k = await webcrypto.subtle.importKey('jwk', key, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  return { key: k, kid }
}

/** callbackInput turns the callback the browser delivered into a URL or a Request. */
export function callbackInput(cb) {
  if (cb.method === 'POST') {
    return new Request(cb.url, { method: 'POST', headers: { 'content-type': cb.content_type }, body: cb.body })
  }
  expect(cb.method === 'GET', `callback method ${cb.method}`)
  return new URL(cb.url)
}

/** withIss returns the callback cb with its iss parameter replaced by iss. */
export function withIss(cb, iss) {
  if (cb.method === 'POST') {
    const body = new URLSearchParams(cb.body)
    body.set('iss', iss)
    return { ...cb, body: body.toString() }
  }
  const u = new URL(cb.url)
  u.searchParams.set('iss', iss)
  return { ...cb, url: u.href }
}

/**
 * expectIssRejected runs f on an authorization response whose iss was
 * tampered with: it must fail on iss (RFC 9207 2.4), before any error the
 * response carries is reported.
 */
export async function expectIssRejected(f) {
  try {
    await f()
  } catch (err) {
    const msg = `${err?.message} ${err?.cause?.message ?? ''}`
    expect(!(err instanceof oauth.AuthorizationResponseError) && /"iss"/.test(msg), `a response with a wrong iss failed otherwise: ${msg}`)
    return true
  }
  throw new CheckError('a response with a wrong iss was accepted (RFC 9207 2.4)')
}

/** run runs main, printing failures with their causes to stderr. */
export function run(main) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`FAIL: ${err?.stack ?? err}\n`)
      for (let c = err?.cause, i = 0; c && i < 4; c = c.cause, i++) {
        let detail
        try {
          detail = c instanceof Error ? c.stack : JSON.stringify(c instanceof URLSearchParams ? Object.fromEntries(c) : c)
        } catch {
          detail = String(c)
        }
        process.stderr.write(`cause: ${String(detail).slice(0, 2000)}\n`)
        if (!(c instanceof Error)) break
      }
      process.exit(1)
    },
  )
}
