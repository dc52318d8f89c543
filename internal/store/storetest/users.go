package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func usersCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := &ciam.User{
		ID:            ciam.UserID(ciam.NewID()),
		Email:         "ada@example.com",
		EmailVerified: true,
		Name:          "Ada Lovelace",
		Locale:        "en-GB",
		Status:        ciam.UserActive,
		CreatedAt:     base(),
		UpdatedAt:     base().Add(time.Minute),
		PIIKey:        []byte{1, 2, 3, 0, 255},
	}
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, u) })
	if u.TenantID != tn.ID {
		t.Errorf("Create set TenantID %q, want %q", u.TenantID, tn.ID)
	}
	if u.Version == 0 {
		t.Errorf("Create left Version 0")
	}
	want := *u
	want.CreatedAt, want.UpdatedAt = stored(u.CreatedAt), stored(u.UpdatedAt)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get", got, &want)
		got, err = tx.Users().ByEmail(ctx, "ada@example.com")
		if err != nil {
			return err
		}
		wantEqual(t, "ByEmail", got, &want)
		return nil
	})
}

func usersDuplicateEmail(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	first := newUser(t, s, tn.ID, "ada@example.com")
	dup := userFixture("ada@example.com")
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, dup) })
	wantErr(t, "Create with a taken email", err, store.ErrConflict)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().ByEmail(ctx, "ada@example.com")
		if err != nil {
			return err
		}
		if got.ID != first.ID {
			t.Errorf("ByEmail returned %s, want the first user %s", got.ID, first.ID)
		}
		_, err = tx.Users().Get(ctx, dup.ID)
		wantErr(t, "Get of the refused user", err, store.ErrNotFound)
		return nil
	})
}

func usersDuplicateID(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	first := newUser(t, s, tn.ID, "ada@example.com")
	dup := userFixture("grace@example.com")
	dup.ID = first.ID
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Create(ctx, dup) })
	wantErr(t, "Create with a taken id", err, store.ErrConflict)
}

func usersConflictKeepsTxUsable(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	a, b, c := userFixture("a@example.com"), userFixture("a@example.com"), userFixture("c@example.com")
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, a); err != nil {
			return err
		}
		wantErr(t, "Create of a duplicate", tx.Users().Create(ctx, b), store.ErrConflict)
		return tx.Users().Create(ctx, c)
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		all, err := tx.Users().List(ctx, store.UserFilter{})
		if err != nil {
			return err
		}
		if len(all) != 2 {
			t.Errorf("List returned %d users, want 2", len(all))
		}
		return nil
	})
}

func usersNoEmail(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	a, b := newUser(t, s, tn.ID, ""), newUser(t, s, tn.ID, "")
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		for _, u := range []*ciam.User{a, b} {
			got, err := tx.Users().Get(ctx, u.ID)
			if err != nil {
				return err
			}
			if got.Email != "" {
				t.Errorf("Email = %q, want empty", got.Email)
			}
		}
		_, err := tx.Users().ByEmail(ctx, "")
		wantErr(t, "ByEmail of the empty email", err, store.ErrNotFound)
		return nil
	})
}

func usersUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.Tx(ctx, ciam.TenantID(ciam.NewID()), func(tx store.Tx) error {
		return tx.Users().Create(ctx, userFixture("ada@example.com"))
	})
	wantErr(t, "Create in a tenant that does not exist", err, store.ErrNotFound)
}

func usersNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ghost := userFixture("ghost@example.com")
	ghost.Version = 1
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error {
		_, err := tx.Users().Get(ctx, ghost.ID)
		wantErr(t, "Get", err, store.ErrNotFound)
		_, err = tx.Users().ByEmail(ctx, ghost.Email)
		wantErr(t, "ByEmail", err, store.ErrNotFound)
		wantErr(t, "Update", tx.Users().Update(ctx, ghost), store.ErrNotFound)
		wantErr(t, "RecordLogin", tx.Users().RecordLogin(ctx, ghost.ID, base()), store.ErrNotFound)
		return nil
	})
	if err != nil {
		t.Fatalf("Tx after not-found errors: %v", err)
	}
}

func usersUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	v := u.Version
	u.Email = "ada@lovelace.example"
	u.EmailVerified = true
	u.Name = "Countess"
	u.Locale = "fr"
	u.Status = ciam.UserDisabled
	u.PIIKey = nil // erased
	u.UpdatedAt = base().Add(time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Users().Update(ctx, u) })
	if u.Version != v+1 {
		t.Errorf("Version after Update = %d, want %d", u.Version, v+1)
	}
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "Get after Update", got, u)
		_, err = tx.Users().ByEmail(ctx, "ada@example.com")
		wantErr(t, "ByEmail of the old email", err, store.ErrNotFound)
		got, err = tx.Users().ByEmail(ctx, "ada@lovelace.example")
		if err != nil {
			return err
		}
		if got.ID != u.ID {
			t.Errorf("ByEmail of the new email returned %s", got.ID)
		}
		return nil
	})
	// The old email is free again.
	newUser(t, s, tn.ID, "ada@example.com")
}

func usersStaleUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	stale := *u
	u.Name = "first"
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Users().Update(ctx, u) })
	stale.Name = "second"
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Users().Update(ctx, &stale) })
	wantErr(t, "Update with a stale version", err, store.ErrConflict)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		if got.Name != "first" || got.Version != u.Version {
			t.Errorf("after stale Update: %q v%d, want %q v%d", got.Name, got.Version, "first", u.Version)
		}
		return nil
	})
}

func usersUpdateEmailTaken(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	newUser(t, s, tn.ID, "ada@example.com")
	u := newUser(t, s, tn.ID, "grace@example.com")
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		taken := *u
		taken.Email = "ada@example.com"
		wantErr(t, "Update to a taken email", tx.Users().Update(ctx, &taken), store.ErrConflict)
		// The transaction is still usable after the conflict.
		u.Name = "Grace Hopper"
		return tx.Users().Update(ctx, u)
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		if got.Email != "grace@example.com" || got.Name != "Grace Hopper" {
			t.Errorf("got %q %q", got.Email, got.Name)
		}
		return nil
	})
}

func usersRecordLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	if !u.LastLoginAt.IsZero() {
		t.Fatalf("new user has LastLoginAt %v", u.LastLoginAt)
	}
	at := base().Add(2 * time.Hour)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Users().RecordLogin(ctx, u.ID, at) })
	// A copy read before the login must not move LastLoginAt back.
	u.Name = "renamed"
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Users().Update(ctx, u) })
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		got, err := tx.Users().Get(ctx, u.ID)
		if err != nil {
			return err
		}
		if !got.LastLoginAt.Equal(stored(at)) {
			t.Errorf("LastLoginAt = %v, want %v", got.LastLoginAt, stored(at))
		}
		if got.Version != u.Version || got.Name != "renamed" {
			t.Errorf("got %q v%d, want %q v%d (RecordLogin must not touch Version)", got.Name, got.Version, "renamed", u.Version)
		}
		return nil
	})
}

func usersListPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	want := map[ciam.UserID]bool{}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		for i := range 25 {
			u := userFixture(fmt.Sprintf("u%02d@example.com", i))
			if err := tx.Users().Create(ctx, u); err != nil {
				return err
			}
			want[u.ID] = true
		}
		return nil
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		var got []ciam.UserID
		f := store.UserFilter{Limit: 10}
		for page := 0; ; page++ {
			us, err := tx.Users().List(ctx, f)
			if err != nil {
				return err
			}
			if len(us) > 10 || page > 3 {
				t.Fatalf("page %d has %d users", page, len(us))
			}
			if len(us) == 0 {
				break
			}
			for _, u := range us {
				got = append(got, u.ID)
			}
			f.After = us[len(us)-1].ID
		}
		if len(got) != 25 {
			t.Fatalf("paging returned %d users, want 25", len(got))
		}
		for i, id := range got {
			if !want[id] {
				t.Errorf("unexpected user %s", id)
			}
			if i > 0 && got[i-1] >= id {
				t.Errorf("users not ordered by id: %s before %s", got[i-1], id)
			}
		}
		all, err := tx.Users().List(ctx, store.UserFilter{})
		if err != nil {
			return err
		}
		if len(all) != 25 {
			t.Errorf("List with no limit returned %d users, want 25", len(all))
		}
		return nil
	})
}

func usersListStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	disabled := map[ciam.UserID]bool{}
	mustTx(t, s, tn.ID, func(tx store.Tx) error {
		for i := range 6 {
			u := userFixture(fmt.Sprintf("u%d@example.com", i))
			if i%3 == 0 {
				u.Status = ciam.UserDisabled
				disabled[u.ID] = true
			}
			if err := tx.Users().Create(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		us, err := tx.Users().List(ctx, store.UserFilter{Status: ciam.UserDisabled})
		if err != nil {
			return err
		}
		if len(us) != len(disabled) {
			t.Errorf("List(disabled) returned %d users, want %d", len(us), len(disabled))
		}
		for _, u := range us {
			if !disabled[u.ID] {
				t.Errorf("List(disabled) returned %s with status %s", u.ID, u.Status)
			}
		}
		return nil
	})
}

func usersConcurrentSameEmail(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	const n = 20
	errs := collect(n, func(int) error {
		return s.Tx(ctx, tn.ID, func(tx store.Tx) error {
			return tx.Users().Create(ctx, userFixture("race@example.com"))
		})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		default:
			wantErr(t, "a losing Create", err, store.ErrConflict)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent Creates with one email succeeded, want 1", ok, n)
	}
}

func passwordsGetSetReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	u := newUser(t, s, tn.ID, "ada@example.com")
	const h1 = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
	const h2 = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$bmV3aGFzaA"
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Passwords().Get(ctx, u.ID)
		wantErr(t, "Get before Set", err, store.ErrNotFound)
		return nil
	})
	for _, h := range []string{h1, h2} {
		mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Passwords().Set(ctx, u.ID, h, base()) })
		mustView(t, s, tn.ID, func(tx store.Tx) error {
			got, err := tx.Passwords().Get(ctx, u.ID)
			if err != nil {
				return err
			}
			if got != h {
				t.Errorf("Get = %q, want %q", got, h)
			}
			return nil
		})
	}
}

func passwordsUnknownUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	tn := newTenant(t, s, "acme")
	ghost := ciam.UserID(ciam.NewID())
	err := s.Tx(ctx, tn.ID, func(tx store.Tx) error { return tx.Passwords().Set(ctx, ghost, "$x$", base()) })
	wantErr(t, "Set for an unknown user", err, store.ErrNotFound)
	mustView(t, s, tn.ID, func(tx store.Tx) error {
		_, err := tx.Passwords().Get(ctx, ghost)
		wantErr(t, "Get for an unknown user", err, store.ErrNotFound)
		return nil
	})
}
