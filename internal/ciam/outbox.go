package ciam

import "time"

// OutboxStatus is where a message stands in the outbox.
type OutboxStatus string

// The outbox statuses.
const (
	OutboxPending OutboxStatus = "pending" // waiting for (another) delivery attempt
	OutboxSent    OutboxStatus = "sent"    // delivered
	OutboxDead    OutboxStatus = "dead"    // given up on: dead-lettered
)

// OutboxMessage is a message written in the same transaction as the change
// that needs it (a mail, a back-channel logout notice) and delivered
// afterwards by a worker, so a crash between the two loses nothing.
type OutboxMessage struct {
	ID       string
	TenantID TenantID
	Kind     string // what delivers it, e.g. "backchannel_logout" or "mail"
	Payload  []byte // JSON, shaped by Kind
	Status   OutboxStatus
	Attempts int // delivery attempts started so far
	// NextAttemptAt is when the message is next due; while a worker holds
	// it, when that worker's claim lapses.
	NextAttemptAt time.Time
	Lease         string // names the current claim; empty when unclaimed
	LastError     string
	CreatedAt     time.Time
	DoneAt        time.Time // zero while pending
}
