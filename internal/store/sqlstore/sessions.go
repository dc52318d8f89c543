package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const sessionColumns = `tenant_id, id, user_id, token_hash, created_at, auth_time, last_seen_at,
	idle_expires_at, expires_at, revoked_at, ip, user_agent, amr, acr`

// A session is live at now when revoked_at IS NULL AND now < expires_at AND
// now < idle_expires_at; the queries below spell that out with the time
// passed twice.
var (
	// The SELECT from users inserts nothing for a user outside the tenant.
	qSessionInsert = newQuery(`INSERT INTO sessions (` + sessionColumns + `)
		SELECT tenant_id, ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users WHERE tenant_id = ? AND id = ?
		ON CONFLICT DO NOTHING`)
	qUserExists     = newQuery(`SELECT 1 FROM users WHERE tenant_id = ? AND id = ?`)
	qSessionByToken = newQuery(`SELECT ` + sessionColumns + ` FROM sessions WHERE tenant_id = ? AND token_hash = ?`)
	qSessionGet     = newQuery(`SELECT ` + sessionColumns + ` FROM sessions WHERE tenant_id = ? AND id = ?`)
	qSessionTouch   = newQuery(`UPDATE sessions SET last_seen_at = ?,
		idle_expires_at = CASE WHEN idle_expires_at < ? THEN ? ELSE idle_expires_at END
		WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?`)
	qSessionListActive = newQuery(`SELECT ` + sessionColumns + ` FROM sessions
		WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?
		ORDER BY created_at DESC, id DESC`)
	qSessionRevoke = newQuery(`UPDATE sessions SET revoked_at = ?
		WHERE tenant_id = ? AND user_id = ? AND id = ?
		AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?`)
	qSessionRevokeAll = newQuery(`UPDATE sessions SET revoked_at = ?
		WHERE tenant_id = ? AND user_id = ? AND id <> ?
		AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?
		RETURNING id`)
	// Reauthenticate is one conditional update: the row moves from the
	// presented hash to the next one, so of racing callers exactly one still
	// finds the presented hash.
	qSessionReauth = newQuery(`UPDATE sessions SET token_hash = ?, auth_time = ?, amr = ?, acr = ?
		WHERE tenant_id = ? AND id = ? AND token_hash = ?
		AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?`)
	// The SELECT inserts nothing for a session or a client outside the
	// tenant, so no foreign-key error aborts the transaction.
	qSessionAddClient = newQuery(`INSERT INTO session_clients (tenant_id, session_id, client_id, created_at)
		SELECT tenant_id, id, ?, ? FROM sessions
		WHERE tenant_id = ? AND id = ? AND EXISTS (SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?)
		ON CONFLICT DO NOTHING`)
	qSessionClientExists  = newQuery(`SELECT 1 FROM session_clients WHERE tenant_id = ? AND session_id = ? AND client_id = ?`)
	qSessionDeleteExpired = newQuery(`DELETE FROM sessions
		WHERE tenant_id = ? AND (expires_at < ? OR idle_expires_at < ? OR revoked_at < ?)`)
)

// sessions holds browser sessions.
type sessions struct{ *tx }

func (r sessions) Create(ctx context.Context, s *ciam.Session) error {
	if !r.checkTenant(s.TenantID) {
		return r.wrongTenant("session", s.TenantID)
	}
	s.TenantID = r.tenant
	s.CreatedAt, s.AuthTime, s.LastSeenAt = utc(s.CreatedAt), utc(s.AuthTime), utc(s.LastSeenAt)
	s.IdleExpiresAt, s.ExpiresAt, s.RevokedAt = utc(s.IdleExpiresAt), utc(s.ExpiresAt), utc(s.RevokedAt)
	s.IP, s.UserAgent, s.ACR = cleanText(s.IP), cleanText(s.UserAgent), cleanText(s.ACR)
	cleanStrings(s.AMR)
	amr, err := encodeStrings(s.AMR)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, qSessionInsert,
		string(s.ID), s.TokenHash, micros(s.CreatedAt), micros(s.AuthTime), micros(s.LastSeenAt),
		micros(s.IdleExpiresAt), micros(s.ExpiresAt), nullMicros(s.RevokedAt), s.IP, s.UserAgent, amr, s.ACR,
		string(r.tenant), string(s.UserID))
	if err != nil {
		return r.db.wrap(err, "create session %s", s.ID)
	}
	n, err := r.rowsAffected(res, "create session %s", s.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qUserExists, string(r.tenant), string(s.UserID)).Scan(&one); err != nil {
			return r.db.wrap(err, "create session %s: user %s", s.ID, s.UserID)
		}
		return conflictf("create session %s: id or token taken", s.ID)
	}
	return nil
}

func (r sessions) ByTokenHash(ctx context.Context, hash []byte) (*ciam.Session, error) {
	s, err := scanSession(r.row(ctx, qSessionByToken, string(r.tenant), hash))
	if err != nil {
		return nil, r.db.wrap(err, "session by token")
	}
	return s, nil
}

func (r sessions) Get(ctx context.Context, id ciam.SessionID) (*ciam.Session, error) {
	s, err := scanSession(r.row(ctx, qSessionGet, string(r.tenant), string(id)))
	if err != nil {
		return nil, r.db.wrap(err, "session %s", id)
	}
	return s, nil
}

func (r sessions) Touch(ctx context.Context, id ciam.SessionID, seen, idleExpires time.Time) error {
	now, idle := micros(seen), micros(idleExpires)
	res, err := r.exec(ctx, qSessionTouch, now, idle, idle, string(r.tenant), string(id), now, now)
	if err != nil {
		return r.db.wrap(err, "touch session %s", id)
	}
	n, err := r.rowsAffected(res, "touch session %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("touch session %s: no live session", id)
	}
	return nil
}

func (r sessions) ListActive(ctx context.Context, user ciam.UserID, now time.Time) ([]*ciam.Session, error) {
	t := micros(now)
	rows, err := r.rows(ctx, qSessionListActive, string(r.tenant), string(user), t, t)
	if err != nil {
		return nil, r.db.wrap(err, "sessions of user %s", user)
	}
	defer rows.Close()
	var out []*ciam.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, r.db.wrap(err, "sessions of user %s", user)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "sessions of user %s", user)
	}
	return out, nil
}

func (r sessions) Revoke(ctx context.Context, user ciam.UserID, id ciam.SessionID, at time.Time) error {
	t := micros(at)
	res, err := r.exec(ctx, qSessionRevoke, t, string(r.tenant), string(user), string(id), t, t)
	if err != nil {
		return r.db.wrap(err, "revoke session %s", id)
	}
	n, err := r.rowsAffected(res, "revoke session %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("revoke session %s of user %s: no live session", id, user)
	}
	return nil
}

func (r sessions) RevokeAll(ctx context.Context, user ciam.UserID, keep ciam.SessionID, at time.Time) ([]ciam.SessionID, error) {
	t := micros(at)
	rows, err := r.rows(ctx, qSessionRevokeAll, t, string(r.tenant), string(user), string(keep), t, t)
	if err != nil {
		return nil, r.db.wrap(err, "revoke sessions of user %s", user)
	}
	defer rows.Close()
	ended := []ciam.SessionID{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, r.db.wrap(err, "revoke sessions of user %s", user)
		}
		ended = append(ended, ciam.SessionID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "revoke sessions of user %s", user)
	}
	return ended, nil
}

func (r sessions) Reauthenticate(ctx context.Context, id ciam.SessionID, oldHash, newHash []byte, at time.Time, amr []string, acr string) error {
	amr = append([]string(nil), amr...)
	cleanStrings(amr)
	enc, err := encodeStrings(amr)
	if err != nil {
		return err
	}
	t := micros(at)
	// A new hash taken by another session is a unique violation: inside a
	// savepoint, so the caller's transaction stays usable.
	res, err := r.execUpdate(ctx, qSessionReauth, newHash, t, enc, cleanText(acr),
		string(r.tenant), string(id), oldHash, t, t)
	if err != nil {
		return r.db.wrap(err, "reauthenticate session %s", id)
	}
	n, err := r.rowsAffected(res, "reauthenticate session %s", id)
	if err != nil || n > 0 {
		return err
	}
	s, err := scanSession(r.row(ctx, qSessionGet, string(r.tenant), string(id)))
	if err != nil {
		return r.db.wrap(err, "reauthenticate session %s", id)
	}
	if !s.Active(at) {
		return notFoundf("reauthenticate session %s: no live session", id)
	}
	return conflictf("reauthenticate session %s: its token was rotated already", id)
}

func (r sessions) AddClient(ctx context.Context, session ciam.SessionID, client ciam.ClientID, at time.Time) error {
	res, err := r.exec(ctx, qSessionAddClient, string(client), micros(at), string(r.tenant), string(session), string(r.tenant), string(client))
	if err != nil {
		return r.db.wrap(err, "record client %s of session %s", client, session)
	}
	n, err := r.rowsAffected(res, "record client %s of session %s", client, session)
	if err != nil || n == 1 {
		return err
	}
	var one int
	if err := r.row(ctx, qSessionClientExists, string(r.tenant), string(session), string(client)).Scan(&one); err != nil {
		return r.db.wrap(err, "record client %s of session %s", client, session)
	}
	return nil // recorded before
}

// LogoutClients reads the pairs of up to maxIn sessions per query, joined
// with the clients that have a back-channel logout URI.
func (r sessions) LogoutClients(ctx context.Context, ids []ciam.SessionID) (map[ciam.SessionID][]store.LogoutClient, error) {
	out := map[ciam.SessionID][]store.LogoutClient{}
	for len(ids) > 0 {
		part := ids[:min(len(ids), maxIn)]
		ids = ids[len(part):]
		args := []any{string(r.tenant)}
		for _, id := range part {
			args = append(args, string(id))
		}
		q := dynamicQuery(`SELECT sc.session_id, c.id, c.backchannel_logout_uri FROM session_clients sc
			JOIN clients c ON c.tenant_id = sc.tenant_id AND c.id = sc.client_id
			WHERE sc.tenant_id = ? AND c.backchannel_logout_uri <> '' AND sc.session_id IN (` +
			strings.Repeat("?, ", len(part)-1) + `?) ORDER BY sc.session_id, c.id`)
		rows, err := r.rows(ctx, q, args...)
		if err != nil {
			return nil, r.db.wrap(err, "logout clients of sessions")
		}
		for rows.Next() {
			var sid, cid, uri string
			if err := rows.Scan(&sid, &cid, &uri); err != nil {
				rows.Close()
				return nil, r.db.wrap(err, "logout clients of sessions")
			}
			out[ciam.SessionID(sid)] = append(out[ciam.SessionID(sid)], store.LogoutClient{ID: ciam.ClientID(cid), BackchannelLogoutURI: uri})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, r.db.wrap(err, "logout clients of sessions")
		}
	}
	return out, nil
}

// maxIn bounds the values of one IN list.
const maxIn = 500

func (r sessions) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	t := micros(cutoff)
	res, err := r.exec(ctx, qSessionDeleteExpired, string(r.tenant), t, t, t)
	if err != nil {
		return 0, r.db.wrap(err, "delete expired sessions")
	}
	n, err := r.rowsAffected(res, "delete expired sessions")
	return int(n), err
}

func scanSession(sc scanner) (*ciam.Session, error) {
	var (
		s                                 ciam.Session
		created, auth, seen, idle, expire int64
		revoked                           sql.NullInt64
		amr                               string
	)
	err := sc.Scan(&s.TenantID, &s.ID, &s.UserID, &s.TokenHash, &created, &auth, &seen,
		&idle, &expire, &revoked, &s.IP, &s.UserAgent, &amr, &s.ACR)
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.AuthTime, s.LastSeenAt = fromMicros(created), fromMicros(auth), fromMicros(seen)
	s.IdleExpiresAt, s.ExpiresAt, s.RevokedAt = fromMicros(idle), fromMicros(expire), fromNullMicros(revoked)
	if s.AMR, err = decodeStrings(amr); err != nil {
		return nil, err
	}
	return &s, nil
}

var _ store.Sessions = sessions{}
