package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"golang.org/x/crypto/argon2"
)

// The parameters of new hashes: argon2id with 19 MiB of memory, two passes and
// one lane (OWASP's recommended minimum), a 16-byte random salt and a 32-byte
// key. Hashes made with other parameters still verify, within the bounds in
// phc.go, and NeedsRehash reports them.
const (
	hashMemory  = 19 * 1024 // KiB
	hashTime    = 2
	hashThreads = 1
	saltLen     = 16
	keyLen      = 32
)

// current returns the parameters of new hashes.
func current() params { return params{memory: hashMemory, time: hashTime, threads: hashThreads} }

// Hasher hashes and verifies passwords with argon2id. A hash takes about
// 19 MiB and tens of milliseconds of one core, so a semaphore bounds how many
// run at once; callers beyond the bound wait their turn or until their
// context ends. A Hasher is safe for concurrent use.
type Hasher struct {
	sem     chan struct{}
	waiting atomic.Int64
	running atomic.Int64
	dummy   string // see DummyVerify
}

// NewHasher returns a Hasher that computes at most concurrency hashes at a
// time; zero or less means runtime.GOMAXPROCS(0).
func NewHasher(concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	// The dummy hash has the current parameters and random salt and key: it
	// costs a verification exactly what a real hash does, and no password
	// matches it.
	d := phc{params: current(), salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	rand.Read(d.salt)
	rand.Read(d.key)
	return &Hasher{sem: make(chan struct{}, concurrency), dummy: d.String()}
}

// Hash returns the argon2id hash of pw's NFKC form as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>". It does not apply the
// Policy; check a new password with Policy.Check first. The error is a
// *ciam.Error of Kind Unavailable, wrapping ctx.Err(), when ctx ends while
// waiting for a turn.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	p := phc{params: current(), salt: make([]byte, saltLen)}
	rand.Read(p.salt)
	key, err := h.derive(ctx, Normalize(pw), p.salt, p.params, keyLen)
	if err != nil {
		return "", err
	}
	p.key = key
	return p.String(), nil
}

// Verify reports whether pw's NFKC form matches the PHC string hash, using
// the parameters recorded in hash and comparing in constant time. A hash that
// is malformed, not argon2id v=19, or whose parameters are out of bounds is
// an error wrapping ErrInvalidHash (Kind Internal: stored data is wrong), and
// takes no turn. The error is Kind Unavailable, wrapping ctx.Err(), when ctx
// ends while waiting for a turn.
func (h *Hasher) Verify(ctx context.Context, pw, hash string) (bool, error) {
	p, err := parsePHC(hash)
	if err != nil {
		return false, ciam.Wrap(err, ciam.Internal, "password_hash_invalid", "The stored password cannot be checked.")
	}
	key, err := h.derive(ctx, Normalize(pw), p.salt, p.params, uint32(len(p.key)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// DummyVerify spends the time and memory of a failed Verify without any
// account: call it when the account does not exist (or has no password) so
// that an unknown account answers exactly as slowly as a wrong password. It
// returns only the errors of waiting for a turn.
func (h *Hasher) DummyVerify(ctx context.Context, pw string) error {
	_, err := h.Verify(ctx, pw, h.dummy)
	return err
}

// NeedsRehash reports whether hash was made with other parameters than new
// hashes get, or cannot be parsed; after a successful login the caller
// should then store a fresh Hash of the password.
func (h *Hasher) NeedsRehash(hash string) bool {
	p, err := parsePHC(hash)
	return err != nil || p.params != current() || len(p.salt) != saltLen || len(p.key) != keyLen
}

// Concurrency is the most hashes h computes at once.
func (h *Hasher) Concurrency() int { return cap(h.sem) }

// Running is how many hashes are being computed now; never more than
// Concurrency. Running plus Waiting is the queue depth to export as a gauge.
func (h *Hasher) Running() int { return int(h.running.Load()) }

// Waiting is how many callers wait for a turn to hash.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// derive computes the argon2id key once a turn is free.
func (h *Hasher) derive(ctx context.Context, pw string, salt []byte, p params, n uint32) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, n), nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return busy(err)
	}
	h.waiting.Add(1)
	select {
	case h.sem <- struct{}{}:
		h.waiting.Add(-1)
		h.running.Add(1)
		return nil
	case <-ctx.Done():
		h.waiting.Add(-1)
		return busy(ctx.Err())
	}
}

func (h *Hasher) release() {
	h.running.Add(-1)
	<-h.sem
}

func busy(err error) error {
	return ciam.Wrap(fmt.Errorf("password: waiting for a hashing turn: %w", err),
		ciam.Unavailable, "server_busy", "The server is busy. Try again in a moment.")
}
