package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func auditEvent(typ string, i int) *ciam.AuditEvent {
	return &ciam.AuditEvent{
		Time:      base().Add(time.Duration(i) * time.Second),
		Type:      typ,
		ActorID:   "system",
		TargetID:  fmt.Sprintf("target-%d", i),
		Outcome:   ciam.OutcomeSuccess,
		RequestID: fmt.Sprintf("req-%d", i),
	}
}

func appendEvents(t *testing.T, s store.Store, tenant ciam.TenantID, es ...*ciam.AuditEvent) {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error {
		for _, e := range es {
			if err := tx.Audit().Append(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	})
}

func listEvents(t *testing.T, s store.Store, tenant ciam.TenantID, f store.AuditFilter) []*ciam.AuditEvent {
	t.Helper()
	var es []*ciam.AuditEvent
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		es, err = tx.Audit().List(t.Context(), f)
		return err
	})
	return es
}

// verifyChain checks that es is the whole chain of one tenant from seq 1:
// gap-free, each event linked to the one before, each hash recomputable.
func verifyChain(t *testing.T, tenant ciam.TenantID, es []*ciam.AuditEvent) {
	t.Helper()
	var prev []byte
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
		if e.TenantID != tenant {
			t.Errorf("event %d has tenant %q, want %q", e.Seq, e.TenantID, tenant)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Errorf("event %d: PrevHash %x, want the previous hash %x", e.Seq, e.PrevHash, prev)
		}
		if h := e.ComputeHash(e.PrevHash); !bytes.Equal(e.Hash, h) {
			t.Errorf("event %d: stored hash %x, recomputed %x", e.Seq, e.Hash, h)
		}
		prev = e.Hash
	}
}

func auditChain(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme")
	zone := time.FixedZone("UTC-3", -3*3600)
	in := []*ciam.AuditEvent{
		auditEvent("tenant.create", 1),
		{
			Time: base().In(zone), Type: "user.signup", ActorID: "u1", TargetID: "u1",
			Outcome: ciam.OutcomeSuccess, RequestID: "r2",
			Data: map[string]string{"method": "password", "b": "2", "a": ""},
			PII:  []byte{0, 1, 2, 3},
		},
		{
			Time: base().Add(time.Nanosecond), Type: "login.failure", Outcome: ciam.OutcomeFailure,
			IP: "198.51.100.7", Data: map[string]string{"reason": "bad_password"},
		},
		auditEvent("user.update", 4),
	}
	appendEvents(t, s, tn.ID, in[:2]...)
	appendEvents(t, s, tn.ID, in[2:]...)
	for i, e := range in {
		if e.Seq != int64(i+1) {
			t.Errorf("Append set Seq %d, want %d", e.Seq, i+1)
		}
	}
	verifyChain(t, tn.ID, in) // what Append set on the caller's events
	got := listEvents(t, s, tn.ID, store.AuditFilter{})
	verifyChain(t, tn.ID, got) // what the store kept
	if len(got) != len(in) {
		t.Fatalf("List returned %d events, want %d", len(got), len(in))
	}
	for i := range in {
		want := *in[i]
		want.Time = stored(want.Time)
		wantEqual(t, fmt.Sprintf("event %d", i+1), got[i], &want)
	}
}

func auditListFilter(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme")
	var es []*ciam.AuditEvent
	for i := range 10 {
		typ := "login.success"
		if i%3 == 0 {
			typ = "login.failure"
		}
		es = append(es, auditEvent(typ, i))
	}
	appendEvents(t, s, tn.ID, es...)
	seqs := func(es []*ciam.AuditEvent) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	wantEqual(t, "List(after 3, limit 4)",
		seqs(listEvents(t, s, tn.ID, store.AuditFilter{AfterSeq: 3, Limit: 4})), []int64{4, 5, 6, 7})
	wantEqual(t, "List(type login.failure)",
		seqs(listEvents(t, s, tn.ID, store.AuditFilter{Type: "login.failure"})), []int64{1, 4, 7, 10})
	wantEqual(t, "List(type login.failure, after 4)",
		seqs(listEvents(t, s, tn.ID, store.AuditFilter{Type: "login.failure", AfterSeq: 4})), []int64{7, 10})
	wantEqual(t, "List(after the end)",
		seqs(listEvents(t, s, tn.ID, store.AuditFilter{AfterSeq: 10})), []int64{})
}

func auditConcurrentAppends(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	const n = 50
	errs := collect(n, func(i int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Audit().Append(ctx, auditEvent("concurrent", i))
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Append: %v", err)
		}
	}
	got := listEvents(t, s, tn.ID, store.AuditFilter{Limit: 1000})
	if len(got) != n {
		t.Fatalf("List returned %d events, want %d", len(got), n)
	}
	verifyChain(t, tn.ID, got)
	targets := map[string]bool{}
	for _, e := range got {
		targets[e.TargetID] = true
	}
	if len(targets) != n {
		t.Errorf("%d distinct events stored, want %d", len(targets), n)
	}
}

func settingsPutGetDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	sys := s.System()
	_, err := sys.Setting(ctx, "k")
	wantErr(t, "Setting of an unset key", err, store.ErrNotFound)

	got, err := sys.PutSettingIfAbsent(ctx, "k", []byte("first"))
	if err != nil || string(got) != "first" {
		t.Fatalf("PutSettingIfAbsent = %q, %v; want first", got, err)
	}
	got, err = sys.PutSettingIfAbsent(ctx, "k", []byte("second"))
	if err != nil || string(got) != "first" {
		t.Fatalf("second PutSettingIfAbsent = %q, %v; want first", got, err)
	}
	got, err = sys.Setting(ctx, "k")
	if err != nil || string(got) != "first" {
		t.Fatalf("Setting = %q, %v; want first", got, err)
	}
	binary := []byte{0, 0xff, 0x80, 'x'}
	if got, err := sys.PutSettingIfAbsent(ctx, "bin", binary); err != nil || !bytes.Equal(got, binary) {
		t.Errorf("PutSettingIfAbsent(binary) = %x, %v", got, err)
	}

	if ok, err := sys.DeleteSetting(ctx, "k"); err != nil || !ok {
		t.Fatalf("DeleteSetting = %v, %v; want true", ok, err)
	}
	if ok, err := sys.DeleteSetting(ctx, "k"); err != nil || ok {
		t.Fatalf("second DeleteSetting = %v, %v; want false", ok, err)
	}
	_, err = sys.Setting(ctx, "k")
	wantErr(t, "Setting after DeleteSetting", err, store.ErrNotFound)
	if got, err := sys.Setting(ctx, "bin"); err != nil || !bytes.Equal(got, binary) {
		t.Errorf("the other key: %x, %v", got, err)
	}
}

func settingsPutIfAbsentRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 16
	got := make([][]byte, n)
	errs := collect(n, func(i int) (err error) {
		got[i], err = s.System().PutSettingIfAbsent(ctx, "race", fmt.Appendf(nil, "value-%d", i))
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("PutSettingIfAbsent: %v", err)
		}
	}
	winner, err := s.System().Setting(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !bytes.Equal(got[i], winner) {
			t.Errorf("caller %d got %q, the stored value is %q", i, got[i], winner)
		}
	}
}

func settingsDeleteRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.System().PutSettingIfAbsent(ctx, "once", []byte("v")); err != nil {
		t.Fatal(err)
	}
	const n = 16
	deleted := make([]bool, n)
	errs := collect(n, func(i int) (err error) {
		deleted[i], err = s.System().DeleteSetting(ctx, "once")
		return err
	})
	trues := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("DeleteSetting: %v", errs[i])
		}
		if deleted[i] {
			trues++
		}
	}
	if trues != 1 {
		t.Errorf("%d of %d racing DeleteSetting calls reported true, want 1", trues, n)
	}
}

// auditUntrustedText appends an event whose details hold invalid UTF-8 and
// NUL bytes, as request headers can: every dialect stores it, and the stored
// event still verifies.
func auditUntrustedText(t *testing.T, s store.Store) {
	tn := newTenant(t, s, "acme")
	e := auditEvent("login.failure", 1)
	e.IP = "198.51.100.7\x00"
	e.Data = map[string]string{"user_agent": "Mozilla\xff\xfe/5.0\x00", "ok": "plain"}
	appendEvents(t, s, tn.ID, e)
	got := listEvents(t, s, tn.ID, store.AuditFilter{})
	verifyChain(t, tn.ID, got)
	if len(got) == 1 {
		want := *e
		wantEqual(t, "stored event", got[0], &want)
	}
}
