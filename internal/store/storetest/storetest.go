// Package storetest is the conformance suite of the store contract: every
// behaviour of store.Store, tenant isolation and concurrency included, as a
// table of cases that each implementation runs with Run. store/sqlite runs it
// on every `go test`; store/postgres runs it when GATEHOUSE_TEST_POSTGRES
// names a database. A new store method is not done without a case here.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Run runs every conformance case as a parallel subtest, each on a fresh
// store. open must return an empty, migrated store; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.run(t, s)
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

func cases() []testCase {
	return []testCase{
		{"System/Ping", systemPing},
		{"System/MigrationsCurrent", systemMigrationsCurrent},
		{"System/TenantsPaging", systemTenantsPaging},
		{"System/ListedTenants", systemListedTenants},

		{"Tenants/CreateGet", tenantsCreateGet},
		{"Tenants/Duplicate", tenantsDuplicate},
		{"Tenants/CreateOtherTenant", tenantsCreateOtherTenant},
		{"Tenants/NotFound", tenantsNotFound},
		{"Tenants/Update", tenantsUpdate},
		{"Tenants/StaleUpdate", tenantsStaleUpdate},
		{"Tenants/UpdateSlugTaken", tenantsUpdateSlugTaken},

		{"Users/CreateGet", usersCreateGet},
		{"Users/DuplicateEmail", usersDuplicateEmail},
		{"Users/DuplicateID", usersDuplicateID},
		{"Users/ConflictKeepsTxUsable", usersConflictKeepsTxUsable},
		{"Users/NoEmail", usersNoEmail},
		{"Users/UnknownTenant", usersUnknownTenant},
		{"Users/NotFound", usersNotFound},
		{"Users/Update", usersUpdate},
		{"Users/StaleUpdate", usersStaleUpdate},
		{"Users/UpdateEmailTaken", usersUpdateEmailTaken},
		{"Users/RecordLogin", usersRecordLogin},
		{"Users/ListPaging", usersListPaging},
		{"Users/ListStatus", usersListStatus},
		{"Users/ConcurrentSameEmail", usersConcurrentSameEmail},

		{"Passwords/GetSetReplace", passwordsGetSetReplace},
		{"Passwords/UnknownUser", passwordsUnknownUser},

		{"Sessions/CreateLookup", sessionsCreateLookup},
		{"Sessions/CreateConflicts", sessionsCreateConflicts},
		{"Sessions/Touch", sessionsTouch},
		{"Sessions/ListActive", sessionsListActive},
		{"Sessions/Revoke", sessionsRevoke},
		{"Sessions/RevokeAll", sessionsRevokeAll},
		{"Sessions/DeleteExpired", sessionsDeleteExpired},
		{"Sessions/UntrustedText", sessionsUntrustedText},
		{"Sessions/LogoutClients", sessionsLogoutClients},
		{"Sessions/Reauthenticate", sessionsReauthenticate},
		{"Sessions/ConcurrentReauthenticate", sessionsConcurrentReauthenticate},

		{"Audit/Chain", auditChain},
		{"Audit/ListFilter", auditListFilter},
		{"Audit/ConcurrentAppends", auditConcurrentAppends},
		{"Audit/UntrustedText", auditUntrustedText},

		{"Clients/CreateGet", clientsCreateGet},
		{"Clients/CreateConflicts", clientsCreateConflicts},
		{"Clients/ListPaging", clientsListPaging},
		{"Clients/Update", clientsUpdate},
		{"Clients/StaleUpdate", clientsStaleUpdate},
		{"Clients/DeleteCascades", clientsDeleteCascades},

		{"SigningKeys/CreateList", signingKeysCreateList},
		{"SigningKeys/Retire", signingKeysRetire},
		{"SigningKeys/DeleteExpired", signingKeysDeleteExpired},

		{"AuthCodes/CreateGet", authCodesCreateGet},
		{"AuthCodes/CreateConflicts", authCodesCreateConflicts},
		{"AuthCodes/ConsumeOnce", authCodesConsumeOnce},
		{"AuthCodes/ConcurrentConsume", authCodesConcurrentConsume},
		{"AuthCodes/DeleteExpired", authCodesDeleteExpired},

		{"RefreshTokens/CreateByHash", refreshCreateByHash},
		{"RefreshTokens/RotateOnce", refreshRotateOnce},
		{"RefreshTokens/ConcurrentRotate", refreshConcurrentRotate},
		{"RefreshTokens/Revoke", refreshRevoke},
		{"RefreshTokens/DeleteExpired", refreshDeleteExpired},
		{"RefreshTokens/AccessState", refreshAccessState},

		{"Grants/PutGetList", grantsPutGetList},
		{"Grants/Upsert", grantsUpsert},
		{"Grants/Delete", grantsDelete},

		{"Tx/WriteOneStatement", txWriteOneStatement},

		{"Nonces/UseOnce", noncesUseOnce},
		{"Nonces/ExpiredReusable", noncesExpiredReusable},
		{"Nonces/ConcurrentUse", noncesConcurrentUse},
		{"Nonces/DeleteExpired", noncesDeleteExpired},

		{"OAuth/UntrustedText", oauthUntrustedText},

		{"Outbox/AddGetList", outboxAddGetList},
		{"Outbox/ClaimFinish", outboxClaimFinish},
		{"Outbox/ClaimOrderAndLimit", outboxClaimOrderAndLimit},
		{"Outbox/ConcurrentClaim", outboxConcurrentClaim},
		{"Outbox/CountsAndDelete", outboxCountsAndDelete},

		{"EmailTokens/CreateGet", emailTokensCreateGet},
		{"EmailTokens/Supersede", emailTokensSupersede},
		{"EmailTokens/ConsumeOnce", emailTokensConsumeOnce},
		{"EmailTokens/ConcurrentConsume", emailTokensConcurrentConsume},
		{"EmailTokens/AttemptLimit", emailTokensAttemptLimit},
		{"EmailTokens/RevokeCountDelete", emailTokensRevokeCountDelete},

		{"Passkeys/CreateGet", passkeysCreateGet},
		{"Passkeys/RenameDelete", passkeysRenameDelete},
		{"Passkeys/RecordUse", passkeysRecordUse},
		{"Passkeys/ConcurrentRecordUse", passkeysConcurrentRecordUse},

		{"TOTP/PutGetDelete", totpPutGetDelete},
		{"TOTP/UseStep", totpUseStep},
		{"TOTP/ConcurrentUseStep", totpConcurrentUseStep},

		{"RecoveryCodes/ReplaceUse", recoveryCodesReplaceUse},
		{"RecoveryCodes/ConcurrentUse", recoveryCodesConcurrentUse},

		{"AuthFlows/CreateGet", authFlowsCreateGet},
		{"AuthFlows/ConsumeOnce", authFlowsConsumeOnce},
		{"AuthFlows/ConcurrentConsume", authFlowsConcurrentConsume},
		{"AuthFlows/AttemptLimit", authFlowsAttemptLimit},
		{"AuthFlows/DeleteExpired", authFlowsDeleteExpired},

		{"Settings/PutGetDelete", settingsPutGetDelete},
		{"Settings/PutIfAbsentRace", settingsPutIfAbsentRace},
		{"Settings/DeleteRace", settingsDeleteRace},

		{"Tx/RollbackOnError", txRollbackOnError},
		{"Tx/ErrorReturnedAsIs", txErrorReturnedAsIs},
		{"Tx/PanicRollsBack", txPanicRollsBack},
		{"Tx/ViewIsReadOnly", txViewIsReadOnly},
		{"Tx/ReadIsReadOnly", txReadIsReadOnly},
		{"Tx/ConcurrentUpdate", txConcurrentUpdate},

		{"Isolation/Tenant", isolationTenant},
		{"Isolation/Users", isolationUsers},
		{"Isolation/Passwords", isolationPasswords},
		{"Isolation/Sessions", isolationSessions},
		{"Isolation/Audit", isolationAudit},
		{"Isolation/Clients", isolationClients},
		{"Isolation/SigningKeys", isolationSigningKeys},
		{"Isolation/AuthCodes", isolationAuthCodes},
		{"Isolation/RefreshTokens", isolationRefreshTokens},
		{"Isolation/Grants", isolationGrants},
		{"Isolation/Nonces", isolationNonces},
		{"Isolation/Outbox", isolationOutbox},
		{"Isolation/EmailTokens", isolationEmailTokens},
		{"Isolation/Passkeys", isolationPasskeys},
		{"Isolation/TOTP", isolationTOTP},
		{"Isolation/RecoveryCodes", isolationRecoveryCodes},
		{"Isolation/AuthFlows", isolationAuthFlows},

		{"Time/UTCRoundTrip", timeUTCRoundTrip},
		{"Time/OAuthUTCRoundTrip", timeOAuthUTCRoundTrip},
	}
}

// base is the suite's "now": services pass times in, so no case reads the
// clock. It has nanoseconds, which stores keep to the microsecond.
func base() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC) }

// stored is t as a store reads it back: UTC, whole microseconds.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func mustTx(t *testing.T, s store.Store, tenant ciam.TenantID, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Tx(t.Context(), tenant, fn); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

func mustView(t *testing.T, s store.Store, tenant ciam.TenantID, fn func(store.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), tenant, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// wantErr fails unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// wantEqual fails unless got and want are deeply equal.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func tenantFixture(slug string) *ciam.Tenant {
	return &ciam.Tenant{
		ID:              ciam.TenantID(ciam.NewID()),
		Slug:            slug,
		DisplayName:     "Tenant " + slug,
		MFAPolicy:       ciam.MFAOptional,
		SessionIdle:     ciam.DefaultSessionIdle,
		SessionAbsolute: ciam.DefaultSessionAbsolute,
		CreatedAt:       base(),
		UpdatedAt:       base(),
	}
}

func newTenant(t *testing.T, s store.Store, slug string) *ciam.Tenant {
	t.Helper()
	tn := tenantFixture(slug)
	mustTx(t, s, tn.ID, func(tx store.Tx) error { return tx.Tenant().Create(t.Context(), tn) })
	return tn
}

func userFixture(email string) *ciam.User {
	return &ciam.User{
		ID:        ciam.UserID(ciam.NewID()),
		Email:     email,
		Name:      "Name of " + email,
		Status:    ciam.UserActive,
		CreatedAt: base(),
		UpdatedAt: base(),
		PIIKey:    []byte("0123456789abcdef0123456789abcdef"),
	}
}

func newUser(t *testing.T, s store.Store, tenant ciam.TenantID, email string) *ciam.User {
	t.Helper()
	u := userFixture(email)
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Users().Create(t.Context(), u) })
	return u
}

// sessionFixture is a session created at created, idle for an hour, absolute for a day.
func sessionFixture(user ciam.UserID, created time.Time) *ciam.Session {
	id := ciam.NewID()
	return &ciam.Session{
		ID:            ciam.SessionID(id),
		UserID:        user,
		TokenHash:     []byte("token-hash-" + id),
		CreatedAt:     created,
		AuthTime:      created,
		LastSeenAt:    created,
		IdleExpiresAt: created.Add(time.Hour),
		ExpiresAt:     created.Add(24 * time.Hour),
		IP:            "192.0.2.1",
		UserAgent:     "storetest",
		AMR:           []string{"pwd"},
		ACR:           "urn:gatehouse:aal1",
	}
}

func newSession(t *testing.T, s store.Store, tenant ciam.TenantID, user ciam.UserID, created time.Time) *ciam.Session {
	t.Helper()
	ss := sessionFixture(user, created)
	mustTx(t, s, tenant, func(tx store.Tx) error { return tx.Sessions().Create(t.Context(), ss) })
	return ss
}

// collect runs fn n times concurrently and returns the n errors.
func collect(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			errs[i] = fn(i)
		}()
	}
	for range n {
		<-done
	}
	return errs
}

func slugN(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }
