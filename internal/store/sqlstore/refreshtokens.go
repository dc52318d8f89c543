package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const refreshTokenColumns = `tenant_id, id, hash, family_id, client_id, user_id, session_id, scopes,
	auth_time, acr, amr, created_at, idle_expires_at, expires_at, revoked_at`

var (
	// The SELECT from users inserts nothing for a user or a client outside the tenant.
	qRefreshInsert = newQuery(`INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
		SELECT tenant_id, ?, ?, ?, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users
		WHERE tenant_id = ? AND id = ? AND EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)
		ON CONFLICT DO NOTHING`)
	qRefreshByHash = newQuery(`SELECT ` + refreshTokenColumns + ` FROM refresh_tokens WHERE tenant_id = ? AND hash = ?`)
	// Rotate is the one conditional update that makes a token single-use:
	// the row moves from the presented hash to the next one, so of racing
	// rotations exactly one still finds the presented hash.
	qRefreshRotate = newQuery(`UPDATE refresh_tokens SET hash = ?, created_at = ?, idle_expires_at = ?
		WHERE tenant_id = ? AND id = ? AND hash = ? AND revoked_at IS NULL`)
	qRefreshSpend = newQuery(`INSERT INTO refresh_spent (tenant_id, hash, family_id, client_id, spent_at, expires_at)
		SELECT tenant_id, ?, family_id, client_id, ?, expires_at FROM refresh_tokens WHERE tenant_id = ? AND id = ?`)
	qRefreshSpent              = newQuery(`SELECT family_id, client_id FROM refresh_spent WHERE tenant_id = ? AND hash = ?`)
	qRefreshSpentDeleteExpired = newQuery(`DELETE FROM refresh_spent WHERE tenant_id = ? AND expires_at < ?`)
	qRefreshExists             = newQuery(`SELECT 1 FROM refresh_tokens WHERE tenant_id = ? AND id = ?`)
	qRefreshRevokeFamily       = newQuery(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND family_id = ? AND revoked_at IS NULL`)
	qRefreshRevokeGrant = newQuery(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND user_id = ? AND client_id = ? AND revoked_at IS NULL`)
	qRefreshRevokeSession = newQuery(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND session_id = ? AND revoked_at IS NULL`)
	qRefreshRevokeUser = newQuery(`UPDATE refresh_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL
		AND (? = '' OR session_id IS NULL OR session_id <> ?)`)
	qRefreshFamilyRevoked = newQuery(`SELECT 1 FROM refresh_tokens
		WHERE tenant_id = ? AND family_id = ? AND revoked_at IS NOT NULL LIMIT 1`)
	qRefreshAccessState = newQuery(`SELECT
		EXISTS (SELECT 1 FROM refresh_tokens WHERE tenant_id = ? AND family_id = ? AND revoked_at IS NOT NULL),
		COALESCE((SELECT status FROM users WHERE tenant_id = ? AND id = ?), ''),
		EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)`)
	// With a user: the user's row and the two flags in one statement.
	qRefreshAccessUser = newQuery(`SELECT ` + userColumns + `,
		EXISTS (SELECT 1 FROM refresh_tokens WHERE tenant_id = ? AND family_id = ? AND revoked_at IS NOT NULL),
		EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)
		FROM users WHERE tenant_id = ? AND id = ?`)
	qRefreshDeleteExpired = newQuery(`DELETE FROM refresh_tokens WHERE tenant_id = ? AND expires_at < ?`)
)

// refreshTokens holds rotating refresh tokens by id and by the SHA-256 of
// the token. A token without a browser session has NULL session_id, so
// RevokeSession("") matches nothing.
type refreshTokens struct{ *tx }

func (r refreshTokens) Create(ctx context.Context, t *ciam.RefreshToken) error {
	if !r.checkTenant(t.TenantID) {
		return r.wrongTenant("refresh token", t.TenantID)
	}
	t.TenantID = r.tenant
	t.AuthTime, t.CreatedAt, t.IdleExpiresAt = utc(t.AuthTime), utc(t.CreatedAt), utc(t.IdleExpiresAt)
	t.ExpiresAt, t.RevokedAt = utc(t.ExpiresAt), utc(t.RevokedAt)
	t.ACR = cleanText(t.ACR)
	cleanStrings(t.Scopes)
	cleanStrings(t.AMR)
	scopes, err := encodeStrings(t.Scopes)
	if err != nil {
		return err
	}
	amr, err := encodeStrings(t.AMR)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, qRefreshInsert,
		t.ID, t.Hash, t.FamilyID, string(t.ClientID), nullString(string(t.SessionID)), scopes,
		micros(t.AuthTime), t.ACR, amr, micros(t.CreatedAt), micros(t.IdleExpiresAt), micros(t.ExpiresAt),
		nullMicros(t.RevokedAt),
		string(r.tenant), string(t.UserID), string(r.tenant), string(t.ClientID))
	if err != nil {
		return r.db.wrap(err, "create refresh token %s", t.ID)
	}
	n, err := r.rowsAffected(res, "create refresh token %s", t.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return r.insertMissed(ctx, "create refresh token "+t.ID, t.UserID, t.ClientID)
	}
	return nil
}

func (r refreshTokens) ByHash(ctx context.Context, hash []byte) (*ciam.RefreshToken, error) {
	t, err := scanRefreshToken(r.row(ctx, qRefreshByHash, string(r.tenant), hash))
	if err != nil {
		return nil, r.db.wrap(err, "refresh token") // the hash is a secret's: not in errors
	}
	return t, nil
}

func (r refreshTokens) Rotate(ctx context.Context, id string, oldHash, newHash []byte, at, idleExpires time.Time) error {
	res, err := r.execUpdate(ctx, qRefreshRotate, newHash, micros(at), micros(idleExpires), string(r.tenant), id, oldHash)
	if err != nil {
		return r.db.wrap(err, "rotate refresh token %s", id)
	}
	n, err := r.rowsAffected(res, "rotate refresh token %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qRefreshExists, string(r.tenant), id).Scan(&one); err != nil {
			return r.db.wrap(err, "rotate refresh token %s", id)
		}
		return conflictf("rotate refresh token %s: rotated or revoked already", id)
	}
	if _, err := r.exec(ctx, qRefreshSpend, oldHash, micros(at), string(r.tenant), id); err != nil {
		return r.db.wrap(err, "rotate refresh token %s: remember the spent hash", id)
	}
	return nil
}

func (r refreshTokens) SpentFamily(ctx context.Context, hash []byte) (string, ciam.ClientID, error) {
	var family, client string
	if err := r.row(ctx, qRefreshSpent, string(r.tenant), hash).Scan(&family, &client); err != nil {
		return "", "", r.db.wrap(err, "spent refresh token") // the hash is a secret's: not in errors
	}
	return family, ciam.ClientID(client), nil
}

// revoke runs one of the Revoke* updates, whose first two arguments are
// the time and the tenant.
func (r refreshTokens) revoke(ctx context.Context, q query, what string, at time.Time, args ...any) (int, error) {
	res, err := r.exec(ctx, q, append([]any{micros(at), string(r.tenant)}, args...)...)
	if err != nil {
		return 0, r.db.wrap(err, "%s", what)
	}
	n, err := r.rowsAffected(res, "%s", what)
	return int(n), err
}

func (r refreshTokens) RevokeFamily(ctx context.Context, family string, at time.Time) (int, error) {
	return r.revoke(ctx, qRefreshRevokeFamily, "revoke refresh token family "+family, at, family)
}

func (r refreshTokens) RevokeGrant(ctx context.Context, user ciam.UserID, client ciam.ClientID, at time.Time) (int, error) {
	return r.revoke(ctx, qRefreshRevokeGrant, "revoke refresh tokens of user "+string(user)+" for client "+string(client),
		at, string(user), string(client))
}

func (r refreshTokens) RevokeSession(ctx context.Context, session ciam.SessionID, at time.Time) (int, error) {
	if session == "" {
		return 0, nil // tokens without a session are not one session's
	}
	return r.revoke(ctx, qRefreshRevokeSession, "revoke refresh tokens of session "+string(session), at, string(session))
}

func (r refreshTokens) RevokeUser(ctx context.Context, user ciam.UserID, keep ciam.SessionID, at time.Time) (int, error) {
	return r.revoke(ctx, qRefreshRevokeUser, "revoke refresh tokens of user "+string(user), at, string(user), string(keep), string(keep))
}

func (r refreshTokens) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	var one int
	err := r.row(ctx, qRefreshFamilyRevoked, string(r.tenant), family).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, r.db.wrap(err, "refresh token family %s", family)
	}
	return true, nil
}

func (r refreshTokens) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	if _, err := r.exec(ctx, qRefreshSpentDeleteExpired, string(r.tenant), micros(cutoff)); err != nil {
		return 0, r.db.wrap(err, "delete expired spent refresh tokens")
	}
	res, err := r.exec(ctx, qRefreshDeleteExpired, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired refresh tokens")
	}
	n, err := r.rowsAffected(res, "delete expired refresh tokens")
	return int(n), err
}

func scanRefreshToken(s scanner) (*ciam.RefreshToken, error) {
	var (
		t                            ciam.RefreshToken
		session                      sql.NullString
		scopes, amr                  string
		auth, created, idle, expires int64
		revoked                      sql.NullInt64
	)
	err := s.Scan(&t.TenantID, &t.ID, &t.Hash, &t.FamilyID, &t.ClientID, &t.UserID, &session, &scopes,
		&auth, &t.ACR, &amr, &created, &idle, &expires, &revoked)
	if err != nil {
		return nil, err
	}
	t.SessionID = ciam.SessionID(session.String)
	t.AuthTime, t.CreatedAt, t.IdleExpiresAt, t.ExpiresAt = fromMicros(auth), fromMicros(created), fromMicros(idle), fromMicros(expires)
	t.RevokedAt = fromNullMicros(revoked)
	if t.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	if t.AMR, err = decodeStrings(amr); err != nil {
		return nil, err
	}
	return &t, nil
}

var _ store.RefreshTokens = refreshTokens{}

func (r refreshTokens) AccessState(ctx context.Context, family string, user ciam.UserID, client ciam.ClientID) (store.AccessState, error) {
	var st store.AccessState
	var status string
	t := string(r.tenant)
	if user != "" {
		row := r.row(ctx, qRefreshAccessUser, t, family, t, string(client), t, string(user))
		u, err := scanUser(withExtra{row, []any{&st.FamilyRevoked, &st.ClientExists}})
		switch {
		case err == nil:
			st.User, st.UserStatus = u, u.Status
			return st, nil
		case !errors.Is(err, sql.ErrNoRows):
			return st, r.db.wrap(err, "access token state")
		}
		// No such user: the flags alone.
	}
	err := r.row(ctx, qRefreshAccessState, t, family, t, string(user), t, string(client)).Scan(&st.FamilyRevoked, &status, &st.ClientExists)
	if err != nil {
		return st, r.db.wrap(err, "access token state")
	}
	st.UserStatus = ciam.UserStatus(status)
	return st, nil
}

// withExtra scans a row whose leading columns a scan function knows and
// whose trailing columns go to extra.
type withExtra struct {
	row   *sql.Row
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }
