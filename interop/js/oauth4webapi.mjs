// The authorization code flow with PKCE through oauth4webapi (v3), step by
// step with its strict defaults. The one relaxation is the
// [allowInsecureRequests] option, the documented way to let it talk plain
// http to the test server on loopback. See common.mjs for the protocol with
// interop_test.go.

import * as oauth from 'oauth4webapi'
import {
  callbackInput, checkAccessToken, checkIdToken, checkIntrospection, checkMetadata, checkRefreshedIdToken,
  checkStandardClaims, checkTokenResponse, checkTrace, expect, expectIssRejected, expectRejected, importPrivateKey,
  readJSON, recordingFetch, run, send, version, withIss,
} from './common.mjs'

run(async () => {
  const cfg = await readJSON('the configuration')
  const trace = []
  const opts = {
    [oauth.allowInsecureRequests]: true, // plain http to the loopback test server only
    [oauth.customFetch]: recordingFetch(trace, cfg.issuer),
  }
  const issuer = new URL(cfg.issuer)

  // (1) Discovery, both documents: OpenID Connect Discovery and RFC 8414
  // (path-inserted well-known URI). processDiscoveryResponse checks that
  // each names the issuer asked for.
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...opts, algorithm: 'oidc' }))
  const as8414 = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...opts, algorithm: 'oauth2' }))
  checkMetadata(as, cfg.issuer)
  for (const k of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'authorization_response_iss_parameter_supported']) {
    expect(JSON.stringify(as8414[k]) === JSON.stringify(as[k]), `RFC 8414 metadata ${k} differs from the OpenID configuration`)
  }

  const c = { client_id: cfg.client_id, id_token_signed_response_alg: cfg.id_token_alg, token_endpoint_auth_method: cfg.auth_method }
  let clientAuth
  switch (cfg.auth_method) {
    case 'client_secret_basic': clientAuth = oauth.ClientSecretBasic(cfg.client_secret); break
    case 'none': clientAuth = oauth.None(); break
    case 'private_key_jwt': clientAuth = oauth.PrivateKeyJwt(await importPrivateKey(cfg.private_jwk)); break
    default: throw new Error(`unknown auth method ${cfg.auth_method}`)
  }

  // (2) The authorization request: PKCE S256, state, nonce.
  const authorize = async () => {
    const a = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce() }
    const u = new URL(as.authorization_endpoint)
    u.searchParams.set('client_id', c.client_id)
    u.searchParams.set('redirect_uri', cfg.redirect_uri)
    u.searchParams.set('response_type', 'code')
    u.searchParams.set('scope', cfg.scope)
    u.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(a.verifier))
    u.searchParams.set('code_challenge_method', 'S256')
    u.searchParams.set('state', a.state)
    u.searchParams.set('nonce', a.nonce)
    if (cfg.response_mode !== 'query') u.searchParams.set('response_mode', cfg.response_mode)
    if (cfg.max_age !== undefined) u.searchParams.set('max_age', String(cfg.max_age))
    send({ event: 'authorize', url: u.href })
    return a
  }

  // (3)+(4) The callback: validateAuthResponse checks state and, as the
  // metadata advertises authorization_response_iss_parameter_supported,
  // requires iss to be the issuer (RFC 9207); then the code is redeemed and
  // the ID token validated (iss, aud, exp, iat, nonce, azp, auth_time) and
  // its signature verified through the JWKS.
  const callbackParams = async (cb) => {
    const input = callbackInput(cb)
    return input instanceof URL ? input : new URLSearchParams(await oauth.formPostResponse(input))
  }
  const redeem = async (a, cb) => {
    const params = oauth.validateAuthResponse(as, c, await callbackParams(cb), a.state)
    const res = await oauth.authorizationCodeGrantRequest(as, c, clientAuth, params, cfg.redirect_uri, a.verifier, opts)
    const tokens = await oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: a.nonce, requireIdToken: true, maxAge: cfg.max_age })
    await oauth.validateApplicationLevelSignature(as, res, opts)
    return { tokens, claims: oauth.getValidatedIdTokenClaims(tokens) }
  }
  const refresh = async (rt) => {
    const res = await oauth.refreshTokenGrantRequest(as, c, clientAuth, rt, opts)
    const tokens = await oauth.processRefreshTokenResponse(as, c, res)
    if (tokens.id_token) await oauth.validateApplicationLevelSignature(as, res, opts)
    return { tokens, claims: oauth.getValidatedIdTokenClaims(tokens) }
  }
  const userinfo = async (at, sub) => oauth.processUserInfoResponse(as, c, sub, await oauth.userInfoRequest(as, c, at, opts))
  const introspect = async (token, hint, auth = clientAuth) => oauth.processIntrospectionResponse(as, c,
    await oauth.introspectionRequest(as, c, auth, token, { ...opts, additionalParameters: hint ? { token_type_hint: hint } : undefined }))
  const revoke = async (token, hint) => oauth.processRevocationResponse(
    await oauth.revocationRequest(as, c, clientAuth, token, { ...opts, additionalParameters: hint ? { token_type_hint: hint } : undefined }))

  const first = await authorize()
  const cb = await readJSON('the callback')

  if (cfg.expect === 'access_denied') {
    const r = await expectRejected(async () => oauth.validateAuthResponse(as, c, await callbackParams(cb), first.state), 'a denied authorization')
    expect(r.kind === 'authorization' && r.error === 'access_denied', `denied authorization: ${JSON.stringify(r)}`)
    // The same response with another iss is refused on iss (RFC 9207 2.4).
    const issChecked = await expectIssRejected(async () => oauth.validateAuthResponse(as, c, await callbackParams(withIss(cb, 'https://attacker.example')), first.state))
    send({ event: 'summary', library: 'oauth4webapi', versions: versions(), denied: r.error, iss_checked: issChecked })
    return
  }

  const { tokens, claims } = await redeem(first, cb)
  checkTokenResponse(tokens, cfg.scope, true)
  const id = checkIdToken(tokens.id_token, claims, { as, clientId: c.client_id, alg: cfg.id_token_alg, accessToken: tokens.access_token, scope: cfg.scope, nonce: first.nonce })
  const at = await checkAccessToken(as, tokens.access_token, c.client_id, claims.sub, opts[oauth.customFetch])

  // A code is single-use (RFC 6749 4.1.2, OAuth 2.1 4.1.3).
  const replay = await expectRejected(() => redeem(first, cb), 'a replayed code')
  expect(replay.kind === 'body' && replay.error === 'invalid_grant' && replay.status === 400, `code replay: ${JSON.stringify(replay)}`)

  // The replay revoked what the code had produced; a second authorization
  // (the browser's session is reused) gives the rest tokens to work with.
  const second = await authorize()
  const { tokens: tokens2, claims: claims2 } = await redeem(second, await readJSON('the second callback'))
  checkTokenResponse(tokens2, cfg.scope, true)
  checkIdToken(tokens2.id_token, claims2, { as, clientId: c.client_id, alg: cfg.id_token_alg, accessToken: tokens2.access_token, scope: cfg.scope, nonce: second.nonce })
  expect(claims2.sub === claims.sub, 'the same user got another sub')
  const revokedByReplay = await expectRejected(() => userinfo(tokens.access_token, claims.sub), 'userinfo with a token of a replayed code')
  expect(revokedByReplay.kind === 'challenge' && revokedByReplay.error === 'invalid_token' && revokedByReplay.status === 401, `userinfo after replay: ${JSON.stringify(revokedByReplay)}`)

  // UserInfo (OpenID Connect Core 5.3): sub must equal the ID token's.
  const info = await userinfo(tokens2.access_token, claims2.sub)
  checkStandardClaims(info, cfg.scope)
  expect(info.email === claims2.email, 'userinfo email differs from the ID token')

  // Refresh: rotation, and an ID token per OpenID Connect Core 12.2.
  const { tokens: refreshed, claims: rclaims } = await refresh(tokens2.refresh_token)
  checkTokenResponse(refreshed, cfg.scope, true)
  expect(refreshed.refresh_token !== tokens2.refresh_token, 'the refresh token did not rotate')
  expect(rclaims !== undefined, 'no ID token from the refresh')
  checkIdToken(refreshed.id_token, rclaims, { as, clientId: c.client_id, alg: cfg.id_token_alg, accessToken: refreshed.access_token, scope: cfg.scope })
  checkRefreshedIdToken(claims2, rclaims)
  await checkAccessToken(as, refreshed.access_token, c.client_id, claims.sub, opts[oauth.customFetch])

  // Introspection (RFC 7662) for clients that authenticate.
  let introspection = null
  if (cfg.auth_method !== 'none') {
    const ia = await introspect(refreshed.access_token, 'access_token')
    checkIntrospection(ia, { as, clientId: c.client_id, sub: claims.sub })
    const ir = await introspect(refreshed.refresh_token, 'refresh_token')
    checkIntrospection(ir, { as, clientId: c.client_id, sub: claims.sub })
    const rotated = await introspect(tokens2.refresh_token)
    expect(rotated.active === false, 'a rotated refresh token is still active')
    introspection = { access_active: ia.active, refresh_active: ir.active, rotated_active: rotated.active, token_type: ia.token_type, scope: ia.scope }
  }
  // A wrong secret in the Authorization header is a 401 with a Basic
  // challenge (RFC 6749 5.2), which the library parses.
  let wrongSecret = null
  if (cfg.auth_method === 'client_secret_basic') {
    wrongSecret = await expectRejected(() => introspect(refreshed.access_token, undefined, oauth.ClientSecretBasic(cfg.client_secret + 'x')), 'introspection with a wrong secret')
    expect(wrongSecret.kind === 'challenge' && wrongSecret.scheme === 'basic' && wrongSecret.status === 401, `wrong client secret: ${JSON.stringify(wrongSecret)}`)
  }

  // Presenting the rotated refresh token again is refused and revokes the
  // family: the token it was rotated into stops working too (OAuth 2.1
  // 4.3.1, RFC 9700 4.14.2).
  const reuse = await expectRejected(() => refresh(tokens2.refresh_token), 'a reused refresh token')
  expect(reuse.kind === 'body' && reuse.error === 'invalid_grant', `refresh token reuse: ${JSON.stringify(reuse)}`)
  const reuseRevoked = await expectRejected(() => refresh(refreshed.refresh_token), 'a refresh after the family was revoked for reuse')
  expect(reuseRevoked.kind === 'body' && reuseRevoked.error === 'invalid_grant', `refresh after reuse: ${JSON.stringify(reuseRevoked)}`)

  // Revocation (RFC 7009) of a third grant's refresh token ends that grant.
  const third = await authorize()
  const { tokens: tokens3 } = await redeem(third, await readJSON('the third callback'))
  await revoke(tokens3.refresh_token, 'refresh_token')
  const afterRevoke = await expectRejected(() => refresh(tokens3.refresh_token), 'a refresh with a revoked token')
  expect(afterRevoke.kind === 'body' && afterRevoke.error === 'invalid_grant', `refresh after revocation: ${JSON.stringify(afterRevoke)}`)
  const userinfoAfter = await expectRejected(() => userinfo(tokens3.access_token, claims.sub), 'userinfo after revocation')
  expect(userinfoAfter.kind === 'challenge' && userinfoAfter.scheme === 'bearer' && userinfoAfter.error === 'invalid_token', `userinfo after revocation: ${JSON.stringify(userinfoAfter)}`)
  let revokedIntrospection = null
  if (cfg.auth_method !== 'none') {
    revokedIntrospection = (await introspect(tokens3.access_token)).active
    expect(revokedIntrospection === false, 'the access token of a revoked grant is still active')
  }
  // Revoking an unknown or already revoked token is still 200 (RFC 7009 2.2).
  await revoke(tokens3.refresh_token)

  send({
    event: 'summary',
    library: 'oauth4webapi',
    versions: versions(),
    client_auth: cfg.auth_method,
    response_mode: cfg.response_mode,
    callback_method: cb.method,
    discovery: { issuer: as.issuer, iss_parameter: as.authorization_response_iss_parameter_supported, rfc8414: true },
    id_token: { alg: id.header.alg, kid: id.header.kid, sub: claims.sub, nonce_ok: claims.nonce === first.nonce, at_hash_ok: true, signature_verified: true, acr: claims.acr, amr: claims.amr, auth_time: claims.auth_time },
    access_token: { typ: 'at+jwt', client_id: at.client_id, aud: at.aud, scope: at.scope },
    code_replay: replay.error,
    replay_revoked_tokens: revokedByReplay.error,
    userinfo: { sub: info.sub, email: info.email },
    refresh: { rotated: true, id_token_12_2: true, reuse: reuse.error, reuse_revoked_family: reuseRevoked.error },
    introspection,
    wrong_secret: wrongSecret && `${wrongSecret.status} ${wrongSecret.scheme}`,
    revocation: { refresh_after: afterRevoke.error, userinfo_after: userinfoAfter.error, access_active_after: revokedIntrospection },
    requests: trace.length,
    token_responses_no_store: checkTrace(trace, as),
  })
})

function versions() {
  return { oauth4webapi: version('oauth4webapi') }
}
