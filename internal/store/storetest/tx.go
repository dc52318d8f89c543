package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

type boomError struct{ n int }

func (e *boomError) Error() string { return "boom" }

func txRollbackOnError(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	appendEvents(t, s, tn.ID, auditEvent("before", 1))
	boom := errors.New("boom")
	u := userFixture("ada@example.com")
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		if err := tx.Passwords().Set(ctx, u.ID, "$x$", base()); err != nil {
			return err
		}
		if err := tx.Audit().Append(ctx, auditEvent("user.signup", 2)); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Tx returned %v, want the function's error as is", err)
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, u.ID)
		wantErr(t, "Get of a rolled-back user", err, store.ErrNotFound)
		_, err = tx.Passwords().Get(ctx, u.ID)
		wantErr(t, "Get of a rolled-back password", err, store.ErrNotFound)
		return nil
	})
	if es := listEvents(t, s, tn.ID, store.AuditFilter{}); len(es) != 1 {
		t.Fatalf("%d audit events after rollback, want 1", len(es))
	}
	// The chain head rolled back too: the next event follows the first.
	next := auditEvent("after", 3)
	appendEvents(t, s, tn.ID, next)
	if next.Seq != 2 {
		t.Errorf("Seq after a rolled-back append = %d, want 2", next.Seq)
	}
	verifyChain(t, tn.ID, listEvents(t, s, tn.ID, store.AuditFilter{}))
}

func txErrorReturnedAsIs(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	want := &boomError{n: 7}
	for _, run := range []func(ciam.TenantID, func(store.Tx) error) error{
		func(id ciam.TenantID, fn func(store.Tx) error) error { return s.Tx(ctx, id, fn) },
		func(id ciam.TenantID, fn func(store.Tx) error) error { return s.View(ctx, id, fn) },
	} {
		calls := 0
		err := run(tn.ID, func(store.Tx) error { calls++; return want })
		if err != want {
			t.Errorf("got %v, want the function's error as is", err)
		}
		if calls != 1 {
			t.Errorf("fn ran %d times for an ordinary error, want 1", calls)
		}
	}
}

func txPanicRollsBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := userFixture("ada@example.com")
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("the panic did not propagate")
			}
		}()
		_ = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			if err := tx.Users().Create(ctx, u); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	// The store is still usable and the write is gone.
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, u.ID)
		wantErr(t, "Get after a panic", err, store.ErrNotFound)
		return tx.Users().Create(ctx, userFixture("grace@example.com"))
	})
}

func txViewIsReadOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := userFixture("ada@example.com")
	err := s.View(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, u) })
	if err == nil {
		t.Errorf("a write in View succeeded")
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, u.ID)
		wantErr(t, "Get of a user written in View", err, store.ErrNotFound)
		return nil
	})
}

func txReadIsReadOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	live := newSession(t, s, tn.ID, u.ID, base())
	fresh := userFixture("grace@example.com")
	if err := s.Read(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, fresh) }); err == nil {
		t.Errorf("a write in Read succeeded")
	}
	if err := s.Read(ctx, tn.ID, func(tx store.Tx) error {
		_, err := tx.Sessions().RevokeAll(ctx, u.ID, "", base())
		return err
	}); err == nil {
		t.Errorf("an UPDATE ... RETURNING in Read succeeded")
	}
	// Reads work, and see only the tenant's rows.
	other := newTenant(t, s, "globex")
	if err := s.Read(ctx, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err == nil && got.Email != u.Email {
			t.Errorf("Read Get = %+v", got)
		}
		_, gerr := tx.Users().Get(ctx, fresh.ID)
		wantErr(t, "Get of a user written in Read", gerr, store.ErrNotFound)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Read(ctx, other.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, u.ID)
		return err
	})
	wantErr(t, "Read of another tenant's user", err, store.ErrNotFound)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().Get(ctx, live.ID)
		if err == nil && !got.RevokedAt.IsZero() {
			t.Errorf("a session was revoked in Read")
		}
		return err
	})
}

func txConcurrentUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	const n = 8
	errs := collect(n, func(i int) error {
		c := *u
		c.Name = slugN("writer", i)
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Update(ctx, &c) })
	})
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, "a losing Update", err, store.ErrConflict)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d updates from one version succeeded, want 1", ok, n)
	}
}

func isolationTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		got, err := tx.Tenant().Get(ctx)
		if err != nil {
			return err
		}
		if got.ID != b.ID {
			t.Errorf("Get in tenant B returned %s", got.ID)
		}
		hijack := *a
		hijack.DisplayName = "hijacked"
		wantErr(t, "Update of tenant A from B", tx.Tenant().Update(ctx, &hijack), store.ErrNotFound)
		return nil
	})
	got, err := s.System().TenantBySlug(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != a.DisplayName || got.Version != a.Version {
		t.Errorf("tenant A changed: %q v%d", got.DisplayName, got.Version)
	}
}

func isolationUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	u := newUser(t, s, a.ID, "ada@example.com")
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, u.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		_, err = tx.Users().ByEmail(ctx, u.Email)
		wantErr(t, "ByEmail from B", err, store.ErrNotFound)
		list, err := tx.Users().List(ctx, store.UserFilter{})
		if err != nil || len(list) != 0 {
			t.Errorf("List from B = %d users, %v; want none", len(list), err)
		}
		hijack := *u
		hijack.Name = "hijacked"
		wantErr(t, "Update from B", tx.Users().Update(ctx, &hijack), store.ErrNotFound)
		hijack.TenantID = ""
		wantErr(t, "Update from B without a tenant", tx.Users().Update(ctx, &hijack), store.ErrNotFound)
		wantErr(t, "RecordLogin from B", tx.Users().RecordLogin(ctx, u.ID, base()), store.ErrNotFound)
		return nil
	})
	// The same email, and even the same id, are free in tenant B.
	twin := userFixture(u.Email)
	twin.ID = u.ID
	mustTx(t, s, b.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, twin) })
	mustView(t, s, a.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		if got.Name != u.Name || got.Version != u.Version || got.TenantID != a.ID {
			t.Errorf("user in A changed: %+v", got)
		}
		return nil
	})
}

func isolationPasswords(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	u := newUser(t, s, a.ID, "ada@example.com")
	mustTx(t, s, a.ID, func(tx store.Tx) error { return tx.Passwords().Set(ctx, u.ID, "$a$", base()) })
	err := s.Tx(ctx, b.ID, func(tx store.Tx) error {
		_, err := tx.Passwords().Get(ctx, u.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		return tx.Passwords().Set(ctx, u.ID, "$b$", base())
	})
	wantErr(t, "Set from B", err, store.ErrNotFound)
	mustView(t, s, a.ID, func(tx store.Tx) error {
		h, err := tx.Passwords().Get(ctx, u.ID)
		if err != nil || h != "$a$" {
			t.Errorf("password in A = %q, %v; want $a$", h, err)
		}
		return nil
	})
}

func isolationSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	u := newUser(t, s, a.ID, "ada@example.com")
	ss := newSession(t, s, a.ID, u.ID, base())
	now := base().Add(time.Minute)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Sessions().ByTokenHash(ctx, ss.TokenHash)
		wantErr(t, "ByTokenHash from B", err, store.ErrNotFound)
		_, err = tx.Sessions().Get(ctx, ss.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		wantErr(t, "Touch from B", tx.Sessions().Touch(ctx, ss.ID, now, now.Add(time.Hour)), store.ErrNotFound)
		live, err := tx.Sessions().ListActive(ctx, u.ID, now)
		if err != nil || len(live) != 0 {
			t.Errorf("ListActive from B = %d, %v; want none", len(live), err)
		}
		wantErr(t, "Revoke from B", tx.Sessions().Revoke(ctx, u.ID, ss.ID, now), store.ErrNotFound)
		wantErr(t, "Reauthenticate from B", tx.Sessions().Reauthenticate(ctx, ss.ID, ss.TokenHash, sha("b"), now, []string{"pwd"}, ""), store.ErrNotFound)
		ended, err := tx.Sessions().RevokeAll(ctx, u.ID, "", now)
		if err != nil || len(ended) != 0 {
			t.Errorf("RevokeAll from B = %v, %v; want none", ended, err)
		}
		n, err := tx.Sessions().DeleteExpired(ctx, base().Add(1000*time.Hour))
		if err != nil || n != 0 {
			t.Errorf("DeleteExpired from B = %d, %v; want 0", n, err)
		}
		// A session in B for A's user is refused.
		err = tx.Sessions().Create(ctx, sessionFixture(u.ID, now))
		wantErr(t, "Create from B for A's user", err, store.ErrNotFound)
		return nil
	})
	mustView(t, s, a.ID, func(tx store.Tx) error {
		got, err := tx.Sessions().ByTokenHash(ctx, ss.TokenHash)
		if err != nil {
			return err
		}
		wantEqual(t, "session in A", got, storedSession(ss))
		return nil
	})
}

func isolationAudit(t *testing.T, s store.Store) {
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	appendEvents(t, s, a.ID, auditEvent("a", 1), auditEvent("a", 2), auditEvent("a", 3))
	if es := listEvents(t, s, b.ID, store.AuditFilter{}); len(es) != 0 {
		t.Fatalf("List from B returned %d events of A", len(es))
	}
	eb := auditEvent("b", 1)
	appendEvents(t, s, b.ID, eb)
	if eb.Seq != 1 || len(eb.PrevHash) != 0 {
		t.Errorf("B's first event: Seq %d, PrevHash %x; want 1 and none", eb.Seq, eb.PrevHash)
	}
	ea := auditEvent("a", 4)
	appendEvents(t, s, a.ID, ea)
	if ea.Seq != 4 {
		t.Errorf("A's fourth event has Seq %d", ea.Seq)
	}
	verifyChain(t, a.ID, listEvents(t, s, a.ID, store.AuditFilter{}))
	verifyChain(t, b.ID, listEvents(t, s, b.ID, store.AuditFilter{}))

	// An event claiming another tenant is refused.
	err := s.Tx(t.Context(), b.ID, func(tx store.Tx) error {
		e := auditEvent("forged", 9)
		e.TenantID = a.ID
		return tx.Audit().Append(t.Context(), e)
	})
	if err == nil {
		t.Errorf("Append of an event of tenant A in B's transaction succeeded")
	}
}

func timeUTCRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	local := time.Date(2031, 5, 6, 12, 38, 9, 987654321, zone)
	tn := tenantFixture("acme")
	tn.CreatedAt = local
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) })
	u := userFixture("ada@example.com")
	u.CreatedAt, u.UpdatedAt = local, local.Add(time.Nanosecond)
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u); err != nil {
			return err
		}
		return tx.Users().RecordLogin(ctx, u.ID, local)
	})
	ss := sessionFixture(u.ID, local)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Sessions().Create(ctx, ss) })

	check := func(what string, got time.Time) {
		t.Helper()
		if got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", what, got.Location())
		}
		if want := local.Truncate(time.Microsecond); !got.Equal(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	got, err := s.System().TenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	check("tenant CreatedAt", got.CreatedAt)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		gu, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		check("user CreatedAt", gu.CreatedAt)
		check("user UpdatedAt", gu.UpdatedAt)
		check("user LastLoginAt", gu.LastLoginAt)
		gs, err := tx.Sessions().Get(ctx, ss.ID)
		if err != nil {
			return err
		}
		check("session CreatedAt", gs.CreatedAt)
		if !gs.ExpiresAt.Equal(stored(ss.ExpiresAt)) {
			t.Errorf("session ExpiresAt = %v, want %v", gs.ExpiresAt, stored(ss.ExpiresAt))
		}
		if !gs.RevokedAt.IsZero() {
			t.Errorf("RevokedAt = %v, want zero", gs.RevokedAt)
		}
		return nil
	})
	e := auditEvent("time", 0)
	e.Time = local
	appendEvents(t, s, tn.ID, e)
	es := listEvents(t, s, tn.ID, store.AuditFilter{})
	if len(es) != 1 {
		t.Fatalf("%d events", len(es))
	}
	check("audit Time", es[0].Time)
	verifyChain(t, tn.ID, es)
}

func txWriteOneStatement(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	other := newTenant(t, s, "globex")
	// A read, then one write: it commits by itself.
	if err := s.Write(ctx, tn.ID, func(tx store.Tx) error {
		if _, err := tx.Users().ByEmail(ctx, "ada@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("read in Write: %v", err)
		}
		return tx.Nonces().Use(ctx, "ns", "first", base(), base().Add(time.Hour))
	}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "Use after Write", tx.Nonces().Use(ctx, "ns", "first", base(), base().Add(time.Hour)), store.ErrConflict)
		return nil
	})
	// A second write is refused; the first stays (it committed by itself).
	err := s.Write(ctx, tn.ID, func(tx store.Tx) error {
		if err := tx.Nonces().Use(ctx, "ns", "second", base(), base().Add(time.Hour)); err != nil {
			return err
		}
		return tx.Nonces().Use(ctx, "ns", "third", base(), base().Add(time.Hour))
	})
	if err == nil {
		t.Fatal("two writes in Write succeeded")
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "Use of the first write's value", tx.Nonces().Use(ctx, "ns", "second", base(), base().Add(time.Hour)), store.ErrConflict)
		if err := tx.Nonces().Use(ctx, "ns", "third", base(), base().Add(time.Hour)); err != nil {
			t.Errorf("the refused second write wrote: %v", err)
		}
		return nil
	})
	// A conflict is ErrConflict and the store goes on working; the tenant
	// scope holds.
	err = s.Write(ctx, tn.ID, func(tx store.Tx) error {
		return tx.Nonces().Use(ctx, "ns", "first", base(), base().Add(time.Hour))
	})
	wantErr(t, "conflicting Write", err, store.ErrConflict)
	if err := s.Write(ctx, other.ID, func(tx store.Tx) error {
		return tx.Nonces().Use(ctx, "ns", "first", base(), base().Add(time.Hour))
	}); err != nil {
		t.Errorf("Write of the same value in another tenant: %v", err)
	}
	u := newUser(t, s, tn.ID, "ada@example.com")
	err = s.Write(ctx, other.ID, func(tx store.Tx) error { return tx.Users().RecordLogin(ctx, u.ID, base()) })
	wantErr(t, "Write to another tenant's user", err, store.ErrNotFound)
}
