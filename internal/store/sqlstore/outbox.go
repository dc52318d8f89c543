package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const outboxColumns = `tenant_id, id, kind, payload, status, attempts, next_attempt_at, lease,
	last_error, created_at, done_at`

// maxErrorText bounds the stored text of a delivery error (it may quote a
// remote server).
const maxErrorText = 1000

var (
	// The SELECT from tenants inserts nothing for an unknown tenant.
	qOutboxInsert = newQuery(`INSERT INTO outbox (` + outboxColumns + `)
		SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT DO NOTHING`)
	qOutboxGet = newQuery(`SELECT ` + outboxColumns + ` FROM outbox WHERE tenant_id = ? AND id = ?`)
	// ?1 kind, ?2 status ('' for any), ?3 before ('' for none), ?4 limit.
	qOutboxList = newQuery(`SELECT ` + outboxColumns + ` FROM outbox
		WHERE tenant_id = ? AND (? = '' OR kind = ?) AND (? = '' OR status = ?) AND (? = '' OR id < ?)
		ORDER BY id DESC LIMIT ?`)
	// Finish changes the row only while the caller's claim holds it.
	qOutboxFinish = newQuery(`UPDATE outbox SET status = ?, done_at = ?, next_attempt_at = ?, lease = '', last_error = ?
		WHERE tenant_id = ? AND id = ? AND lease = ? AND status = 'pending'`)
	qOutboxDeleteDone = newQuery(`DELETE FROM outbox WHERE tenant_id = ? AND status IN ('sent', 'dead') AND done_at < ?`)

	// Claim is one statement. Racing claimers may pick the same candidates
	// in the subquery, but the UPDATE re-checks that a row is still pending
	// and due when it gets to it (PostgreSQL re-evaluates the WHERE on the
	// row a concurrent claim just committed; SQLite has one writer), so
	// each message goes to exactly one claimer.
	qOutboxClaim = newQuery(`UPDATE outbox SET lease = ?, next_attempt_at = ?, attempts = attempts + 1
		WHERE status = 'pending' AND next_attempt_at <= ? AND (tenant_id, id) IN (
			SELECT tenant_id, id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT ?)
		RETURNING ` + outboxColumns)
	qOutboxCounts = newQuery(`SELECT
		COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0)
		FROM outbox WHERE status IN ('pending', 'dead')`)
)

// outbox holds the tenant's outgoing messages.
type outbox struct{ *tx }

var _ store.Outbox = outbox{}

func (r outbox) Add(ctx context.Context, m *ciam.OutboxMessage) error {
	if !r.checkTenant(m.TenantID) {
		return r.wrongTenant("outbox message", m.TenantID)
	}
	m.TenantID = r.tenant
	if m.Status == "" {
		m.Status = ciam.OutboxPending
	}
	m.Kind, m.Lease, m.LastError = cleanText(m.Kind), cleanText(m.Lease), errorText(m.LastError)
	m.NextAttemptAt, m.CreatedAt, m.DoneAt = utc(m.NextAttemptAt), utc(m.CreatedAt), utc(m.DoneAt)
	payload := m.Payload
	if payload == nil {
		payload = []byte{} // the column is NOT NULL; it reads back as nil
	}
	res, err := r.exec(ctx, qOutboxInsert, m.ID, m.Kind, payload, string(m.Status), m.Attempts,
		micros(m.NextAttemptAt), m.Lease, m.LastError, micros(m.CreatedAt), nullMicros(m.DoneAt), string(r.tenant))
	if err != nil {
		return r.db.wrap(err, "add outbox message")
	}
	n, err := r.rowsAffected(res, "add outbox message")
	if err != nil || n == 1 {
		return err
	}
	var one int
	if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
		return r.db.wrap(err, "add outbox message: tenant %s", r.tenant)
	}
	return conflictf("add outbox message %s: id taken", m.ID)
}

func (r outbox) Get(ctx context.Context, id string) (*ciam.OutboxMessage, error) {
	m, err := scanOutbox(r.row(ctx, qOutboxGet, string(r.tenant), id))
	if err != nil {
		return nil, r.db.wrap(err, "outbox message %s", id)
	}
	return m, nil
}

func (r outbox) List(ctx context.Context, f store.OutboxFilter) ([]*ciam.OutboxMessage, error) {
	st := string(f.Status)
	rows, err := r.rows(ctx, qOutboxList, string(r.tenant), f.Kind, f.Kind, st, st, f.Before, f.Before, limit(f.Limit))
	if err != nil {
		return nil, r.db.wrap(err, "list outbox")
	}
	out, err := outboxList(rows)
	if err != nil {
		return nil, r.db.wrap(err, "list outbox")
	}
	return out, nil
}

func (r outbox) Finish(ctx context.Context, id, lease string, status ciam.OutboxStatus, at, next time.Time, lastErr string) error {
	done := nullMicros(at)
	if status == ciam.OutboxPending {
		done = nil
	} else {
		next = at
	}
	res, err := r.exec(ctx, qOutboxFinish, string(status), done, micros(next), errorText(lastErr), string(r.tenant), id, lease)
	if err != nil {
		return r.db.wrap(err, "finish outbox message %s", id)
	}
	n, err := r.rowsAffected(res, "finish outbox message %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := r.Get(ctx, id); err != nil {
			return err
		}
		return conflictf("finish outbox message %s: the claim no longer holds it", id)
	}
	return nil
}

func (r outbox) DeleteDone(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := r.exec(ctx, qOutboxDeleteDone, string(r.tenant), micros(cutoff))
	if err != nil {
		return 0, r.db.wrap(err, "delete finished outbox messages")
	}
	n, err := r.rowsAffected(res, "delete finished outbox messages")
	return int(n), err
}

func (s system) ClaimOutbox(ctx context.Context, lease string, now, until time.Time, n int) ([]*ciam.OutboxMessage, error) {
	rows, err := s.db.writer.QueryContext(ctx, qOutboxClaim.text[s.db.ph], lease, micros(until), micros(now), micros(now), limit(n))
	if err != nil {
		return nil, s.db.wrap(err, "claim outbox messages")
	}
	out, err := outboxList(rows)
	if err != nil {
		return nil, s.db.wrap(err, "claim outbox messages")
	}
	return out, nil
}

func (s system) OutboxCounts(ctx context.Context) (pending, dead int64, err error) {
	if err := s.db.reader.QueryRowContext(ctx, qOutboxCounts.text[s.db.ph]).Scan(&pending, &dead); err != nil {
		return 0, 0, s.db.wrap(err, "count outbox messages")
	}
	return pending, dead, nil
}

func errorText(s string) string {
	s = cleanText(s)
	if len(s) > maxErrorText {
		s = cleanText(s[:maxErrorText])
	}
	return s
}

func scanOutbox(row interface{ Scan(...any) error }) (*ciam.OutboxMessage, error) {
	var m ciam.OutboxMessage
	var tenant, status string
	var next, created int64
	var done sql.NullInt64
	if err := row.Scan(&tenant, &m.ID, &m.Kind, &m.Payload, &status, &m.Attempts, &next, &m.Lease,
		&m.LastError, &created, &done); err != nil {
		return nil, err
	}
	m.TenantID, m.Status = ciam.TenantID(tenant), ciam.OutboxStatus(status)
	m.NextAttemptAt, m.CreatedAt, m.DoneAt = fromMicros(next), fromMicros(created), fromNullMicros(done)
	m.Payload = bytesOrNil(m.Payload)
	return &m, nil
}

func outboxList(rows *sql.Rows) ([]*ciam.OutboxMessage, error) {
	defer rows.Close()
	out := []*ciam.OutboxMessage{}
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
