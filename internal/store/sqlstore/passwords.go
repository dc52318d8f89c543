package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

var (
	qPasswordGet = newQuery(`SELECT hash FROM passwords WHERE tenant_id = ? AND user_id = ?`)
	// The SELECT from users writes nothing for a user outside the tenant.
	qPasswordSet = newQuery(`INSERT INTO passwords (tenant_id, user_id, hash, updated_at)
		SELECT tenant_id, id, ?, ? FROM users WHERE tenant_id = ? AND id = ?
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`)
)

// passwords holds one PHC-format hash per user.
type passwords struct{ *tx }

func (r passwords) Get(ctx context.Context, user ciam.UserID) (string, error) {
	var hash string
	if err := r.row(ctx, qPasswordGet, string(r.tenant), string(user)).Scan(&hash); err != nil {
		return "", r.db.wrap(err, "password of user %s", user)
	}
	return hash, nil
}

func (r passwords) Set(ctx context.Context, user ciam.UserID, hash string, at time.Time) error {
	res, err := r.exec(ctx, qPasswordSet, hash, micros(at), string(r.tenant), string(user))
	if err != nil {
		return r.db.wrap(err, "set password of user %s", user)
	}
	n, err := r.rowsAffected(res, "set password of user %s", user)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("set password: user %s", user)
	}
	return nil
}

var _ store.Passwords = passwords{}
