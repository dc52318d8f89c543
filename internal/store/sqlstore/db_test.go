package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/store"
)

func TestRetryTransient(t *testing.T) {
	transient := &transientError{msg: "busy"}
	other := errors.New("other")
	for _, c := range []struct {
		name      string
		errs      []error // returned by successive attempts; nil after the list
		wantCalls int
		want      error
	}{
		{"success", nil, 1, nil},
		{"ordinary error is not retried", []error{other}, 1, other},
		{"transient then success", []error{transient, transient}, 3, nil},
		{"wrapped transient is retried", []error{fmt.Errorf("svc: %w", transient)}, 2, nil},
		{"gives up", []error{transient, transient, transient, transient, transient, transient, transient}, maxAttempts, transient},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := retryTransient(t.Context(), func() error {
				calls++
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if calls != c.wantCalls || !errors.Is(err, c.want) {
				t.Errorf("calls %d, err %v; want %d, %v", calls, err, c.wantCalls, c.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	err := retryTransient(ctx, func() error { calls++; return transient })
	if calls != 1 || err != transient {
		t.Errorf("cancelled context: calls %d, err %v", calls, err)
	}
}

func TestWrap(t *testing.T) {
	db := &DB{dialect: Dialect{Classify: func(err error) ErrorClass {
		switch err.Error() {
		case "dup":
			return ClassUnique
		case "fk":
			return ClassForeignKey
		case "busy":
			return ClassTransient
		}
		return ClassOther
	}}}
	if err := db.wrap(errors.New("dup"), "create user %s", "u1"); !errors.Is(err, store.ErrConflict) || err.Error() != "create user u1: store: conflict" {
		t.Errorf("unique: %v", err)
	}
	if err := db.wrap(errors.New("fk"), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign key: %v", err)
	}
	if err := db.wrap(errors.New("busy"), "x"); !isTransient(err) {
		t.Errorf("busy: %v", err)
	}
	driverErr := errors.New("driver exploded")
	if err := db.wrap(driverErr, "x"); errors.Is(err, driverErr) || err.Error() != "sqlstore: x: driver exploded" {
		t.Errorf("other: %v (the driver error must not be in the chain)", err)
	}
	if err := db.wrap(context.Canceled, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if db.wrap(nil, "x") != nil {
		t.Errorf("nil error wrapped")
	}
}
