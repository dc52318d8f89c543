package ciam

import "time"

// ClientID identifies an OAuth client inside a tenant. It is public.
type ClientID string

// Token endpoint authentication methods (RFC 7591 names).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// Grant types a client may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Signing algorithms for tokens.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// Client is an OAuth application registered in a tenant.
type Client struct {
	ID              ClientID
	TenantID        TenantID
	Name            string
	Public          bool   // cannot keep a secret: authenticates with "none" and PKCE
	FirstParty      bool   // the tenant's own application: no consent page
	SecretHash      []byte // SHA-256 of the generated secret; empty for public clients
	SecretRotatedAt time.Time
	TokenAuthMethod string // one of the Auth* constants
	JWKS            string // public keys (a JWK Set) for private_key_jwt
	RedirectURIs    []string
	PostLogoutURIs  []string
	GrantTypes      []string
	Scopes          []string // scopes the client may obtain; client_credentials tokens get these
	Audiences       []string // audiences of client_credentials access tokens
	IDTokenAlg      string   // empty: the tenant's default (ES256)
	AccessTokenTTL  time.Duration
	RefreshIdleTTL  time.Duration
	RefreshMaxTTL   time.Duration
	// RefreshWithSession ends the client's refresh tokens with the browser
	// session they were issued in.
	RefreshWithSession   bool
	BackchannelLogoutURI string
	CreatedAt            time.Time
	UpdatedAt            time.Time
	Version              int64
}

// HasGrant reports whether the client may use grant type g.
func (c *Client) HasGrant(g string) bool {
	for _, x := range c.GrantTypes {
		if x == g {
			return true
		}
	}
	return false
}

// SigningKey is a tenant's key for signing tokens. The private half is
// sealed with the deployment's key-encryption key.
type SigningKey struct {
	ID            string // the JWS "kid"
	TenantID      TenantID
	Alg           string // AlgES256, AlgRS256 or AlgEdDSA
	PublicJWK     []byte // the public key as a JWK (JSON)
	PrivateSealed []byte // the private key, encrypted at rest
	CreatedAt     time.Time
	ActiveAt      time.Time // signs from this time; published in the JWKS before it
	RetiredAt     time.Time // zero while it may sign
	ExpiresAt     time.Time // zero while published; after it, removed from the JWKS
}

// AuthCode is an authorization code. Only its SHA-256 is stored.
type AuthCode struct {
	Hash          []byte
	TenantID      TenantID
	ClientID      ClientID
	UserID        UserID
	SessionID     SessionID
	RedirectURI   string
	Scopes        []string
	Nonce         string
	CodeChallenge string // S256
	AuthTime      time.Time
	ACR           string
	AMR           []string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	ConsumedAt    time.Time // zero until redeemed
}

// RefreshToken is the current token of a family: the tokens issued from one
// authorization code. A rotation replaces Hash in place (and CreatedAt and
// IdleExpiresAt); the replaced hash is remembered as spent, and presenting
// it again revokes the family. Only the SHA-256 of a token is stored.
type RefreshToken struct {
	ID            string
	Hash          []byte
	TenantID      TenantID
	FamilyID      string
	ClientID      ClientID
	UserID        UserID
	SessionID     SessionID // empty when not tied to a browser session
	Scopes        []string
	AuthTime      time.Time
	ACR           string
	AMR           []string
	CreatedAt     time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time // the family's absolute end
	RevokedAt     time.Time
}

// Live reports whether the token may be exchanged at now.
func (t *RefreshToken) Live(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.IdleExpiresAt) && now.Before(t.ExpiresAt)
}

// Grant records what a user allowed a client: the consent that later
// authorization requests reuse.
type Grant struct {
	TenantID  TenantID
	UserID    UserID
	ClientID  ClientID
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}
