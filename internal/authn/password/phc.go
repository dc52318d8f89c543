package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrInvalidHash is wrapped by every error about a stored hash that is not an
// argon2id PHC string this package accepts: malformed, of another algorithm or
// version, or with parameters outside the bounds below.
var ErrInvalidHash = errors.New("password: invalid argon2id PHC string")

// Bounds on what Verify accepts from a stored hash. The hash's parameters
// decide how much memory and time a verification takes, so a crafted or
// corrupted hash could otherwise make one login allocate gigabytes or run for
// minutes. They leave room to raise the current parameters (a 64 MiB, t=2
// hash still verifies) without accepting anything absurd.
const (
	maxPHCLength = 256        // characters of the whole string
	maxMemoryKiB = 64 * 1024  // m
	maxTime      = 10         // t
	maxThreads   = 4          // p
	maxCost      = 128 * 1024 // m*t, in KiB passes: 3.4 times the current cost
	minSaltLen   = 8          // bytes, the minimum argon2 allows
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// b64 is the PHC string's base64: the standard alphabet without padding,
// strict so that each hash has exactly one encoding.
func b64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

// params are argon2id cost parameters.
type params struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8  // lanes
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params
	salt []byte
	key  []byte
}

// String encodes h as "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func (h *phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.time, h.threads, b64().EncodeToString(h.salt), b64().EncodeToString(h.key))
}

// parsePHC parses an argon2id PHC string, refusing anything malformed or
// outside the bounds above. It accepts exactly what (*phc).String produces.
func parsePHC(s string) (*phc, error) {
	if len(s) > maxPHCLength {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidHash, maxPHCLength)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, fmt.Errorf("%w: want 5 fields separated by $", ErrInvalidHash)
	}
	if f[1] != "argon2id" {
		return nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrInvalidHash, f[1])
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: version %q is not v=%d", ErrInvalidHash, f[2], argon2.Version)
	}

	var h phc
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return nil, fmt.Errorf("%w: want parameters m, t and p", ErrInvalidHash)
	}
	m, err := param(ps[0], "m=", maxMemoryKiB)
	if err != nil {
		return nil, err
	}
	t, err := param(ps[1], "t=", maxTime)
	if err != nil {
		return nil, err
	}
	p, err := param(ps[2], "p=", maxThreads)
	if err != nil {
		return nil, err
	}
	h.memory, h.time, h.threads = m, t, uint8(p)
	switch {
	case t < 1 || p < 1:
		return nil, fmt.Errorf("%w: t and p must be at least 1", ErrInvalidHash)
	case m < 8*p:
		return nil, fmt.Errorf("%w: m=%d is below 8*p", ErrInvalidHash, m)
	case uint64(m)*uint64(t) > maxCost:
		return nil, fmt.Errorf("%w: m*t=%d is above %d", ErrInvalidHash, uint64(m)*uint64(t), maxCost)
	}

	if h.salt, err = decode(f[4], "salt", minSaltLen, maxSaltLen); err != nil {
		return nil, err
	}
	if h.key, err = decode(f[5], "hash", minKeyLen, maxKeyLen); err != nil {
		return nil, err
	}
	return &h, nil
}

// param parses "name=N" where N is a decimal without sign or leading zeros
// and at most limit.
func param(s, name string, limit uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, fmt.Errorf("%w: want %s", ErrInvalidHash, strings.TrimSuffix(name, "="))
	}
	if v == "" || len(v) > 10 || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("%w: bad %s%.12s", ErrInvalidHash, name, v)
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad %s%.12s", ErrInvalidHash, name, v)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > uint64(limit) {
		return 0, fmt.Errorf("%w: %s%d is above %d", ErrInvalidHash, name, n, limit)
	}
	return uint32(n), nil
}

// decode decodes a base64 field whose decoded length must lie in [lo, hi].
func decode(s, what string, lo, hi int) ([]byte, error) {
	// The decoder skips line breaks, which would give a hash two encodings.
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, fmt.Errorf("%w: %s has a byte 0x%02x outside base64", ErrInvalidHash, what, c)
		}
	}
	if n := b64().DecodedLen(len(s)); n < lo || n > hi {
		return nil, fmt.Errorf("%w: %s of %d bytes, want %d to %d", ErrInvalidHash, what, n, lo, hi)
	}
	b, err := b64().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidHash, what, err)
	}
	if len(b) < lo || len(b) > hi {
		return nil, fmt.Errorf("%w: %s of %d bytes, want %d to %d", ErrInvalidHash, what, len(b), lo, hi)
	}
	return b, nil
}
