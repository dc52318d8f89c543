package throttle

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClient connects to GATEHOUSE_TEST_REDIS, or skips with a notice.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("GATEHOUSE_TEST_REDIS")
	if u == "" {
		t.Skip("NOTICE: Redis test skipped: set GATEHOUSE_TEST_REDIS=redis://127.0.0.1:6379/0 to run it.")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("GATEHOUSE_TEST_REDIS: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func testPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "gatehouse-test:" + hex.EncodeToString(b) + ":"
}

// The shared throttle follows the in-memory schedule exactly.
func TestSharedSchedule(t *testing.T) {
	c := redisClient(t)
	rules, clk := withClock(NewPerAccount())
	s := &Shared{Rules: rules, Client: c, Prefix: testPrefix(), OnError: func(err error) { t.Errorf("redis: %v", err) }}
	const key = "acct:acme:ann@example.com"
	want := []check{
		{0, 0}, {0, 0}, {time.Second, 0}, {2 * time.Second, 0}, {4 * time.Second, 0},
		{8 * time.Second, 0}, {8 * time.Second, 0}, {8 * time.Second, 0}, {8 * time.Second, 0},
		{0, 15 * time.Minute},
	}
	for i, w := range want {
		if d, l := s.Check(key); d != 0 || l != 0 {
			t.Fatalf("before attempt %d: Check = (%v, %v), want the attempt allowed", i+1, d, l)
		}
		s.Fail(key)
		if d, l := s.Check(key); d != w.delay || l != w.locked {
			t.Fatalf("after failure %d: Check = (%v, %v), want (%v, %v)", i+1, d, l, w.delay, w.locked)
		}
		clk.Advance(max(w.delay, w.locked))
	}
	// A quiet window after the lock forgets everything.
	clk.Advance(defaultWindow)
	s.Fail(key)
	if d, l := s.Check(key); d != 0 || l != 0 {
		t.Errorf("after a quiet window: Check = (%v, %v), want a fresh count", d, l)
	}
	s.Reset(key)
	if n, _ := c.Exists(t.Context(), s.Prefix+key).Result(); n != 0 {
		t.Errorf("Reset left the key in Redis")
	}
	if rules.size() != 0 {
		t.Errorf("the in-memory counters were used while Redis was up")
	}
}

// Two nodes count the same failures, and a delay reserved on one holds on
// the other.
func TestSharedAcrossNodes(t *testing.T) {
	c := redisClient(t)
	prefix := testPrefix()
	clk := newClock()
	node := func() *Shared {
		r := NewPerAccount()
		r.Now = clk.Now
		return &Shared{Rules: r, Client: c, Prefix: prefix}
	}
	a, b := node(), node()
	const key = "acct:acme:bob@example.com"
	a.Fail(key)
	b.Fail(key)
	a.Fail(key)
	if d, _ := b.Check(key); d != time.Second {
		t.Fatalf("after 3 failures over two nodes: delay %v, want 1s", d)
	}
	clk.Advance(time.Second)
	if d, _ := a.Check(key); d != 0 {
		t.Fatalf("after the delay: %v, want the attempt allowed", d)
	}
	if d, _ := b.Check(key); d != time.Second {
		t.Fatalf("a parallel attempt on the other node skipped the reserved delay: %v", d)
	}
	for range 7 {
		a.Fail(key)
	}
	if _, l := b.Check(key); l != 15*time.Minute {
		t.Fatalf("after 10 failures over two nodes: lock %v, want 15m", l)
	}
}

// With Redis unreachable the node still throttles, on its own counters.
func TestSharedFallsBackWhenRedisIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	var errs atomic.Int32
	rules, _ := withClock(NewPerAccount())
	s := &Shared{Rules: rules, Client: c, Prefix: testPrefix(), OnError: func(error) { errs.Add(1) }}
	const key = "acct:acme:eve@example.com"
	for range 3 {
		s.Fail(key)
	}
	if d, _ := s.Check(key); d != time.Second {
		t.Fatalf("with Redis down: delay %v, want 1s from the in-memory counters", d)
	}
	if errs.Load() == 0 {
		t.Error("Redis failures were not reported")
	}
}
