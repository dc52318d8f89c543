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

// Purposes of an EmailToken.
const (
	PurposeVerifyEmail     = "verify_email"      // confirm the address at sign-up (link or code)
	PurposePasswordReset   = "password_reset"    // set a new password (link)
	PurposeLogin           = "login"             // log in without a password (link or code)
	PurposeEmailChange     = "email_change"      // confirm a new address (link to the new one)
	PurposeEmailChangeUndo = "email_change_undo" // undo a change (link to the old address)
)

// EmailToken is a single-use secret sent by mail: a link and, for some
// purposes, a six-digit code. Only hashes of the secrets are kept.
type EmailToken struct {
	ID       string
	TenantID TenantID
	UserID   UserID
	Purpose  string
	Email    string // the address the mail went to
	LinkHash []byte // SHA-256 of the link secret
	CodeHash []byte // HMAC of the code; nil when no code was sent
	// BrowserHash binds the token to the browser that asked for it (SHA-256
	// of a cookie); nil when any browser may redeem it.
	BrowserHash []byte
	Data        string // purpose-specific: for an email change, the other address
	Attempts    int    // codes tried against the token
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      time.Time // zero while the token may be redeemed
}

// Live reports whether the token may still be redeemed at now.
func (t *EmailToken) Live(now time.Time) bool {
	return t.UsedAt.IsZero() && now.Before(t.ExpiresAt)
}
