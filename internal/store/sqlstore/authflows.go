package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const authFlowColumns = `tenant_id, id, kind, browser_hash, user_id, session_id, data, attempts,
	created_at, expires_at, used_at`

var (
	// A flow refers to no user or session row (its user may not be known
	// yet); the SELECT from tenants inserts nothing for an unknown tenant.
	qAuthFlowInsert = newQuery(`INSERT INTO auth_flows (` + authFlowColumns + `)
		SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT DO NOTHING`)
	qAuthFlowGet = newQuery(`SELECT ` + authFlowColumns + ` FROM auth_flows WHERE tenant_id = ? AND id = ?`)
	// Consume and Attempt are single conditional updates: racing callers on
	// one node or several see exactly the updates the condition allows.
	qAuthFlowConsume = newQuery(`UPDATE auth_flows SET used_at = ?
		WHERE tenant_id = ? AND id = ? AND used_at IS NULL AND expires_at > ?`)
	qAuthFlowAttempt = newQuery(`UPDATE auth_flows SET attempts = attempts + 1
		WHERE tenant_id = ? AND id = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?`)
	qAuthFlowExists = newQuery(`SELECT 1 FROM auth_flows WHERE tenant_id = ? AND id = ?`)
	qAuthFlowDelete = newQuery(`DELETE FROM auth_flows WHERE tenant_id = ? AND expires_at < ?`)
)

// authFlows holds short-lived authentication flows by id. An empty user or
// session id is stored as the empty string.
type authFlows struct{ *tx }

var _ store.AuthFlows = authFlows{}

func (r authFlows) Create(ctx context.Context, f *ciam.AuthFlow) error {
	if !r.checkTenant(f.TenantID) {
		return r.wrongTenant("authentication flow", f.TenantID)
	}
	f.TenantID = r.tenant
	f.CreatedAt, f.ExpiresAt, f.UsedAt = utc(f.CreatedAt), utc(f.ExpiresAt), utc(f.UsedAt)
	f.Kind, f.Data = cleanText(f.Kind), cleanText(f.Data)
	res, err := r.exec(ctx, qAuthFlowInsert,
		f.ID, f.Kind, notNullBytes(f.BrowserHash), string(f.UserID), string(f.SessionID), f.Data, f.Attempts,
		micros(f.CreatedAt), micros(f.ExpiresAt), nullMicros(f.UsedAt), string(r.tenant))
	if err != nil {
		return r.db.wrap(err, "create %s flow %s", f.Kind, f.ID)
	}
	n, err := r.rowsAffected(res, "create %s flow %s", f.Kind, f.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
			return r.db.wrap(err, "create %s flow %s: tenant %s", f.Kind, f.ID, r.tenant)
		}
		return conflictf("create %s flow %s: id taken", f.Kind, f.ID)
	}
	return nil
}

func (r authFlows) Get(ctx context.Context, id string) (*ciam.AuthFlow, error) {
	f, err := scanAuthFlow(r.row(ctx, qAuthFlowGet, string(r.tenant), id))
	if err != nil {
		return nil, r.db.wrap(err, "authentication flow %s", id)
	}
	return f, nil
}

// changed explains a conditional update by id that changed no row.
func (r authFlows) changed(ctx context.Context, res sql.Result, what, id string) error {
	n, err := r.rowsAffected(res, "%s authentication flow %s", what, id)
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := r.row(ctx, qAuthFlowExists, string(r.tenant), id).Scan(&one); err != nil {
		return r.db.wrap(err, "%s authentication flow %s", what, id)
	}
	return conflictf("%s authentication flow %s: not live", what, id)
}

func (r authFlows) Attempt(ctx context.Context, id string, max int, at time.Time) error {
	res, err := r.exec(ctx, qAuthFlowAttempt, string(r.tenant), id, micros(at), max)
	if err != nil {
		return r.db.wrap(err, "attempt authentication flow %s", id)
	}
	return r.changed(ctx, res, "attempt", id)
}

func (r authFlows) Consume(ctx context.Context, id string, at time.Time) error {
	res, err := r.exec(ctx, qAuthFlowConsume, micros(at), string(r.tenant), id, micros(at))
	if err != nil {
		return r.db.wrap(err, "consume authentication flow %s", id)
	}
	return r.changed(ctx, res, "consume", id)
}

func (r authFlows) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := r.exec(ctx, qAuthFlowDelete, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired authentication flows")
	}
	n, err := r.rowsAffected(res, "delete expired authentication flows")
	return int(n), err
}

func scanAuthFlow(s scanner) (*ciam.AuthFlow, error) {
	var (
		f                ciam.AuthFlow
		created, expires int64
		used             sql.NullInt64
	)
	err := s.Scan(&f.TenantID, &f.ID, &f.Kind, &f.BrowserHash, &f.UserID, &f.SessionID, &f.Data, &f.Attempts,
		&created, &expires, &used)
	if err != nil {
		return nil, err
	}
	f.CreatedAt, f.ExpiresAt, f.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	f.BrowserHash = bytesOrNil(f.BrowserHash)
	return &f, nil
}
