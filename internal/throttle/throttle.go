package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// Throttle counts failures per key in memory and turns them into delays and
// locks. It is safe for concurrent use. Set the fields before first use and do
// not change them afterwards; the zero value of a field disables what it
// controls (no FreeAttempts: every failure delays; no MaxDelay: no delays; no
// LockAfter: no lock), so start from [NewPerAccount] or [NewPerIP].
//
// The rules:
//
//   - Failures count until Window passes without a new failure (and no lock
//     is in force); then the key starts afresh.
//   - The first FreeAttempts failures cost nothing. From then on each attempt
//     must wait after the previous failure: 1s, then doubling per further
//     failure, up to MaxDelay.
//   - The LockAfter-th failure locks the key for LockFor. If LockFor is
//     shorter than Window, each failure after the lock ends locks again until
//     the window passes quietly.
//
// Memory is bounded: entries whose window has passed are evicted as the
// throttle is used, and beyond MaxKeys keys the least recently failed ones
// are evicted.
type Throttle struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Window is how long failures are remembered after the last one.
	Window time.Duration
	// FreeAttempts is how many failures in a window cost no delay.
	FreeAttempts int
	// LockAfter is the number of failures in a window that locks the key; 0
	// never locks.
	LockAfter int
	// LockFor is how long a lock lasts.
	LockFor time.Duration
	// MaxDelay caps the progressive delay, which starts at 1s (or MaxDelay
	// if smaller) and doubles with each failure.
	MaxDelay time.Duration
	// MaxKeys bounds the number of keys remembered; 0 means 100,000.
	MaxKeys int

	once   sync.Once
	seed   maphash.Seed
	shards [numShards]shard
}

const (
	numShards       = 32
	defaultMaxKeys  = 100_000
	sweepBatch      = 16
	firstDelay      = time.Second
	defaultWindow   = 15 * time.Minute
	defaultLockFor  = 15 * time.Minute
	defaultMaxDelay = 8 * time.Second
)

// NewPerAccount returns a throttle for account keys: 3 free failures in a
// 15-minute window, then delays of 1s, 2s, 4s and 8s, and at the 10th failure
// a 15-minute lock.
func NewPerAccount() *Throttle {
	return &Throttle{
		Window:       defaultWindow,
		FreeAttempts: 3,
		LockAfter:    10,
		LockFor:      defaultLockFor,
		MaxDelay:     defaultMaxDelay,
	}
}

// NewPerIP returns a throttle for source-address keys, looser because many
// people may share an address: 20 free failures in a 15-minute window, then
// delays from 1s up to 8s, and at the 100th failure a 15-minute lock.
func NewPerIP() *Throttle {
	return &Throttle{
		Window:       defaultWindow,
		FreeAttempts: 20,
		LockAfter:    100,
		LockFor:      defaultLockFor,
		MaxDelay:     defaultMaxDelay,
	}
}

// Check returns how long the attempt for key must wait before it may proceed
// (delay), or, if key is locked, how long the lock still lasts (locked). When
// both are zero the attempt may proceed; once delays are in force, such an
// answer also reserves the slot, so parallel attempts cannot skip the delay:
// a second Check before the delay has passed again is told to wait. Callers
// should refuse a delayed attempt (429 with Retry-After) rather than sleep.
func (t *Throttle) Check(key string) (delay, locked time.Duration) {
	now := t.now()
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(t, now)
	e := s.m[key]
	if e == nil {
		return 0, 0
	}
	if t.expired(e, now) {
		s.remove(e)
		return 0, 0
	}
	if now.Before(e.lockedUntil) {
		return 0, e.lockedUntil.Sub(now)
	}
	if e.fails < t.FreeAttempts {
		return 0, 0
	}
	if now.Before(e.notBefore) {
		return e.notBefore.Sub(now), 0
	}
	e.notBefore = now.Add(t.backoff(e.fails))
	return 0, 0
}

// Fail records a failed attempt for key. A failure recorded while the key is
// locked (callers should not attempt then) extends the lock.
func (t *Throttle) Fail(key string) {
	now := t.now()
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(t, now)
	e := s.m[key]
	switch {
	case e == nil:
		e = &entry{key: key}
		s.insert(e, t.shardCap())
	case t.expired(e, now):
		*e = entry{key: key, older: e.older, newer: e.newer}
		s.touch(e)
	default:
		s.touch(e)
	}
	if e.fails < 1<<30 {
		e.fails++
	}
	e.last = now
	e.notBefore = now.Add(t.backoff(e.fails))
	if t.LockAfter > 0 && e.fails >= t.LockAfter {
		e.lockedUntil = now.Add(t.LockFor)
	}
}

// Reset forgets key's failures, delays and lock.
func (t *Throttle) Reset(key string) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		s.remove(e)
	}
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Throttle) shard(key string) *shard {
	t.once.Do(func() { t.seed = maphash.MakeSeed() })
	return &t.shards[maphash.String(t.seed, key)%numShards]
}

func (t *Throttle) shardCap() int {
	n := t.MaxKeys
	if n <= 0 {
		n = defaultMaxKeys
	}
	return max(1, (n+numShards-1)/numShards)
}

// backoff is the wait after the fails-th failure.
func (t *Throttle) backoff(fails int) time.Duration {
	if fails < t.FreeAttempts || t.MaxDelay <= 0 {
		return 0
	}
	d := min(firstDelay, t.MaxDelay)
	for i := t.FreeAttempts; i < fails && d < t.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.MaxDelay)
}

// expired reports whether e's failures no longer count: no lock in force and
// a quiet Window since the last failure.
func (t *Throttle) expired(e *entry, now time.Time) bool {
	return !now.Before(e.lockedUntil) && now.Sub(e.last) >= t.Window
}

type entry struct {
	key         string
	fails       int
	last        time.Time // last failure
	notBefore   time.Time // no attempt before this
	lockedUntil time.Time
	// The shard's recency list, ordered by last failure.
	older, newer *entry
}

// shard is one lock's worth of keys, with a list from the most recently
// failed (newest) to the least (oldest). Every entry expires at its last
// failure plus Window (or LockFor, for a locked one), so the oldest entries
// expire first and sweeping from the oldest end finds the expired ones.
type shard struct {
	mu     sync.Mutex
	m      map[string]*entry
	newest *entry
	oldest *entry
}

func (s *shard) insert(e *entry, capacity int) {
	if s.m == nil {
		s.m = make(map[string]*entry)
	}
	for len(s.m) >= capacity && s.oldest != nil {
		s.remove(s.oldest)
	}
	s.m[e.key] = e
	s.pushNewest(e)
}

func (s *shard) remove(e *entry) {
	delete(s.m, e.key)
	s.unlink(e)
}

func (s *shard) touch(e *entry) {
	s.unlink(e)
	s.pushNewest(e)
}

func (s *shard) pushNewest(e *entry) {
	e.older, e.newer = s.newest, nil
	if s.newest != nil {
		s.newest.newer = e
	}
	s.newest = e
	if s.oldest == nil {
		s.oldest = e
	}
}

func (s *shard) unlink(e *entry) {
	if e.older != nil {
		e.older.newer = e.newer
	} else if s.oldest == e {
		s.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else if s.newest == e {
		s.newest = e.older
	}
	e.older, e.newer = nil, nil
}

// sweep evicts up to sweepBatch expired entries from the oldest end.
func (s *shard) sweep(t *Throttle, now time.Time) {
	for i := 0; i < sweepBatch && s.oldest != nil && t.expired(s.oldest, now); i++ {
		s.remove(s.oldest)
	}
}
