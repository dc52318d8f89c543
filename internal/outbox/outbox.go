// Package outbox delivers the messages that a change must send (mail,
// back-channel logout notices) without losing one: Add writes a message in
// the same transaction as the change, and a Worker, in every server process,
// claims due messages of all tenants, hands each to the Deliverer of its
// kind, and records the outcome: sent, due again after an exponential
// backoff, or dead-lettered with an audit event once the attempts run out or
// the error is permanent. A claim is a lease in the database, so two
// processes never work on one message at once, and a process that dies
// mid-delivery leaves the message due again when its lease lapses.
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Add queues a message of kind, with payload encoded as JSON, in tx: it is
// delivered only if tx commits, and then at least once.
func Add(ctx context.Context, tx store.Tx, kind string, payload any, now time.Time) (*ciam.OutboxMessage, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("outbox: encode %s payload: %w", kind, err)
	}
	m := &ciam.OutboxMessage{
		ID: ciam.NewID(), Kind: kind, Payload: b, Status: ciam.OutboxPending,
		NextAttemptAt: now, CreatedAt: now,
	}
	if err := tx.Outbox().Add(ctx, m); err != nil {
		return nil, fmt.Errorf("outbox: add %s: %w", kind, err)
	}
	return m, nil
}

// A Deliverer sends the messages of one kind. It returns nil once the
// message is delivered, and an error otherwise; wrap it with Permanent when
// trying again cannot help. It must give up when ctx ends.
type Deliverer interface {
	Deliver(ctx context.Context, m *ciam.OutboxMessage) error
}

// DeliverFunc adapts a function to Deliverer.
type DeliverFunc func(ctx context.Context, m *ciam.OutboxMessage) error

// Deliver calls f.
func (f DeliverFunc) Deliver(ctx context.Context, m *ciam.OutboxMessage) error { return f(ctx, m) }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry will cure (a rejected address, a
// receiver that is gone): the message is dead-lettered at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Outcomes of a delivery attempt, as passed to Worker.Observe.
const (
	OutcomeSent    = "sent"
	OutcomeRetried = "retried"
	OutcomeDead    = "dead"
)

// DeadLettered is the audit event of a message given up on.
const DeadLettered = "outbox.dead_lettered"

// Defaults of the Worker's settings.
const (
	DefaultPoll        = time.Second
	DefaultLease       = 2 * time.Minute
	DefaultBatch       = 16
	DefaultMaxAttempts = 10
)

// Worker delivers due messages. Its zero settings take the defaults above.
type Worker struct {
	Store      store.Store
	Deliverers map[string]Deliverer
	Now        func() time.Time
	Log        *slog.Logger
	// Poll is how often the worker looks for due messages when it was not
	// notified of new ones.
	Poll time.Duration
	// Lease is how long a claim holds a message. A delivery is cancelled
	// when half of it is gone, so it ends well before another process may
	// claim the message again.
	Lease time.Duration
	// Batch is how many messages one round claims and delivers at once.
	Batch int
	// MaxAttempts is how many delivery attempts a message gets before it is
	// dead-lettered.
	MaxAttempts int
	// Backoff is how long to wait after the given number of failed
	// attempts; nil means Backoff.
	Backoff func(attempts int) time.Duration
	// Observe, when set, is told every outcome (for metrics).
	Observe func(kind, outcome string)

	once sync.Once
	wake chan struct{}
}

// Backoff doubles from 10 seconds after the first failure up to an hour,
// with a random spread of a fifth either way, so a receiver that was down
// is not hit by every message at the same moment when it comes back.
func Backoff(attempts int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	spread := int64(d) / 5
	return d + time.Duration(rand.Int64N(2*spread+1)-spread)
}

func (w *Worker) init() {
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
}

func (w *Worker) now() time.Time { return w.Now().UTC() }

func (w *Worker) poll() time.Duration  { return orDefault(w.Poll, DefaultPoll) }
func (w *Worker) lease() time.Duration { return orDefault(w.Lease, DefaultLease) }
func (w *Worker) batch() int           { return orDefault(w.Batch, DefaultBatch) }
func (w *Worker) maxAttempts() int     { return orDefault(w.MaxAttempts, DefaultMaxAttempts) }
func (w *Worker) log() *slog.Logger    { return cmp.Or(w.Log, slog.New(slog.DiscardHandler)) }
func (w *Worker) observe(kind, o string) {
	if w.Observe != nil {
		w.Observe(kind, o)
	}
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Notify tells the worker that a message was just queued, so it looks now
// rather than at its next poll. It never blocks.
func (w *Worker) Notify() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers messages until ctx ends, then waits for the deliveries in
// flight (they end with ctx).
func (w *Worker) Run(ctx context.Context) {
	w.init()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.wake:
		}
		n, err := w.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.log().Warn("outbox: claiming messages failed", "err", err)
			timer.Reset(w.poll())
		case n == w.batch():
			timer.Reset(0) // more may be due
		default:
			timer.Reset(w.poll())
		}
	}
}

// RunOnce claims the messages due now (at most Batch), delivers them
// concurrently, records each outcome and returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	lease := ciam.NewID()
	now := w.now()
	msgs, err := w.Store.System().ClaimOutbox(ctx, lease, now, now.Add(w.lease()), w.batch())
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Go(func() { w.deliver(ctx, m) })
	}
	wg.Wait()
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, m *ciam.OutboxMessage) {
	var err error
	if d := w.Deliverers[m.Kind]; d == nil {
		// Perhaps a newer process queued a kind this one does not know;
		// leave it for another try (and another process).
		err = fmt.Errorf("no deliverer for kind %q", m.Kind)
	} else {
		dctx, cancel := context.WithTimeout(ctx, w.lease()/2)
		err = safeDeliver(dctx, d, m)
		cancel()
	}
	if ctx.Err() != nil && err != nil {
		return // shutting down: the lease lapses and the message is due again
	}
	if ferr := w.finish(context.WithoutCancel(ctx), m, err); ferr != nil {
		w.log().Warn("outbox: recording a delivery outcome failed", "tenant", m.TenantID, "message", m.ID, "kind", m.Kind, "err", ferr)
	}
}

// safeDeliver turns a panic in a deliverer into an error, so one bad message
// cannot take the worker down.
func safeDeliver(ctx context.Context, d Deliverer, m *ciam.OutboxMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("deliverer panicked: %v", p)
		}
	}()
	return d.Deliver(ctx, m)
}

func (w *Worker) finish(ctx context.Context, m *ciam.OutboxMessage, derr error) error {
	now := w.now()
	if derr == nil {
		err := w.Store.Tx(ctx, m.TenantID, func(tx store.Tx) error {
			return tx.Outbox().Finish(ctx, m.ID, m.Lease, ciam.OutboxSent, now, now, "")
		})
		if err == nil {
			w.observe(m.Kind, OutcomeSent)
		}
		return err
	}
	if !IsPermanent(derr) && m.Attempts < w.maxAttempts() {
		backoff := w.Backoff
		if backoff == nil {
			backoff = Backoff
		}
		err := w.Store.Tx(ctx, m.TenantID, func(tx store.Tx) error {
			return tx.Outbox().Finish(ctx, m.ID, m.Lease, ciam.OutboxPending, now, now.Add(backoff(m.Attempts)), derr.Error())
		})
		if err == nil {
			w.observe(m.Kind, OutcomeRetried)
			w.log().Info("outbox: delivery failed; will retry", "tenant", m.TenantID, "message", m.ID, "kind", m.Kind, "attempts", m.Attempts, "err", derr)
		}
		return err
	}
	reason := "attempts_exhausted"
	if IsPermanent(derr) {
		reason = "permanent_error"
	}
	err := w.Store.Tx(ctx, m.TenantID, func(tx store.Tx) error {
		if err := tx.Outbox().Finish(ctx, m.ID, m.Lease, ciam.OutboxDead, now, now, derr.Error()); err != nil {
			return err
		}
		// The error text stays in the message row: it may quote a remote
		// server, and the audit trail names no one by address.
		return audit.Record(ctx, tx, now, DeadLettered, "system", m.ID, ciam.OutcomeFailure, nil, audit.Meta{}, "",
			map[string]string{"kind": m.Kind, "attempts": strconv.Itoa(m.Attempts), "reason": reason})
	})
	if err == nil {
		w.observe(m.Kind, OutcomeDead)
		w.log().Warn("outbox: message dead-lettered", "tenant", m.TenantID, "message", m.ID, "kind", m.Kind, "attempts", m.Attempts, "reason", reason, "err", derr)
	}
	return err
}

// Sweep removes the tenant's messages that were sent or dead-lettered before cutoff.
func Sweep(ctx context.Context, s store.Store, tenant ciam.TenantID, cutoff time.Time) (int, error) {
	var n int
	err := s.Tx(ctx, tenant, func(tx store.Tx) error {
		var err error
		n, err = tx.Outbox().DeleteDone(ctx, cutoff)
		return err
	})
	return n, err
}
