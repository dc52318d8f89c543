package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// The reasons Verify and CheckTimes refuse a token. Callers answer
// invalid_token (or invalid_grant, invalid_request) for every one of them.
var (
	ErrMalformed   = errors.New("token is malformed")
	ErrUnknownKey  = errors.New("token is signed with an unknown key")
	ErrSignature   = errors.New("token signature is not valid")
	ErrType        = errors.New("token is of the wrong type")
	ErrExpired     = errors.New("token has expired")
	ErrNotYetValid = errors.New("token is not valid yet")
)

// maxTokenBytes bounds the tokens Verify parses.
const maxTokenBytes = 64 << 10

// Verify checks a compact JWS signed by one of tenant's published keys and
// decodes its payload into claims (skipped when claims is nil). It accepts
// only ES256, RS256 and EdDSA, so "none" and HMAC algorithms are refused
// whatever the key; the "typ" header must be typ (compared without case and
// without an "application/" prefix, RFC 8725; an empty typ requires no typ
// header); the kid must name a key of this tenant, of the header's
// algorithm. It returns the kid. An error is one of ErrMalformed,
// ErrUnknownKey, ErrSignature or ErrType (wrapped with detail), or a store
// error when the keys cannot be loaded. Times, issuer and audience are the
// caller's to check (see CheckTimes).
//
// A token that verified once is remembered (up to maxVerified tokens), so
// the resource servers that introspect the same access token again and
// again, and userinfo, pay for the signature check once; the header checks
// and the key's publication are still checked on every call.
func (m *Manager) Verify(ctx context.Context, tenant ciam.TenantID, token string, typ string, claims any) (string, error) {
	start := m.seq.Load()
	if len(token) == 0 || len(token) > maxTokenBytes {
		return "", ErrMalformed
	}
	if v, ok := m.verified.get(tenant, token); ok {
		if kid, err := m.reuse(ctx, tenant, v, typ, claims); err == nil || !errors.Is(err, ErrUnknownKey) {
			return kid, err
		}
	}
	algs := [...]jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}
	jws, err := jose.ParseSignedCompact(token, algs[:])
	if err != nil {
		var bad *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &bad) && bad.Got != "" {
			return "", fmt.Errorf("%w: algorithm %.20q is not accepted", ErrSignature, string(bad.Got))
		}
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return "", ErrMalformed
	}
	h := jws.Signatures[0].Header
	if !typMatches(h.ExtraHeaders[jose.HeaderType], typ) {
		return "", fmt.Errorf("%w: want %q", ErrType, typ)
	}
	if !validKeyID(h.KeyID) {
		return "", ErrUnknownKey // not an id Gatehouse makes: no need to ask the store
	}
	ks, cfg, err := m.loadedKeys(ctx, tenant)
	if err != nil {
		return "", err
	}
	k := ks.byID[h.KeyID]
	if k == nil {
		// Perhaps another process made it since this one loaded the keys.
		if ks, err = m.keySet(ctx, tenant, cfg, true, start); err != nil {
			return "", err
		}
		k = ks.byID[h.KeyID]
	}
	if k == nil || !published(k.row, m.now()) {
		return "", ErrUnknownKey
	}
	if k.row.Alg != h.Algorithm {
		return "", fmt.Errorf("%w: key %s is not an %s key", ErrSignature, k.row.ID, h.Algorithm)
	}
	payload, err := jws.Verify(k.pub)
	if err != nil {
		return "", ErrSignature
	}
	m.verified.put(tenant, token, verifiedToken{kid: k.row.ID, typ: h.ExtraHeaders[jose.HeaderType], payload: payload})
	if claims != nil {
		if err := json.Unmarshal(payload, claims); err != nil {
			return "", fmt.Errorf("%w: payload: %v", ErrMalformed, err)
		}
	}
	return k.row.ID, nil
}

// typMatches compares a "typ" header value with the expected type.
func typMatches(v any, want string) bool {
	if want == "" {
		return v == nil
	}
	got, ok := v.(string)
	if !ok {
		return false
	}
	got, want = normTyp(got), normTyp(want)
	return got != "" && got == want
}

func normTyp(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "application/")
}

// validKeyID reports whether kid has the form of the ids Gatehouse gives keys
// (ciam.NewID: 26 lower-case Crockford base32 characters).
func validKeyID(kid string) bool {
	if len(kid) != 26 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') || c == 'i' || c == 'l' || c == 'o' || c == 'u' {
			return false
		}
	}
	return true
}

// CheckTimes checks a token's times at now, allowing leeway of clock skew:
// exp is required and must be after now, nbf and iat (zero when the token has
// none) must not be after now. It returns ErrMalformed, ErrExpired or
// ErrNotYetValid.
func CheckTimes(now, exp, nbf, iat time.Time, leeway time.Duration) error {
	switch {
	case exp.IsZero():
		return fmt.Errorf("%w: no expiry", ErrMalformed)
	case !now.Before(exp.Add(leeway)):
		return ErrExpired
	case !nbf.IsZero() && now.Add(leeway).Before(nbf):
		return ErrNotYetValid
	case !iat.IsZero() && now.Add(leeway).Before(iat):
		return fmt.Errorf("%w: issued in the future", ErrNotYetValid)
	}
	return nil
}

// maxVerified bounds the tokens remembered as verified; past it the memory
// starts afresh.
const maxVerified = 20_000

// verifiedToken is what a verified token's checks need again.
type verifiedToken struct {
	kid     string
	typ     any
	payload []byte
}

// verifiedCache remembers tokens whose signature checked out, by tenant and
// the whole token string, so any change to a token misses it.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[verifiedKey]verifiedToken
}

type verifiedKey struct {
	tenant ciam.TenantID
	token  string
}

func (c *verifiedCache) get(tenant ciam.TenantID, token string) (verifiedToken, bool) {
	c.mu.RLock()
	v, ok := c.m[verifiedKey{tenant, token}]
	c.mu.RUnlock()
	return v, ok
}

func (c *verifiedCache) put(tenant ciam.TenantID, token string, v verifiedToken) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxVerified {
		c.m = make(map[verifiedKey]verifiedToken, 1024)
	}
	c.m[verifiedKey{tenant, token}] = v
	c.mu.Unlock()
}

// reuse answers Verify for a token verified before: the type must match and
// the key must still be published.
func (m *Manager) reuse(ctx context.Context, tenant ciam.TenantID, v verifiedToken, typ string, claims any) (string, error) {
	if !typMatches(v.typ, typ) {
		return "", fmt.Errorf("%w: want %q", ErrType, typ)
	}
	ks, _, err := m.loadedKeys(ctx, tenant)
	if err != nil {
		return "", err
	}
	if k := ks.byID[v.kid]; k == nil || !published(k.row, m.now()) {
		return "", ErrUnknownKey
	}
	if claims != nil {
		if err := json.Unmarshal(v.payload, claims); err != nil {
			return "", fmt.Errorf("%w: payload: %v", ErrMalformed, err)
		}
	}
	return v.kid, nil
}

// loadedKeys returns tenant's key set as this process has it (loading it
// when it has none or it is stale) and the Manager's configuration.
func (m *Manager) loadedKeys(ctx context.Context, tenant ciam.TenantID) (*keySet, config, error) {
	cfg, err := m.config()
	if err != nil {
		return nil, cfg, err
	}
	ks, err := m.keySet(ctx, tenant, cfg, false, 0)
	return ks, cfg, err
}
