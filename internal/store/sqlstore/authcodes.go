package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const authCodeColumns = `tenant_id, hash, client_id, user_id, session_id, redirect_uri, scopes, nonce,
	code_challenge, auth_time, acr, amr, created_at, expires_at, consumed_at`

var (
	// The SELECT from users inserts nothing for a user or a client outside
	// the tenant, so no foreign-key error aborts the transaction.
	qAuthCodeInsert = newQuery(`INSERT INTO auth_codes (` + authCodeColumns + `)
		SELECT tenant_id, ?, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users
		WHERE tenant_id = ? AND id = ? AND EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)
		ON CONFLICT DO NOTHING`)
	qAuthCodeGet = newQuery(`SELECT ` + authCodeColumns + ` FROM auth_codes WHERE tenant_id = ? AND hash = ?`)
	// Consume is the one conditional update that makes a code single-use:
	// of racing redeemers, on one node or several, exactly one changes the row.
	qAuthCodeConsume = newQuery(`UPDATE auth_codes SET consumed_at = ?
		WHERE tenant_id = ? AND hash = ? AND consumed_at IS NULL`)
	qAuthCodeExists        = newQuery(`SELECT 1 FROM auth_codes WHERE tenant_id = ? AND hash = ?`)
	qAuthCodeDeleteExpired = newQuery(`DELETE FROM auth_codes WHERE tenant_id = ? AND expires_at < ?`)
)

// authCodes holds authorization codes by the SHA-256 of the code.
type authCodes struct{ *tx }

func (r authCodes) Create(ctx context.Context, c *ciam.AuthCode) error {
	if !r.checkTenant(c.TenantID) {
		return r.wrongTenant("authorization code", c.TenantID)
	}
	c.TenantID = r.tenant
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.ConsumedAt = utc(c.AuthTime), utc(c.CreatedAt), utc(c.ExpiresAt), utc(c.ConsumedAt)
	// The redirect URI, nonce, challenge and scopes come from the authorization request.
	c.RedirectURI, c.Nonce, c.CodeChallenge, c.ACR = cleanText(c.RedirectURI), cleanText(c.Nonce), cleanText(c.CodeChallenge), cleanText(c.ACR)
	cleanStrings(c.Scopes)
	cleanStrings(c.AMR)
	scopes, err := encodeStrings(c.Scopes)
	if err != nil {
		return err
	}
	amr, err := encodeStrings(c.AMR)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, qAuthCodeInsert,
		c.Hash, string(c.ClientID), nullString(string(c.SessionID)), c.RedirectURI, scopes, c.Nonce,
		c.CodeChallenge, micros(c.AuthTime), c.ACR, amr, micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.ConsumedAt),
		string(r.tenant), string(c.UserID), string(r.tenant), string(c.ClientID))
	if err != nil {
		return r.db.wrap(err, "create authorization code")
	}
	n, err := r.rowsAffected(res, "create authorization code")
	if err != nil {
		return err
	}
	if n == 0 {
		return r.insertMissed(ctx, "create authorization code", c.UserID, c.ClientID)
	}
	return nil
}

func (r authCodes) Get(ctx context.Context, hash []byte) (*ciam.AuthCode, error) {
	c, err := scanAuthCode(r.row(ctx, qAuthCodeGet, string(r.tenant), hash))
	if err != nil {
		return nil, r.db.wrap(err, "authorization code") // the hash is a secret's: not in errors
	}
	return c, nil
}

func (r authCodes) Consume(ctx context.Context, hash []byte, at time.Time) error {
	res, err := r.exec(ctx, qAuthCodeConsume, micros(at), string(r.tenant), hash)
	if err != nil {
		return r.db.wrap(err, "consume authorization code")
	}
	n, err := r.rowsAffected(res, "consume authorization code")
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qAuthCodeExists, string(r.tenant), hash).Scan(&one); err != nil {
			return r.db.wrap(err, "consume authorization code")
		}
		return conflictf("consume authorization code: already redeemed")
	}
	return nil
}

func (r authCodes) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := r.exec(ctx, qAuthCodeDeleteExpired, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete expired authorization codes")
	}
	n, err := r.rowsAffected(res, "delete expired authorization codes")
	return int(n), err
}

func scanAuthCode(s scanner) (*ciam.AuthCode, error) {
	var (
		c                      ciam.AuthCode
		session                sql.NullString
		scopes, amr            string
		auth, created, expires int64
		consumed               sql.NullInt64
	)
	err := s.Scan(&c.TenantID, &c.Hash, &c.ClientID, &c.UserID, &session, &c.RedirectURI, &scopes, &c.Nonce,
		&c.CodeChallenge, &auth, &c.ACR, &amr, &created, &expires, &consumed)
	if err != nil {
		return nil, err
	}
	c.SessionID = ciam.SessionID(session.String)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.ConsumedAt = fromMicros(auth), fromMicros(created), fromMicros(expires), fromNullMicros(consumed)
	if c.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	if c.AMR, err = decodeStrings(amr); err != nil {
		return nil, err
	}
	return &c, nil
}

var _ store.AuthCodes = authCodes{}
