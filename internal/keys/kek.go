package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// KEKSize is the length of a key-encryption key in bytes.
const KEKSize = 32

// ErrWrongKEK means signing keys were sealed with another key-encryption key
// than the configured one.
var ErrWrongKEK = errors.New("signing keys cannot be decrypted: the key-encryption key is not the one they were sealed with")

const generateHint = "generate one with: openssl rand -base64 32"

func checkKEK(kek []byte) error {
	if len(kek) != KEKSize {
		return fmt.Errorf("keys: the key-encryption key must be %d bytes, not %d; %s", KEKSize, len(kek), generateHint)
	}
	return nil
}

// ParseKEK decodes a key-encryption key given in configuration: base64 of 32
// random bytes (standard or URL alphabet, padded or not).
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("no key-encryption key is given; %s", generateHint)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KEKSize {
			return nil, fmt.Errorf("the key-encryption key must be base64 of %d bytes, not %d; %s", KEKSize, len(b), generateHint)
		}
		return b, nil
	}
	return nil, fmt.Errorf("the key-encryption key is not valid base64; %s", generateHint)
}

// LoadOrCreateKEK reads the key-encryption key kept in the file at path (the
// base64 of 32 bytes, as ParseKEK reads it), creating the file with a random
// key and mode 0600 when it does not exist. It is meant for the quick start,
// with the file beside the SQLite database. Creation is atomic: of processes
// starting at once, one creates the file and all use its key.
func LoadOrCreateKEK(path string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		b, err := os.ReadFile(path)
		switch {
		case err == nil && len(bytes.TrimSpace(b)) == 0 && attempt < 50:
			time.Sleep(20 * time.Millisecond) // another process has created it and is writing
			continue
		case err == nil:
			k, err := ParseKEK(string(b))
			if err != nil {
				return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
			}
			return k, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("read the key-encryption key: %w", err)
		}
		k, err := createKEK(path)
		if errors.Is(err, fs.ErrExist) && attempt < 50 {
			continue // another process won: read its key
		}
		return k, err
	}
}

// createKEK writes a new key to path unless path exists (fs.ErrExist). The
// key is written to a temporary file that is then hard-linked to path, so it
// appears complete or not at all; where hard links are not supported it falls
// back to creating path with O_EXCL.
func createKEK(path string) ([]byte, error) {
	k := make([]byte, KEKSize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	text := []byte(base64.StdEncoding.EncodeToString(k) + "\n")
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the key-encryption key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".kek-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create the key-encryption key: %w", err)
	}
	_, werr := tmp.Write(text)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("create the key-encryption key: %w", werr)
	}
	lerr := os.Link(tmp.Name(), path)
	os.Remove(tmp.Name())
	if lerr == nil {
		return k, nil
	}
	if errors.Is(lerr, fs.ErrExist) {
		return nil, lerr
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, werr = f.Write(text)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("create the key-encryption key: %w", werr)
	}
	return k, nil
}

// A sealed private key is
//
//	version (1) || KEK id (8) || nonce (12) || AES-256-GCM ciphertext and tag
//
// with the tenant id and key id as associated data, so a sealed key copied to
// another row or tenant does not open. The KEK id (a truncated HMAC of a
// constant under the KEK, which reveals nothing about it) tells a wrong KEK
// apart from a damaged or misplaced blob, and lets a later version hold
// several KEKs.
const (
	sealVersion = 1
	kekIDSize   = 8
	nonceSize   = 12
)

func kekID(kek []byte) []byte {
	h := hmac.New(sha256.New, kek)
	h.Write([]byte("gatehouse/keys: key-encryption key id"))
	return h.Sum(nil)[:kekIDSize]
}

func sealAD(tenant ciam.TenantID, kid string) []byte {
	return []byte("gatehouse signing key\x00" + string(tenant) + "\x00" + kid)
}

func gcm(kek []byte) (cipher.AEAD, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts a private key of tenant's key kid.
func seal(kek []byte, tenant ciam.TenantID, kid string, plain []byte) ([]byte, error) {
	return sealWith(kek, sealAD(tenant, kid), plain)
}

// open decrypts what seal produced for the same tenant and kid.
func open(kek []byte, tenant ciam.TenantID, kid string, sealed []byte) ([]byte, error) {
	plain, err := openWith(kek, sealAD(tenant, kid), sealed)
	switch {
	case errors.Is(err, ErrWrongKEK):
		return nil, fmt.Errorf("keys: signing key %s: %w", kid, ErrWrongKEK)
	case errors.Is(err, errMalformed):
		return nil, fmt.Errorf("keys: signing key %s: the sealed private key is malformed", kid)
	case errors.Is(err, errNoOpen):
		return nil, fmt.Errorf("keys: signing key %s: the sealed private key does not open: it belongs to another key or tenant, or is damaged", kid)
	case err != nil:
		return nil, err
	}
	return plain, nil
}

var (
	errMalformed = errors.New("keys: the sealed data is malformed")
	errNoOpen    = errors.New("keys: the sealed data does not open: it was sealed for something else, or is damaged")
)

func sealWith(kek, ad, plain []byte) ([]byte, error) {
	aead, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+kekIDSize+nonceSize+len(plain)+aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, kekID(kek)...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, ad), nil
}

func openWith(kek, ad, sealed []byte) ([]byte, error) {
	aead, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+kekIDSize+nonceSize+aead.Overhead() || sealed[0] != sealVersion {
		return nil, errMalformed
	}
	if !hmac.Equal(sealed[1:1+kekIDSize], kekID(kek)) {
		return nil, ErrWrongKEK
	}
	nonce := sealed[1+kekIDSize : 1+kekIDSize+nonceSize]
	plain, err := aead.Open(nil, nonce, sealed[1+kekIDSize+nonceSize:], ad)
	if err != nil {
		return nil, errNoOpen
	}
	return plain, nil
}

// Seal encrypts plain under the key-encryption key (AES-256-GCM, in the
// format signing keys are kept in) for what context names, such as
// "mail secret" plus a tenant id: Open with another context fails, so
// sealed data copied to another row or tenant does not open.
func Seal(kek []byte, context string, plain []byte) ([]byte, error) {
	return sealWith(kek, []byte("gatehouse sealed data\x00"+context), plain)
}

// Open decrypts what Seal produced with the same key and context.
// ErrWrongKEK means it was sealed under another key-encryption key.
func Open(kek []byte, context string, sealed []byte) ([]byte, error) {
	return openWith(kek, []byte("gatehouse sealed data\x00"+context), sealed)
}

// Derive returns a 32-byte key for purpose, derived from the
// key-encryption key (HMAC-SHA256), so one configured secret yields
// independent keys for independent uses.
func Derive(kek []byte, purpose string) []byte {
	h := hmac.New(sha256.New, kek)
	h.Write([]byte("gatehouse derived key\x00" + purpose))
	return h.Sum(nil)
}
