package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/oauth"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// assertionAlgs are the algorithms a client assertion may use.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// maxAssertionLife bounds how far in the future a client assertion may expire,
// which bounds how long its jti must be remembered.
const maxAssertionLife = 10 * time.Minute

func checkJWKS(s string) error {
	if s == "" {
		return errors.New("no keys")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(s), &set); err != nil {
		return fmt.Errorf("not a JWK Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("the set has no keys")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return errors.New("every key must be a valid public key")
		}
	}
	return nil
}

func badClient(desc string) error {
	return oauth.InvalidClient(desc)
}

// Authenticate checks the credentials a client presented at the token,
// introspection or revocation endpoint. audiences are the values a client
// assertion's "aud" may carry (the endpoint's URL and the issuer). Every
// failure is invalid_client; the description never tells which part was wrong
// beyond what the client can fix.
func (r *Registry) Authenticate(ctx context.Context, t ciam.TenantID, cred oauth.ClientCredentials, audiences []string) (*ciam.Client, error) {
	if cred.Method == ciam.AuthPrivateKeyJWT && cred.ID == "" {
		// RFC 7521 section 4.2: the assertion's sub names the client.
		tok, err := jwt.ParseSigned(cred.Assertion, assertionAlgs)
		var claims jwt.Claims
		if err != nil || tok.UnsafeClaimsWithoutVerification(&claims) != nil || claims.Subject == "" {
			return nil, badClient("The client assertion is not a signed JWT naming the client in sub.")
		}
		cred.ID = claims.Subject
	}
	c, err := r.Lookup(ctx, t, ciam.ClientID(cred.ID))
	if err != nil {
		if ciam.KindOf(err) == ciam.NotFound {
			return nil, badClient("Client authentication failed.")
		}
		return nil, err
	}
	if cred.Method != c.TokenAuthMethod {
		return nil, badClient(fmt.Sprintf("This client authenticates with %s.", c.TokenAuthMethod))
	}
	switch c.TokenAuthMethod {
	case ciam.AuthNone:
		return c, nil
	case ciam.AuthSecretBasic, ciam.AuthSecretPost:
		if !VerifySecret(c, cred.Secret) {
			return nil, badClient("Client authentication failed.")
		}
		return c, nil
	case ciam.AuthPrivateKeyJWT:
		if err := r.verifyAssertion(ctx, t, c, cred.Assertion, audiences); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, badClient("Client authentication failed.")
}

func (r *Registry) verifyAssertion(ctx context.Context, t ciam.TenantID, c *ciam.Client, assertion string, audiences []string) error {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return badClient("The client assertion is not a signed JWT.")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(c.JWKS), &set); err != nil {
		return badClient("The client has no usable keys.")
	}
	h := tok.Headers[0]
	keys := set.Keys
	if h.KeyID != "" {
		keys = set.Key(h.KeyID)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return badClient("The client assertion's signature does not verify with the client's registered keys.")
	}
	now := r.Now()
	if claims.Issuer != string(c.ID) || claims.Subject != string(c.ID) {
		return badClient("The client assertion's iss and sub must be the client id.")
	}
	if claims.Expiry == nil || claims.ID == "" || len(claims.ID) > 256 {
		return badClient("The client assertion needs exp and a jti of at most 256 characters.")
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp.Add(30*time.Second)) || exp.Sub(now) > maxAssertionLife {
		return badClient("The client assertion has expired or lives too long (at most 10 minutes).")
	}
	if claims.NotBefore != nil && now.Add(30*time.Second).Before(claims.NotBefore.Time()) {
		return badClient("The client assertion is not valid yet.")
	}
	okAud := false
	for _, a := range audiences {
		if claims.Audience.Contains(a) {
			okAud = true
		}
	}
	if !okAud {
		return badClient("The client assertion's aud must be the token endpoint or the issuer.")
	}
	err = r.Store.Tx(ctx, t, func(tx store.Tx) error {
		return tx.Nonces().Use(ctx, "client_assertion:"+string(c.ID), claims.ID, now, exp.Add(time.Minute))
	})
	if errors.Is(err, store.ErrConflict) {
		return badClient("The client assertion was used before (its jti is spent).")
	}
	return err
}
