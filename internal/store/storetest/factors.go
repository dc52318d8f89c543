package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Second factors: passkeys, TOTP authenticators and recovery codes.

// factorRacers is how many callers race for one TOTP step or recovery code.
const factorRacers = 8

func passkeyFixture(user ciam.UserID, created time.Time) *ciam.Passkey {
	id := ciam.NewID()
	return &ciam.Passkey{
		ID: id, UserID: user,
		CredentialID:    sha("credential " + id),
		PublicKey:       []byte("COSE key of " + id),
		AttestationType: "none",
		AAGUID:          []byte("0123456789abcdef"),
		SignCount:       7,
		Transports:      []string{"internal", "hybrid"},
		UserVerified:    true,
		BackupEligible:  true,
		BackupState:     true,
		Name:            "Phone",
		CreatedAt:       created,
	}
}

func addPasskey(t *testing.T, s store.Store, tenant ciam.TenantID, p *ciam.Passkey) *ciam.Passkey {
	t.Helper()
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Passkeys().Create(t.Context(), p) })
	return p
}

// storedPasskey is p as a store reads it back.
func storedPasskey(p *ciam.Passkey) *ciam.Passkey {
	c := *p
	c.CredentialID, c.PublicKey, c.AAGUID = nilIfEmpty(p.CredentialID), nilIfEmpty(p.PublicKey), nilIfEmpty(p.AAGUID)
	c.Transports = listOrNil(p.Transports)
	c.CreatedAt, c.LastUsedAt = stored(p.CreatedAt), storedOpt(p.LastUsedAt)
	return &c
}

func passkeyByCredential(t *testing.T, s store.Store, tenant ciam.TenantID, credential []byte) *ciam.Passkey {
	t.Helper()
	var p *ciam.Passkey
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		p, err = tx.Passkeys().ByCredentialID(t.Context(), credential)
		return err
	})
	return p
}

func passkeyIDs(ps []*ciam.Passkey) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func listPasskeys(t *testing.T, s store.Store, tenant ciam.TenantID, user ciam.UserID) []*ciam.Passkey {
	t.Helper()
	var ps []*ciam.Passkey
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		ps, err = tx.Passkeys().ListByUser(t.Context(), user)
		return err
	})
	return ps
}

func passkeysCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ann := newUser(t, s, tn.ID, "ann@example.com")
	bob := newUser(t, s, tn.ID, "bob@example.com")
	newer := passkeyFixture(ann.ID, base().Add(time.Minute))
	newer.Name = "Key\x00 \xff"
	newer.LastUsedAt = base().Add(2 * time.Minute)
	addPasskey(t, s, tn.ID, newer)
	if newer.TenantID != tn.ID {
		t.Errorf("Create set TenantID %q, want %q", newer.TenantID, tn.ID)
	}
	// A security key without transports, AAGUID or backup flags, registered earlier.
	older := passkeyFixture(ann.ID, base())
	older.AAGUID, older.Transports, older.SignCount = nil, nil, 0
	older.UserVerified, older.BackupEligible, older.BackupState = false, false, false
	addPasskey(t, s, tn.ID, older)
	bobs := addPasskey(t, s, tn.ID, passkeyFixture(bob.ID, base()))

	want := storedPasskey(newer)
	want.Name = "Key\uFFFD \uFFFD"
	wantEqual(t, "ByCredentialID", passkeyByCredential(t, s, tn.ID, newer.CredentialID), want)
	wantEqual(t, "ByCredentialID of the security key", passkeyByCredential(t, s, tn.ID, older.CredentialID), storedPasskey(older))
	ps := listPasskeys(t, s, tn.ID, ann.ID)
	wantEqual(t, "ListByUser ids", passkeyIDs(ps), []string{older.ID, newer.ID})
	if len(ps) == 2 {
		wantEqual(t, "ListByUser[1]", ps[1], want)
	}
	wantEqual(t, "ListByUser of bob", passkeyIDs(listPasskeys(t, s, tn.ID, bob.ID)), []string{bobs.ID})
	wantEqual(t, "ListByUser of a user without passkeys", passkeyIDs(listPasskeys(t, s, tn.ID, "nobody")), []string{})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Passkeys().ByCredentialID(ctx, sha("no such credential"))
		wantErr(t, "ByCredentialID of an unknown credential", err, store.ErrNotFound)
		return nil
	})

	// A taken id or credential id, by the same user or another, is a
	// conflict that leaves the transaction usable; an unknown user is not found.
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		dup := passkeyFixture(ann.ID, base())
		dup.ID = newer.ID
		wantErr(t, "Create with a taken id", tx.Passkeys().Create(ctx, dup), store.ErrConflict)
		dup = passkeyFixture(ann.ID, base())
		dup.CredentialID = newer.CredentialID
		wantErr(t, "Create with the user's own credential id", tx.Passkeys().Create(ctx, dup), store.ErrConflict)
		dup = passkeyFixture(bob.ID, base())
		dup.CredentialID = newer.CredentialID
		wantErr(t, "Create with another user's credential id", tx.Passkeys().Create(ctx, dup), store.ErrConflict)
		wantErr(t, "Create for an unknown user", tx.Passkeys().Create(ctx, passkeyFixture("nobody", base())), store.ErrNotFound)
		return tx.Passkeys().Create(ctx, passkeyFixture(bob.ID, base()))
	})
	if got := passkeyByCredential(t, s, tn.ID, newer.CredentialID); got.UserID != ann.ID || got.ID != newer.ID {
		t.Errorf("the refused Creates changed the passkey: %+v", got)
	}
}

func passkeysRenameDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ann := newUser(t, s, tn.ID, "ann@example.com")
	bob := newUser(t, s, tn.ID, "bob@example.com")
	p := addPasskey(t, s, tn.ID, passkeyFixture(ann.ID, base()))
	keep := addPasskey(t, s, tn.ID, passkeyFixture(ann.ID, base().Add(time.Second)))

	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passkeys().Rename(ctx, ann.ID, p.ID, "Laptop\x00") })
	if got := passkeyByCredential(t, s, tn.ID, p.CredentialID); got.Name != "Laptop\uFFFD" {
		t.Errorf("Name after Rename = %q", got.Name)
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		wantErr(t, "Rename of another user's passkey", tx.Passkeys().Rename(ctx, bob.ID, p.ID, "Mine"), store.ErrNotFound)
		wantErr(t, "Rename of an unknown passkey", tx.Passkeys().Rename(ctx, ann.ID, "nope", "x"), store.ErrNotFound)
		wantErr(t, "Delete of another user's passkey", tx.Passkeys().Delete(ctx, bob.ID, p.ID), store.ErrNotFound)
		wantErr(t, "Delete of an unknown passkey", tx.Passkeys().Delete(ctx, ann.ID, "nope"), store.ErrNotFound)
		return nil
	})
	if got := passkeyByCredential(t, s, tn.ID, p.CredentialID); got.Name != "Laptop\uFFFD" {
		t.Errorf("Name after the refused Rename = %q", got.Name)
	}

	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passkeys().Delete(ctx, ann.ID, p.ID) })
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passkeys().Delete(ctx, ann.ID, p.ID) })
	wantErr(t, "second Delete", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passkeys().Rename(ctx, ann.ID, p.ID, "x") })
	wantErr(t, "Rename of a deleted passkey", err, store.ErrNotFound)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Passkeys().ByCredentialID(ctx, p.CredentialID)
		wantErr(t, "ByCredentialID of a deleted passkey", err, store.ErrNotFound)
		return nil
	})
	wantEqual(t, "ListByUser after Delete", passkeyIDs(listPasskeys(t, s, tn.ID, ann.ID)), []string{keep.ID})
	// The credential id is free again.
	again := passkeyFixture(bob.ID, base())
	again.CredentialID = p.CredentialID
	addPasskey(t, s, tn.ID, again)
}

func passkeysRecordUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	p := addPasskey(t, s, tn.ID, passkeyFixture(u.ID, base()))
	at := base().Add(time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passkeys().RecordUse(ctx, p.ID, 7, 9, false, at) })
	want := storedPasskey(p)
	want.SignCount, want.BackupState, want.LastUsedAt = 9, false, stored(at)
	wantEqual(t, "after RecordUse", passkeyByCredential(t, s, tn.ID, p.CredentialID), want)

	// A counter that is no longer the one read is a conflict that changes nothing.
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passkeys().RecordUse(ctx, p.ID, 7, 8, true, at.Add(time.Minute)) })
	wantErr(t, "RecordUse from a stale counter", err, store.ErrConflict)
	wantEqual(t, "after the refused RecordUse", passkeyByCredential(t, s, tn.ID, p.CredentialID), want)

	// A passkey that syncs keeps its counter at zero: each use moves 0 to 0.
	synced := passkeyFixture(u.ID, base())
	synced.SignCount = 0
	addPasskey(t, s, tn.ID, synced)
	for i := range 2 {
		mustTx(t, s, tn.ID, func(tx store.Tx) error {
			return tx.Passkeys().RecordUse(ctx, synced.ID, 0, 0, true, at.Add(time.Duration(i)*time.Minute))
		})
	}
	if got := passkeyByCredential(t, s, tn.ID, synced.CredentialID); got.SignCount != 0 || !got.LastUsedAt.Equal(stored(at.Add(time.Minute))) {
		t.Errorf("synced passkey after two uses: count %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	// The counter is stored whole, up to the largest uint32.
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passkeys().RecordUse(ctx, p.ID, 9, 1<<32-1, true, at) })
	if got := passkeyByCredential(t, s, tn.ID, p.CredentialID); got.SignCount != 1<<32-1 {
		t.Errorf("SignCount = %d, want %d", got.SignCount, uint32(1<<32-1))
	}

	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passkeys().Delete(ctx, u.ID, p.ID) })
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passkeys().RecordUse(ctx, p.ID, 1<<32-1, 0, true, at) })
	wantErr(t, "RecordUse of a removed passkey", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passkeys().RecordUse(ctx, "nope", 0, 1, true, at) })
	wantErr(t, "RecordUse of an unknown passkey", err, store.ErrNotFound)
}

func passkeysConcurrentRecordUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	p := addPasskey(t, s, tn.ID, passkeyFixture(u.ID, base()))
	errs := collect(racers, func(i int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Passkeys().RecordUse(ctx, p.ID, p.SignCount, p.SignCount+1+uint32(i), false, base().Add(time.Minute))
		})
	})
	wantOneWinner(t, "concurrent RecordUse", errs)
	winner := -1
	for i, err := range errs {
		if err == nil {
			winner = i
		}
	}
	if got := passkeyByCredential(t, s, tn.ID, p.CredentialID); winner >= 0 && got.SignCount != p.SignCount+1+uint32(winner) {
		t.Errorf("SignCount = %d, want the winner's %d", got.SignCount, p.SignCount+1+uint32(winner))
	}
}

func isolationPasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	ua := newUser(t, s, a.ID, "ann@example.com")
	ub := newUser(t, s, b.ID, "bob@example.com")
	p := addPasskey(t, s, a.ID, passkeyFixture(ua.ID, base()))
	at := base().Add(time.Minute)
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.Passkeys().ByCredentialID(ctx, p.CredentialID)
		wantErr(t, "ByCredentialID from B", err, store.ErrNotFound)
		ps, err := tx.Passkeys().ListByUser(ctx, ua.ID)
		if err != nil || len(ps) != 0 {
			t.Errorf("ListByUser from B = %d, %v; want none", len(ps), err)
		}
		wantErr(t, "Rename from B", tx.Passkeys().Rename(ctx, ua.ID, p.ID, "x"), store.ErrNotFound)
		wantErr(t, "Delete from B", tx.Passkeys().Delete(ctx, ua.ID, p.ID), store.ErrNotFound)
		wantErr(t, "RecordUse from B", tx.Passkeys().RecordUse(ctx, p.ID, p.SignCount, p.SignCount+1, false, at), store.ErrNotFound)
		wantErr(t, "Create in B for A's user", tx.Passkeys().Create(ctx, passkeyFixture(ua.ID, base())), store.ErrNotFound)
		// The same credential and passkey ids may exist in another tenant.
		same := passkeyFixture(ub.ID, base())
		same.ID, same.CredentialID = p.ID, p.CredentialID
		return tx.Passkeys().Create(ctx, same)
	})
	wantEqual(t, "A's passkey", passkeyByCredential(t, s, a.ID, p.CredentialID), storedPasskey(p))
	if got := passkeyByCredential(t, s, b.ID, p.CredentialID); got.UserID != ub.ID || got.TenantID != b.ID {
		t.Errorf("B's passkey with A's credential id: %+v", got)
	}
}

func getTOTP(t *testing.T, s store.Store, tenant ciam.TenantID, user ciam.UserID) (*ciam.TOTPSecret, error) {
	t.Helper()
	var got *ciam.TOTPSecret
	err := s.View(t.Context(), tenant, func(tx store.Tx) (err error) {
		got, err = tx.TOTP().Get(t.Context(), user)
		return err
	})
	return got, err
}

func totpFixture(user ciam.UserID, created time.Time) *ciam.TOTPSecret {
	return &ciam.TOTPSecret{UserID: user, Secret: []byte("sealed secret of " + string(user)), CreatedAt: created}
}

func totpPutGetDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	other := newUser(t, s, tn.ID, "bob@example.com")
	_, err := getTOTP(t, s, tn.ID, u.ID)
	wantErr(t, "Get with none", err, store.ErrNotFound)

	first := totpFixture(u.ID, base())
	first.LastStep = 42
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, first) })
	if first.TenantID != tn.ID {
		t.Errorf("Put set TenantID %q, want %q", first.TenantID, tn.ID)
	}
	got, err := getTOTP(t, s, tn.ID, u.ID)
	wantEqual(t, "Get", got, &ciam.TOTPSecret{TenantID: tn.ID, UserID: u.ID, Secret: first.Secret, CreatedAt: stored(base()), LastStep: 42})
	wantErr(t, "Get", err, nil)
	_, err = getTOTP(t, s, tn.ID, other.ID)
	wantErr(t, "Get of another user", err, store.ErrNotFound)

	// Put replaces the authenticator, its last step included.
	second := totpFixture(u.ID, base().Add(time.Hour))
	second.Secret = []byte("another sealed secret")
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, second) })
	got, err = getTOTP(t, s, tn.ID, u.ID)
	wantEqual(t, "Get after the second Put", got, &ciam.TOTPSecret{TenantID: tn.ID, UserID: u.ID, Secret: second.Secret, CreatedAt: stored(second.CreatedAt)})
	wantErr(t, "Get after the second Put", err, nil)

	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, totpFixture("nobody", base())) })
	wantErr(t, "Put for an unknown user", err, store.ErrNotFound)

	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.TOTP().Delete(ctx, u.ID) })
	_, err = getTOTP(t, s, tn.ID, u.ID)
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.TOTP().Delete(ctx, u.ID) })
	wantErr(t, "second Delete", err, store.ErrNotFound)
}

func totpUseStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, totpFixture(u.ID, base())) })
	use := func(step int64) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.TOTP().UseStep(ctx, u.ID, step) })
	}
	wantErr(t, "UseStep 100", use(100), nil)
	wantErr(t, "UseStep 100 again", use(100), store.ErrConflict)
	wantErr(t, "UseStep of an earlier step", use(99), store.ErrConflict)
	wantErr(t, "UseStep 102", use(102), nil)
	wantErr(t, "UseStep 101 after 102", use(101), store.ErrConflict)
	if got, err := getTOTP(t, s, tn.ID, u.ID); err != nil || got.LastStep != 102 {
		t.Errorf("LastStep = %+v, %v; want 102", got, err)
	}
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.TOTP().UseStep(ctx, "nobody", 100) })
	wantErr(t, "UseStep without an authenticator", err, store.ErrNotFound)
}

func totpConcurrentUseStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, totpFixture(u.ID, base())) })
	errs := collect(factorRacers, func(int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.TOTP().UseStep(ctx, u.ID, 1000) })
	})
	wantOneWinner(t, "concurrent UseStep", errs)
	if got, err := getTOTP(t, s, tn.ID, u.ID); err != nil || got.LastStep != 1000 {
		t.Errorf("LastStep = %+v, %v; want 1000", got, err)
	}
}

func isolationTOTP(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	u := newUser(t, s, a.ID, "ann@example.com")
	mustTx(t, s, a.ID, func(tx store.Tx) error { return tx.TOTP().Put(ctx, totpFixture(u.ID, base())) })
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		_, err := tx.TOTP().Get(ctx, u.ID)
		wantErr(t, "Get from B", err, store.ErrNotFound)
		wantErr(t, "UseStep from B", tx.TOTP().UseStep(ctx, u.ID, 5), store.ErrNotFound)
		wantErr(t, "Delete from B", tx.TOTP().Delete(ctx, u.ID), store.ErrNotFound)
		wantErr(t, "Put in B for A's user", tx.TOTP().Put(ctx, totpFixture(u.ID, base())), store.ErrNotFound)
		return nil
	})
	got, err := getTOTP(t, s, a.ID, u.ID)
	if err != nil || got.LastStep != 0 || string(got.Secret) != "sealed secret of "+string(u.ID) {
		t.Errorf("A's authenticator changed: %+v, %v", got, err)
	}
}

func recoveryHashes(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = sha(fmt.Sprint(prefix, i))
	}
	return out
}

func remainingCodes(t *testing.T, s store.Store, tenant ciam.TenantID, user ciam.UserID) int {
	t.Helper()
	var n int
	mustView(t, s, tenant, func(tx store.Tx) (err error) {
		n, err = tx.RecoveryCodes().Remaining(t.Context(), user)
		return err
	})
	return n
}

func recoveryCodesReplaceUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ann := newUser(t, s, tn.ID, "ann@example.com")
	bob := newUser(t, s, tn.ID, "bob@example.com")
	old := recoveryHashes("old ", 3)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.RecoveryCodes().Replace(ctx, ann.ID, old, base()) })
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		return tx.RecoveryCodes().Replace(ctx, bob.ID, recoveryHashes("bob ", 2), base())
	})
	if n := remainingCodes(t, s, tn.ID, ann.ID); n != 3 {
		t.Errorf("Remaining = %d, want 3", n)
	}
	at := base().Add(time.Minute)
	use := func(user ciam.UserID, hash []byte) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.RecoveryCodes().Use(ctx, user, hash, at) })
	}
	wantErr(t, "Use", use(ann.ID, old[1]), nil)
	wantErr(t, "Use of a spent code", use(ann.ID, old[1]), store.ErrNotFound)
	wantErr(t, "Use of an unknown code", use(ann.ID, sha("guess")), store.ErrNotFound)
	wantErr(t, "Use of another user's code", use(bob.ID, old[0]), store.ErrNotFound)
	if n := remainingCodes(t, s, tn.ID, ann.ID); n != 2 {
		t.Errorf("Remaining after Use = %d, want 2", n)
	}

	// Replace drops the old set, spent and unspent alike.
	fresh := recoveryHashes("new ", 10)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.RecoveryCodes().Replace(ctx, ann.ID, fresh, base().Add(time.Hour)) })
	if n := remainingCodes(t, s, tn.ID, ann.ID); n != 10 {
		t.Errorf("Remaining after Replace = %d, want 10", n)
	}
	wantErr(t, "Use of a replaced code", use(ann.ID, old[0]), store.ErrNotFound)
	wantErr(t, "Use of a new code", use(ann.ID, fresh[9]), nil)
	if n := remainingCodes(t, s, tn.ID, bob.ID); n != 2 {
		t.Errorf("bob's codes after ann's Replace = %d, want 2", n)
	}

	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.RecoveryCodes().Replace(ctx, "nobody", recoveryHashes("x", 2), base())
	})
	wantErr(t, "Replace for an unknown user", err, store.ErrNotFound)
	// A failed Replace rolls back with its transaction: the old set stays.
	err = s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		return tx.RecoveryCodes().Replace(ctx, ann.ID, [][]byte{sha("a"), sha("a")}, base())
	})
	wantErr(t, "Replace with a hash twice", err, store.ErrConflict)
	if n := remainingCodes(t, s, tn.ID, ann.ID); n != 9 {
		t.Errorf("Remaining after a failed Replace = %d, want 9", n)
	}

	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.RecoveryCodes().Delete(ctx, ann.ID); err != nil {
			return err
		}
		return tx.RecoveryCodes().Delete(ctx, ann.ID) // nothing left: not an error
	})
	if n := remainingCodes(t, s, tn.ID, ann.ID); n != 0 {
		t.Errorf("Remaining after Delete = %d, want 0", n)
	}
	wantErr(t, "Use after Delete", use(ann.ID, fresh[0]), store.ErrNotFound)
	if n := remainingCodes(t, s, tn.ID, bob.ID); n != 2 {
		t.Errorf("bob's codes after ann's Delete = %d, want 2", n)
	}
}

func recoveryCodesConcurrentUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ann@example.com")
	hashes := recoveryHashes("code ", 4)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.RecoveryCodes().Replace(ctx, u.ID, hashes, base()) })
	errs := collect(factorRacers, func(i int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.RecoveryCodes().Use(ctx, u.ID, hashes[2], base().Add(time.Duration(i+1)*time.Millisecond))
		})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("racing Use: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d racing Uses succeeded, want exactly 1", ok)
	}
	if n := remainingCodes(t, s, tn.ID, u.ID); n != 3 {
		t.Errorf("Remaining = %d, want 3", n)
	}
}

func isolationRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newTenant(t, s, "tenant-a"), newTenant(t, s, "tenant-b")
	u := newUser(t, s, a.ID, "ann@example.com")
	hashes := recoveryHashes("code ", 3)
	mustTx(t, s, a.ID, func(tx store.Tx) error { return tx.RecoveryCodes().Replace(ctx, u.ID, hashes, base()) })
	mustTx(t, s, b.ID, func(tx store.Tx) error {
		n, err := tx.RecoveryCodes().Remaining(ctx, u.ID)
		wantCount(t, "Remaining from B", n, err, 0)
		wantErr(t, "Use from B", tx.RecoveryCodes().Use(ctx, u.ID, hashes[0], base()), store.ErrNotFound)
		if err := tx.RecoveryCodes().Delete(ctx, u.ID); err != nil {
			t.Errorf("Delete from B: %v", err)
		}
		wantErr(t, "Replace in B for A's user", tx.RecoveryCodes().Replace(ctx, u.ID, recoveryHashes("b", 1), base()), store.ErrNotFound)
		return nil
	})
	if n := remainingCodes(t, s, a.ID, u.ID); n != 3 {
		t.Errorf("A's codes after B's calls = %d, want 3", n)
	}
}
