package oidc

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// ACR values, in discovery and in tokens (see ciam.ACRSingleFactor):
// aal1 is one factor (a password, a mailed link or code, a passkey that
// did not verify its user); aal2 is two factors or a passkey that did.
const (
	ACRSingleFactor = ciam.ACRSingleFactor
	ACRMultiFactor  = ciam.ACRMultiFactor
)

// metadata builds the provider's metadata document for tenant t.
func (h *Handler) metadata(t *ciam.Tenant, openid bool) map[string]any {
	iss := h.Issuer(t)
	algs := []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA}
	authMethods := []string{ciam.AuthSecretBasic, ciam.AuthSecretPost, ciam.AuthPrivateKeyJWT, ciam.AuthNone}
	assertionAlgs := []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
	m := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/jwks.json",
		"introspection_endpoint":                iss + "/introspect",
		"revocation_endpoint":                   iss + "/revoke",
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "form_post"},
		"grant_types_supported":                 []string{ciam.GrantAuthorizationCode, ciam.GrantRefreshToken, ciam.GrantClientCredentials},
		"token_endpoint_auth_methods_supported": authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         assertionAlgs,
		"introspection_endpoint_auth_methods_supported":            authMethods[:3],
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"revocation_endpoint_auth_methods_supported":               authMethods,
		"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs,
		"code_challenge_methods_supported":                         []string{"S256"},
		"authorization_response_iss_parameter_supported":           true,
		"ui_locales_supported":                                     []string{"en", "de"},
		"service_documentation":                                    h.PublicURL.String(),
	}
	if openid {
		m["userinfo_endpoint"] = iss + "/userinfo"
		m["end_session_endpoint"] = iss + "/end_session"
		m["subject_types_supported"] = []string{"public"}
		m["id_token_signing_alg_values_supported"] = algs
		m["userinfo_signing_alg_values_supported"] = []string{"none"}
		m["claims_supported"] = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash", "name", "locale", "updated_at", "email", "email_verified"}
		m["acr_values_supported"] = []string{ACRSingleFactor, ACRMultiFactor}
		m["prompt_values_supported"] = []string{"none", "login", "consent", "create"}
		m["claims_parameter_supported"] = false
		m["request_parameter_supported"] = false
		m["request_uri_parameter_supported"] = false
		m["backchannel_logout_supported"] = true
		m["backchannel_logout_session_supported"] = true
		m["frontchannel_logout_supported"] = false
	}
	return m
}

// document serves a metadata document from bytes computed once per tenant version.
func (h *Handler) document(w http.ResponseWriter, t *ciam.Tenant, kind string) error {
	k := discoveryKey{tenant: t.ID, version: t.Version, kind: kind}
	h.mu.Lock()
	b, ok := h.discovery[k]
	h.mu.Unlock()
	if !ok {
		var err error
		if b, err = json.Marshal(h.metadata(t, kind == "openid")); err != nil {
			return err
		}
		b = append(b, '\n')
		h.mu.Lock()
		if h.discovery == nil || len(h.discovery) > 20000 {
			h.discovery = map[discoveryKey][]byte{}
		}
		h.discovery[k] = b
		h.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(b)
	return err
}

func (h *Handler) openIDConfiguration(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	return h.document(w, t, "openid")
}

func (h *Handler) authorizationServerMetadata(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	return h.document(w, t, "oauth")
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) error {
	b, err := h.Keys.JWKS(r.Context(), t.ID)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(`"kty"`)) {
		// A new tenant makes its first key when it first signs; publish it
		// now, so that a verifier that loads the set before the first token
		// (and caches it) does not start with an empty set.
		if _, err := h.Keys.Signer(r.Context(), t.ID, ciam.AlgES256); err != nil {
			return err
		}
		if b, err = h.Keys.JWKS(r.Context(), t.ID); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err = w.Write(b)
	return err
}
