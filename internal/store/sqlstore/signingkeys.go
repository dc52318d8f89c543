package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const signingKeyColumns = `tenant_id, id, alg, public_jwk, private_sealed, created_at, active_at, retired_at, expires_at`

var (
	qSigningKeyInsert = newQuery(`INSERT INTO signing_keys (` + signingKeyColumns + `)
		SELECT id, ?, ?, ?, ?, ?, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT DO NOTHING`)
	// A key is listed until it is past its expiry, and deleted after that:
	// List(now) and DeleteExpired(now) split the keys between them.
	qSigningKeyList = newQuery(`SELECT ` + signingKeyColumns + ` FROM signing_keys
		WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at >= ?)
		ORDER BY created_at, id`)
	qSigningKeyRetire = newQuery(`UPDATE signing_keys SET retired_at = ?, expires_at = ?
		WHERE tenant_id = ? AND id = ? AND retired_at IS NULL`)
	qSigningKeyDeleteExpired = newQuery(`DELETE FROM signing_keys WHERE tenant_id = ? AND expires_at < ?`)
)

// signingKeys is the tenant's token signing keys; the private halves arrive
// sealed and are stored as they are.
type signingKeys struct{ *tx }

func (r signingKeys) Create(ctx context.Context, k *ciam.SigningKey) error {
	if !r.checkTenant(k.TenantID) {
		return r.wrongTenant("signing key", k.TenantID)
	}
	k.TenantID = r.tenant
	k.CreatedAt, k.ActiveAt, k.RetiredAt, k.ExpiresAt = utc(k.CreatedAt), utc(k.ActiveAt), utc(k.RetiredAt), utc(k.ExpiresAt)
	res, err := r.exec(ctx, qSigningKeyInsert,
		k.ID, k.Alg, k.PublicJWK, k.PrivateSealed, micros(k.CreatedAt), micros(k.ActiveAt),
		nullMicros(k.RetiredAt), nullMicros(k.ExpiresAt), string(r.tenant))
	if err != nil {
		return r.db.wrap(err, "create signing key %s", k.ID)
	}
	n, err := r.rowsAffected(res, "create signing key %s", k.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
			return r.db.wrap(err, "create signing key %s: tenant %s", k.ID, r.tenant)
		}
		return conflictf("create signing key %s: id taken", k.ID)
	}
	return nil
}

func (r signingKeys) List(ctx context.Context, now time.Time) ([]*ciam.SigningKey, error) {
	rows, err := r.rows(ctx, qSigningKeyList, string(r.tenant), micros(now))
	if err != nil {
		return nil, r.db.wrap(err, "list signing keys")
	}
	defer rows.Close()
	var out []*ciam.SigningKey
	for rows.Next() {
		k, err := scanSigningKey(rows)
		if err != nil {
			return nil, r.db.wrap(err, "list signing keys")
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "list signing keys")
	}
	return out, nil
}

func (r signingKeys) Retire(ctx context.Context, id string, retired, expires time.Time) error {
	res, err := r.exec(ctx, qSigningKeyRetire, micros(retired), nullMicros(expires), string(r.tenant), id)
	if err != nil {
		return r.db.wrap(err, "retire signing key %s", id)
	}
	n, err := r.rowsAffected(res, "retire signing key %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("retire signing key %s: no such unretired key", id)
	}
	return nil
}

func (r signingKeys) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	res, err := r.exec(ctx, qSigningKeyDeleteExpired, string(r.tenant), micros(now))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired signing keys")
	}
	n, err := r.rowsAffected(res, "delete expired signing keys")
	return int(n), err
}

func scanSigningKey(s scanner) (*ciam.SigningKey, error) {
	var (
		k                ciam.SigningKey
		created, active  int64
		retired, expires sql.NullInt64
	)
	err := s.Scan(&k.TenantID, &k.ID, &k.Alg, &k.PublicJWK, &k.PrivateSealed, &created, &active, &retired, &expires)
	if err != nil {
		return nil, err
	}
	k.CreatedAt, k.ActiveAt = fromMicros(created), fromMicros(active)
	k.RetiredAt, k.ExpiresAt = fromNullMicros(retired), fromNullMicros(expires)
	return &k, nil
}

var _ store.SigningKeys = signingKeys{}
