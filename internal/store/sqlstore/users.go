package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const userColumns = `tenant_id, id, email, email_verified, name, locale, status,
	created_at, updated_at, last_login_at, version, pii_key`

var (
	// The SELECT from tenants inserts nothing when the tenant does not exist,
	// so no foreign-key error aborts the transaction.
	qUserInsert = newQuery(`INSERT INTO users (` + userColumns + `)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT DO NOTHING`)
	qTenantExists = newQuery(`SELECT 1 FROM tenants WHERE id = ?`)
	qUserGet      = newQuery(`SELECT ` + userColumns + ` FROM users WHERE tenant_id = ? AND id = ?`)
	qUserByEmail  = newQuery(`SELECT ` + userColumns + ` FROM users WHERE tenant_id = ? AND email = ?`)
	qUserList     = newQuery(`SELECT ` + userColumns + ` FROM users
		WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?`)
	qUserListStatus = newQuery(`SELECT ` + userColumns + ` FROM users
		WHERE tenant_id = ? AND id > ? AND status = ? ORDER BY id LIMIT ?`)
	// last_login_at is RecordLogin's: Update leaves it alone so that a stale
	// copy of the user cannot move it back.
	qUserUpdate = newQuery(`UPDATE users SET email = ?, email_verified = ?, name = ?, locale = ?,
		status = ?, updated_at = ?, pii_key = ?, version = version + 1
		WHERE tenant_id = ? AND id = ? AND version = ?`)
	qUserVersion     = newQuery(`SELECT version FROM users WHERE tenant_id = ? AND id = ?`)
	qUserRecordLogin = newQuery(`UPDATE users SET last_login_at = ? WHERE tenant_id = ? AND id = ?`)
)

// users is the tenant's users. An empty email is stored as NULL, so any
// number of users may have none.
type users struct{ *tx }

func (r users) Create(ctx context.Context, u *ciam.User) error {
	if !r.checkTenant(u.TenantID) {
		return r.wrongTenant("user", u.TenantID)
	}
	u.TenantID = r.tenant
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = utc(u.CreatedAt), utc(u.UpdatedAt), utc(u.LastLoginAt)
	u.Version = 1
	res, err := r.exec(ctx, qUserInsert,
		string(u.TenantID), string(u.ID), nullString(u.Email), u.EmailVerified, u.Name, u.Locale, string(u.Status),
		micros(u.CreatedAt), micros(u.UpdatedAt), nullMicros(u.LastLoginAt), u.Version, nullBytes(u.PIIKey),
		string(r.tenant))
	if err != nil {
		return r.db.wrap(err, "create user %s", u.ID)
	}
	n, err := r.rowsAffected(res, "create user %s", u.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
			return r.db.wrap(err, "create user %s: tenant %s", u.ID, r.tenant)
		}
		return conflictf("create user %s: id or email taken", u.ID)
	}
	return nil
}

func (r users) Get(ctx context.Context, id ciam.UserID) (*ciam.User, error) {
	u, err := scanUser(r.row(ctx, qUserGet, string(r.tenant), string(id)))
	if err != nil {
		return nil, r.db.wrap(err, "user %s", id)
	}
	return u, nil
}

func (r users) ByEmail(ctx context.Context, email string) (*ciam.User, error) {
	if email == "" {
		return nil, notFoundf("user by email")
	}
	u, err := scanUser(r.row(ctx, qUserByEmail, string(r.tenant), email))
	if err != nil {
		return nil, r.db.wrap(err, "user by email") // the address is personal data: not in errors
	}
	return u, nil
}

func (r users) List(ctx context.Context, f store.UserFilter) ([]*ciam.User, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if f.Status == "" {
		rows, err = r.rows(ctx, qUserList, string(r.tenant), string(f.After), limit(f.Limit))
	} else {
		rows, err = r.rows(ctx, qUserListStatus, string(r.tenant), string(f.After), string(f.Status), limit(f.Limit))
	}
	if err != nil {
		return nil, r.db.wrap(err, "list users")
	}
	defer rows.Close()
	var out []*ciam.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, r.db.wrap(err, "list users")
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "list users")
	}
	return out, nil
}

func (r users) Update(ctx context.Context, u *ciam.User) error {
	if !r.checkTenant(u.TenantID) {
		return notFoundf("update user %s", u.ID)
	}
	updated := utc(u.UpdatedAt)
	res, err := r.execUpdate(ctx, qUserUpdate,
		nullString(u.Email), u.EmailVerified, u.Name, u.Locale, string(u.Status), micros(updated), nullBytes(u.PIIKey),
		string(r.tenant), string(u.ID), u.Version)
	if err != nil {
		return r.db.wrap(err, "update user %s", u.ID)
	}
	n, err := r.rowsAffected(res, "update user %s", u.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var v int64
		if err := r.row(ctx, qUserVersion, string(r.tenant), string(u.ID)).Scan(&v); err != nil {
			return r.db.wrap(err, "update user %s", u.ID)
		}
		return conflictf("update user %s: version %d is stale (stored %d)", u.ID, u.Version, v)
	}
	u.TenantID = r.tenant
	u.UpdatedAt = updated
	u.Version++
	return nil
}

func (r users) RecordLogin(ctx context.Context, id ciam.UserID, at time.Time) error {
	res, err := r.exec(ctx, qUserRecordLogin, nullMicros(at), string(r.tenant), string(id))
	if err != nil {
		return r.db.wrap(err, "record login of user %s", id)
	}
	n, err := r.rowsAffected(res, "record login of user %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("record login of user %s", id)
	}
	return nil
}

func scanUser(s scanner) (*ciam.User, error) {
	var (
		u                ciam.User
		email            sql.NullString
		status           string
		created, updated int64
		lastLogin        sql.NullInt64
		piiKey           []byte
	)
	err := s.Scan(&u.TenantID, &u.ID, &email, &u.EmailVerified, &u.Name, &u.Locale, &status,
		&created, &updated, &lastLogin, &u.Version, &piiKey)
	if err != nil {
		return nil, err
	}
	u.Email = email.String
	u.Status = ciam.UserStatus(status)
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = fromMicros(created), fromMicros(updated), fromNullMicros(lastLogin)
	u.PIIKey = bytesOrNil(piiKey)
	return &u, nil
}

var _ store.Users = users{}
