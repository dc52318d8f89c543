// The authorization code flow with PKCE through openid-client (v6) with its
// strict defaults. The one relaxation is allowInsecureRequests, the
// documented way to let it talk plain http to the test server on loopback.
// See common.mjs for the protocol with interop_test.go.

import * as client from 'openid-client'
import {
  callbackInput, checkAccessToken, checkIdToken, checkIntrospection, checkMetadata, checkRefreshedIdToken,
  checkStandardClaims, checkTokenResponse, checkTrace, expect, expectIssRejected, expectRejected, importPrivateKey,
  readJSON, recordingFetch, run, send, version, withIss,
} from './common.mjs'

run(async () => {
  const cfg = await readJSON('the configuration')
  const trace = []
  const fetchFn = recordingFetch(trace, cfg.issuer)

  let auth
  switch (cfg.auth_method) {
    case 'client_secret_basic': auth = client.ClientSecretBasic(cfg.client_secret); break
    case 'none': auth = client.None(); break
    case 'private_key_jwt': auth = client.PrivateKeyJwt(await importPrivateKey(cfg.private_jwk)); break
    default: throw new Error(`unknown auth method ${cfg.auth_method}`)
  }
  const metadata = { id_token_signed_response_alg: cfg.id_token_alg, token_endpoint_auth_method: cfg.auth_method }

  // (1) Discovery: openid-client checks that the document's issuer is the
  // one asked for.
  const config = await client.discovery(new URL(cfg.issuer), cfg.client_id, metadata, auth, {
    execute: [client.allowInsecureRequests], // plain http to the loopback test server only
    [client.customFetch]: fetchFn,
  })
  // Verify ID token signatures through the JWKS too (the library otherwise
  // relies on TLS to the token endpoint).
  client.enableNonRepudiationChecks(config)
  const as = config.serverMetadata()
  checkMetadata(as, cfg.issuer)
  expect(as.supportsPKCE('S256'), 'openid-client: the provider does not support PKCE S256')

  // (2) The authorization request: PKCE S256, state, nonce.
  const authorize = async () => {
    const a = { verifier: client.randomPKCECodeVerifier(), state: client.randomState(), nonce: client.randomNonce() }
    const params = {
      redirect_uri: cfg.redirect_uri,
      scope: cfg.scope,
      code_challenge: await client.calculatePKCECodeChallenge(a.verifier),
      code_challenge_method: 'S256',
      state: a.state,
      nonce: a.nonce,
    }
    if (cfg.response_mode !== 'query') params.response_mode = cfg.response_mode
    if (cfg.max_age !== undefined) params.max_age = String(cfg.max_age)
    send({ event: 'authorize', url: client.buildAuthorizationUrl(config, params).href })
    a.checks = { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce, idTokenExpected: true }
    if (cfg.max_age !== undefined) a.checks.maxAge = cfg.max_age
    return a
  }
  const first = await authorize()
  const nonce = first.nonce
  const checks = first.checks

  // (3) The callback the browser reached.
  const cb = await readJSON('the callback')

  if (cfg.expect === 'access_denied') {
    // An error response is still checked for state and iss (RFC 9207)
    // before the library reports the error.
    const r = await expectRejected(() => client.authorizationCodeGrant(config, callbackInput(cb), checks), 'a denied authorization')
    expect(r.kind === 'authorization' && r.error === 'access_denied', `denied authorization: ${JSON.stringify(r)}`)
    // The same response with another iss is refused on iss (RFC 9207 2.4).
    const issChecked = await expectIssRejected(() => client.authorizationCodeGrant(config, callbackInput(withIss(cb, 'https://attacker.example')), checks))
    send({ event: 'summary', library: 'openid-client', versions: versions(), denied: r.error, iss_checked: issChecked })
    return
  }

  // (4) Validate the authorization response (state, RFC 9207 iss), redeem
  // the code with the PKCE verifier, validate the ID token (signature via
  // the JWKS, iss, aud, exp, iat, nonce, azp, auth_time against max_age).
  const tokens = await client.authorizationCodeGrant(config, callbackInput(cb), checks)
  checkTokenResponse(tokens, cfg.scope, true)
  const claims = tokens.claims()
  const id = checkIdToken(tokens.id_token, claims, { as, clientId: cfg.client_id, alg: cfg.id_token_alg, accessToken: tokens.access_token, scope: cfg.scope, nonce })
  const at = await checkAccessToken(as, tokens.access_token, cfg.client_id, claims.sub, fetchFn)

  // A code is single-use (RFC 6749 4.1.2, OAuth 2.1 4.1.3).
  const replay = await expectRejected(() => client.authorizationCodeGrant(config, callbackInput(cb), checks), 'a replayed code')
  expect(replay.kind === 'body' && replay.error === 'invalid_grant' && replay.status === 400, `code replay: ${JSON.stringify(replay)}`)

  // That revoked what the code had produced; a new authorization gives the
  // rest of the flow tokens to work with.
  const second = await authorize()
  const cb2 = await readJSON('the second callback')
  const tokens2 = await client.authorizationCodeGrant(config, callbackInput(cb2), second.checks)
  checkTokenResponse(tokens2, cfg.scope, true)
  const claims2 = tokens2.claims()
  checkIdToken(tokens2.id_token, claims2, { as, clientId: cfg.client_id, alg: cfg.id_token_alg, accessToken: tokens2.access_token, scope: cfg.scope, nonce: second.nonce })
  expect(claims2.sub === claims.sub, 'the same user got another sub')
  // The replay revoked the first grant's tokens (RFC 6749 4.1.2: SHOULD).
  const revokedByReplay = await expectRejected(() => client.fetchUserInfo(config, tokens.access_token, claims.sub), 'userinfo with a token of a replayed code')
  expect(revokedByReplay.kind === 'challenge' && revokedByReplay.error === 'invalid_token' && revokedByReplay.status === 401, `userinfo after replay: ${JSON.stringify(revokedByReplay)}`)

  // UserInfo (OpenID Connect Core 5.3): sub must equal the ID token's.
  const userinfo = await client.fetchUserInfo(config, tokens2.access_token, claims2.sub)
  checkStandardClaims(userinfo, cfg.scope)
  expect(userinfo.email === claims2.email, 'userinfo email differs from the ID token')

  // Refresh: rotation, and an ID token per OpenID Connect Core 12.2.
  const refreshed = await client.refreshTokenGrant(config, tokens2.refresh_token)
  checkTokenResponse(refreshed, cfg.scope, true)
  expect(refreshed.refresh_token !== tokens2.refresh_token, 'the refresh token did not rotate')
  const rclaims = refreshed.claims()
  expect(rclaims !== undefined, 'no ID token from the refresh')
  checkIdToken(refreshed.id_token, rclaims, { as, clientId: cfg.client_id, alg: cfg.id_token_alg, accessToken: refreshed.access_token, scope: cfg.scope })
  checkRefreshedIdToken(claims2, rclaims)
  await checkAccessToken(as, refreshed.access_token, cfg.client_id, claims.sub, fetchFn)

  // Introspection (RFC 7662) for clients that authenticate.
  let introspection = null
  if (cfg.auth_method !== 'none') {
    const ia = await client.tokenIntrospection(config, refreshed.access_token)
    checkIntrospection(ia, { as, clientId: cfg.client_id, sub: claims.sub })
    const ir = await client.tokenIntrospection(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
    checkIntrospection(ir, { as, clientId: cfg.client_id, sub: claims.sub })
    const rotated = await client.tokenIntrospection(config, tokens2.refresh_token, { token_type_hint: 'refresh_token' })
    expect(rotated.active === false, 'a rotated refresh token is still active')
    introspection = { access_active: ia.active, refresh_active: ir.active, rotated_active: rotated.active, token_type: ia.token_type, scope: ia.scope }
  }
  // A wrong secret in the Authorization header is a 401 with a Basic
  // challenge (RFC 6749 5.2), which the library parses.
  let wrongSecret = null
  if (cfg.auth_method === 'client_secret_basic') {
    const bad = new client.Configuration(config.serverMetadata(), cfg.client_id, metadata, client.ClientSecretBasic(cfg.client_secret + 'x'))
    client.allowInsecureRequests(bad) // plain http to the loopback test server only
    bad[client.customFetch] = fetchFn
    wrongSecret = await expectRejected(() => client.tokenIntrospection(bad, refreshed.access_token), 'introspection with a wrong secret')
    expect(wrongSecret.kind === 'challenge' && wrongSecret.scheme === 'basic' && wrongSecret.status === 401, `wrong client secret: ${JSON.stringify(wrongSecret)}`)
  }

  // Presenting the rotated refresh token again is refused and revokes the
  // family: the token it was rotated into stops working too (OAuth 2.1
  // 4.3.1, RFC 9700 4.14.2).
  const reuse = await expectRejected(() => client.refreshTokenGrant(config, tokens2.refresh_token), 'a reused refresh token')
  expect(reuse.kind === 'body' && reuse.error === 'invalid_grant', `refresh token reuse: ${JSON.stringify(reuse)}`)
  const reuseRevoked = await expectRejected(() => client.refreshTokenGrant(config, refreshed.refresh_token), 'a refresh after the family was revoked for reuse')
  expect(reuseRevoked.kind === 'body' && reuseRevoked.error === 'invalid_grant', `refresh after reuse: ${JSON.stringify(reuseRevoked)}`)

  // Revocation (RFC 7009) of a third grant's refresh token ends that grant.
  const third = await authorize()
  const tokens3 = await client.authorizationCodeGrant(config, callbackInput(await readJSON('the third callback')), third.checks)
  await client.tokenRevocation(config, tokens3.refresh_token, { token_type_hint: 'refresh_token' })
  const afterRevoke = await expectRejected(() => client.refreshTokenGrant(config, tokens3.refresh_token), 'a refresh with a revoked token')
  expect(afterRevoke.kind === 'body' && afterRevoke.error === 'invalid_grant', `refresh after revocation: ${JSON.stringify(afterRevoke)}`)
  const userinfoAfter = await expectRejected(() => client.fetchUserInfo(config, tokens3.access_token, claims.sub), 'userinfo after revocation')
  expect(userinfoAfter.kind === 'challenge' && userinfoAfter.scheme === 'bearer' && userinfoAfter.error === 'invalid_token', `userinfo after revocation: ${JSON.stringify(userinfoAfter)}`)
  let revokedIntrospection = null
  if (cfg.auth_method !== 'none') {
    revokedIntrospection = (await client.tokenIntrospection(config, tokens3.access_token)).active
    expect(revokedIntrospection === false, 'the access token of a revoked grant is still active')
  }
  // Revoking an unknown or already revoked token is still 200 (RFC 7009 2.2).
  await client.tokenRevocation(config, tokens3.refresh_token)

  send({
    event: 'summary',
    library: 'openid-client',
    versions: versions(),
    client_auth: cfg.auth_method,
    response_mode: cfg.response_mode,
    callback_method: cb.method,
    discovery: { issuer: as.issuer, iss_parameter: as.authorization_response_iss_parameter_supported },
    id_token: { alg: id.header.alg, kid: id.header.kid, sub: claims.sub, nonce_ok: claims.nonce === nonce, at_hash_ok: true, signature_verified: true, acr: claims.acr, amr: claims.amr, auth_time: claims.auth_time },
    access_token: { typ: 'at+jwt', client_id: at.client_id, aud: at.aud, scope: at.scope },
    code_replay: replay.error,
    replay_revoked_tokens: revokedByReplay.error,
    userinfo: { sub: userinfo.sub, email: userinfo.email },
    refresh: { rotated: true, id_token_12_2: true, reuse: reuse.error, reuse_revoked_family: reuseRevoked.error },
    introspection,
    wrong_secret: wrongSecret && `${wrongSecret.status} ${wrongSecret.scheme}`,
    revocation: { refresh_after: afterRevoke.error, userinfo_after: userinfoAfter.error, access_active_after: revokedIntrospection },
    requests: trace.length,
    token_responses_no_store: checkTrace(trace, as),
  })
})

function versions() {
  return { 'openid-client': version('openid-client'), oauth4webapi: version('oauth4webapi') }
}
