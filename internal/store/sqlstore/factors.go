package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const totpColumns = `tenant_id, user_id, secret, created_at, last_step`

var (
	qTOTPGet = newQuery(`SELECT ` + totpColumns + ` FROM totp_secrets WHERE tenant_id = ? AND user_id = ?`)
	// The SELECT from users writes nothing for a user outside the tenant.
	qTOTPPut = newQuery(`INSERT INTO totp_secrets (` + totpColumns + `)
		SELECT tenant_id, id, ?, ?, ? FROM users WHERE tenant_id = ? AND id = ?
		ON CONFLICT (tenant_id, user_id) DO UPDATE
		SET secret = excluded.secret, created_at = excluded.created_at, last_step = excluded.last_step`)
	qTOTPDelete = newQuery(`DELETE FROM totp_secrets WHERE tenant_id = ? AND user_id = ?`)
	// UseStep is one conditional update: of racing callers presenting codes
	// of the same step exactly one moves last_step, on one node or several.
	qTOTPUseStep = newQuery(`UPDATE totp_secrets SET last_step = ?
		WHERE tenant_id = ? AND user_id = ? AND last_step < ?`)
	qTOTPExists = newQuery(`SELECT 1 FROM totp_secrets WHERE tenant_id = ? AND user_id = ?`)
)

// totp holds one TOTP authenticator per user; the secret arrives sealed and
// is stored as it is.
type totp struct{ *tx }

var _ store.TOTP = totp{}

func (r totp) Get(ctx context.Context, user ciam.UserID) (*ciam.TOTPSecret, error) {
	var (
		s       ciam.TOTPSecret
		created int64
	)
	err := r.row(ctx, qTOTPGet, string(r.tenant), string(user)).Scan(&s.TenantID, &s.UserID, &s.Secret, &created, &s.LastStep)
	if err != nil {
		return nil, r.db.wrap(err, "TOTP authenticator of user %s", user)
	}
	s.CreatedAt = fromMicros(created)
	s.Secret = bytesOrNil(s.Secret)
	return &s, nil
}

// Put creates or replaces the user's authenticator, last step included;
// ErrNotFound if the user is not in the tenant.
func (r totp) Put(ctx context.Context, s *ciam.TOTPSecret) error {
	if !r.checkTenant(s.TenantID) {
		return r.wrongTenant("TOTP authenticator", s.TenantID)
	}
	s.TenantID = r.tenant
	s.CreatedAt = utc(s.CreatedAt)
	res, err := r.exec(ctx, qTOTPPut, notNullBytes(s.Secret), micros(s.CreatedAt), s.LastStep, string(r.tenant), string(s.UserID))
	if err != nil {
		return r.db.wrap(err, "put TOTP authenticator of user %s", s.UserID)
	}
	n, err := r.rowsAffected(res, "put TOTP authenticator of user %s", s.UserID)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("put TOTP authenticator: user %s", s.UserID)
	}
	return nil
}

func (r totp) Delete(ctx context.Context, user ciam.UserID) error {
	res, err := r.exec(ctx, qTOTPDelete, string(r.tenant), string(user))
	if err != nil {
		return r.db.wrap(err, "delete TOTP authenticator of user %s", user)
	}
	n, err := r.rowsAffected(res, "delete TOTP authenticator of user %s", user)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("delete TOTP authenticator of user %s", user)
	}
	return nil
}

func (r totp) UseStep(ctx context.Context, user ciam.UserID, step int64) error {
	res, err := r.exec(ctx, qTOTPUseStep, step, string(r.tenant), string(user), step)
	if err != nil {
		return r.db.wrap(err, "use TOTP step of user %s", user)
	}
	n, err := r.rowsAffected(res, "use TOTP step of user %s", user)
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := r.row(ctx, qTOTPExists, string(r.tenant), string(user)).Scan(&one); err != nil {
		return r.db.wrap(err, "use TOTP step of user %s", user)
	}
	return conflictf("use TOTP step of user %s: step %d accepted already", user, step)
}

var (
	qRecoveryDelete = newQuery(`DELETE FROM recovery_codes WHERE tenant_id = ? AND user_id = ?`)
	// The SELECT from users inserts nothing for a user outside the tenant.
	qRecoveryInsert = newQuery(`INSERT INTO recovery_codes (tenant_id, user_id, code_hash, created_at, used_at)
		SELECT tenant_id, id, ?, ?, NULL FROM users WHERE tenant_id = ? AND id = ?`)
	// Use is one conditional update: of racing callers spending one code
	// exactly one changes the row.
	qRecoveryUse = newQuery(`UPDATE recovery_codes SET used_at = ?
		WHERE tenant_id = ? AND user_id = ? AND code_hash = ? AND used_at IS NULL`)
	qRecoveryRemaining = newQuery(`SELECT COUNT(*) FROM recovery_codes
		WHERE tenant_id = ? AND user_id = ? AND used_at IS NULL`)
)

// recoveryCodes holds each user's recovery codes by hash.
type recoveryCodes struct{ *tx }

var _ store.RecoveryCodes = recoveryCodes{}

// Replace deletes the user's codes and inserts the new ones, a statement
// each: run it in Tx. ErrNotFound if hashes is not empty and the user is
// not in the tenant; ErrConflict if hashes holds one hash twice.
func (r recoveryCodes) Replace(ctx context.Context, user ciam.UserID, hashes [][]byte, at time.Time) error {
	if _, err := r.exec(ctx, qRecoveryDelete, string(r.tenant), string(user)); err != nil {
		return r.db.wrap(err, "replace recovery codes of user %s", user)
	}
	t := micros(at)
	for _, h := range hashes {
		res, err := r.execUpdate(ctx, qRecoveryInsert, notNullBytes(h), t, string(r.tenant), string(user))
		if err != nil {
			return r.db.wrap(err, "replace recovery codes of user %s", user)
		}
		n, err := r.rowsAffected(res, "replace recovery codes of user %s", user)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFoundf("replace recovery codes: user %s", user)
		}
	}
	return nil
}

func (r recoveryCodes) Use(ctx context.Context, user ciam.UserID, hash []byte, at time.Time) error {
	res, err := r.exec(ctx, qRecoveryUse, micros(at), string(r.tenant), string(user), notNullBytes(hash))
	if err != nil {
		return r.db.wrap(err, "use recovery code of user %s", user)
	}
	n, err := r.rowsAffected(res, "use recovery code of user %s", user)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("use recovery code of user %s: no such unused code", user)
	}
	return nil
}

func (r recoveryCodes) Remaining(ctx context.Context, user ciam.UserID) (int, error) {
	var n int
	if err := r.row(ctx, qRecoveryRemaining, string(r.tenant), string(user)).Scan(&n); err != nil {
		return 0, r.db.wrap(err, "count recovery codes of user %s", user)
	}
	return n, nil
}

func (r recoveryCodes) Delete(ctx context.Context, user ciam.UserID) error {
	if _, err := r.exec(ctx, qRecoveryDelete, string(r.tenant), string(user)); err != nil {
		return r.db.wrap(err, "delete recovery codes of user %s", user)
	}
	return nil
}
