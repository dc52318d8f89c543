package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

var phcFormat = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormat(t *testing.T) {
	h := NewHasher(0)
	ctx := context.Background()
	a, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !phcFormat.MatchString(a) {
		t.Errorf("hash %q is not $argon2id$v=19$m=19456,t=2,p=1$<22 b64>$<43 b64>", a)
	}
	if a == b {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if h.NeedsRehash(a) {
		t.Error("NeedsRehash of a fresh hash")
	}
	if h.Concurrency() < 1 {
		t.Errorf("Concurrency() = %d", h.Concurrency())
	}
}

func TestVerify(t *testing.T) {
	h := NewHasher(2)
	ctx := context.Background()
	long := strings.Repeat("a", ciam.PasswordMaxLength-1) + "b"
	tests := []struct {
		name      string
		set, try  string
		wantMatch bool
	}{
		{"same password", "correct horse battery staple", "correct horse battery staple", true},
		{"wrong password", "correct horse battery staple", "correct horse battery stapler", false},
		{"case matters", "correct horse battery staple", "Correct horse battery staple", false},
		{"empty against set", "correct horse battery staple", "", false},
		{"full-width typed, ASCII set", "password-123", "ｐａｓｓｗｏｒｄ－１２３", true},
		{"ASCII typed, full-width set", "ｐａｓｓｗｏｒｄ－１２３", "password-123", true},
		{"decomposed typed, composed set", "caf\u00e9 au lait", "cafe\u0301 au lait", true},
		{"composed typed, decomposed set", "cafe\u0301 au lait", "caf\u00e9 au lait", true},
		{"ligature typed", "fine print", "\ufb01ne print", true},
		{"NFKC does not erase accents", "caf\u00e9 au lait", "cafe au lait", false},
		{"256 characters", long, long, true},
		{"256 characters, last one changed", long, long[:len(long)-1] + "c", false},
		{"256 characters, one dropped", long, long[:len(long)-1], false},
		{"multibyte, last one changed", strings.Repeat("é", 255) + "a", strings.Repeat("é", 255) + "b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := h.Hash(ctx, tt.set)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := h.Verify(ctx, tt.try, hash)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantMatch {
				t.Errorf("Verify(%.20q) = %v, want %v", tt.try, ok, tt.wantMatch)
			}
		})
	}
}

// TestVerifyOtherParameters checks that hashes made with other parameters
// (older or newer ones) verify, from what the PHC string records, and that
// NeedsRehash reports them.
func TestVerifyOtherParameters(t *testing.T) {
	h := NewHasher(1)
	ctx := context.Background()
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name string
		p    params
		salt []byte
		n    uint32
	}{
		{"weaker m and t", params{memory: 8 * 1024, time: 1, threads: 1}, salt, 32},
		{"two lanes", params{memory: 16 * 1024, time: 2, threads: 2}, salt, 32},
		{"stronger t", params{memory: 12 * 1024, time: 3, threads: 1}, salt, 32},
		{"short salt, long key", current(), salt[:8], 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := h.derive(ctx, "old password 1", tt.salt, tt.p, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			hash := (&phc{params: tt.p, salt: tt.salt, key: key}).String()
			if ok, err := h.Verify(ctx, "old password 1", hash); !ok || err != nil {
				t.Errorf("Verify(%s) = %v, %v; want true", hash, ok, err)
			}
			if ok, err := h.Verify(ctx, "old password 2", hash); ok || err != nil {
				t.Errorf("Verify(wrong, %s) = %v, %v; want false", hash, ok, err)
			}
			if !h.NeedsRehash(hash) {
				t.Errorf("NeedsRehash(%s) = false", hash)
			}
		})
	}
	if !h.NeedsRehash("not a hash") {
		t.Error("NeedsRehash of garbage = false")
	}
}

// TestVerifyMalformed checks that a bad stored hash is an error, not a panic
// and not a match, and that it is refused before it takes a turn: the only
// turn is held throughout, so anything that waited would block.
func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(1)
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.release()
	for _, s := range malformedPHC {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := h.Verify(ctx, "password", s)
		cancel()
		if ok || !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Verify(%.60q) = %v, %v; want false, ErrInvalidHash", s, ok, err)
			continue
		}
		if e := ciam.As(err); e == nil || e.Kind != ciam.Internal || e.Code != "password_hash_invalid" {
			t.Errorf("Verify(%.60q) error %v is not an internal password_hash_invalid", s, err)
		}
	}
}

// TestVerifyCraftedCost checks that hashes whose parameters would make one
// verification allocate gigabytes or run for minutes are refused without
// allocating or computing anything.
func TestVerifyCraftedCost(t *testing.T) {
	h := NewHasher(1)
	for _, params := range []string{
		"m=4194304,t=2,p=1",    // 4 GiB
		"m=4294967295,t=1,p=1", // the largest uint32
		"m=19456,t=4294967295,p=1",
		"m=19456,t=2,p=255",
		"m=65536,t=10,p=4",
	} {
		hash := withParams(params)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ok, err := h.Verify(context.Background(), "password", hash)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if ok || !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Verify(%s) = %v, %v; want ErrInvalidHash", params, ok, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("Verify(%s) allocated %d bytes (in %v) before refusing", params, n, took)
		}
	}
}

func TestDummyVerify(t *testing.T) {
	h := NewHasher(1)
	if !phcFormat.MatchString(h.dummy) {
		t.Errorf("dummy hash %q does not have the current parameters", h.dummy)
	}
	if h.NeedsRehash(h.dummy) {
		t.Error("the dummy hash needs a rehash")
	}
	for _, pw := range []string{"", "password", "correct horse battery staple"} {
		if err := h.DummyVerify(context.Background(), pw); err != nil {
			t.Errorf("DummyVerify(%q) = %v", pw, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.DummyVerify(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("DummyVerify with a cancelled context = %v", err)
	}
}

// BenchmarkVerifyWrong and BenchmarkDummyVerify show that DummyVerify costs
// what a Verify of a wrong password costs, so an unknown account cannot be
// told from a known one by timing (about 21 ms each on a quiet 2-core machine).
func BenchmarkVerifyWrong(b *testing.B) {
	h := NewHasher(1)
	hash, err := h.Hash(context.Background(), "the real password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h.Verify(context.Background(), "a wrong password", hash)
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	h := NewHasher(1)
	for b.Loop() {
		h.DummyVerify(context.Background(), "a wrong password")
	}
}

// TestDummyVerifyHashes checks that DummyVerify does the real work: it takes a
// hashing turn like Verify, so it cannot return at once.
func TestDummyVerifyHashes(t *testing.T) {
	h := NewHasher(1)
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.DummyVerify(context.Background(), "x") }()
	for h.Waiting() == 0 {
		select {
		case err := <-done:
			t.Fatalf("DummyVerify returned (%v) without waiting for a hashing turn", err)
		default:
			runtime.Gosched()
		}
	}
	h.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestContextCancelWhileWaiting holds the only turn, so Hash and Verify must
// wait, then cancels them.
func TestContextCancelWhileWaiting(t *testing.T) {
	h := NewHasher(1)
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	hash := h.dummy
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Hash", func(ctx context.Context) error { _, err := h.Hash(ctx, "pw"); return err }},
		{"Verify", func(ctx context.Context) error { _, err := h.Verify(ctx, "pw", hash); return err }},
		{"DummyVerify", func(ctx context.Context) error { return h.DummyVerify(ctx, "pw") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.call(ctx) }()
			waitFor(t, func() bool { return h.Waiting() == 1 })
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v does not wrap context.Canceled", err)
				}
				if e := ciam.As(err); e == nil || e.Kind != ciam.Unavailable {
					t.Errorf("error %v is not a ciam.Error of Kind Unavailable", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still waiting 10s after cancel")
			}
			if h.Waiting() != 0 || h.Running() != 1 {
				t.Errorf("after cancel: Waiting() = %d, Running() = %d; want 0, 1", h.Waiting(), h.Running())
			}
		})
	}

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hash = %v, want DeadlineExceeded", err)
		}
	})

	h.release()
	t.Run("already cancelled, turn free", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash = %v, want Canceled", err)
		}
		if h.Running() != 0 || h.Waiting() != 0 {
			t.Errorf("Running() = %d, Waiting() = %d", h.Running(), h.Waiting())
		}
	})
}

// TestConcurrencyBound runs 16 hashes at once on a Hasher that allows 2 and
// watches Running() and Waiting() throughout.
func TestConcurrencyBound(t *testing.T) {
	const bound, callers = 2, 16
	h := NewHasher(bound)
	ctx := context.Background()
	var maxRunning, maxWaiting atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			r, w := int64(h.Running()), int64(h.Waiting())
			if r > maxRunning.Load() {
				maxRunning.Store(r)
			}
			if w > maxWaiting.Load() {
				maxWaiting.Store(w)
			}
			select {
			case <-stop:
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			pw := strings.Repeat("x", i+1)
			hash, err := h.Hash(ctx, pw)
			if err == nil {
				var ok bool
				if ok, err = h.Verify(ctx, pw, hash); err == nil && !ok {
					err = errors.New("round trip failed for " + pw)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("max Running() %d, max Waiting() %d", maxRunning.Load(), maxWaiting.Load())
	if m := maxRunning.Load(); m > bound || m < 1 {
		t.Errorf("max Running() = %d, want 1..%d", m, bound)
	}
	if maxWaiting.Load() == 0 {
		t.Error("nobody ever waited, with 16 callers and 2 turns")
	}
	if h.Running() != 0 || h.Waiting() != 0 {
		t.Errorf("afterwards Running() = %d, Waiting() = %d", h.Running(), h.Waiting())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(1)
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := h.Verify(ctx, "correct horse battery staple", hash); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkHashParallel shows the throughput of a Hasher bounded to
// GOMAXPROCS under more callers than cores.
func BenchmarkHashParallel(b *testing.B) {
	h := NewHasher(0)
	ctx := context.Background()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
