package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Fixtures of the OAuth provider's state: clients, signing keys, codes,
// refresh tokens and grants.

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func clientFixture(id ciam.ClientID) *ciam.Client {
	return &ciam.Client{
		ID:                   id,
		Name:                 "Client " + string(id),
		SecretHash:           sha("secret of " + string(id)),
		SecretRotatedAt:      base(),
		TokenAuthMethod:      ciam.AuthSecretBasic,
		JWKS:                 `{"keys":[]}`,
		RedirectURIs:         []string{"https://app.example.com/cb", "http://127.0.0.1/cb"},
		PostLogoutURIs:       []string{"https://app.example.com/bye"},
		GrantTypes:           []string{ciam.GrantAuthorizationCode, ciam.GrantRefreshToken},
		Scopes:               []string{"openid", "profile", "email", "offline_access"},
		Audiences:            []string{"https://api.example.com"},
		IDTokenAlg:           ciam.AlgES256,
		AccessTokenTTL:       10 * time.Minute,
		RefreshIdleTTL:       24 * time.Hour,
		RefreshMaxTTL:        30 * 24 * time.Hour,
		RefreshWithSession:   true,
		BackchannelLogoutURI: "https://app.example.com/backchannel",
		CreatedAt:            base(),
		UpdatedAt:            base(),
	}
}

func newClient(t *testing.T, s store.Store, tenant ciam.TenantID, id ciam.ClientID) *ciam.Client {
	t.Helper()
	c := clientFixture(id)
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Clients().Create(t.Context(), c) })
	return c
}

// storedClient is c as a store reads it back.
func storedClient(c *ciam.Client) *ciam.Client {
	x := *c
	x.SecretHash = nilIfEmpty(c.SecretHash)
	x.SecretRotatedAt, x.CreatedAt, x.UpdatedAt = storedOpt(c.SecretRotatedAt), stored(c.CreatedAt), stored(c.UpdatedAt)
	x.RedirectURIs, x.PostLogoutURIs, x.GrantTypes = listOrNil(c.RedirectURIs), listOrNil(c.PostLogoutURIs), listOrNil(c.GrantTypes)
	x.Scopes, x.Audiences = listOrNil(c.Scopes), listOrNil(c.Audiences)
	return &x
}

func getClient(t *testing.T, s store.Store, tenant ciam.TenantID, id ciam.ClientID) *ciam.Client {
	t.Helper()
	var c *ciam.Client
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		c, err = tx.Clients().Get(t.Context(), id)
		return err
	})
	return c
}

func signingKeyFixture(id string, created time.Time) *ciam.SigningKey {
	return &ciam.SigningKey{
		ID:            id,
		Alg:           ciam.AlgES256,
		PublicJWK:     []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `"}`),
		PrivateSealed: []byte("sealed private key " + id),
		CreatedAt:     created,
		ActiveAt:      created.Add(time.Hour),
	}
}

func storedSigningKey(k *ciam.SigningKey) *ciam.SigningKey {
	x := *k
	x.CreatedAt, x.ActiveAt = stored(k.CreatedAt), stored(k.ActiveAt)
	x.RetiredAt, x.ExpiresAt = storedOpt(k.RetiredAt), storedOpt(k.ExpiresAt)
	return &x
}

func signingKeyIDs(ks []*ciam.SigningKey) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func listKeys(t *testing.T, s store.Store, tenant ciam.TenantID, now time.Time) []*ciam.SigningKey {
	t.Helper()
	var ks []*ciam.SigningKey
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		ks, err = tx.SigningKeys().List(t.Context(), now)
		return err
	})
	return ks
}

// authCodeFixture is a code issued at created, valid for a minute.
func authCodeFixture(client ciam.ClientID, user ciam.UserID, session ciam.SessionID, created time.Time) *ciam.AuthCode {
	return &ciam.AuthCode{
		Hash:          sha("code " + ciam.NewID()),
		ClientID:      client,
		UserID:        user,
		SessionID:     session,
		RedirectURI:   "https://app.example.com/cb",
		Scopes:        []string{"openid", "email"},
		Nonce:         "n-0S6_WzA2Mj",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		AuthTime:      created.Add(-time.Minute),
		ACR:           "urn:gatehouse:aal1",
		AMR:           []string{"pwd"},
		CreatedAt:     created,
		ExpiresAt:     created.Add(time.Minute),
	}
}

func newAuthCode(t *testing.T, s store.Store, tenant ciam.TenantID, c *ciam.AuthCode) *ciam.AuthCode {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.AuthCodes().Create(t.Context(), c) })
	return c
}

func storedAuthCode(c *ciam.AuthCode) *ciam.AuthCode {
	x := *c
	x.Scopes, x.AMR = listOrNil(c.Scopes), listOrNil(c.AMR)
	x.AuthTime, x.CreatedAt, x.ExpiresAt, x.ConsumedAt = stored(c.AuthTime), stored(c.CreatedAt), stored(c.ExpiresAt), storedOpt(c.ConsumedAt)
	return &x
}

func getAuthCode(t *testing.T, s store.Store, tenant ciam.TenantID, hash []byte) *ciam.AuthCode {
	t.Helper()
	var c *ciam.AuthCode
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		c, err = tx.AuthCodes().Get(t.Context(), hash)
		return err
	})
	return c
}

// refreshFixture is a token of family issued at created, idle for a day and
// absolute for thirty.
func refreshFixture(client ciam.ClientID, user ciam.UserID, session ciam.SessionID, family string, created time.Time) *ciam.RefreshToken {
	id := ciam.NewID()
	return &ciam.RefreshToken{
		ID:            id,
		Hash:          sha("refresh " + id),
		FamilyID:      family,
		ClientID:      client,
		UserID:        user,
		SessionID:     session,
		Scopes:        []string{"openid", "offline_access"},
		AuthTime:      created.Add(-time.Minute),
		ACR:           "urn:gatehouse:aal2",
		AMR:           []string{"pwd", "otp"},
		CreatedAt:     created,
		IdleExpiresAt: created.Add(24 * time.Hour),
		ExpiresAt:     created.Add(30 * 24 * time.Hour),
	}
}

func newRefresh(t *testing.T, s store.Store, tenant ciam.TenantID, rt *ciam.RefreshToken) *ciam.RefreshToken {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.RefreshTokens().Create(t.Context(), rt) })
	return rt
}

func storedRefresh(rt *ciam.RefreshToken) *ciam.RefreshToken {
	x := *rt
	x.Scopes, x.AMR = listOrNil(rt.Scopes), listOrNil(rt.AMR)
	x.AuthTime, x.CreatedAt, x.IdleExpiresAt, x.ExpiresAt = stored(rt.AuthTime), stored(rt.CreatedAt), stored(rt.IdleExpiresAt), stored(rt.ExpiresAt)
	x.RevokedAt = storedOpt(rt.RevokedAt)
	return &x
}

func getRefresh(t *testing.T, s store.Store, tenant ciam.TenantID, hash []byte) *ciam.RefreshToken {
	t.Helper()
	var rt *ciam.RefreshToken
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		rt, err = tx.RefreshTokens().ByHash(t.Context(), hash)
		return err
	})
	return rt
}

func grantFixture(user ciam.UserID, client ciam.ClientID, at time.Time, scopes ...string) *ciam.Grant {
	return &ciam.Grant{UserID: user, ClientID: client, Scopes: scopes, CreatedAt: at, UpdatedAt: at}
}

func putGrant(t *testing.T, s store.Store, tenant ciam.TenantID, g *ciam.Grant) *ciam.Grant {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Grants().Put(t.Context(), g) })
	return g
}

func storedGrant(g *ciam.Grant) *ciam.Grant {
	x := *g
	x.Scopes = listOrNil(g.Scopes)
	x.CreatedAt, x.UpdatedAt = stored(g.CreatedAt), stored(g.UpdatedAt)
	return &x
}

// oauthParty is a tenant with a user, a browser session of the user and a
// client: what every code, token and grant refers to.
type oauthParty struct {
	tenant  *ciam.Tenant
	user    *ciam.User
	session *ciam.Session
	client  *ciam.Client
}

func newOAuthParty(t *testing.T, s store.Store, slug string) oauthParty {
	t.Helper()
	tn := newTenant(t, s, slug)
	u := newUser(t, s, tn.ID, "ada@example.com")
	return oauthParty{
		tenant:  tn,
		user:    u,
		session: newSession(t, s, tn.ID, u.ID, base()),
		client:  newClient(t, s, tn.ID, "app"),
	}
}

// storedOpt is an optional time as a store reads it back: zero stays zero.
func storedOpt(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return stored(t)
}

// listOrNil is a string list as a store reads it back: an empty list is nil.
func listOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// wantCount fails unless a counting operation returned want and no error.
func wantCount(t *testing.T, what string, n int, err error, want int) {
	t.Helper()
	if err != nil || n != want {
		t.Errorf("%s = %d, %v; want %d", what, n, err, want)
	}
}

// wantOneWinner fails unless exactly one of errs is nil and every other is
// ErrConflict.
func wantOneWinner(t *testing.T, what string, errs []error) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, what+": a loser", err, store.ErrConflict)
		}
	}
	if ok != 1 {
		t.Errorf("%s: %d of %d callers succeeded, want 1", what, ok, len(errs))
	}
}
