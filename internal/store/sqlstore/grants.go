package sqlstore

import (
	"context"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const grantColumns = `tenant_id, user_id, client_id, scopes, created_at, updated_at`

var (
	// Put writes nothing for a user or a client outside the tenant, and
	// keeps the created_at of a grant it replaces.
	qGrantPut = newQuery(`INSERT INTO grants (` + grantColumns + `)
		SELECT tenant_id, id, ?, ?, ?, ? FROM users
		WHERE tenant_id = ? AND id = ? AND EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)
		ON CONFLICT (tenant_id, user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at
		RETURNING created_at`)
	qGrantGet = newQuery(`SELECT ` + grantColumns + ` FROM grants
		WHERE tenant_id = ? AND user_id = ? AND client_id = ?`)
	qGrantListByUser = newQuery(`SELECT ` + grantColumns + ` FROM grants
		WHERE tenant_id = ? AND user_id = ? ORDER BY client_id`)
	qGrantDelete = newQuery(`DELETE FROM grants WHERE tenant_id = ? AND user_id = ? AND client_id = ?`)
)

// grants holds users' consents to clients, one row per user and client.
type grants struct{ *tx }

func (r grants) Get(ctx context.Context, user ciam.UserID, client ciam.ClientID) (*ciam.Grant, error) {
	g, err := scanGrant(r.row(ctx, qGrantGet, string(r.tenant), string(user), string(client)))
	if err != nil {
		return nil, r.db.wrap(err, "grant of user %s to client %s", user, client)
	}
	return g, nil
}

// Put creates or replaces g. Replacing keeps the stored CreatedAt, which
// Put copies into g.
func (r grants) Put(ctx context.Context, g *ciam.Grant) error {
	if !r.checkTenant(g.TenantID) {
		return r.wrongTenant("grant", g.TenantID)
	}
	g.TenantID = r.tenant
	g.CreatedAt, g.UpdatedAt = utc(g.CreatedAt), utc(g.UpdatedAt)
	cleanStrings(g.Scopes)
	scopes, err := encodeStrings(g.Scopes)
	if err != nil {
		return err
	}
	var created int64
	err = r.row(ctx, qGrantPut, string(g.ClientID), scopes, micros(g.CreatedAt), micros(g.UpdatedAt),
		string(r.tenant), string(g.UserID), string(r.tenant), string(g.ClientID)).Scan(&created)
	if err != nil {
		return r.db.wrap(err, "put grant of user %s to client %s", g.UserID, g.ClientID)
	}
	g.CreatedAt = fromMicros(created)
	return nil
}

func (r grants) ListByUser(ctx context.Context, user ciam.UserID) ([]*ciam.Grant, error) {
	rows, err := r.rows(ctx, qGrantListByUser, string(r.tenant), string(user))
	if err != nil {
		return nil, r.db.wrap(err, "grants of user %s", user)
	}
	defer rows.Close()
	var out []*ciam.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, r.db.wrap(err, "grants of user %s", user)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "grants of user %s", user)
	}
	return out, nil
}

func (r grants) Delete(ctx context.Context, user ciam.UserID, client ciam.ClientID) error {
	res, err := r.exec(ctx, qGrantDelete, string(r.tenant), string(user), string(client))
	if err != nil {
		return r.db.wrap(err, "delete grant of user %s to client %s", user, client)
	}
	n, err := r.rowsAffected(res, "delete grant of user %s to client %s", user, client)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("delete grant of user %s to client %s", user, client)
	}
	return nil
}

func scanGrant(s scanner) (*ciam.Grant, error) {
	var (
		g                ciam.Grant
		scopes           string
		created, updated int64
	)
	if err := s.Scan(&g.TenantID, &g.UserID, &g.ClientID, &scopes, &created, &updated); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	if g.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	return &g, nil
}

var _ store.Grants = grants{}
