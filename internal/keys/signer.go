package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// rsaBits is the modulus size of generated RS256 keys.
const rsaBits = 2048

// Token types for the JWS "typ" header (RFC 8725 explicit typing).
const (
	TypeJWT         = "JWT"        // ID tokens
	TypeAccessToken = "at+jwt"     // JWT access tokens, RFC 9068
	TypeLogout      = "logout+jwt" // back-channel logout tokens
)

// Signer signs tokens with one key. It is safe for concurrent use.
type Signer struct {
	kid  string
	alg  string
	priv *privKey
}

// KeyID returns the key's id, the JWS "kid".
func (s *Signer) KeyID() string { return s.kid }

// Alg returns the JWS algorithm: ES256, RS256 or EdDSA.
func (s *Signer) Alg() string { return s.alg }

// Sign returns payload, encoded with encoding/json (pass a json.RawMessage
// for JSON that is encoded already), as a compact JWS whose protected header
// holds alg, kid and typ ("JWT", "at+jwt", "logout+jwt"; no typ when empty).
func (s *Signer) Sign(payload any, typ string) (string, error) {
	js, err := s.priv.signer(typ)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("keys: encode token payload: %w", err)
	}
	obj, err := js.Sign(b)
	if err != nil {
		return "", fmt.Errorf("keys: sign with key %s: %w", s.kid, err)
	}
	return obj.CompactSerialize()
}

// privKey is a parsed private key and its go-jose signers, one per typ.
type privKey struct {
	kid string
	alg string
	key crypto.Signer

	mu      sync.RWMutex
	signers map[string]jose.Signer
}

// maxSignerTypes bounds the signers cached per key; typ values are constants
// of the callers, so this is only a guard.
const maxSignerTypes = 16

func (p *privKey) signer(typ string) (jose.Signer, error) {
	p.mu.RLock()
	js := p.signers[typ]
	p.mu.RUnlock()
	if js != nil {
		return js, nil
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(p.alg),
		Key:       jose.JSONWebKey{Key: p.key, KeyID: p.kid, Algorithm: p.alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for key %s: %w", p.kid, err)
	}
	p.mu.Lock()
	if p.signers == nil {
		p.signers = make(map[string]jose.Signer)
	}
	if len(p.signers) < maxSignerTypes {
		p.signers[typ] = js
	}
	p.mu.Unlock()
	return js, nil
}

// private returns k's parsed private key, opening and parsing it on the
// first use in this process.
func (m *Manager) private(tenant ciam.TenantID, k *key) (*privKey, error) {
	if p := k.priv.Load(); p != nil {
		return p, nil
	}
	der, err := open(m.KEK, tenant, k.row.ID, k.row.PrivateSealed)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: parse the private key: %w", k.row.ID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !fits(signer.Public(), k.row.Alg) {
		return nil, fmt.Errorf("keys: signing key %s: the private key is not a %s key", k.row.ID, k.row.Alg)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(k.pub) {
		return nil, fmt.Errorf("keys: signing key %s: the private key does not match the published public key", k.row.ID)
	}
	p := &privKey{kid: k.row.ID, alg: k.row.Alg, key: signer}
	if !k.priv.CompareAndSwap(nil, p) {
		return k.priv.Load(), nil
	}
	return p, nil
}

// material is a generated key, sealed, ready to become a row.
type material struct {
	id        string
	alg       string
	publicJWK []byte
	sealed    []byte
}

func (x *material) row(tenant ciam.TenantID, now, activeAt time.Time) *ciam.SigningKey {
	return &ciam.SigningKey{
		ID: x.id, TenantID: tenant, Alg: x.alg,
		PublicJWK: x.publicJWK, PrivateSealed: x.sealed,
		CreatedAt: now, ActiveAt: activeAt,
	}
}

// newMaterial generates an alg key for tenant with a fresh random id and
// seals its private half under kek.
func newMaterial(kek []byte, tenant ciam.TenantID, alg string) (*material, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case ciam.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ciam.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ciam.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		_, err = normAlg(alg)
		if err == nil {
			err = errors.New("no generator")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate a %s key: %w", alg, err)
	}
	x := &material{id: ciam.NewID(), alg: alg}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: encode a %s key: %w", alg, err)
	}
	x.sealed, err = seal(kek, tenant, x.id, der)
	clear(der)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: priv.Public(), KeyID: x.id, Algorithm: alg, Use: "sig"}
	if x.publicJWK, err = jwk.MarshalJSON(); err != nil {
		return nil, fmt.Errorf("keys: encode a %s public key: %w", alg, err)
	}
	return x, nil
}
