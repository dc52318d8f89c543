package sqlstore

import (
	"context"
	"database/sql"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const auditColumns = `tenant_id, seq, occurred_at, event_type, actor_id, target_id, outcome, request_id,
	ip, data, pii, prev_hash, hash`

var (
	// Taking the next sequence number locks the tenant's head row until the
	// transaction ends (PostgreSQL) or runs on the single writer (SQLite), so
	// appends in one tenant are serialized and the chain cannot fork. The
	// first append creates the head, whose hash is NULL: the empty prev hash.
	qAuditNext = newQuery(`INSERT INTO audit_heads (tenant_id, seq) VALUES (?, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq + 1
		RETURNING seq, hash`)
	qAuditSetHead = newQuery(`UPDATE audit_heads SET hash = ? WHERE tenant_id = ?`)
	qAuditInsert  = newQuery(`INSERT INTO audit_events (` + auditColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	// qAuditSetHeadInsert moves the head and stores the event in one
	// statement (PostgreSQL's data-modifying CTE), saving a round trip while
	// the head row is locked: appends of one tenant queue on that lock.
	qAuditSetHeadInsert = newQuery(`WITH head AS (UPDATE audit_heads SET hash = ? WHERE tenant_id = ?)
		INSERT INTO audit_events (` + auditColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qAuditList = newQuery(`SELECT ` + auditColumns + ` FROM audit_events
		WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
	qAuditListType = newQuery(`SELECT ` + auditColumns + ` FROM audit_events
		WHERE tenant_id = ? AND event_type = ? AND seq > ? ORDER BY seq LIMIT ?`)
)

// auditLog is the tenant's hash-chained audit trail.
type auditLog struct{ *tx }

// Append stores e as the tenant's next event. Before hashing it normalises e
// to what the store keeps (Time in UTC microseconds, text cleaned of invalid
// UTF-8 and NUL), so that a stored event verifies.
func (r auditLog) Append(ctx context.Context, e *ciam.AuditEvent) error {
	if !r.checkTenant(e.TenantID) {
		return r.wrongTenant("audit event", e.TenantID)
	}
	e.TenantID = r.tenant
	e.Time = utc(e.Time)
	e.PII = bytesOrNil(e.PII)
	e.Type, e.ActorID, e.TargetID = cleanText(e.Type), cleanText(e.ActorID), cleanText(e.TargetID)
	e.Outcome, e.RequestID, e.IP = cleanText(e.Outcome), cleanText(e.RequestID), cleanText(e.IP)
	e.Data = cleanMap(e.Data)
	data, err := encodeMap(e.Data)
	if err != nil {
		return err
	}
	var prev []byte
	if err := r.row(ctx, qAuditNext, string(r.tenant)).Scan(&e.Seq, &prev); err != nil {
		return r.db.wrap(err, "audit: next sequence number")
	}
	e.PrevHash = bytesOrNil(prev)
	e.Hash = e.ComputeHash(e.PrevHash)
	args := []any{string(e.TenantID), e.Seq, micros(e.Time), e.Type, e.ActorID, e.TargetID,
		e.Outcome, e.RequestID, e.IP, data, nullBytes(e.PII), nullBytes(e.PrevHash), e.Hash}
	if r.db.dialect.ModifyingCTE { // one statement for both
		_, err = r.exec(ctx, qAuditSetHeadInsert, append([]any{e.Hash, string(r.tenant)}, args...)...)
	} else {
		if _, err := r.exec(ctx, qAuditSetHead, e.Hash, string(r.tenant)); err != nil {
			return r.db.wrap(err, "audit: move head to %d", e.Seq)
		}
		_, err = r.exec(ctx, qAuditInsert, args...)
	}
	if err != nil {
		return r.db.wrap(err, "audit: append event %d", e.Seq)
	}
	return nil
}

func (r auditLog) List(ctx context.Context, f store.AuditFilter) ([]*ciam.AuditEvent, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if f.Type == "" {
		rows, err = r.rows(ctx, qAuditList, string(r.tenant), f.AfterSeq, limit(f.Limit))
	} else {
		rows, err = r.rows(ctx, qAuditListType, string(r.tenant), f.Type, f.AfterSeq, limit(f.Limit))
	}
	if err != nil {
		return nil, r.db.wrap(err, "list audit events")
	}
	defer rows.Close()
	var out []*ciam.AuditEvent
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return nil, r.db.wrap(err, "list audit events")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "list audit events")
	}
	return out, nil
}

func scanAuditEvent(s scanner) (*ciam.AuditEvent, error) {
	var (
		e    ciam.AuditEvent
		at   int64
		data string
	)
	err := s.Scan(&e.TenantID, &e.Seq, &at, &e.Type, &e.ActorID, &e.TargetID, &e.Outcome, &e.RequestID,
		&e.IP, &data, &e.PII, &e.PrevHash, &e.Hash)
	if err != nil {
		return nil, err
	}
	e.Time = fromMicros(at)
	e.PII, e.PrevHash = bytesOrNil(e.PII), bytesOrNil(e.PrevHash)
	if e.Data, err = decodeMap(data); err != nil {
		return nil, err
	}
	return &e, nil
}

var _ store.AuditLog = auditLog{}
