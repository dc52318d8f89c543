package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/store"
)

var (
	// Use is one statement: the insert takes a free value; on conflict the
	// row is replaced only if it expired before now, that is if
	// DeleteExpired(now) would have removed it (a value whose expiry is
	// exactly now is still taken). A concurrent Use of the same value waits
	// for the first to commit and then finds an unexpired row, so exactly
	// one of racing callers writes a row. The SELECT from tenants writes
	// nothing for an unknown tenant.
	qNonceUse = newQuery(`INSERT INTO nonces (tenant_id, namespace, value, expires_at)
		SELECT id, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT (tenant_id, namespace, value) DO UPDATE SET expires_at = excluded.expires_at
		WHERE nonces.expires_at < ?`)
	qNonceDeleteExpired = newQuery(`DELETE FROM nonces WHERE tenant_id = ? AND expires_at < ?`)
)

// nonces records single-use values per namespace. Values may come from
// outside (the jti of a client assertion), so they are cleaned like other
// untrusted text.
type nonces struct{ *tx }

func (r nonces) Use(ctx context.Context, namespace, value string, now, expires time.Time) error {
	namespace, value = cleanText(namespace), cleanText(value)
	res, err := r.exec(ctx, qNonceUse, namespace, value, micros(expires), string(r.tenant), micros(now))
	if err != nil {
		return r.db.wrap(err, "use nonce in %s", namespace)
	}
	n, err := r.rowsAffected(res, "use nonce in %s", namespace)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
			return r.db.wrap(err, "use nonce in %s: tenant %s", namespace, r.tenant)
		}
		return conflictf("use nonce in %s: used already", namespace)
	}
	return nil
}

func (r nonces) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := r.exec(ctx, qNonceDeleteExpired, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired nonces")
	}
	n, err := r.rowsAffected(res, "delete expired nonces")
	return int(n), err
}

var _ store.Nonces = nonces{}
