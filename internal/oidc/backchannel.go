package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

// TypeLogout is the JWS "typ" of a logout token (OpenID Connect Back-Channel
// Logout 1.0, section 2.4).
const TypeLogout = "logout+jwt"

// eventBackchannelLogout is the member of a logout token's "events" claim.
const eventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is how long a logout token is valid: it is posted at once.
const logoutTokenTTL = 2 * time.Minute

// BackchannelClient is the HTTP client used for back-channel logout when
// Handler.Backchannel is nil: a short timeout, and redirects are not
// followed (the registered URI is the only place the token may go).
func BackchannelClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// DeliverLogoutNotice is the outbox deliverer of session.KindLogoutNotice:
// it signs a logout token for the client's session and posts it to the
// client's registered back-channel logout URI. A 2xx answer delivers it;
// a timeout, a network error, 408, 429 or a 5xx is tried again later; any
// other answer is permanent. A client deleted, or no longer registered for
// back-channel logout, needs no notice.
func (h *Handler) DeliverLogoutNotice(ctx context.Context, m *ciam.OutboxMessage) error {
	var n session.LogoutNotice
	if err := json.Unmarshal(m.Payload, &n); err != nil {
		return outbox.Permanent(fmt.Errorf("logout notice: %w", err))
	}
	t, err := h.Tenants.ByID(ctx, m.TenantID)
	if e := ciam.As(err); e != nil && e.Kind == ciam.NotFound {
		return nil // the tenant is gone, and its clients with it
	}
	if err != nil {
		return err
	}
	c, err := h.Clients.Get(ctx, t.ID, n.ClientID)
	if e := ciam.As(err); e != nil && e.Kind == ciam.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if c.BackchannelLogoutURI == "" {
		return nil
	}
	tok, err := h.logoutToken(ctx, t, c, n)
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return outbox.Permanent(fmt.Errorf("back-channel logout URI: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := h.Backchannel
	if hc == nil {
		hc = BackchannelClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("back-channel logout to client %s: %w", c.ID, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("back-channel logout to client %s: HTTP %d", c.ID, resp.StatusCode)
	}
	return outbox.Permanent(fmt.Errorf("back-channel logout to client %s: HTTP %d", c.ID, resp.StatusCode))
}

// logoutToken signs the logout token for one client's session, with the
// algorithm of the client's ID tokens, which the client already verifies.
func (h *Handler) logoutToken(ctx context.Context, t *ciam.Tenant, c *ciam.Client, n session.LogoutNotice) (string, error) {
	alg := c.IDTokenAlg
	if alg == "" {
		alg = ciam.AlgES256
	}
	signer, err := h.Keys.Signer(ctx, t.ID, alg)
	if err != nil {
		return "", err
	}
	now := h.now()
	claims := map[string]any{
		"iss": h.Issuer(t), "aud": string(c.ID), "sub": string(n.UserID), "sid": string(n.SessionID),
		"iat": now.Unix(), "exp": now.Add(logoutTokenTTL).Unix(), "jti": ciam.NewID(),
		"events": map[string]any{eventBackchannelLogout: map[string]any{}},
	}
	return signer.Sign(claims, TypeLogout)
}
