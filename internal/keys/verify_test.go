package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestVerifyRefuses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")
	other := newTenant(t, s, "other")

	es := mustSigner(t, m, tenant, ciam.AlgES256)
	rs := mustSigner(t, m, tenant, ciam.AlgRS256)
	good := mustSign(t, es, claims{Sub: "u"}, TypeJWT)
	rsGood := mustSign(t, rs, claims{Sub: "u"}, TypeJWT)
	otherTok := mustSign(t, mustSigner(t, m, other, ciam.AlgES256), claims{Sub: "u"}, TypeJWT)
	esRow := keyByID(mustKeys(t, m, tenant), es.KeyID())
	rsRow := keyByID(mustKeys(t, m, tenant), rs.KeyID())

	b64 := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(good, ".")
	payload := b64([]byte(`{"sub":"u"}`))

	// sign builds a token with go-jose under key and the given headers.
	sign := func(alg jose.SignatureAlgorithm, key any, kid, typ string) string {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := sg.Sign([]byte(`{"sub":"admin"}`))
		if err != nil {
			t.Fatal(err)
		}
		out, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rsaPub := (*rsa.PublicKey)(nil)
	{
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rsRow.PublicJWK); err != nil {
			t.Fatal(err)
		}
		rsaPub = jwk.Key.(*rsa.PublicKey)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(rsaPub)
	attackerEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	embedded := func() string {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attackerEC},
			(&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := sg.Sign([]byte(`{"sub":"admin"}`))
		out, _ := obj.CompactSerialize()
		return out
	}()

	tests := []struct {
		name  string
		token string
		typ   string
		want  error
	}{
		{"alg none", b64([]byte(`{"alg":"none","kid":"`+es.KeyID()+`","typ":"JWT"}`)) + "." + payload + ".", TypeJWT, ErrSignature},
		{"alg none with a signature", b64([]byte(`{"alg":"none","kid":"`+es.KeyID()+`","typ":"JWT"}`)) + "." + payload + "." + parts[2], TypeJWT, ErrSignature},
		{"HS256 keyed with the public JWK", sign(jose.HS256, rsRow.PublicJWK, rs.KeyID(), "JWT"), TypeJWT, ErrSignature},
		{"HS256 keyed with the public key DER", sign(jose.HS256, rsaDER, rs.KeyID(), "JWT"), TypeJWT, ErrSignature},
		{"HS256 keyed with the ES256 JWK", sign(jose.HS256, esRow.PublicJWK, es.KeyID(), "JWT"), TypeJWT, ErrSignature},
		{"unknown kid", sign(jose.ES256, attackerEC, ciam.NewID(), "JWT"), TypeJWT, ErrUnknownKey},
		{"kid not ours in form", sign(jose.ES256, attackerEC, "../../etc/passwd", "JWT"), TypeJWT, ErrUnknownKey},
		{"no kid", sign(jose.ES256, attackerEC, "", "JWT"), TypeJWT, ErrUnknownKey},
		{"embedded jwk", embedded, TypeJWT, ErrUnknownKey},
		{"kid of another tenant", otherTok, TypeJWT, ErrUnknownKey},
		{"our kid, another key", sign(jose.ES256, attackerEC, es.KeyID(), "JWT"), TypeJWT, ErrSignature},
		{"alg differs from the key's", sign(jose.RS256, attackerRSA, es.KeyID(), "JWT"), TypeJWT, ErrSignature},
		{"wrong typ", good, TypeAccessToken, ErrType},
		{"wrong typ logout", mustSign(t, es, claims{}, TypeAccessToken), TypeLogout, ErrType},
		{"no typ", mustSign(t, es, claims{}, ""), TypeJWT, ErrType},
		{"typ expected absent", good, "", ErrType},
		{"typ application/ only", mustSign(t, es, claims{}, "application/"), "JWT", ErrType},
		{"tampered payload", parts[0] + "." + payload + "." + parts[2], TypeJWT, ErrSignature},
		{"tampered header", b64([]byte(`{"alg":"ES256","kid":"`+es.KeyID()+`","typ":"jwt"}`)) + "." + parts[1] + "." + parts[2], TypeJWT, ErrSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mustSign(t, es, claims{Sub: "v"}, TypeJWT), ".")[2], TypeJWT, ErrSignature},
		{"RS256 signature truncated", rsGood[:len(rsGood)-10], TypeJWT, ErrSignature},
		{"empty", "", TypeJWT, ErrMalformed},
		{"garbage", "not a token", TypeJWT, ErrMalformed},
		{"dots", "..", TypeJWT, ErrMalformed},
		{"four parts", good + ".x", TypeJWT, ErrMalformed},
		{"bad base64", "a.b.c", TypeJWT, ErrMalformed},
		{"header not JSON", b64([]byte("hello")) + "." + payload + "." + parts[2], TypeJWT, ErrMalformed},
		{"JSON serialization", `{"payload":"` + payload + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, TypeJWT, ErrMalformed},
		{"too long", parts[0] + "." + strings.Repeat("A", maxTokenBytes) + "." + parts[2], TypeJWT, ErrMalformed},
	}
	// The second pass runs after the genuine tokens were verified (and so
	// remembered): what was refused is still refused.
	for pass := range 2 {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/pass%d", tc.name, pass), func(t *testing.T) {
				var got claims
				kid, err := m.Verify(ctx, tenant, tc.token, tc.typ, &got)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %q, %v; want %v", kid, err, tc.want)
				}
				if kid != "" || got != (claims{}) {
					t.Fatalf("a refused token gave kid %q, claims %+v", kid, got)
				}
			})
		}
		for _, tok := range []string{good, rsGood} {
			var got claims
			if _, err := m.Verify(ctx, tenant, tok, TypeJWT, &got); err != nil || got.Sub != "u" {
				t.Fatalf("genuine token: %+v, %v", got, err)
			}
		}
		if _, err := m.Verify(ctx, other, otherTok, TypeJWT, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The genuine tokens still pass, and the payload must decode into claims.
	if _, err := m.Verify(ctx, tenant, good, TypeJWT, nil); err != nil {
		t.Fatal(err)
	}
	var wrongShape struct{ Sub int }
	if _, err := m.Verify(ctx, tenant, good, TypeJWT, &wrongShape); !errors.Is(err, ErrMalformed) {
		t.Fatalf("payload of the wrong shape: %v", err)
	}
}

func TestCheckTimes(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	leeway := 10 * time.Second
	for _, tc := range []struct {
		name          string
		exp, nbf, iat time.Time
		want          error
	}{
		{"valid", now.Add(time.Minute), now.Add(-time.Minute), now.Add(-time.Minute), nil},
		{"no nbf or iat", now.Add(time.Minute), time.Time{}, time.Time{}, nil},
		{"no exp", time.Time{}, time.Time{}, now, ErrMalformed},
		{"expired", now.Add(-time.Minute), time.Time{}, now.Add(-time.Hour), ErrExpired},
		{"expired within leeway", now.Add(-5 * time.Second), time.Time{}, time.Time{}, nil},
		{"at exp + leeway", now.Add(-leeway), time.Time{}, time.Time{}, ErrExpired},
		{"nbf within leeway", now.Add(time.Minute), now.Add(5 * time.Second), time.Time{}, nil},
		{"nbf ahead", now.Add(time.Minute), now.Add(11 * time.Second), time.Time{}, ErrNotYetValid},
		{"iat within leeway", now.Add(time.Minute), time.Time{}, now.Add(10 * time.Second), nil},
		{"iat ahead", now.Add(time.Minute), time.Time{}, now.Add(time.Minute), ErrNotYetValid},
	} {
		if err := CheckTimes(now, tc.exp, tc.nbf, tc.iat, leeway); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
