package sqlstore

import (
	"context"
	"fmt"
)

// Migrate applies every pending embedded migration and returns the names of
// the files it applied, in order. It is safe to call on a current database.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	res, err := db.goose.Up(ctx)
	var applied []string
	for _, r := range res {
		if r != nil && r.Source != nil && r.Error == nil {
			applied = append(applied, r.Source.Path)
		}
	}
	if err != nil {
		return applied, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	db.migrated.Store(true)
	return applied, nil
}

// MigrationVersions returns the database's schema version and the newest
// embedded one.
func (db *DB) MigrationVersions(ctx context.Context) (current, latest int64, err error) {
	current, latest, err = db.goose.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: migration versions: %w", err)
	}
	return current, latest, nil
}

// MigrationsCurrent reports whether every embedded migration is applied.
// Once true it stays true (migrations are forward-only), so readiness
// probes do not query the database for it again.
func (db *DB) MigrationsCurrent(ctx context.Context) (bool, error) {
	if db.migrated.Load() {
		return true, nil
	}
	pending, err := db.goose.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("sqlstore: migration status: %w", err)
	}
	if !pending {
		db.migrated.Store(true)
	}
	return !pending, nil
}
