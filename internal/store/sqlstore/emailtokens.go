package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const emailTokenColumns = `tenant_id, id, user_id, purpose, email, link_hash, code_hash, browser_hash,
	data, attempts, created_at, expires_at, used_at`

var (
	// The SELECT from users inserts nothing for a user outside the tenant.
	qEmailTokenInsert = newQuery(`INSERT INTO email_tokens (` + emailTokenColumns + `)
		SELECT tenant_id, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users WHERE tenant_id = ? AND id = ?
		ON CONFLICT DO NOTHING`)
	qEmailTokenSupersede = newQuery(`UPDATE email_tokens SET used_at = ?
		WHERE tenant_id = ? AND user_id = ? AND purpose = ? AND used_at IS NULL`)
	qEmailTokenGet    = newQuery(`SELECT ` + emailTokenColumns + ` FROM email_tokens WHERE tenant_id = ? AND id = ?`)
	qEmailTokenByLink = newQuery(`SELECT ` + emailTokenColumns + ` FROM email_tokens WHERE tenant_id = ? AND link_hash = ?`)
	qEmailTokenLatest = newQuery(`SELECT ` + emailTokenColumns + ` FROM email_tokens
		WHERE tenant_id = ? AND user_id = ? AND purpose = ? ORDER BY created_at DESC, id DESC LIMIT 1`)
	qEmailTokenCount = newQuery(`SELECT COUNT(*) FROM email_tokens
		WHERE tenant_id = ? AND user_id = ? AND purpose = ? AND created_at >= ?`)
	// Consume and Attempt are single conditional updates: racing callers on
	// one node or several see exactly the updates the condition allows.
	qEmailTokenConsume = newQuery(`UPDATE email_tokens SET used_at = ?
		WHERE tenant_id = ? AND id = ? AND used_at IS NULL AND expires_at > ?`)
	qEmailTokenAttempt = newQuery(`UPDATE email_tokens SET attempts = attempts + 1
		WHERE tenant_id = ? AND id = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?`)
	qEmailTokenExists = newQuery(`SELECT 1 FROM email_tokens WHERE tenant_id = ? AND id = ?`)
	qEmailTokenDelete = newQuery(`DELETE FROM email_tokens WHERE tenant_id = ? AND expires_at < ?`)
)

// emailTokens holds single-use mail tokens by id and by link hash.
type emailTokens struct{ *tx }

var _ store.EmailTokens = emailTokens{}

func (r emailTokens) Create(ctx context.Context, t *ciam.EmailToken) error {
	if !r.checkTenant(t.TenantID) {
		return r.wrongTenant("email token", t.TenantID)
	}
	t.TenantID = r.tenant
	t.CreatedAt, t.ExpiresAt, t.UsedAt = utc(t.CreatedAt), utc(t.ExpiresAt), utc(t.UsedAt)
	t.Email, t.Data = cleanText(t.Email), cleanText(t.Data)
	if _, err := r.exec(ctx, qEmailTokenSupersede, micros(t.CreatedAt), string(r.tenant), string(t.UserID), t.Purpose); err != nil {
		return r.db.wrap(err, "supersede %s tokens", t.Purpose)
	}
	res, err := r.execUpdate(ctx, qEmailTokenInsert,
		t.ID, t.Purpose, t.Email, t.LinkHash, nullBytes(t.CodeHash), nullBytes(t.BrowserHash),
		t.Data, t.Attempts, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt),
		string(r.tenant), string(t.UserID))
	if err != nil {
		return r.db.wrap(err, "create %s token", t.Purpose)
	}
	n, err := r.rowsAffected(res, "create %s token", t.Purpose)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qUserExists, string(r.tenant), string(t.UserID)).Scan(&one); err != nil {
			return r.db.wrap(err, "create %s token: user %s", t.Purpose, t.UserID)
		}
		return conflictf("create %s token: id or link taken", t.Purpose)
	}
	return nil
}

func (r emailTokens) Get(ctx context.Context, id string) (*ciam.EmailToken, error) {
	t, err := scanEmailToken(r.row(ctx, qEmailTokenGet, string(r.tenant), id))
	if err != nil {
		return nil, r.db.wrap(err, "email token %s", id)
	}
	return t, nil
}

func (r emailTokens) ByLinkHash(ctx context.Context, hash []byte) (*ciam.EmailToken, error) {
	t, err := scanEmailToken(r.row(ctx, qEmailTokenByLink, string(r.tenant), hash))
	if err != nil {
		return nil, r.db.wrap(err, "email token by link") // the hash is a secret's: not in errors
	}
	return t, nil
}

func (r emailTokens) Latest(ctx context.Context, user ciam.UserID, purpose string) (*ciam.EmailToken, error) {
	t, err := scanEmailToken(r.row(ctx, qEmailTokenLatest, string(r.tenant), string(user), purpose))
	if err != nil {
		return nil, r.db.wrap(err, "latest %s token of %s", purpose, user)
	}
	return t, nil
}

func (r emailTokens) CountSince(ctx context.Context, user ciam.UserID, purpose string, since time.Time) (int, error) {
	var n int
	if err := r.row(ctx, qEmailTokenCount, string(r.tenant), string(user), purpose, micros(since)).Scan(&n); err != nil {
		return 0, r.db.wrap(err, "count %s tokens of %s", purpose, user)
	}
	return n, nil
}

// changed explains a conditional update by id that changed no row.
func (r emailTokens) changed(ctx context.Context, res sql.Result, what, id string) error {
	n, err := r.rowsAffected(res, "%s email token %s", what, id)
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := r.row(ctx, qEmailTokenExists, string(r.tenant), id).Scan(&one); err != nil {
		return r.db.wrap(err, "%s email token %s", what, id)
	}
	return conflictf("%s email token %s: not live", what, id)
}

func (r emailTokens) Consume(ctx context.Context, id string, at time.Time) error {
	res, err := r.exec(ctx, qEmailTokenConsume, micros(at), string(r.tenant), id, micros(at))
	if err != nil {
		return r.db.wrap(err, "consume email token %s", id)
	}
	return r.changed(ctx, res, "consume", id)
}

func (r emailTokens) Attempt(ctx context.Context, id string, max int, at time.Time) error {
	res, err := r.exec(ctx, qEmailTokenAttempt, string(r.tenant), id, micros(at), max)
	if err != nil {
		return r.db.wrap(err, "attempt email token %s", id)
	}
	return r.changed(ctx, res, "attempt", id)
}

func (r emailTokens) Revoke(ctx context.Context, user ciam.UserID, purposes []string, at time.Time) (int, error) {
	total := 0
	for _, p := range purposes {
		res, err := r.exec(ctx, qEmailTokenSupersede, micros(at), string(r.tenant), string(user), p)
		if err != nil {
			return 0, r.db.wrap(err, "revoke %s tokens", p)
		}
		n, err := r.rowsAffected(res, "revoke %s tokens", p)
		if err != nil {
			return 0, err
		}
		total += int(n)
	}
	return total, nil
}

func (r emailTokens) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := r.exec(ctx, qEmailTokenDelete, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired email tokens")
	}
	n, err := r.rowsAffected(res, "delete expired email tokens")
	return int(n), err
}

func scanEmailToken(s scanner) (*ciam.EmailToken, error) {
	var (
		t                ciam.EmailToken
		created, expires int64
		used             sql.NullInt64
	)
	err := s.Scan(&t.TenantID, &t.ID, &t.UserID, &t.Purpose, &t.Email, &t.LinkHash, &t.CodeHash, &t.BrowserHash,
		&t.Data, &t.Attempts, &created, &expires, &used)
	if err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	if len(t.CodeHash) == 0 {
		t.CodeHash = nil
	}
	if len(t.BrowserHash) == 0 {
		t.BrowserHash = nil
	}
	return &t, nil
}
