package ciam

import (
	"crypto/rand"
	"encoding/base32"
	"regexp"
)

// TenantID identifies a tenant. It never changes, unlike the slug.
type TenantID string

// UserID identifies a user inside a tenant.
type UserID string

// SessionID identifies a browser session record. It is not the cookie secret.
type SessionID string

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a random 128-bit identifier as 26 lower-case Crockford base32 characters.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return idEncoding.EncodeToString(b[:])
}

// NewSecret returns 32 random bytes (256 bits) encoded for a cookie or a URL.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return idEncoding.EncodeToString(b[:])
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidSlug reports whether s can name a tenant in URLs.
func ValidSlug(s string) bool { return slugPattern.MatchString(s) }
