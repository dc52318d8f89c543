// Package totp holds the rules of time-based one-time passwords (RFC 6238):
// new secrets with their otpauth URI and a QR code drawn here (no outside
// service sees the secret), and checking a code within one 30-second step
// of drift. It reports which time step a code belongs to, so the caller
// can refuse any step at or before the last one accepted (the replay guard
// the store keeps for every server process).
package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// Period is the length of a time step.
const Period = 30 * time.Second

// Drift is how many steps before and after the current one are accepted.
const Drift = 1

// SecretSize is the length of a new secret in bytes (160 bits, RFC 4226's
// recommendation for HMAC-SHA1).
const SecretSize = 20

// Enrolment is a new secret and the ways to hand it to an authenticator app.
type Enrolment struct {
	Secret []byte
	// Text is the secret in base32, grouped by four for typing.
	Text string
	// URI is the otpauth:// URI the QR code encodes.
	URI string
	// QR is the QR code as a data: URI of a PNG image.
	QR string
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// New makes a secret for account (shown in the app) at issuer.
func New(issuer, account string) (*Enrolment, error) {
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	return ForSecret(issuer, account, secret)
}

// ForSecret builds the enrolment of an existing secret (to show the same QR
// code again when a first code was mistyped).
func ForSecret(issuer, account string, secret []byte) (*Enrolment, error) {
	if issuer == "" {
		issuer = "Gatehouse"
	}
	if account == "" {
		account = issuer
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Secret: secret,
		Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp qr png: %w", err)
	}
	text := b32.EncodeToString(secret)
	var groups []string
	for i := 0; i < len(text); i += 4 {
		groups = append(groups, text[i:min(i+4, len(text))])
	}
	return &Enrolment{
		Secret: secret, Text: strings.Join(groups, " "), URI: key.URL(),
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// Step is the time step of t.
func Step(t time.Time) int64 {
	return t.Unix() / int64(Period/time.Second)
}

// Normalize strips the spaces and dashes people type into codes.
func Normalize(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' {
			return -1
		}
		return r
	}, code)
}

// Code returns the code of secret at step.
func Code(secret []byte, step int64) (string, error) {
	return hotp.GenerateCodeCustom(b32.EncodeToString(secret), uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// Check returns the step whose code is code, trying the step of now and
// Drift steps either side (the latest first); ok is false when none
// matches. Every step is compared in constant time.
func Check(secret []byte, code string, now time.Time) (step int64, ok bool) {
	code = Normalize(code)
	if len(code) != 6 {
		return 0, false
	}
	cur := Step(now)
	for s := cur + Drift; s >= cur-Drift; s-- {
		want, err := Code(secret, s)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}
