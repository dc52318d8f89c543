package sqlstore

import (
	"context"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// System returns the cross-tenant operations.
func (db *DB) System() store.System { return system{db} }

// system runs outside any tenant's transaction: reads on the reader pool,
// writes on the writer.
type system struct{ db *DB }

var _ store.System = system{}

func (s system) Ping(ctx context.Context) error {
	if err := s.db.writer.PingContext(ctx); err != nil {
		return s.db.wrap(err, "ping")
	}
	if s.db.reader != s.db.writer {
		if err := s.db.reader.PingContext(ctx); err != nil {
			return s.db.wrap(err, "ping reader")
		}
	}
	return nil
}

func (s system) MigrationsCurrent(ctx context.Context) (bool, error) {
	return s.db.MigrationsCurrent(ctx)
}

func (s system) TenantBySlug(ctx context.Context, slug string) (*ciam.Tenant, error) {
	tn, err := scanTenant(s.db.reader.QueryRowContext(ctx, qTenantBySlug.text[s.db.ph], slug))
	if err != nil {
		return nil, s.db.wrap(err, "tenant %q", slug)
	}
	return tn, nil
}

func (s system) Tenants(ctx context.Context, after string, n int) ([]*ciam.Tenant, error) {
	rows, err := s.db.reader.QueryContext(ctx, qTenantsAfter.text[s.db.ph], after, limit(n))
	if err != nil {
		return nil, s.db.wrap(err, "list tenants")
	}
	out, err := tenantList(rows)
	if err != nil {
		return nil, s.db.wrap(err, "list tenants")
	}
	return out, nil
}

func (s system) ListedTenants(ctx context.Context) ([]*ciam.Tenant, error) {
	rows, err := s.db.reader.QueryContext(ctx, qTenantsListed.text[s.db.ph], true, false, maxLimit)
	if err != nil {
		return nil, s.db.wrap(err, "list listed tenants")
	}
	out, err := tenantList(rows)
	if err != nil {
		return nil, s.db.wrap(err, "list listed tenants")
	}
	return out, nil
}
