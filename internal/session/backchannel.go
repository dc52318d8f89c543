package session

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// KindLogoutNotice is the outbox kind of a back-channel logout notice: the
// OpenID provider tells a client, server to server, that a session it was
// issued tokens for has ended (OpenID Connect Back-Channel Logout 1.0).
const KindLogoutNotice = "backchannel_logout"

// LogoutNotice is the payload of a KindLogoutNotice message.
type LogoutNotice struct {
	ClientID  ciam.ClientID  `json:"client_id"`
	UserID    ciam.UserID    `json:"sub"`
	SessionID ciam.SessionID `json:"sid"`
}

// EndAll ends every live session of the user but keep (empty: every one),
// queues the back-channel logout notices of the ended ones, and revokes the
// user's refresh tokens but those tied to keep, in tx. It is what a
// password change or reset, a disabled account and an undone email change
// share. It returns the ended sessions.
func EndAll(ctx context.Context, tx store.Tx, user ciam.UserID, keep ciam.SessionID, now time.Time) ([]ciam.SessionID, error) {
	ended, err := tx.Sessions().RevokeAll(ctx, user, keep, now)
	if err != nil {
		return nil, err
	}
	if err := NotifyEnded(ctx, tx, user, ended, now); err != nil {
		return nil, err
	}
	if _, err := tx.RefreshTokens().RevokeUser(ctx, user, keep, now); err != nil {
		return nil, err
	}
	return ended, nil
}

// NotifyEnded queues a logout notice for every client that was issued a code
// for one of the user's ended sessions and has a back-channel logout URI.
// Call it in the transaction that ends them, so a notice is queued exactly
// when the session really ended; delivery happens later and never holds up
// the user's logout.
func NotifyEnded(ctx context.Context, tx store.Tx, user ciam.UserID, ended []ciam.SessionID, now time.Time) error {
	if len(ended) == 0 {
		return nil
	}
	bySession, err := tx.Sessions().LogoutClients(ctx, ended)
	if err != nil {
		return err
	}
	for _, sid := range ended {
		for _, c := range bySession[sid] {
			if _, err := outbox.Add(ctx, tx, KindLogoutNotice, LogoutNotice{ClientID: c.ID, UserID: user, SessionID: sid}, now); err != nil {
				return err
			}
		}
	}
	return nil
}
