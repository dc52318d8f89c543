package throttle

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(t *Throttle) (*Throttle, *clock) {
	c := newClock()
	t.Now = c.Now
	return t, c
}

type check struct{ delay, locked time.Duration }

func TestPerAccountSchedule(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	const key = "acct:acme:ann@example.com"
	// After the n-th failure (index n-1), what an immediate Check says.
	want := []check{
		{0, 0},                // 1
		{0, 0},                // 2
		{time.Second, 0},      // 3: free attempts used up
		{2 * time.Second, 0},  // 4
		{4 * time.Second, 0},  // 5
		{8 * time.Second, 0},  // 6
		{8 * time.Second, 0},  // 7: capped at MaxDelay
		{8 * time.Second, 0},  // 8
		{8 * time.Second, 0},  // 9
		{0, 15 * time.Minute}, // 10: locked
	}
	for i, w := range want {
		d, l := th.Check(key)
		if d != 0 || l != 0 {
			t.Fatalf("before attempt %d: Check = (%v, %v), want the attempt allowed", i+1, d, l)
		}
		th.Fail(key)
		d, l = th.Check(key)
		if d != w.delay || l != w.locked {
			t.Fatalf("after failure %d: Check = (%v, %v), want (%v, %v)", i+1, d, l, w.delay, w.locked)
		}
		clk.Advance(max(w.delay, w.locked))
	}
}

func TestDelayCountsDown(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	for range 4 {
		th.Fail("k")
	}
	if d, _ := th.Check("k"); d != 2*time.Second {
		t.Fatalf("delay = %v, want 2s", d)
	}
	clk.Advance(1500 * time.Millisecond)
	if d, _ := th.Check("k"); d != 500*time.Millisecond {
		t.Errorf("delay = %v, want 500ms", d)
	}
	clk.Advance(500 * time.Millisecond)
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Errorf("Check = (%v, %v), want allowed", d, l)
	}
}

// Once delays are in force, an allowed Check reserves the slot: parallel
// attempts cannot all slip through.
func TestCheckReservesSlot(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	for range 3 {
		th.Fail("k")
	}
	clk.Advance(time.Second)
	if d, _ := th.Check("k"); d != 0 {
		t.Fatalf("first Check delay = %v, want 0", d)
	}
	if d, _ := th.Check("k"); d != time.Second {
		t.Errorf("second Check delay = %v, want 1s (slot reserved)", d)
	}
	// Below the free attempts nothing is reserved.
	th2, _ := withClock(NewPerAccount())
	th2.Fail("k")
	for range 5 {
		if d, l := th2.Check("k"); d != 0 || l != 0 {
			t.Fatalf("free Check = (%v, %v)", d, l)
		}
	}
}

func TestLockCountsDownAndExpires(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	for range 10 {
		th.Fail("k")
	}
	clk.Advance(10 * time.Minute)
	if _, l := th.Check("k"); l != 5*time.Minute {
		t.Errorf("locked = %v, want 5m left", l)
	}
	clk.Advance(5 * time.Minute)
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Errorf("after the lock Check = (%v, %v), want a fresh start", d, l)
	}
	th.Fail("k")
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Errorf("first failure after the lock: Check = (%v, %v), want free", d, l)
	}
}

// When the lock is shorter than the window, the next failure re-locks.
func TestShortLockRelocks(t *testing.T) {
	th, clk := withClock(&Throttle{Window: time.Hour, FreeAttempts: 1, LockAfter: 3, LockFor: time.Minute, MaxDelay: time.Second})
	for range 3 {
		th.Fail("k")
	}
	clk.Advance(time.Minute)
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Fatalf("after the lock Check = (%v, %v)", d, l)
	}
	th.Fail("k")
	if _, l := th.Check("k"); l != time.Minute {
		t.Errorf("locked = %v, want re-locked for 1m", l)
	}
}

func TestWindowForgetsQuietFailures(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	th.Fail("k")
	th.Fail("k")
	clk.Advance(14 * time.Minute)
	th.Fail("k") // the window runs from the last failure
	if d, _ := th.Check("k"); d != time.Second {
		t.Fatalf("delay = %v, want 1s", d)
	}
	clk.Advance(15 * time.Minute)
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Errorf("after a quiet window Check = (%v, %v)", d, l)
	}
	th.Fail("k")
	th.Fail("k")
	if d, _ := th.Check("k"); d != 0 {
		t.Errorf("count did not restart: delay %v", d)
	}
}

func TestReset(t *testing.T) {
	th, _ := withClock(NewPerAccount())
	for range 10 {
		th.Fail("acct:acme:a")
		th.Fail("ip:acme:192.0.2.1")
	}
	th.Reset("acct:acme:a")
	if d, l := th.Check("acct:acme:a"); d != 0 || l != 0 {
		t.Errorf("after Reset Check = (%v, %v)", d, l)
	}
	if _, l := th.Check("ip:acme:192.0.2.1"); l == 0 {
		t.Error("Reset of one key released another")
	}
	th.Reset("never-seen")
}

func TestKeysAreIndependent(t *testing.T) {
	th, _ := withClock(NewPerAccount())
	for range 10 {
		th.Fail("acct:acme:a@example.com")
	}
	for _, k := range []string{"acct:other:a@example.com", "acct:acme:b@example.com", ""} {
		if d, l := th.Check(k); d != 0 || l != 0 {
			t.Errorf("Check(%q) = (%v, %v), want unaffected", k, d, l)
		}
	}
}

func TestPerIPDefaults(t *testing.T) {
	th, _ := withClock(NewPerIP())
	const key = "ip:acme:198.51.100.7"
	for range 19 {
		th.Fail(key)
	}
	if d, l := th.Check(key); d != 0 || l != 0 {
		t.Fatalf("after 19 failures Check = (%v, %v), want free", d, l)
	}
	th.Fail(key)
	if d, _ := th.Check(key); d != time.Second {
		t.Errorf("after 20 failures delay = %v, want 1s", d)
	}
	for range 79 {
		th.Fail(key)
	}
	if _, l := th.Check(key); l != 0 {
		t.Fatalf("locked after 99 failures")
	}
	th.Fail(key)
	if _, l := th.Check(key); l != 15*time.Minute {
		t.Errorf("after 100 failures locked = %v, want 15m", l)
	}
}

func TestZeroValueDoesNotThrottle(t *testing.T) {
	th := &Throttle{Window: time.Hour}
	for range 50 {
		th.Fail("k")
	}
	if d, l := th.Check("k"); d != 0 || l != 0 {
		t.Errorf("Check = (%v, %v), want nothing without MaxDelay and LockAfter", d, l)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		th    *Throttle
		fails int
		want  time.Duration
	}{
		{&Throttle{FreeAttempts: 3, MaxDelay: 8 * time.Second}, 2, 0},
		{&Throttle{FreeAttempts: 3, MaxDelay: 8 * time.Second}, 3, time.Second},
		{&Throttle{FreeAttempts: 3, MaxDelay: 8 * time.Second}, 5, 4 * time.Second},
		{&Throttle{FreeAttempts: 3, MaxDelay: 8 * time.Second}, 1 << 30, 8 * time.Second},
		{&Throttle{FreeAttempts: 0, MaxDelay: 500 * time.Millisecond}, 1, 500 * time.Millisecond},
		{&Throttle{FreeAttempts: 0, MaxDelay: 5 * time.Second}, 3, 5 * time.Second},
		{&Throttle{FreeAttempts: 3}, 10, 0},
	}
	for _, tc := range tests {
		if got := tc.th.backoff(tc.fails); got != tc.want {
			t.Errorf("backoff(free %d, max %v, fails %d) = %v, want %v", tc.th.FreeAttempts, tc.th.MaxDelay, tc.fails, got, tc.want)
		}
	}
}

func (t *Throttle) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		if got := s.listLen(); got != len(s.m) {
			panic(fmt.Sprintf("shard %d: list has %d entries, map %d", i, got, len(s.m)))
		}
		s.mu.Unlock()
	}
	return n
}

func (s *shard) listLen() int {
	n := 0
	for e := s.oldest; e != nil; e = e.newer {
		n++
	}
	return n
}

func TestMaxKeysEvictsOldest(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	th.MaxKeys = 320 // 10 per shard
	for range 10 {
		th.Fail("locked")
	}
	clk.Advance(time.Second)
	for i := range 5000 {
		th.Fail(fmt.Sprintf("flood-%d", i))
	}
	if n := th.size(); n > 320 {
		t.Errorf("%d keys remembered, want at most 320", n)
	}
	// The most recent keys survive.
	th.Fail("flood-4999")
	if d, _ := th.Check("flood-4999"); d != 0 {
		t.Errorf("recent key lost: delay %v", d) // 2 failures: still free
	}
}

func TestExpiredEntriesAreSwept(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	for i := range 1000 {
		th.Fail(fmt.Sprintf("k%d", i))
	}
	clk.Advance(16 * time.Minute)
	// Use alone, with unrelated keys, frees the memory.
	for i := range 1000 {
		th.Check(fmt.Sprintf("other%d", i))
	}
	if n := th.size(); n != 0 {
		t.Errorf("%d expired keys still held", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	th.MaxKeys = 64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				key := fmt.Sprintf("k%d", (g*7+i)%100)
				th.Check(key)
				th.Fail(key)
				if i%10 == 0 {
					th.Reset(key)
				}
				if i%100 == 0 {
					clk.Advance(time.Minute)
				}
			}
		}()
	}
	wg.Wait()
	if n := th.size(); n > 64 {
		t.Errorf("%d keys held, want at most 64", n)
	}
}

// Parallel Checks in the delay regime let exactly one attempt through.
func TestConcurrentCheckOneWinner(t *testing.T) {
	th, clk := withClock(NewPerAccount())
	for range 5 {
		th.Fail("k")
	}
	clk.Advance(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, l := th.Check("k"); d == 0 && l == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 1 {
		t.Errorf("%d parallel attempts allowed, want 1", allowed)
	}
}

func BenchmarkCheckFail(b *testing.B) {
	th := NewPerAccount()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			key := fmt.Sprintf("acct:acme:user%d@example.com", i%5000)
			th.Check(key)
			th.Fail(key)
			i++
		}
	})
}
