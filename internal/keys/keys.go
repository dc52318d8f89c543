// Package keys manages each tenant's token signing keys: creation on first
// use, sealing of the private halves under the deployment's key-encryption
// key (KEK), rotation by an operator or on a schedule, the JWK Set the
// provider publishes, and signing and verifying Gatehouse's own JWTs. It does
// not serve HTTP.
//
// # Lifecycle
//
// A key is published (it is in the tenant's JWK Set) from CreatedAt, signs
// from ActiveAt, stops signing at RetiredAt and leaves the JWK Set at
// ExpiresAt:
//
//   - The first key of an algorithm is active as soon as it is created.
//     Nothing it signed can exist before it does, so no verifier can hold a
//     token it cannot check; a verifier whose cached JWK Set predates the key
//     meets an unknown kid and fetches the set again (Verify does that for
//     Gatehouse's own nodes, OpenID client libraries do it too).
//   - A successor (from Rotate, or made lazily by Signer once the signing key
//     is RotateEvery old) is created with ActiveAt = now + PublishAhead.
//     PublishAhead exceeds CacheTTL, so every server process has reloaded its
//     keys, and serves the successor in its JWK Set, before any token carries
//     it. Until then the predecessor keeps signing.
//   - Once a successor is active, the next Signer call retires the
//     predecessor: RetiredAt is the successor's ActiveAt and ExpiresAt is
//     RetiredAt + MaxTokenLifetime (measured from the successor's CreatedAt +
//     CacheTTL instead when that is later, which only happens when two first
//     keys raced; see below), so the retired key stays published until every
//     token it signed has expired.
//
// Several server processes share one database and keep nothing another needs:
// every decision is made from the rows in the store, inside a transaction
// when it writes, and the in-memory caches (keys per tenant, their JWK Set,
// parsed private keys) live at most CacheTTL. Two processes creating a
// tenant's first key at once may make two: both are published, all processes
// pick the same one to sign with (latest ActiveAt, then greatest id), and the
// other is retired like any predecessor.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Defaults of the Manager's durations.
const (
	DefaultRotateEvery      = 90 * 24 * time.Hour
	DefaultPublishAhead     = 10 * time.Minute
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultCacheTTL         = time.Minute
)

// Manager creates, rotates, publishes and uses tenants' signing keys. Set its
// fields before first use and do not copy it.
type Manager struct {
	Store store.Store
	// KEK is the 32-byte key-encryption key that seals private keys at rest
	// (see ParseKEK and LoadOrCreateKEK). Every process must use the same one.
	KEK []byte
	Now func() time.Time
	// RotateEvery is how long a key signs before Signer makes its successor;
	// zero means DefaultRotateEvery.
	RotateEvery time.Duration
	// PublishAhead is how long a successor is published before it signs. It
	// must exceed CacheTTL; zero means DefaultPublishAhead.
	PublishAhead time.Duration
	// MaxTokenLifetime is the longest lifetime of any token a key signs,
	// plus the clock leeway of verifiers and the clock skew between server
	// processes: a retired key stays published this long.
	// Zero means DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// CacheTTL bounds how long a process serves a tenant's keys, and JWK Set,
	// after another process changed them; changes made through this Manager
	// are seen at once. Every process must use the same value; zero means
	// DefaultCacheTTL.
	CacheTTL time.Duration

	mu      sync.RWMutex
	tenants map[ciam.TenantID]*keySet
	seq     atomic.Uint64  // numbers key-set loads, in the order they start
	locks   [64]sync.Mutex // serialise loads and writes of one tenant's keys

	verified verifiedCache
}

// maxCachedTenants bounds the key-set cache; past it the cache starts afresh.
const maxCachedTenants = 100_000

// config is the Manager's durations with defaults applied.
type config struct {
	rotateEvery, publishAhead, maxLifetime, cacheTTL time.Duration
}

func (m *Manager) config() (config, error) {
	c := config{m.RotateEvery, m.PublishAhead, m.MaxTokenLifetime, m.CacheTTL}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.rotateEvery, DefaultRotateEvery}, {&c.publishAhead, DefaultPublishAhead}, {&c.maxLifetime, DefaultMaxTokenLifetime}, {&c.cacheTTL, DefaultCacheTTL}} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return c, errors.New("keys: signing key durations must not be negative")
		}
	}
	if c.publishAhead <= c.cacheTTL {
		return c, fmt.Errorf("keys: the signing key publish-ahead time (%s) must exceed the key cache lifetime (%s), or a process could sign with a key another process does not publish yet", c.publishAhead, c.cacheTTL)
	}
	return c, nil
}

// Check reports a configuration problem: a key-encryption key that is not 32
// bytes, or durations that break the rotation rules. Call it at start-up.
func (m *Manager) Check() error {
	if err := checkKEK(m.KEK); err != nil {
		return err
	}
	if m.Store == nil {
		return errors.New("keys: no store")
	}
	_, err := m.config()
	return err
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// normAlg returns the algorithm to use for alg; empty means ES256.
func normAlg(alg string) (string, error) {
	switch alg {
	case "":
		return ciam.AlgES256, nil
	case ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA:
		return alg, nil
	}
	return "", ciam.Errorf(ciam.Invalid, "unsupported_signing_alg", "The signing algorithm %q is not supported; use ES256, RS256 or EdDSA.", alg)
}

// Signer returns the key that signs tenant's tokens with alg now (empty alg
// means ES256). It creates the tenant's first key of alg, a successor when the
// signing key is RotateEvery old, and retires a predecessor whose successor
// became active. Get a Signer per token or request; do not keep it.
func (m *Manager) Signer(ctx context.Context, tenant ciam.TenantID, alg string) (*Signer, error) {
	cfg, err := m.config()
	if err != nil {
		return nil, err
	}
	if alg, err = normAlg(alg); err != nil {
		return nil, err
	}
	start := m.seq.Load()
	ks, err := m.keySet(ctx, tenant, cfg, false, 0)
	if err != nil {
		return nil, err
	}
	p := decide(ks.rows, alg, m.now(), cfg, false)
	if p.needsWork() {
		if ks, _, err = m.maintain(ctx, tenant, alg, cfg, false, start); err != nil {
			return nil, err
		}
		p = decide(ks.rows, alg, m.now(), cfg, false)
	}
	if p.current == nil {
		return nil, fmt.Errorf("keys: tenant %s has no %s key that may sign now", tenant, alg)
	}
	k := ks.byID[p.current.ID]
	priv, err := m.private(tenant, k)
	if err != nil {
		return nil, err
	}
	return &Signer{kid: k.row.ID, alg: alg, priv: priv}, nil
}

// Rotate creates a successor for tenant's alg key, published now and signing
// from now + PublishAhead; the predecessor signs until then and is retired
// when the successor becomes active. With no key of alg yet, the new key is
// the first one and active at once. An empty alg rotates every algorithm in
// use (ES256 when there is none) and returns the ES256 successor, or the
// first one made; Keys lists them all. The returned key has no PrivateSealed.
func (m *Manager) Rotate(ctx context.Context, tenant ciam.TenantID, alg string) (*ciam.SigningKey, error) {
	cfg, err := m.config()
	if err != nil {
		return nil, err
	}
	algs := []string{alg}
	if alg == "" {
		ks, err := m.keySet(ctx, tenant, cfg, true, m.seq.Load())
		if err != nil {
			return nil, err
		}
		algs = inUse(ks.rows)
	} else if _, err := normAlg(alg); err != nil {
		return nil, err
	}
	var out *ciam.SigningKey
	for _, a := range algs {
		_, k, err := m.maintain(ctx, tenant, a, cfg, true, 0)
		if err != nil {
			return nil, err
		}
		if out == nil || a == ciam.AlgES256 {
			out = k
		}
	}
	if out == nil {
		return nil, fmt.Errorf("keys: rotating the %s keys of tenant %s made no key", alg, tenant)
	}
	out = copyRow(out)
	out.PrivateSealed = nil
	return out, nil
}

// inUse lists the algorithms of rows' unretired keys in a fixed order, or
// ES256 when there is none.
func inUse(rows []*ciam.SigningKey) []string {
	var out []string
	for _, a := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		for _, k := range rows {
			if k.Alg == a && k.RetiredAt.IsZero() {
				out = append(out, a)
				break
			}
		}
	}
	if len(out) == 0 {
		out = []string{ciam.AlgES256}
	}
	return out
}

// JWKS returns the JWK Set (JSON) of every key tenant publishes: keys that
// will sign, sign, or signed tokens that may still be valid. The bytes are
// shared: do not modify them.
func (m *Manager) JWKS(ctx context.Context, tenant ciam.TenantID) ([]byte, error) {
	if ks := m.cached(tenant); ks != nil && m.now().Before(ks.expires) {
		return ks.jwks, nil
	}
	cfg, err := m.config()
	if err != nil {
		return nil, err
	}
	ks, err := m.keySet(ctx, tenant, cfg, false, 0)
	if err != nil {
		return nil, err
	}
	return ks.jwks, nil
}

// Keys lists tenant's published keys, oldest first, read from the store. The
// sealed private keys are left out.
func (m *Manager) Keys(ctx context.Context, tenant ciam.TenantID) ([]*ciam.SigningKey, error) {
	var rows []*ciam.SigningKey
	now := m.now()
	err := m.Store.View(ctx, tenant, func(tx store.Tx) error {
		var err error
		rows, err = tx.SigningKeys().List(ctx, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]*ciam.SigningKey, 0, len(rows))
	for _, k := range rows {
		if published(k, now) {
			c := copyRow(k)
			c.PrivateSealed = nil
			out = append(out, c)
		}
	}
	return out, nil
}

func copyRow(k *ciam.SigningKey) *ciam.SigningKey {
	if k == nil {
		return nil
	}
	c := *k
	c.PublicJWK = slices.Clone(k.PublicJWK)
	c.PrivateSealed = slices.Clone(k.PrivateSealed)
	return &c
}

func published(k *ciam.SigningKey, now time.Time) bool {
	return k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt)
}

// keySet is one load of a tenant's published keys.
type keySet struct {
	seq     uint64    // the load's number: loads that started later have larger ones
	expires time.Time // reload after this
	rows    []*ciam.SigningKey
	byID    map[string]*key
	jwks    []byte
}

// key is a published key with its public half parsed, and its private half
// once this process has signed with it.
type key struct {
	row  *ciam.SigningKey
	pub  crypto.PublicKey
	priv atomic.Pointer[privKey]
}

func (m *Manager) lock(tenant ciam.TenantID) *sync.Mutex {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(tenant); i++ {
		h ^= uint32(tenant[i])
		h *= 16777619
	}
	return &m.locks[h%uint32(len(m.locks))]
}

func (m *Manager) cached(tenant ciam.TenantID) *keySet {
	m.mu.RLock()
	ks := m.tenants[tenant]
	m.mu.RUnlock()
	return ks
}

// keySet returns tenant's keys from the cache while fresh. With force it
// returns a set whose load started after the caller read m.seq as after,
// loading one if needed.
func (m *Manager) keySet(ctx context.Context, tenant ciam.TenantID, cfg config, force bool, after uint64) (*keySet, error) {
	if tenant == "" {
		return nil, errors.New("keys: no tenant")
	}
	usable := func(ks *keySet) bool {
		return ks != nil && m.now().Before(ks.expires) && (!force || ks.seq > after)
	}
	if ks := m.cached(tenant); usable(ks) {
		return ks, nil
	}
	l := m.lock(tenant)
	l.Lock()
	defer l.Unlock()
	if ks := m.cached(tenant); usable(ks) {
		return ks, nil
	}
	return m.reloadLocked(ctx, tenant, cfg)
}

// reloadLocked reads tenant's keys from the store and caches them; the
// caller holds m.lock(tenant).
func (m *Manager) reloadLocked(ctx context.Context, tenant ciam.TenantID, cfg config) (*keySet, error) {
	seq := m.seq.Add(1)
	now := m.now()
	var rows []*ciam.SigningKey
	err := m.Store.View(ctx, tenant, func(tx store.Tx) error {
		var err error
		rows, err = tx.SigningKeys().List(ctx, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	old := m.cached(tenant)
	ks := &keySet{seq: seq, expires: now.Add(cfg.cacheTTL), byID: make(map[string]*key, len(rows))}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(rows))}
	for _, r := range rows {
		if (r.TenantID != "" && r.TenantID != tenant) || !published(r, now) {
			continue
		}
		if !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(ks.expires) {
			ks.expires = r.ExpiresAt // the set changes then
		}
		k := &key{row: r}
		if o := oldKey(old, r); o != nil {
			k.pub = o.pub
			if r.RetiredAt.IsZero() {
				k.priv.Store(o.priv.Load())
			}
		} else if k.pub, err = parsePublic(r); err != nil {
			return nil, err
		}
		ks.rows = append(ks.rows, r)
		ks.byID[r.ID] = k
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: r.ID, Algorithm: r.Alg, Use: "sig"})
	}
	if ks.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("keys: encode the JWK Set of tenant %s: %w", tenant, err)
	}
	m.mu.Lock()
	if m.tenants == nil || len(m.tenants) >= maxCachedTenants {
		m.tenants = make(map[ciam.TenantID]*keySet)
	}
	if cur := m.tenants[tenant]; cur == nil || cur.seq < seq {
		m.tenants[tenant] = ks
	}
	m.mu.Unlock()
	return ks, nil
}

// oldKey returns the previous load's parsed key for r when it is the same key.
func oldKey(old *keySet, r *ciam.SigningKey) *key {
	if old == nil {
		return nil
	}
	o := old.byID[r.ID]
	if o == nil || o.row.Alg != r.Alg || string(o.row.PublicJWK) != string(r.PublicJWK) || string(o.row.PrivateSealed) != string(r.PrivateSealed) {
		return nil
	}
	return o
}

// parsePublic parses the stored public JWK of r and checks it fits r.Alg.
func parsePublic(r *ciam.SigningKey) (crypto.PublicKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(r.PublicJWK); err != nil {
		return nil, fmt.Errorf("keys: signing key %s has an unreadable public key: %w", r.ID, err)
	}
	if !jwk.Valid() || !jwk.IsPublic() || !fits(jwk.Key, r.Alg) {
		return nil, fmt.Errorf("keys: signing key %s: its stored public key is not a public %s key", r.ID, r.Alg)
	}
	return jwk.Key, nil
}

// fits reports whether pub is a public key for alg.
func fits(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == ciam.AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == ciam.AlgRS256 && k.N.BitLen() >= 2048
	case ed25519.PublicKey:
		return alg == ciam.AlgEdDSA && len(k) == ed25519.PublicKeySize
	}
	return false
}
