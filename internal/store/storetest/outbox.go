package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func outboxFixture(kind string, due time.Time) *ciam.OutboxMessage {
	return &ciam.OutboxMessage{
		ID: ciam.NewID(), Kind: kind, Payload: []byte(`{"to":"x"}`), Status: ciam.OutboxPending,
		NextAttemptAt: due, CreatedAt: due,
	}
}

func addOutbox(t *testing.T, s store.Store, tenant ciam.TenantID, m *ciam.OutboxMessage) *ciam.OutboxMessage {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Outbox().Add(t.Context(), m) })
	return m
}

func storedOutbox(m *ciam.OutboxMessage) *ciam.OutboxMessage {
	c := *m
	c.NextAttemptAt, c.CreatedAt, c.DoneAt = stored(m.NextAttemptAt), stored(m.CreatedAt), storedOpt(m.DoneAt)
	c.Payload = nilIfEmpty(m.Payload)
	return &c
}

func getOutbox(t *testing.T, s store.Store, tenant ciam.TenantID, id string) *ciam.OutboxMessage {
	t.Helper()
	var m *ciam.OutboxMessage
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		m, err = tx.Outbox().Get(t.Context(), id)
		return err
	})
	return m
}

func outboxIDs(ms []*ciam.OutboxMessage) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func claim(t *testing.T, s store.Store, lease string, now time.Time, n int) []*ciam.OutboxMessage {
	t.Helper()
	ms, err := s.System().ClaimOutbox(t.Context(), lease, now, now.Add(time.Minute), n)
	if err != nil {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	return ms
}

func outboxAddGetList(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	a := addOutbox(t, s, tn.ID, outboxFixture("mail", base()))
	b := addOutbox(t, s, tn.ID, outboxFixture("backchannel_logout", base()))
	c := addOutbox(t, s, tn.ID, outboxFixture("mail", base().Add(time.Second)))
	c2 := *c
	c2.Payload = nil
	empty := addOutbox(t, s, tn.ID, &ciam.OutboxMessage{ID: ciam.NewID(), Kind: "mail", NextAttemptAt: base(), CreatedAt: base()})
	if empty.Status != ciam.OutboxPending || empty.TenantID != tn.ID {
		t.Errorf("Add set status %q tenant %q; want pending, %q", empty.Status, empty.TenantID, tn.ID)
	}
	wantEqual(t, "Get", getOutbox(t, s, tn.ID, a.ID), storedOutbox(a))
	wantEqual(t, "Get of a message without payload", getOutbox(t, s, tn.ID, empty.ID), storedOutbox(empty))
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "Add of a taken id", tx.Outbox().Add(ctx, &c2), store.ErrConflict)
		_, err := tx.Outbox().Get(ctx, ciam.NewID())
		wantErr(t, "Get of an unknown id", err, store.ErrNotFound)
		return nil
	})
	err := s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error {
		return tx.Outbox().Add(ctx, outboxFixture("mail", base()))
	})
	wantErr(t, "Add in an unknown tenant", err, store.ErrNotFound)

	all := []string{a.ID, b.ID, c.ID, empty.ID}
	slices.Sort(all)
	slices.Reverse(all)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Outbox().List(ctx, store.OutboxFilter{})
		if err != nil {
			return err
		}
		wantEqual(t, "List", outboxIDs(got), all)
		got, err = tx.Outbox().List(ctx, store.OutboxFilter{Kind: "backchannel_logout"})
		if err != nil {
			return err
		}
		wantEqual(t, "List by kind", outboxIDs(got), []string{b.ID})
		got, err = tx.Outbox().List(ctx, store.OutboxFilter{Limit: 2})
		if err != nil {
			return err
		}
		wantEqual(t, "List page 1", outboxIDs(got), all[:2])
		got, err = tx.Outbox().List(ctx, store.OutboxFilter{Limit: 2, Before: all[1]})
		if err != nil {
			return err
		}
		wantEqual(t, "List page 2", outboxIDs(got), all[2:])
		got, err = tx.Outbox().List(ctx, store.OutboxFilter{Status: ciam.OutboxSent})
		if err != nil {
			return err
		}
		wantEqual(t, "List of sent", outboxIDs(got), []string{})
		return nil
	})
}

func outboxClaimFinish(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	now := base()
	due := addOutbox(t, s, tn.ID, outboxFixture("mail", now.Add(-time.Second)))
	later := addOutbox(t, s, tn.ID, outboxFixture("mail", now.Add(time.Hour)))

	got := claim(t, s, "lease-1", now, 10)
	if len(got) != 1 || got[0].ID != due.ID {
		t.Fatalf("claimed %v; want only the due message %s", outboxIDs(got), due.ID)
	}
	if m := got[0]; m.Lease != "lease-1" || m.Attempts != 1 || !m.NextAttemptAt.Equal(stored(now.Add(time.Minute))) || m.TenantID != tn.ID || string(m.Payload) != `{"to":"x"}` {
		t.Errorf("claimed message %+v: want lease-1, 1 attempt, due when the lease lapses", m)
	}
	if got := claim(t, s, "lease-2", now.Add(30*time.Second), 10); len(got) != 0 {
		t.Errorf("a held message was claimed again: %v", outboxIDs(got))
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		err := tx.Outbox().Finish(ctx, due.ID, "lease-other", ciam.OutboxSent, now, now, "")
		wantErr(t, "Finish under another lease", err, store.ErrConflict)
		err = tx.Outbox().Finish(ctx, ciam.NewID(), "lease-1", ciam.OutboxSent, now, now, "")
		wantErr(t, "Finish of an unknown message", err, store.ErrNotFound)
		return tx.Outbox().Finish(ctx, due.ID, "lease-1", ciam.OutboxPending, now, now.Add(10*time.Second), "connection refused")
	})
	m := getOutbox(t, s, tn.ID, due.ID)
	if m.Status != ciam.OutboxPending || m.Lease != "" || m.LastError != "connection refused" || !m.NextAttemptAt.Equal(stored(now.Add(10*time.Second))) || !m.DoneAt.IsZero() {
		t.Errorf("after a failed attempt: %+v", m)
	}
	if got := claim(t, s, "lease-3", now.Add(5*time.Second), 10); len(got) != 0 {
		t.Errorf("claimed before its retry was due: %v", outboxIDs(got))
	}

	// The second attempt's holder dies; its lease lapses and another claims it.
	got = claim(t, s, "lease-4", now.Add(10*time.Second), 10)
	if len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("second claim = %+v", got)
	}
	got = claim(t, s, "lease-5", now.Add(10*time.Second+time.Minute), 10)
	if len(got) != 1 || got[0].Attempts != 3 || got[0].Lease != "lease-5" {
		t.Fatalf("claim after the lease lapsed = %+v", got)
	}
	at := now.Add(2 * time.Minute)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		err := tx.Outbox().Finish(ctx, due.ID, "lease-4", ciam.OutboxSent, at, at, "")
		wantErr(t, "Finish under a lapsed lease", err, store.ErrConflict)
		return tx.Outbox().Finish(ctx, due.ID, "lease-5", ciam.OutboxSent, at, at, "")
	})
	m = getOutbox(t, s, tn.ID, due.ID)
	if m.Status != ciam.OutboxSent || !m.DoneAt.Equal(stored(at)) || m.Lease != "" || m.Attempts != 3 {
		t.Errorf("after delivery: %+v", m)
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		err := tx.Outbox().Finish(ctx, due.ID, "lease-5", ciam.OutboxSent, at, at, "")
		wantErr(t, "Finish twice", err, store.ErrConflict)
		return nil
	})
	if got := claim(t, s, "lease-6", now.Add(24*time.Hour), 10); len(got) != 1 || got[0].ID != later.ID {
		t.Errorf("claim after everything is due = %v; want only %s (the sent one stays sent)", outboxIDs(got), later.ID)
	}
	// A dead letter keeps its error.
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		return tx.Outbox().Finish(ctx, later.ID, "lease-6", ciam.OutboxDead, at, at, "550 no such user")
	})
	m = getOutbox(t, s, tn.ID, later.ID)
	if m.Status != ciam.OutboxDead || m.LastError != "550 no such user" || !m.DoneAt.Equal(stored(at)) {
		t.Errorf("dead letter: %+v", m)
	}
}

func outboxClaimOrderAndLimit(t *testing.T, s store.Store) {
	a := newTenant(t, s, "acme")
	b := newTenant(t, s, "globex")
	now := base()
	var want []string
	for i := range 6 {
		tn := a.ID
		if i%2 == 1 {
			tn = b.ID
		}
		m := addOutbox(t, s, tn, outboxFixture("mail", now.Add(-time.Duration(6-i)*time.Second)))
		want = append(want, m.ID)
	}
	got := claim(t, s, "l1", now, 4)
	ids := outboxIDs(got)
	slices.Sort(ids)
	first := slices.Clone(want[:4])
	slices.Sort(first)
	wantEqual(t, "the four most overdue messages of both tenants", ids, first)
	got = claim(t, s, "l2", now, 4)
	ids = outboxIDs(got)
	slices.Sort(ids)
	rest := slices.Clone(want[4:])
	slices.Sort(rest)
	wantEqual(t, "the rest", ids, rest)
}

// outboxConcurrentClaim: workers racing over many messages of several
// tenants claim each message exactly once.
func outboxConcurrentClaim(t *testing.T, s store.Store) {
	now := base()
	var all []string
	for i := range 3 {
		tn := newTenant(t, s, slugN("t", i))
		mustTx(t, s, tn.ID, func(tx store.Tx) error {
			for range 20 {
				m := outboxFixture("mail", now)
				if err := tx.Outbox().Add(t.Context(), m); err != nil {
					return err
				}
				all = append(all, m.ID)
			}
			return nil
		})
	}
	var mu sync.Mutex
	seen := map[string]string{}
	errs := collect(8, func(i int) error {
		lease := fmt.Sprintf("w%d", i)
		for {
			ms, err := s.System().ClaimOutbox(t.Context(), lease, now, now.Add(time.Minute), 3)
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				return nil
			}
			mu.Lock()
			for _, m := range ms {
				if prev, dup := seen[m.ID]; dup {
					t.Errorf("message %s claimed by %s and %s", m.ID, prev, lease)
				}
				seen[m.ID] = lease
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("ClaimOutbox: %v", err)
		}
	}
	if len(seen) != len(all) {
		t.Errorf("claimed %d messages, want %d", len(seen), len(all))
	}
}

func outboxCountsAndDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	other := newTenant(t, s, "globex")
	now := base()
	sent := addOutbox(t, s, tn.ID, outboxFixture("mail", now))
	dead := addOutbox(t, s, tn.ID, outboxFixture("mail", now))
	addOutbox(t, s, tn.ID, outboxFixture("mail", now.Add(time.Hour)))
	otherDone := addOutbox(t, s, other.ID, outboxFixture("mail", now))
	claim(t, s, "l", now, 10)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.Outbox().Finish(ctx, sent.ID, "l", ciam.OutboxSent, now, now, ""); err != nil {
			return err
		}
		return tx.Outbox().Finish(ctx, dead.ID, "l", ciam.OutboxDead, now.Add(time.Minute), now, "gone")
	})
	mustTx(t, s, other.ID, func(tx store.Tx) error {
		return tx.Outbox().Finish(ctx, otherDone.ID, "l", ciam.OutboxSent, now, now, "")
	})
	pending, nDead, err := s.System().OutboxCounts(ctx)
	if err != nil || pending != 1 || nDead != 1 {
		t.Errorf("OutboxCounts = %d pending, %d dead, %v; want 1, 1", pending, nDead, err)
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		n, err := tx.Outbox().DeleteDone(ctx, now.Add(time.Second))
		wantCount(t, "DeleteDone before the dead letter", n, err, 1)
		n, err = tx.Outbox().DeleteDone(ctx, now.Add(time.Hour))
		wantCount(t, "DeleteDone after it", n, err, 1)
		return nil
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Outbox().List(ctx, store.OutboxFilter{})
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Status != ciam.OutboxPending {
			t.Errorf("after DeleteDone: %v; want the pending message only", outboxIDs(got))
		}
		return nil
	})
	getOutbox(t, s, other.ID, otherDone.ID) // another tenant's sweep leaves it
}

func isolationOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newTenant(t, s, "acme")
	b := newTenant(t, s, "globex")
	m := addOutbox(t, s, a.ID, outboxFixture("mail", base()))
	claim(t, s, "l", base(), 10)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Outbox().Get(ctx, m.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		err = tx.Outbox().Finish(ctx, m.ID, "l", ciam.OutboxSent, base(), base(), "")
		wantErr(t, "Finish from B", err, store.ErrNotFound)
		got, err := tx.Outbox().List(ctx, store.OutboxFilter{})
		if err != nil || len(got) != 0 {
			t.Errorf("List from B = %v, %v; want none", outboxIDs(got), err)
		}
		n, err := tx.Outbox().DeleteDone(ctx, far())
		wantCount(t, "DeleteDone from B", n, err, 0)
		fromA := outboxFixture("mail", base())
		fromA.TenantID = a.ID
		if err := tx.Outbox().Add(ctx, fromA); err == nil {
			t.Errorf("Add of a message of A in B's transaction succeeded")
		}
		return nil
	})
	if got := getOutbox(t, s, a.ID, m.ID); got.Status != ciam.OutboxPending || got.Lease != "l" {
		t.Errorf("A's message changed: %+v", got)
	}
}

// withLogoutURI creates client id in tenant with a back-channel logout URI.
func withLogoutURI(t *testing.T, s store.Store, tenant ciam.TenantID, id ciam.ClientID) store.LogoutClient {
	t.Helper()
	c := clientFixture(id)
	c.BackchannelLogoutURI = "https://" + string(id) + ".example/logout"
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Clients().Create(t.Context(), c) })
	return store.LogoutClient{ID: id, BackchannelLogoutURI: c.BackchannelLogoutURI}
}

func sessionsLogoutClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newOAuthParty(t, s, "acme")
	app := store.LogoutClient{ID: p.client.ID, BackchannelLogoutURI: p.client.BackchannelLogoutURI}
	if app.BackchannelLogoutURI == "" {
		t.Fatal("the client fixture has no back-channel logout URI")
	}
	other := withLogoutURI(t, s, p.tenant.ID, "other-bc")
	plainC := clientFixture("plain")
	plainC.BackchannelLogoutURI = ""
	mustTx(t, s, p.tenant.ID, func(tx store.Tx) error { return tx.Clients().Create(ctx, plainC) })
	plain := plainC.ID
	s2 := newSession(t, s, p.tenant.ID, p.user.ID, base().Add(time.Minute))
	logoutClients := func(tenant ciam.TenantID, ids ...ciam.SessionID) map[ciam.SessionID][]store.LogoutClient {
		t.Helper()
		var got map[ciam.SessionID][]store.LogoutClient
		mustView(t, s, tenant, func(tx store.Tx) (err error) {
			got, err = tx.Sessions().LogoutClients(ctx, ids)
			return err
		})
		return got
	}
	mustTx(t, s, p.tenant.ID, func(tx store.Tx) error {
		for _, pair := range []struct {
			s ciam.SessionID
			c ciam.ClientID
		}{{p.session.ID, app.ID}, {p.session.ID, other.ID}, {p.session.ID, plain}, {p.session.ID, app.ID}, {s2.ID, other.ID}} {
			if err := tx.Sessions().AddClient(ctx, pair.s, pair.c, base()); err != nil {
				return err
			}
		}
		wantErr(t, "AddClient of an unknown session", tx.Sessions().AddClient(ctx, "nope", app.ID, base()), store.ErrNotFound)
		wantErr(t, "AddClient of an unknown client", tx.Sessions().AddClient(ctx, p.session.ID, "nope", base()), store.ErrNotFound)
		return nil
	})
	// The client without a back-channel URI is recorded but not returned.
	wantEqual(t, "LogoutClients", logoutClients(p.tenant.ID, p.session.ID, s2.ID, "unknown"), map[ciam.SessionID][]store.LogoutClient{
		p.session.ID: {app, other},
		s2.ID:        {other},
	})
	// Deleting a client forgets it; a URI registered later counts.
	mustTx(t, s, p.tenant.ID, func(tx store.Tx) error {
		if err := tx.Clients().Delete(ctx, other.ID); err != nil {
			return err
		}
		c, err := tx.Clients().Get(ctx, plain)
		if err != nil {
			return err
		}
		c.BackchannelLogoutURI = "https://late.example/logout" // registered after the fact: now notified
		return tx.Clients().Update(ctx, c)
	})
	wantEqual(t, "LogoutClients after changes", logoutClients(p.tenant.ID, p.session.ID, s2.ID), map[ciam.SessionID][]store.LogoutClient{
		p.session.ID: {app, {ID: plain, BackchannelLogoutURI: "https://late.example/logout"}},
	})
	// Many sessions at once (more than one IN list).
	var many []ciam.SessionID
	for i := range 700 {
		many = append(many, ciam.SessionID(fmt.Sprintf("s%04d", i)))
	}
	many = append(many, s2.ID, p.session.ID)
	if got := logoutClients(p.tenant.ID, many...); len(got) != 1 || len(got[p.session.ID]) != 2 {
		t.Errorf("LogoutClients of 702 sessions = %v", got)
	}
	// Another tenant sees none of it and cannot add to it.
	b := newOAuthParty(t, s, "globex")
	if got := logoutClients(b.tenant.ID, p.session.ID); len(got) != 0 {
		t.Errorf("LogoutClients from B = %v; want none", got)
	}
	mustTx(t, s, b.tenant.ID, func(tx store.Tx) error {
		wantErr(t, "AddClient of A's session from B", tx.Sessions().AddClient(ctx, p.session.ID, b.client.ID, base()), store.ErrNotFound)
		return nil
	})
	// Sweeping the session forgets its clients.
	mustTx(t, s, p.tenant.ID, func(tx store.Tx) error {
		if err := tx.Sessions().Revoke(ctx, p.user.ID, p.session.ID, base().Add(time.Minute)); err != nil {
			return err
		}
		_, err := tx.Sessions().DeleteExpired(ctx, base().Add(time.Hour))
		return err
	})
	if got := logoutClients(p.tenant.ID, p.session.ID); len(got) != 0 {
		t.Errorf("LogoutClients of a deleted session = %v; want none", got)
	}
}
