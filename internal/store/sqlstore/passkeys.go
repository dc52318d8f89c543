package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const passkeyColumns = `tenant_id, id, user_id, credential_id, public_key, attestation_type, aaguid,
	sign_count, transports, user_verified, backup_eligible, backup_state, name, created_at, last_used_at`

var (
	// The SELECT from users inserts nothing for a user outside the tenant;
	// a taken id or credential id inserts nothing either.
	qPasskeyInsert = newQuery(`INSERT INTO passkeys (` + passkeyColumns + `)
		SELECT tenant_id, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users WHERE tenant_id = ? AND id = ?
		ON CONFLICT DO NOTHING`)
	qPasskeyByCredential = newQuery(`SELECT ` + passkeyColumns + ` FROM passkeys WHERE tenant_id = ? AND credential_id = ?`)
	qPasskeyListByUser   = newQuery(`SELECT ` + passkeyColumns + ` FROM passkeys
		WHERE tenant_id = ? AND user_id = ? ORDER BY created_at, id`)
	qPasskeyRename = newQuery(`UPDATE passkeys SET name = ? WHERE tenant_id = ? AND user_id = ? AND id = ?`)
	qPasskeyDelete = newQuery(`DELETE FROM passkeys WHERE tenant_id = ? AND user_id = ? AND id = ?`)
	// RecordUse is one conditional update on the counter: of assertions
	// racing from the same counter value exactly one moves it.
	qPasskeyRecordUse = newQuery(`UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ?
		WHERE tenant_id = ? AND id = ? AND sign_count = ?`)
	qPasskeyExists = newQuery(`SELECT 1 FROM passkeys WHERE tenant_id = ? AND id = ?`)
)

// passkeys holds WebAuthn credentials by id and by credential id. Byte
// columns are NOT NULL: an empty value is stored empty and reads back nil.
type passkeys struct{ *tx }

var _ store.Passkeys = passkeys{}

func (r passkeys) Create(ctx context.Context, p *ciam.Passkey) error {
	if !r.checkTenant(p.TenantID) {
		return r.wrongTenant("passkey", p.TenantID)
	}
	p.TenantID = r.tenant
	p.CreatedAt, p.LastUsedAt = utc(p.CreatedAt), utc(p.LastUsedAt)
	// The name is the user's; the attestation type and transports come
	// from the authenticator.
	p.Name, p.AttestationType = cleanText(p.Name), cleanText(p.AttestationType)
	cleanStrings(p.Transports)
	transports, err := encodeStrings(p.Transports)
	if err != nil {
		return err
	}
	res, err := r.execUpdate(ctx, qPasskeyInsert,
		p.ID, notNullBytes(p.CredentialID), notNullBytes(p.PublicKey), p.AttestationType, notNullBytes(p.AAGUID),
		int64(p.SignCount), transports, p.UserVerified, p.BackupEligible, p.BackupState, p.Name,
		micros(p.CreatedAt), nullMicros(p.LastUsedAt),
		string(r.tenant), string(p.UserID))
	if err != nil {
		return r.db.wrap(err, "create passkey %s", p.ID)
	}
	n, err := r.rowsAffected(res, "create passkey %s", p.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qUserExists, string(r.tenant), string(p.UserID)).Scan(&one); err != nil {
			return r.db.wrap(err, "create passkey %s: user %s", p.ID, p.UserID)
		}
		return conflictf("create passkey %s: id or credential id taken", p.ID)
	}
	return nil
}

func (r passkeys) ByCredentialID(ctx context.Context, credentialID []byte) (*ciam.Passkey, error) {
	p, err := scanPasskey(r.row(ctx, qPasskeyByCredential, string(r.tenant), notNullBytes(credentialID)))
	if err != nil {
		return nil, r.db.wrap(err, "passkey by credential id")
	}
	return p, nil
}

func (r passkeys) ListByUser(ctx context.Context, user ciam.UserID) ([]*ciam.Passkey, error) {
	rows, err := r.rows(ctx, qPasskeyListByUser, string(r.tenant), string(user))
	if err != nil {
		return nil, r.db.wrap(err, "passkeys of user %s", user)
	}
	defer rows.Close()
	var out []*ciam.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, r.db.wrap(err, "passkeys of user %s", user)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "passkeys of user %s", user)
	}
	return out, nil
}

func (r passkeys) Rename(ctx context.Context, user ciam.UserID, id, name string) error {
	res, err := r.exec(ctx, qPasskeyRename, cleanText(name), string(r.tenant), string(user), id)
	if err != nil {
		return r.db.wrap(err, "rename passkey %s", id)
	}
	n, err := r.rowsAffected(res, "rename passkey %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("rename passkey %s of user %s", id, user)
	}
	return nil
}

func (r passkeys) Delete(ctx context.Context, user ciam.UserID, id string) error {
	res, err := r.exec(ctx, qPasskeyDelete, string(r.tenant), string(user), id)
	if err != nil {
		return r.db.wrap(err, "delete passkey %s", id)
	}
	n, err := r.rowsAffected(res, "delete passkey %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("delete passkey %s of user %s", id, user)
	}
	return nil
}

func (r passkeys) RecordUse(ctx context.Context, id string, oldCount, newCount uint32, backupState bool, at time.Time) error {
	res, err := r.exec(ctx, qPasskeyRecordUse, int64(newCount), backupState, micros(at), string(r.tenant), id, int64(oldCount))
	if err != nil {
		return r.db.wrap(err, "record use of passkey %s", id)
	}
	n, err := r.rowsAffected(res, "record use of passkey %s", id)
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := r.row(ctx, qPasskeyExists, string(r.tenant), id).Scan(&one); err != nil {
		return r.db.wrap(err, "record use of passkey %s", id)
	}
	return conflictf("record use of passkey %s: counter moved from %d", id, oldCount)
}

func scanPasskey(s scanner) (*ciam.Passkey, error) {
	var (
		p          ciam.Passkey
		count      int64
		transports string
		created    int64
		used       sql.NullInt64
	)
	err := s.Scan(&p.TenantID, &p.ID, &p.UserID, &p.CredentialID, &p.PublicKey, &p.AttestationType, &p.AAGUID,
		&count, &transports, &p.UserVerified, &p.BackupEligible, &p.BackupState, &p.Name, &created, &used)
	if err != nil {
		return nil, err
	}
	p.SignCount = uint32(count)
	p.CreatedAt, p.LastUsedAt = fromMicros(created), fromNullMicros(used)
	p.CredentialID, p.PublicKey, p.AAGUID = bytesOrNil(p.CredentialID), bytesOrNil(p.PublicKey), bytesOrNil(p.AAGUID)
	if p.Transports, err = decodeStrings(transports); err != nil {
		return nil, err
	}
	return &p, nil
}

// notNullBytes stores a nil slice as an empty one, for NOT NULL byte
// columns (a nil []byte is NULL to the drivers).
func notNullBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
