// Package store defines how Gatehouse persists state: the Store contract, one
// small repository interface per aggregate, and the only two errors that cross
// the boundary. It holds no SQL; store/sqlstore implements the contract for
// SQLite (store/sqlite) and PostgreSQL (store/postgres), and store/storetest
// checks that both honour it.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// The errors a store returns, wrapped with context. Driver errors never
// escape: a database that cannot be reached, or fails underneath (a broken
// connection, a full disk), is a *ciam.Error of Kind Unavailable with code
// "database_unavailable", so callers answer 503 and can be retried.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict") // a unique key is taken or a version is stale
)

// Store is safe for concurrent use.
type Store interface {
	// Tx runs fn in one read-write transaction whose repositories see only
	// tenant's rows. If fn returns an error the transaction rolls back and the
	// error is returned as is. Transient serialization failures are retried, so
	// fn may run more than once and must not have side effects outside tx.
	Tx(ctx context.Context, tenant ciam.TenantID, fn func(Tx) error) error
	// View is Tx, read-only, with one snapshot for all of fn's reads.
	View(ctx context.Context, tenant ciam.TenantID, fn func(Tx) error) error
	// Read runs fn's reads each on its own, outside a transaction: cheaper
	// than View where fn reads one row (no snapshot spans two reads). A
	// write in fn fails.
	Read(ctx context.Context, tenant ciam.TenantID, fn func(Tx) error) error
	// Write runs fn outside an explicit transaction: its one write statement
	// commits by itself (reads may come before it). Cheaper than Tx for a
	// change that is one statement (no BEGIN and COMMIT round trips); a
	// second write in fn fails, and what the first wrote stays. Use Tx for
	// anything that must change two rows together.
	Write(ctx context.Context, tenant ciam.TenantID, fn func(Tx) error) error
	// System gives the few cross-tenant operations.
	System() System
	Close() error
}

// System holds the operations that are not scoped to one tenant.
type System interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// MigrationsCurrent reports whether every embedded migration is applied.
	MigrationsCurrent(ctx context.Context) (bool, error)
	// TenantBySlug returns ErrNotFound for an unknown slug.
	TenantBySlug(ctx context.Context, slug string) (*ciam.Tenant, error)
	// Tenants lists tenants ordered by slug, after the slug in after, at most limit.
	Tenants(ctx context.Context, after string, limit int) ([]*ciam.Tenant, error)
	// ListedTenants returns the tenants marked as listed on the platform page, by slug.
	ListedTenants(ctx context.Context) ([]*ciam.Tenant, error)
	// Setting reads a deployment-wide value; ErrNotFound if unset.
	Setting(ctx context.Context, key string) ([]byte, error)
	// PutSettingIfAbsent stores value unless key is set, and returns the value
	// that is stored afterwards (so concurrent starters agree on one).
	PutSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)
	// DeleteSetting removes key; it reports whether it was there. Two callers
	// racing to delete one key get exactly one true.
	DeleteSetting(ctx context.Context, key string) (bool, error)
	// ClaimOutbox claims up to limit pending messages of any tenant that are
	// due at now, oldest due first: each gets Lease = lease, NextAttemptAt =
	// until and one more attempt. Of workers racing for a message, on one
	// node or several, exactly one claims it; a claim whose holder never
	// finished lapses at until and the message is due again.
	ClaimOutbox(ctx context.Context, lease string, now, until time.Time, limit int) ([]*ciam.OutboxMessage, error)
	// OutboxCounts returns how many messages of all tenants are pending and dead.
	OutboxCounts(ctx context.Context) (pending, dead int64, err error)
}

// Tx is one transaction scoped to one tenant.
type Tx interface {
	Tenant() Tenants
	Users() Users
	Passwords() Passwords
	Sessions() Sessions
	Audit() AuditLog
	Clients() Clients
	SigningKeys() SigningKeys
	AuthCodes() AuthCodes
	RefreshTokens() RefreshTokens
	Grants() Grants
	Nonces() Nonces
	Outbox() Outbox
	EmailTokens() EmailTokens
	Passkeys() Passkeys
	TOTP() TOTP
	RecoveryCodes() RecoveryCodes
	AuthFlows() AuthFlows
}

// Tenants reads and writes the transaction's own tenant row.
type Tenants interface {
	// Create inserts t, whose ID must be the transaction's tenant.
	// ErrConflict if the slug or id is taken.
	Create(ctx context.Context, t *ciam.Tenant) error
	// Get returns ErrNotFound when the tenant does not exist.
	Get(ctx context.Context) (*ciam.Tenant, error)
	// Update writes t if t.Version is the stored version, and increments
	// t.Version. ErrConflict if it is stale or the new slug is taken.
	Update(ctx context.Context, t *ciam.Tenant) error
}

// UserFilter selects users for List.
type UserFilter struct {
	After  ciam.UserID // cursor: return users whose id sorts after this
	Limit  int         // at most this many (the store caps it at 1000)
	Status ciam.UserStatus
}

// Users holds the tenant's users.
type Users interface {
	// Create inserts u. ErrConflict if the email is taken in the tenant.
	Create(ctx context.Context, u *ciam.User) error
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id ciam.UserID) (*ciam.User, error)
	// ByEmail looks up a normalised email; ErrNotFound if none.
	ByEmail(ctx context.Context, email string) (*ciam.User, error)
	// List returns users ordered by id.
	List(ctx context.Context, f UserFilter) ([]*ciam.User, error)
	// Update writes u if u.Version is current and increments it; ErrConflict
	// if stale or the new email is taken, ErrNotFound if u does not exist.
	Update(ctx context.Context, u *ciam.User) error
	// RecordLogin sets the user's last login time without touching Version.
	RecordLogin(ctx context.Context, id ciam.UserID, at time.Time) error
}

// Passwords holds one password hash per user.
type Passwords interface {
	// Get returns the PHC-format hash; ErrNotFound if the user has no password.
	Get(ctx context.Context, user ciam.UserID) (string, error)
	// Set creates or replaces the user's hash.
	Set(ctx context.Context, user ciam.UserID, hash string, at time.Time) error
}

// Sessions holds browser sessions.
type Sessions interface {
	Create(ctx context.Context, s *ciam.Session) error
	// ByTokenHash finds a session, live or not; ErrNotFound if none.
	ByTokenHash(ctx context.Context, hash []byte) (*ciam.Session, error)
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id ciam.SessionID) (*ciam.Session, error)
	// Touch records use of a live session: last seen and the new idle expiry.
	Touch(ctx context.Context, id ciam.SessionID, seen, idleExpires time.Time) error
	// ListActive returns the user's sessions live at now, newest first.
	ListActive(ctx context.Context, user ciam.UserID, now time.Time) ([]*ciam.Session, error)
	// Revoke ends one live session of the user; ErrNotFound if there is no
	// such live session (already ended, another user's, or unknown).
	Revoke(ctx context.Context, user ciam.UserID, id ciam.SessionID, at time.Time) error
	// RevokeAll ends every live session of the user except keep (which may be
	// empty) and returns the ones it ended.
	RevokeAll(ctx context.Context, user ciam.UserID, keep ciam.SessionID, at time.Time) ([]ciam.SessionID, error)
	// Reauthenticate records a new authentication in live session id: the
	// cookie secret's hash moves from oldHash to newHash (the identifier
	// rotates, the session id stays), and AuthTime, AMR and ACR are set.
	// ErrConflict if the session no longer holds oldHash (a racing
	// rotation), ErrNotFound if it is not live at at.
	Reauthenticate(ctx context.Context, id ciam.SessionID, oldHash, newHash []byte, at time.Time, amr []string, acr string) error
	// AddClient records that client was issued a code for the session; adding
	// a pair twice is not an error. ErrNotFound if the session or the client
	// does not exist.
	AddClient(ctx context.Context, session ciam.SessionID, client ciam.ClientID, at time.Time) error
	// LogoutClients returns, by session, the clients recorded for the
	// sessions that have a back-channel logout URI now, with that URI.
	LogoutClients(ctx context.Context, sessions []ciam.SessionID) (map[ciam.SessionID][]LogoutClient, error)
	// DeleteExpired removes sessions that ended before cutoff; it returns how many.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}

// AuditFilter selects audit events.
type AuditFilter struct {
	AfterSeq int64 // cursor: events with a larger sequence number
	Limit    int   // the store caps it at 1000
	Type     string
}

// AuditLog is the tenant's append-only, hash-chained event log.
type AuditLog interface {
	// Append sets e.Seq, e.PrevHash and e.Hash from the tenant's chain head and
	// stores e. Appends in one tenant are serialized; none is lost or forked.
	Append(ctx context.Context, e *ciam.AuditEvent) error
	// List returns events in sequence order.
	List(ctx context.Context, f AuditFilter) ([]*ciam.AuditEvent, error)
}

// Clients holds the tenant's OAuth clients.
type Clients interface {
	// Create inserts c; ErrConflict if the id is taken.
	Create(ctx context.Context, c *ciam.Client) error
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id ciam.ClientID) (*ciam.Client, error)
	// List returns clients ordered by id after the cursor, at most limit (capped at 1000).
	List(ctx context.Context, after ciam.ClientID, limit int) ([]*ciam.Client, error)
	// Update writes c if c.Version is current and increments it; ErrConflict
	// if stale, ErrNotFound if missing.
	Update(ctx context.Context, c *ciam.Client) error
	// Delete removes the client and everything issued to it (codes, refresh
	// tokens, grants); ErrNotFound if missing.
	Delete(ctx context.Context, id ciam.ClientID) error
}

// SigningKeys holds the tenant's token signing keys.
type SigningKeys interface {
	// Create inserts k; ErrConflict if the id is taken.
	Create(ctx context.Context, k *ciam.SigningKey) error
	// List returns every key that is not past its ExpiresAt at now, oldest first.
	List(ctx context.Context, now time.Time) ([]*ciam.SigningKey, error)
	// Retire stops key id from signing at retired and keeps it published
	// until expires; ErrNotFound if there is no such unretired key.
	Retire(ctx context.Context, id string, retired, expires time.Time) error
	// DeleteExpired removes keys whose ExpiresAt is before now.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// AuthCodes holds authorization codes.
type AuthCodes interface {
	Create(ctx context.Context, c *ciam.AuthCode) error
	// Get finds a code by hash, consumed or not; ErrNotFound if unknown.
	Get(ctx context.Context, hash []byte) (*ciam.AuthCode, error)
	// Consume marks the code redeemed at at with one conditional update.
	// ErrConflict if it was redeemed already (a replay): of two racing
	// callers, on one node or several, exactly one succeeds.
	Consume(ctx context.Context, hash []byte, at time.Time) error
	// DeleteExpired removes codes that expired before cutoff.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}

// RefreshTokens holds rotating refresh tokens.
type RefreshTokens interface {
	Create(ctx context.Context, t *ciam.RefreshToken) error
	// ByHash finds the token whose current hash is hash, live or not;
	// ErrNotFound if none (a rotated-away hash included: see SpentFamily).
	ByHash(ctx context.Context, hash []byte) (*ciam.RefreshToken, error)
	// Rotate moves token id from oldHash to newHash in place with one
	// conditional update, setting CreatedAt to at and IdleExpiresAt to
	// idleExpires, and remembers oldHash as spent until the family's
	// absolute end. ErrConflict if the token no longer holds oldHash or is
	// revoked (reuse or a lost race: exactly one of racing callers
	// succeeds); ErrNotFound for an unknown id.
	Rotate(ctx context.Context, id string, oldHash, newHash []byte, at, idleExpires time.Time) error
	// SpentFamily returns the family and client of a hash that Rotate
	// replaced; ErrNotFound if hash was never spent (or its family has been
	// swept).
	SpentFamily(ctx context.Context, hash []byte) (string, ciam.ClientID, error)
	// RevokeFamily revokes every unrevoked token of the family.
	RevokeFamily(ctx context.Context, family string, at time.Time) (int, error)
	// RevokeGrant revokes every unrevoked token of user issued to client.
	RevokeGrant(ctx context.Context, user ciam.UserID, client ciam.ClientID, at time.Time) (int, error)
	// RevokeSession revokes every unrevoked token tied to the browser session.
	RevokeSession(ctx context.Context, session ciam.SessionID, at time.Time) (int, error)
	// RevokeUser revokes every unrevoked token of the user but those tied
	// to browser session keep (empty: keep none).
	RevokeUser(ctx context.Context, user ciam.UserID, keep ciam.SessionID, at time.Time) (int, error)
	// FamilyRevoked reports whether the family has a revoked token (an access
	// token minted from a revoked family is no longer valid).
	FamilyRevoked(ctx context.Context, family string) (bool, error)
	// DeleteExpired removes tokens (and spent hashes) whose family ended
	// before cutoff, and returns how many tokens it removed.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
	// AccessState reads in one query what decides, beyond its signature
	// and times, whether an access token still holds: whether family (may
	// be empty) has a revoked token, user's status (user may be empty) and
	// whether client exists.
	AccessState(ctx context.Context, family string, user ciam.UserID, client ciam.ClientID) (AccessState, error)
}

// LogoutClient is a client to notify when a session ends.
type LogoutClient struct {
	ID                   ciam.ClientID
	BackchannelLogoutURI string
}

// AccessState is what RefreshTokens.AccessState reads.
type AccessState struct {
	FamilyRevoked bool
	UserStatus    ciam.UserStatus // empty when the user does not exist or none was asked for
	ClientExists  bool
	// User is the user asked for, read in the same query (userinfo needs
	// the claims); nil when none was asked for or it does not exist.
	User *ciam.User
}

// Grants holds users' consents to clients.
type Grants interface {
	// Get returns ErrNotFound when the user has not granted the client anything.
	Get(ctx context.Context, user ciam.UserID, client ciam.ClientID) (*ciam.Grant, error)
	// Put creates or replaces the grant.
	Put(ctx context.Context, g *ciam.Grant) error
	// ListByUser returns the user's grants ordered by client id.
	ListByUser(ctx context.Context, user ciam.UserID) ([]*ciam.Grant, error)
	// Delete removes the grant; ErrNotFound if there is none.
	Delete(ctx context.Context, user ciam.UserID, client ciam.ClientID) error
}

// Nonces records single-use values (JWT ids of client assertions, and later
// one-time codes) until they expire, shared by every server process.
type Nonces interface {
	// Use records value in namespace until expires; ErrConflict if it was
	// recorded already and has not expired at now. Of racing callers exactly
	// one succeeds.
	Use(ctx context.Context, namespace, value string, now, expires time.Time) error
	// DeleteExpired removes values that expired before cutoff.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}

// OutboxFilter selects outbox messages for List.
type OutboxFilter struct {
	Kind   string            // empty: every kind
	Status ciam.OutboxStatus // empty: every status
	Before string            // cursor: messages whose id sorts before this (newest first)
	Limit  int               // the store caps it at 1000
}

// Outbox holds the tenant's outgoing messages.
type Outbox interface {
	// Add stores m as pending; ErrConflict if its id is taken.
	Add(ctx context.Context, m *ciam.OutboxMessage) error
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id string) (*ciam.OutboxMessage, error)
	// List returns messages newest first (by id, which sorts by creation
	// only roughly; callers page with Before).
	List(ctx context.Context, f OutboxFilter) ([]*ciam.OutboxMessage, error)
	// Finish records the outcome of the attempt made under lease: status
	// sent or dead (DoneAt = at), or pending again, due at next. ErrConflict
	// if lease no longer holds the message (it lapsed and another worker
	// claimed it, or it is finished), and nothing changes.
	Finish(ctx context.Context, id, lease string, status ciam.OutboxStatus, at, next time.Time, lastErr string) error
	// DeleteDone removes sent and dead messages finished before cutoff.
	DeleteDone(ctx context.Context, cutoff time.Time) (int, error)
}

// EmailTokens holds the tenant's single-use tokens sent by mail.
type EmailTokens interface {
	// Create stores t and ends every live token of the same user and purpose
	// (their UsedAt becomes t.CreatedAt): a newer link or code supersedes
	// the older ones. ErrNotFound if the user is not in the tenant,
	// ErrConflict if the id or link hash is taken.
	Create(ctx context.Context, t *ciam.EmailToken) error
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id string) (*ciam.EmailToken, error)
	// ByLinkHash returns the token whose link secret hashes to hash, live or
	// not; ErrNotFound if none.
	ByLinkHash(ctx context.Context, hash []byte) (*ciam.EmailToken, error)
	// Latest returns the user's newest token of purpose, live or not;
	// ErrNotFound if none.
	Latest(ctx context.Context, user ciam.UserID, purpose string) (*ciam.EmailToken, error)
	// CountSince counts the user's tokens of purpose created at or after since.
	CountSince(ctx context.Context, user ciam.UserID, purpose string, since time.Time) (int, error)
	// Consume ends a live token at at, in one conditional update: of racing
	// redeemers exactly one succeeds. ErrConflict if it is used, superseded,
	// revoked or expired at at; ErrNotFound if it does not exist.
	Consume(ctx context.Context, id string, at time.Time) error
	// Attempt counts one code tried against a live token that has had fewer
	// than max attempts, before the code is compared, so racing guesses
	// cannot exceed max. ErrConflict when the token is not live at at or its
	// attempts are used up; ErrNotFound if it does not exist.
	Attempt(ctx context.Context, id string, max int, at time.Time) error
	// Revoke ends the user's live tokens of the given purposes at at and
	// returns how many it ended.
	Revoke(ctx context.Context, user ciam.UserID, purposes []string, at time.Time) (int, error)
	// DeleteExpired removes tokens that expired before cutoff.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}

// Passkeys holds the tenant's WebAuthn credentials.
type Passkeys interface {
	// Create stores p. ErrConflict if its id or credential id is taken in
	// the tenant (by this user or another), ErrNotFound if the user is not
	// in the tenant.
	Create(ctx context.Context, p *ciam.Passkey) error
	// ByCredentialID returns ErrNotFound for an unknown credential.
	ByCredentialID(ctx context.Context, credentialID []byte) (*ciam.Passkey, error)
	// ListByUser returns the user's passkeys, oldest first.
	ListByUser(ctx context.Context, user ciam.UserID) ([]*ciam.Passkey, error)
	// Rename sets the name of the user's passkey id; ErrNotFound if the
	// user has no such passkey.
	Rename(ctx context.Context, user ciam.UserID, id, name string) error
	// Delete removes the user's passkey id; ErrNotFound if the user has no
	// such passkey.
	Delete(ctx context.Context, user ciam.UserID, id string) error
	// RecordUse sets the counter from oldCount to newCount, the backup
	// state and LastUsedAt, in one conditional update; ErrConflict if the
	// counter is no longer oldCount (two assertions racing), ErrNotFound if
	// the passkey was removed.
	RecordUse(ctx context.Context, id string, oldCount, newCount uint32, backupState bool, at time.Time) error
}

// TOTP holds one TOTP authenticator per user.
type TOTP interface {
	// Get returns ErrNotFound when the user has none.
	Get(ctx context.Context, user ciam.UserID) (*ciam.TOTPSecret, error)
	// Put creates or replaces the user's authenticator.
	Put(ctx context.Context, s *ciam.TOTPSecret) error
	// Delete removes it; ErrNotFound when the user has none.
	Delete(ctx context.Context, user ciam.UserID) error
	// UseStep records that the code of time step was accepted, with one
	// conditional update: ErrConflict if step is not after the last step
	// accepted (a replay: of racing callers with the same code exactly one
	// succeeds), ErrNotFound when the user has no authenticator.
	UseStep(ctx context.Context, user ciam.UserID, step int64) error
}

// RecoveryCodes holds each user's single-use recovery codes, by hash.
type RecoveryCodes interface {
	// Replace stores a new set for the user, dropping the old one.
	Replace(ctx context.Context, user ciam.UserID, hashes [][]byte, at time.Time) error
	// Use spends the code whose hash is hash, with one conditional update.
	// ErrNotFound if the user has no such unused code (unknown, or spent
	// already: of racing callers exactly one succeeds).
	Use(ctx context.Context, user ciam.UserID, hash []byte, at time.Time) error
	// Remaining counts the user's unused codes.
	Remaining(ctx context.Context, user ciam.UserID) (int, error)
	// Delete drops the user's codes.
	Delete(ctx context.Context, user ciam.UserID) error
}

// AuthFlows holds the tenant's short-lived authentication flows.
type AuthFlows interface {
	// Create stores f; ErrConflict if its id is taken.
	Create(ctx context.Context, f *ciam.AuthFlow) error
	// Get returns the flow, live or not; ErrNotFound if unknown.
	Get(ctx context.Context, id string) (*ciam.AuthFlow, error)
	// Attempt counts one code tried against a live flow that has had fewer
	// than max attempts, before the code is compared. ErrConflict when the
	// flow is not live at at or its attempts are used up; ErrNotFound if
	// it does not exist.
	Attempt(ctx context.Context, id string, max int, at time.Time) error
	// Consume ends a live flow at at, in one conditional update: of racing
	// completions exactly one succeeds. ErrConflict if it is used or
	// expired at at; ErrNotFound if it does not exist.
	Consume(ctx context.Context, id string, at time.Time) error
	// DeleteExpired removes flows that expired before cutoff.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}
