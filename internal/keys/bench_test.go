package keys

import (
	"context"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func FuzzVerify(f *testing.F) {
	s := openStore(f)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(f, s, "acme")
	known := map[string]bool{}
	for _, alg := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		sg := mustSigner(f, m, tenant, alg)
		known[sg.KeyID()] = true
		f.Add(mustSign(f, sg, claims{Sub: "u", Exp: 1}, TypeJWT))
	}
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwidHlwIjoiSldUIn0.e30.AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		var got claims
		kid, err := m.Verify(context.Background(), tenant, token, TypeJWT, &got)
		if err == nil && !known[kid] {
			t.Fatalf("accepted a token of kid %q", kid)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s := openStore(b)
	m := newManager(s, newClock(), testKEK(1))
	tenant := newTenant(b, s, "acme")
	payload := claims{Sub: "01hzyx3v4w5q6r7s8t9u0v1w2x", Exp: 1893456000}
	for _, alg := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		sg := mustSigner(b, m, tenant, alg)
		mustSign(b, sg, payload, TypeJWT)
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := sg.Sign(payload, TypeJWT); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignerAndSign is the token endpoint's path: look the key up, sign.
func BenchmarkSignerAndSign(b *testing.B) {
	s := openStore(b)
	m := newManager(s, newClock(), testKEK(1))
	tenant := newTenant(b, s, "acme")
	payload := claims{Sub: "01hzyx3v4w5q6r7s8t9u0v1w2x", Exp: 1893456000}
	ctx := context.Background()
	mustSigner(b, m, tenant, "")
	b.Run("Signer", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Signer(ctx, tenant, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Signer+Sign/ES256", func(b *testing.B) {
		for b.Loop() {
			sg, err := m.Signer(ctx, tenant, "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sg.Sign(payload, TypeJWT); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := openStore(b)
	m := newManager(s, newClock(), testKEK(1))
	tenant := newTenant(b, s, "acme")
	ctx := context.Background()
	for _, alg := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		tok := mustSign(b, mustSigner(b, m, tenant, alg), claims{Sub: "u", Exp: 1893456000}, TypeAccessToken)
		b.Run(alg, func(b *testing.B) {
			var c claims
			for b.Loop() {
				if _, err := m.Verify(ctx, tenant, tok, TypeAccessToken, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJWKS(b *testing.B) {
	s := openStore(b)
	m := newManager(s, newClock(), testKEK(1))
	tenant := newTenant(b, s, "acme")
	ctx := context.Background()
	for _, alg := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		mustSigner(b, m, tenant, alg)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.JWKS(ctx, tenant); err != nil {
			b.Fatal(err)
		}
	}
}
