package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

type fixture struct {
	st      store.Store
	tenant  ciam.TenantID
	clock   *testenv.Clock
	ctx     context.Context
	mu      sync.Mutex // guards outcome
	outcome map[string]int
}

func openSQLite(t *testing.T) store.Store {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "o.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func setup(t *testing.T, st store.Store) *fixture {
	f := &fixture{st: st, ctx: context.Background(), clock: testenv.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), outcome: map[string]int{}}
	f.tenant = f.newTenant(t, "acme")
	return f
}

func (f *fixture) newTenant(t *testing.T, slug string) ciam.TenantID {
	tn := &ciam.Tenant{ID: ciam.TenantID(ciam.NewID()), Slug: slug, DisplayName: slug, PrimaryColor: "#000000", MFAPolicy: ciam.MFAOff,
		SessionIdle: time.Hour, SessionAbsolute: 3 * time.Hour, CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}
	if err := f.st.Tx(f.ctx, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(f.ctx, tn) }); err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

func (f *fixture) worker(deliver outbox.DeliverFunc) *outbox.Worker {
	return &outbox.Worker{
		Store: f.st, Now: f.clock.Now, Deliverers: map[string]outbox.Deliverer{"test": deliver},
		Backoff: func(n int) time.Duration { return time.Duration(n) * time.Minute },
		Observe: func(kind, o string) {
			f.mu.Lock()
			f.outcome[o]++
			f.mu.Unlock()
		},
	}
}

func (f *fixture) add(t *testing.T, tenant ciam.TenantID, body string) *ciam.OutboxMessage {
	var m *ciam.OutboxMessage
	err := f.st.Tx(f.ctx, tenant, func(tx store.Tx) (err error) {
		m, err = outbox.Add(f.ctx, tx, "test", map[string]string{"body": body}, f.clock.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) get(t *testing.T, tenant ciam.TenantID, id string) *ciam.OutboxMessage {
	var m *ciam.OutboxMessage
	err := f.st.View(f.ctx, tenant, func(tx store.Tx) (err error) {
		m, err = tx.Outbox().Get(f.ctx, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func runOnce(t *testing.T, w *outbox.Worker) int {
	t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliveredOnceAndOnlyIfCommitted(t *testing.T) {
	f := setup(t, openSQLite(t))
	var got []string
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		got = append(got, string(m.Payload))
		return nil
	})
	m := f.add(t, f.tenant, "hello")
	// A message queued in a transaction that rolls back is never sent.
	boom := errors.New("boom")
	err := f.st.Tx(f.ctx, f.tenant, func(tx store.Tx) error {
		if _, err := outbox.Add(f.ctx, tx, "test", "lost", f.clock.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("claimed %d, want 1", n)
	}
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("claimed %d after delivery, want 0", n)
	}
	if len(got) != 1 || got[0] != `{"body":"hello"}` {
		t.Fatalf("delivered %q", got)
	}
	if s := f.get(t, f.tenant, m.ID); s.Status != ciam.OutboxSent || s.Attempts != 1 || !s.DoneAt.Equal(f.clock.Now()) {
		t.Errorf("after delivery: %+v", s)
	}
	if f.outcome[outbox.OutcomeSent] != 1 {
		t.Errorf("outcomes %v", f.outcome)
	}
}

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	f := setup(t, openSQLite(t))
	var calls atomic.Int32
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		if calls.Add(1) <= 2 {
			return errors.New("connection refused")
		}
		return nil
	})
	m := f.add(t, f.tenant, "x")
	runOnce(t, w)
	s := f.get(t, f.tenant, m.ID)
	if s.Status != ciam.OutboxPending || s.LastError != "connection refused" || !s.NextAttemptAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("after the first failure: %+v", s)
	}
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("retried before the backoff ended")
	}
	f.clock.Advance(time.Minute)
	runOnce(t, w) // second failure: backoff 2 minutes
	f.clock.Advance(time.Minute)
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("retried before the second backoff ended")
	}
	f.clock.Advance(time.Minute)
	runOnce(t, w)
	s = f.get(t, f.tenant, m.ID)
	if s.Status != ciam.OutboxSent || s.Attempts != 3 {
		t.Fatalf("after the third attempt: %+v", s)
	}
	if f.outcome[outbox.OutcomeRetried] != 2 || f.outcome[outbox.OutcomeSent] != 1 {
		t.Errorf("outcomes %v", f.outcome)
	}
}

func auditTypes(t *testing.T, f *fixture) []*ciam.AuditEvent {
	var es []*ciam.AuditEvent
	err := f.st.View(f.ctx, f.tenant, func(tx store.Tx) (err error) {
		es, err = tx.Audit().List(f.ctx, store.AuditFilter{Type: outbox.DeadLettered})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestDeadLetteredAfterMaxAttempts(t *testing.T) {
	f := setup(t, openSQLite(t))
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		return errors.New("451 try later, ada@example.com")
	})
	w.MaxAttempts = 3
	m := f.add(t, f.tenant, "x")
	for range 3 {
		runOnce(t, w)
		f.clock.Advance(time.Hour)
	}
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("a dead letter was claimed again")
	}
	s := f.get(t, f.tenant, m.ID)
	if s.Status != ciam.OutboxDead || s.Attempts != 3 || s.LastError == "" {
		t.Fatalf("dead letter: %+v", s)
	}
	es := auditTypes(t, f)
	if len(es) != 1 || es[0].TargetID != m.ID || es[0].Data["kind"] != "test" || es[0].Data["attempts"] != "3" ||
		es[0].Data["reason"] != "attempts_exhausted" || es[0].Outcome != ciam.OutcomeFailure {
		t.Fatalf("audit events %+v", es)
	}
	for k, v := range es[0].Data {
		if v == "" || k == "error" {
			t.Errorf("audit data %q=%q", k, v)
		}
	}
	if _, _, err := audit.Verify(f.ctx, f.st, f.tenant); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	if pending, dead, err := f.st.System().OutboxCounts(f.ctx); err != nil || pending != 0 || dead != 1 {
		t.Errorf("counts %d %d %v", pending, dead, err)
	}
	if f.outcome[outbox.OutcomeDead] != 1 || f.outcome[outbox.OutcomeRetried] != 2 {
		t.Errorf("outcomes %v", f.outcome)
	}
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	f := setup(t, openSQLite(t))
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		return fmt.Errorf("send: %w", outbox.Permanent(errors.New("550 mailbox unavailable")))
	})
	m := f.add(t, f.tenant, "x")
	runOnce(t, w)
	if s := f.get(t, f.tenant, m.ID); s.Status != ciam.OutboxDead || s.Attempts != 1 || s.LastError != "send: 550 mailbox unavailable" {
		t.Fatalf("after a permanent error: %+v", s)
	}
	if es := auditTypes(t, f); len(es) != 1 || es[0].Data["reason"] != "permanent_error" {
		t.Fatalf("audit %+v", es)
	}
	if outbox.IsPermanent(errors.New("x")) || outbox.Permanent(nil) != nil {
		t.Errorf("Permanent/IsPermanent")
	}
}

func TestPanicAndUnknownKindAreRetried(t *testing.T) {
	f := setup(t, openSQLite(t))
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error { panic("bad message") })
	m := f.add(t, f.tenant, "x")
	var other *ciam.OutboxMessage
	err := f.st.Tx(f.ctx, f.tenant, func(tx store.Tx) (err error) {
		other, err = outbox.Add(f.ctx, tx, "from-a-newer-version", nil, f.clock.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := runOnce(t, w); n != 2 {
		t.Fatalf("claimed %d", n)
	}
	if s := f.get(t, f.tenant, m.ID); s.Status != ciam.OutboxPending || s.LastError != "deliverer panicked: bad message" {
		t.Errorf("after a panic: %+v", s)
	}
	if s := f.get(t, f.tenant, other.ID); s.Status != ciam.OutboxPending || s.LastError != `no deliverer for kind "from-a-newer-version"` {
		t.Errorf("unknown kind: %+v", s)
	}
}

// A worker that dies mid-delivery leaves its claim behind; the message is
// delivered by another once the lease lapses, and not before.
func TestLapsedLeaseIsClaimedAgain(t *testing.T) {
	f := setup(t, openSQLite(t))
	m := f.add(t, f.tenant, "x")
	claimed, err := f.st.System().ClaimOutbox(f.ctx, "crashed-worker", f.clock.Now(), f.clock.Now().Add(outbox.DefaultLease), 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	var delivered atomic.Int32
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		delivered.Add(1)
		return nil
	})
	f.clock.Advance(outbox.DefaultLease - time.Second)
	if n := runOnce(t, w); n != 0 {
		t.Fatalf("claimed a message another worker holds")
	}
	f.clock.Advance(time.Second)
	runOnce(t, w)
	if s := f.get(t, f.tenant, m.ID); s.Status != ciam.OutboxSent || s.Attempts != 2 || delivered.Load() != 1 {
		t.Fatalf("after the lease lapsed: %+v, %d deliveries", s, delivered.Load())
	}
}

// Shutting down mid-delivery records nothing: the message stays claimed
// until its lease lapses, then goes out.
func TestShutdownMidDelivery(t *testing.T) {
	f := setup(t, openSQLite(t))
	m := f.add(t, f.tenant, "x")
	started := make(chan struct{})
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.RunOnce(ctx)
		close(done)
	}()
	<-started
	cancel()
	<-done
	if s := f.get(t, f.tenant, m.ID); s.Status != ciam.OutboxPending || s.Lease == "" || s.LastError != "" {
		t.Fatalf("after shutdown: %+v", s)
	}
}

func TestRunNotifyAndStop(t *testing.T) {
	f := setup(t, openSQLite(t))
	got := make(chan string, 10)
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		got <- m.ID
		return nil
	})
	w.Poll = time.Hour // only Notify wakes it
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(stopped)
	}()
	for range 3 {
		m := f.add(t, f.tenant, "x")
		w.Notify()
		select {
		case id := <-got:
			if id != m.ID {
				t.Fatalf("delivered %s, want %s", id, m.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Notify did not wake the worker")
		}
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestSweep(t *testing.T) {
	f := setup(t, openSQLite(t))
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error { return nil })
	f.add(t, f.tenant, "x")
	runOnce(t, w)
	pending := f.add(t, f.tenant, "y")
	n, err := outbox.Sweep(f.ctx, f.st, f.tenant, f.clock.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	f.get(t, f.tenant, pending.ID)
}

func TestBackoff(t *testing.T) {
	for attempts, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 4: 80 * time.Second, 12: time.Hour, 40: time.Hour} {
		for range 20 {
			d := outbox.Backoff(attempts)
			if d < want*4/5 || d > want*6/5 {
				t.Errorf("Backoff(%d) = %v, want %v ± 20%%", attempts, d, want)
			}
		}
	}
}

// Workers racing over one database (several pools, as several server
// processes would be) deliver every message exactly once.
func TestConcurrentWorkersDeliverOnce(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			var st store.Store
			if db == "sqlite" {
				st = openSQLite(t)
			} else {
				st = testenv.Postgres(t)
			}
			f := setup(t, st)
			tenants := []ciam.TenantID{f.tenant, f.newTenant(t, "globex"), f.newTenant(t, "initech")}
			want := map[string]bool{}
			for i := range 90 {
				want[f.add(t, tenants[i%3], fmt.Sprint(i)).ID] = true
			}
			var mu sync.Mutex
			count := map[string]int{}
			deliver := func(ctx context.Context, m *ciam.OutboxMessage) error {
				mu.Lock()
				count[m.ID]++
				mu.Unlock()
				return nil
			}
			var wg sync.WaitGroup
			for range 4 {
				w := f.worker(deliver)
				w.Batch = 5
				wg.Go(func() {
					for {
						n, err := w.RunOnce(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						if n == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			if len(count) != len(want) {
				t.Errorf("delivered %d distinct messages, want %d", len(count), len(want))
			}
			for id, n := range count {
				if n != 1 || !want[id] {
					t.Errorf("message %s delivered %d times", id, n)
				}
			}
			if pending, dead, err := st.System().OutboxCounts(f.ctx); err != nil || pending != 0 || dead != 0 {
				t.Errorf("counts %d %d %v", pending, dead, err)
			}
		})
	}
}

// With the database gone, a round reports the error and delivers nothing;
// Run keeps polling (it does not spin or exit) until its context ends.
func TestDatabaseDown(t *testing.T) {
	st := openSQLite(t)
	f := setup(t, st)
	f.add(t, f.tenant, "x")
	var calls atomic.Int32
	w := f.worker(func(ctx context.Context, m *ciam.OutboxMessage) error {
		calls.Add(1)
		return nil
	})
	w.Poll = 10 * time.Millisecond
	st.Close()
	if n, err := w.RunOnce(context.Background()); err == nil || n != 0 {
		t.Fatalf("RunOnce on a closed database = %d, %v; want an error", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	w.Run(ctx) // returns when ctx ends
	if calls.Load() != 0 {
		t.Errorf("delivered with the database down")
	}
}
