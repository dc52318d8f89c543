package keys

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// clock is a settable time source shared by the Managers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "k.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTenant(t testing.TB, s store.Store, slug string) ciam.TenantID {
	t.Helper()
	id := ciam.TenantID(ciam.NewID())
	now := time.Now().UTC()
	tn := &ciam.Tenant{
		ID: id, Slug: slug, DisplayName: slug, PrimaryColor: "#2f5bea", MFAPolicy: ciam.MFAOff,
		SessionIdle: ciam.DefaultSessionIdle, SessionAbsolute: ciam.DefaultSessionAbsolute,
		CreatedAt: now, UpdatedAt: now,
	}
	ctx := context.Background()
	if err := s.Tx(ctx, id, func(tx store.Tx) error { return tx.Tenant().Create(ctx, tn) }); err != nil {
		t.Fatal(err)
	}
	return id
}

func testKEK(b byte) []byte {
	k := make([]byte, KEKSize)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func newManager(s store.Store, c *clock, kek []byte) *Manager {
	return &Manager{Store: s, KEK: kek, Now: c.Now, CacheTTL: time.Minute, PublishAhead: 10 * time.Minute, MaxTokenLifetime: 24 * time.Hour}
}

type claims struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

func mustSigner(t testing.TB, m *Manager, tenant ciam.TenantID, alg string) *Signer {
	t.Helper()
	s, err := m.Signer(context.Background(), tenant, alg)
	if err != nil {
		t.Fatalf("Signer(%s): %v", alg, err)
	}
	return s
}

func mustSign(t testing.TB, s *Signer, c any, typ string) string {
	t.Helper()
	tok, err := s.Sign(c, typ)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustKeys(t testing.TB, m *Manager, tenant ciam.TenantID) []*ciam.SigningKey {
	t.Helper()
	ks, err := m.Keys(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func keyByID(ks []*ciam.SigningKey, id string) *ciam.SigningKey {
	for _, k := range ks {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// jwksKids parses a JWK Set with go-jose and returns its kids, checking that
// every key is public and labelled for signing.
func jwksKids(t testing.TB, raw []byte) map[string]jose.JSONWebKey {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, raw)
	}
	out := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() || k.Use != "sig" || k.KeyID == "" || k.Algorithm == "" {
			t.Fatalf("bad key in JWKS: %+v", k)
		}
		if _, dup := out[k.KeyID]; dup {
			t.Fatalf("kid %s twice in JWKS", k.KeyID)
		}
		out[k.KeyID] = k
	}
	return out
}

func mustJWKS(t testing.TB, m *Manager, tenant ciam.TenantID) map[string]jose.JSONWebKey {
	t.Helper()
	raw, err := m.JWKS(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return jwksKids(t, raw)
}

func TestFirstUseCreatesAndSigns(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")

	if raw, err := m.JWKS(ctx, tenant); err != nil || string(raw) != `{"keys":[]}` {
		t.Fatalf("JWKS before any key = %s, %v", raw, err)
	}
	if ks := mustKeys(t, m, tenant); len(ks) != 0 {
		t.Fatalf("keys before first use: %d", len(ks))
	}
	sg := mustSigner(t, m, tenant, "")
	if sg.Alg() != ciam.AlgES256 {
		t.Fatalf("default alg = %s", sg.Alg())
	}
	ks := mustKeys(t, m, tenant)
	if len(ks) != 1 || ks[0].ID != sg.KeyID() {
		t.Fatalf("keys after first use: %+v", ks)
	}
	k := ks[0]
	if !k.ActiveAt.Equal(k.CreatedAt) || !k.RetiredAt.IsZero() || !k.ExpiresAt.IsZero() || k.PrivateSealed != nil {
		t.Fatalf("first key: %+v", k)
	}
	if strings.Contains(k.ID, string(tenant)) || !validKeyID(k.ID) {
		t.Fatalf("key id %q", k.ID)
	}
	if _, ok := mustJWKS(t, m, tenant)[k.ID]; !ok {
		t.Fatal("first key is not in the JWKS")
	}
	tok := mustSign(t, sg, claims{Sub: "u1", Exp: 42}, TypeJWT)
	var got claims
	kid, err := m.Verify(ctx, tenant, tok, TypeJWT, &got)
	if err != nil || kid != k.ID || got.Sub != "u1" || got.Exp != 42 {
		t.Fatalf("Verify = %s, %+v, %v", kid, got, err)
	}
	// Later calls reuse the key.
	for range 3 {
		if again := mustSigner(t, m, tenant, ciam.AlgES256); again.KeyID() != k.ID {
			t.Fatalf("second Signer made key %s", again.KeyID())
		}
	}
	if n := len(mustKeys(t, m, tenant)); n != 1 {
		t.Fatalf("%d keys after reuse", n)
	}
	if _, err := m.Signer(ctx, tenant, "HS256"); ciam.CodeOf(err) != "unsupported_signing_alg" {
		t.Fatalf("Signer(HS256) = %v", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	m := newManager(s, newClock(), testKEK(1))
	tenant := newTenant(t, s, "acme")

	for _, alg := range []string{ciam.AlgES256, ciam.AlgRS256, ciam.AlgEdDSA} {
		for _, typ := range []string{TypeJWT, TypeAccessToken, TypeLogout} {
			t.Run(alg+"/"+typ, func(t *testing.T) {
				sg := mustSigner(t, m, tenant, alg)
				if sg.Alg() != alg {
					t.Fatalf("alg %s", sg.Alg())
				}
				want := claims{Sub: "user-" + alg, Exp: 1234567890}
				tok := mustSign(t, sg, want, typ)

				// The header is what RFC 7515 and RFC 8725 ask for.
				jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				h := jws.Signatures[0].Protected
				if h.KeyID != sg.KeyID() || h.Algorithm != alg || h.ExtraHeaders[jose.HeaderType] != typ {
					t.Fatalf("header %+v", h)
				}
				// Anyone can check it with the published JWK Set alone.
				jwk, ok := mustJWKS(t, m, tenant)[sg.KeyID()]
				if !ok || jwk.Algorithm != alg {
					t.Fatalf("key %s not published as %s", sg.KeyID(), alg)
				}
				if _, err := jws.Verify(jwk); err != nil {
					t.Fatalf("verify with the JWKS key: %v", err)
				}

				var got claims
				kid, err := m.Verify(ctx, tenant, tok, typ, &got)
				if err != nil || kid != sg.KeyID() || got != want {
					t.Fatalf("Verify = %s, %+v, %v", kid, got, err)
				}
				// typ compares without case and without "application/".
				for _, variant := range []string{strings.ToUpper(typ), "application/" + typ, "Application/" + strings.ToUpper(typ)} {
					if _, err := m.Verify(ctx, tenant, tok, variant, nil); err != nil {
						t.Fatalf("Verify as %q: %v", variant, err)
					}
				}
			})
		}
	}
	if n := len(mustKeys(t, m, tenant)); n != 3 {
		t.Fatalf("%d keys for three algorithms", n)
	}
	// A pre-encoded payload is signed as it is.
	sg := mustSigner(t, m, tenant, ciam.AlgEdDSA)
	tok := mustSign(t, sg, json.RawMessage(`{"sub":"raw"}`), TypeJWT)
	var got claims
	if _, err := m.Verify(ctx, tenant, tok, TypeJWT, &got); err != nil || got.Sub != "raw" {
		t.Fatalf("raw payload: %+v, %v", got, err)
	}
}

func TestJWKS(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")
	other := newTenant(t, s, "other")

	es := mustSigner(t, m, tenant, ciam.AlgES256)
	rs := mustSigner(t, m, tenant, ciam.AlgRS256)
	ed := mustSigner(t, m, tenant, ciam.AlgEdDSA)
	mustSigner(t, m, other, ciam.AlgES256)

	raw, err := m.JWKS(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	got := jwksKids(t, raw)
	want := map[string]string{es.KeyID(): "ES256", rs.KeyID(): "RS256", ed.KeyID(): "EdDSA"}
	if len(got) != len(want) {
		t.Fatalf("JWKS has %d keys, want %d: %s", len(got), len(want), raw)
	}
	for kid, alg := range want {
		if got[kid].Algorithm != alg {
			t.Fatalf("kid %s: alg %q, want %s", kid, got[kid].Algorithm, alg)
		}
	}
	// No private parameter leaks into the document.
	var generic struct{ Keys []map[string]any }
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range generic.Keys {
		for _, p := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[p]; ok {
				t.Fatalf("private parameter %q in JWKS: %s", p, raw)
			}
		}
		if k["use"] != "sig" {
			t.Fatalf("use = %v", k["use"])
		}
	}
	// Tenants see only their own keys.
	if o := mustJWKS(t, m, other); len(o) != 1 || o[es.KeyID()].KeyID != "" {
		t.Fatalf("other tenant's JWKS: %v", o)
	}
	// Served from the cache: the same bytes until CacheTTL passes.
	again, _ := m.JWKS(ctx, tenant)
	if &again[0] != &raw[0] {
		t.Fatal("JWKS was rebuilt within CacheTTL")
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")

	k1 := mustSigner(t, m, tenant, ciam.AlgES256).KeyID()
	old := mustSign(t, mustSigner(t, m, tenant, ""), claims{Sub: "before"}, TypeJWT)

	c.Advance(time.Hour)
	succ, err := m.Rotate(ctx, tenant, ciam.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	k2 := succ.ID
	if !succ.ActiveAt.Equal(c.Now().Add(10*time.Minute)) || succ.Alg != ciam.AlgES256 || k2 == k1 {
		t.Fatalf("successor %+v", succ)
	}
	// Published at once (this node's cache is invalidated by its rotation)...
	if j := mustJWKS(t, m, tenant); len(j) != 2 || j[k2].KeyID == "" || j[k1].KeyID == "" {
		t.Fatalf("JWKS after rotation: %v", j)
	}
	// ...while the predecessor keeps signing until the successor activates.
	for _, d := range []time.Duration{0, 5 * time.Minute, 4*time.Minute + 59*time.Second} {
		c.Advance(d)
		if got := mustSigner(t, m, tenant, "").KeyID(); got != k1 {
			t.Fatalf("%s before activation signs with %s, want the predecessor", c.Now().Sub(succ.ActiveAt), got)
		}
	}
	c.Set(succ.ActiveAt)
	if got := mustSigner(t, m, tenant, "").KeyID(); got != k2 {
		t.Fatalf("at activation signs with %s, want the successor", got)
	}
	ks := mustKeys(t, m, tenant)
	r1 := keyByID(ks, k1)
	if r1 == nil || !r1.RetiredAt.Equal(succ.ActiveAt) || !r1.ExpiresAt.Equal(succ.ActiveAt.Add(24*time.Hour)) {
		t.Fatalf("predecessor after activation: %+v", r1)
	}
	if r2 := keyByID(ks, k2); !r2.RetiredAt.IsZero() {
		t.Fatalf("successor retired: %+v", r2)
	}
	newTok := mustSign(t, mustSigner(t, m, tenant, ""), claims{Sub: "after"}, TypeJWT)

	// The retired key stays published, and its tokens verify, until ExpiresAt.
	c.Set(r1.ExpiresAt.Add(-time.Second))
	if j := mustJWKS(t, m, tenant); j[k1].KeyID == "" || j[k2].KeyID == "" {
		t.Fatalf("JWKS 1s before the retired key expires: %v", j)
	}
	var got claims
	if kid, err := m.Verify(ctx, tenant, old, TypeJWT, &got); err != nil || kid != k1 || got.Sub != "before" {
		t.Fatalf("old token before expiry: %s %v", kid, err)
	}
	c.Set(r1.ExpiresAt)
	if j := mustJWKS(t, m, tenant); len(j) != 1 || j[k2].KeyID == "" {
		t.Fatalf("JWKS at the retired key's expiry: %v", j)
	}
	if _, err := m.Verify(ctx, tenant, old, TypeJWT, nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of an expired key: %v", err)
	}
	if _, err := m.Verify(ctx, tenant, newTok, TypeJWT, nil); err != nil {
		t.Fatalf("token of the successor: %v", err)
	}
	// Maintenance deletes what expired.
	c.Advance(time.Hour)
	if _, err := m.Rotate(ctx, tenant, ""); err != nil {
		t.Fatal(err)
	}
	if ks := mustKeys(t, m, tenant); len(ks) != 2 || keyByID(ks, k1) != nil {
		t.Fatalf("keys after a later rotation: %+v", ks)
	}
}

func TestScheduledRotation(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	m.RotateEvery = 48 * time.Hour
	tenant := newTenant(t, s, "acme")

	k1 := mustSigner(t, m, tenant, ciam.AlgEdDSA).KeyID()
	c.Advance(47 * time.Hour)
	mustSigner(t, m, tenant, ciam.AlgEdDSA)
	if n := len(mustKeys(t, m, tenant)); n != 1 {
		t.Fatalf("%d keys before RotateEvery", n)
	}
	c.Advance(time.Hour)
	if got := mustSigner(t, m, tenant, ciam.AlgEdDSA).KeyID(); got != k1 {
		t.Fatalf("signs with %s at RotateEvery, want the old key until its successor activates", got)
	}
	ks := mustKeys(t, m, tenant)
	if len(ks) != 2 {
		t.Fatalf("%d keys at RotateEvery, want a successor", len(ks))
	}
	var k2 *ciam.SigningKey
	for _, k := range ks {
		if k.ID != k1 {
			k2 = k
		}
	}
	if !k2.ActiveAt.Equal(c.Now().Add(10 * time.Minute)) {
		t.Fatalf("successor active at %s, want now + PublishAhead", k2.ActiveAt)
	}
	if _, ok := mustJWKS(t, m, tenant)[k2.ID]; !ok {
		t.Fatal("successor not published")
	}
	// No second successor while one is pending.
	c.Advance(5 * time.Minute)
	mustSigner(t, m, tenant, ciam.AlgEdDSA)
	if n := len(mustKeys(t, m, tenant)); n != 2 {
		t.Fatalf("%d keys while a successor is pending", n)
	}
	c.Advance(5 * time.Minute)
	if got := mustSigner(t, m, tenant, ciam.AlgEdDSA).KeyID(); got != k2.ID {
		t.Fatalf("signs with %s after activation", got)
	}
	if r := keyByID(mustKeys(t, m, tenant), k1); r.RetiredAt.IsZero() {
		t.Fatalf("predecessor not retired: %+v", r)
	}
	// Other algorithms are untouched.
	if _, err := m.Signer(ctx, tenant, ciam.AlgES256); err != nil {
		t.Fatal(err)
	}
}

// TestTwoNodes runs two Managers on one store, as two server processes.
func TestTwoNodes(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	a := newManager(s, c, testKEK(1))
	b := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")

	k1 := mustSigner(t, a, tenant, "").KeyID()
	if got := mustSigner(t, b, tenant, "").KeyID(); got != k1 {
		t.Fatalf("node b signs with %s, node a with %s", got, k1)
	}
	if j := mustJWKS(t, b, tenant); len(j) != 1 {
		t.Fatalf("node b JWKS: %v", j)
	}
	oldTok := mustSign(t, mustSigner(t, b, tenant, ""), claims{Sub: "b"}, TypeAccessToken)

	succ, err := a.Rotate(ctx, tenant, ciam.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	// b serves its cached set until CacheTTL passes, then the new one; the
	// successor is published everywhere before it signs.
	c.Advance(30 * time.Second)
	if j := mustJWKS(t, b, tenant); len(j) != 1 {
		t.Fatalf("node b JWKS within CacheTTL: %v", j)
	}
	c.Advance(31 * time.Second)
	if j := mustJWKS(t, b, tenant); len(j) != 2 || j[succ.ID].KeyID == "" {
		t.Fatalf("node b JWKS after CacheTTL: %v", j)
	}
	if got := mustSigner(t, b, tenant, "").KeyID(); got != k1 {
		t.Fatalf("node b signs with %s before the successor activates", got)
	}
	c.Set(succ.ActiveAt)
	for name, m := range map[string]*Manager{"a": a, "b": b} {
		if got := mustSigner(t, m, tenant, "").KeyID(); got != succ.ID {
			t.Fatalf("node %s signs with %s after activation, want %s", name, got, succ.ID)
		}
	}
	if r := keyByID(mustKeys(t, a, tenant), k1); r == nil || r.RetiredAt.IsZero() {
		t.Fatalf("predecessor: %+v", r)
	}
	// Tokens of the retired key verify on both nodes.
	for _, m := range []*Manager{a, b} {
		if _, err := m.Verify(ctx, tenant, oldTok, TypeAccessToken, nil); err != nil {
			t.Fatal(err)
		}
	}

	// A key node a makes now is unknown to b's fresh cache: b reloads once.
	if j := mustJWKS(t, b, tenant); len(j) != 2 {
		t.Fatalf("node b JWKS: %v", j)
	}
	rs := mustSigner(t, a, tenant, ciam.AlgRS256)
	tok := mustSign(t, rs, claims{Sub: "rs"}, TypeJWT)
	var got claims
	if kid, err := b.Verify(ctx, tenant, tok, TypeJWT, &got); err != nil || kid != rs.KeyID() || got.Sub != "rs" {
		t.Fatalf("node b verifies a key it has not loaded: %s %v", kid, err)
	}
	if j := mustJWKS(t, b, tenant); len(j) != 3 {
		t.Fatalf("node b JWKS after the reload: %v", j)
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	s := openStore(t)
	c := newClock()
	nodes := []*Manager{newManager(s, c, testKEK(1)), newManager(s, c, testKEK(1))}
	tenant := newTenant(t, s, "acme")

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			sg, err := nodes[i%2].Signer(context.Background(), tenant, ciam.AlgRS256)
			if err == nil {
				_, err = sg.Sign(claims{Sub: "x"}, TypeJWT)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ks := mustKeys(t, nodes[0], tenant)
	if len(ks) == 0 || len(ks) > 2 {
		t.Fatalf("%d keys after concurrent first use", len(ks))
	}
	// Whatever raced, every node settles on the same key within CacheTTL.
	c.Advance(2 * time.Minute)
	a := mustSigner(t, nodes[0], tenant, ciam.AlgRS256).KeyID()
	b := mustSigner(t, nodes[1], tenant, ciam.AlgRS256).KeyID()
	if a != b {
		t.Fatalf("nodes disagree: %s and %s", a, b)
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := config{rotateEvery: 90 * 24 * time.Hour, publishAhead: 10 * time.Minute, maxLifetime: 24 * time.Hour, cacheTTL: time.Minute}
	key := func(id, alg string, created, active time.Time) *ciam.SigningKey {
		return &ciam.SigningKey{ID: id, Alg: alg, CreatedAt: created, ActiveAt: active}
	}
	tests := []struct {
		name        string
		rows        []*ciam.SigningKey
		now         time.Time
		rotate      bool
		current     string
		retire      map[string][2]time.Time // id -> retired, expires
		create      bool
		createAt    time.Time
		needsWorkTo bool
	}{
		{name: "no keys", now: t0, create: true, createAt: t0},
		{name: "other alg only", rows: []*ciam.SigningKey{key("a", "RS256", t0, t0)}, now: t0, create: true, createAt: t0},
		{name: "one key", rows: []*ciam.SigningKey{key("a", "ES256", t0, t0)}, now: t0.Add(time.Hour), current: "a"},
		{name: "due", rows: []*ciam.SigningKey{key("a", "ES256", t0, t0)}, now: t0.Add(cfg.rotateEvery), current: "a",
			create: true, createAt: t0.Add(cfg.rotateEvery + cfg.publishAhead)},
		{name: "due with a pending successor", now: t0.Add(cfg.rotateEvery + time.Minute), current: "a", rows: []*ciam.SigningKey{
			key("a", "ES256", t0, t0), key("b", "ES256", t0.Add(cfg.rotateEvery), t0.Add(cfg.rotateEvery+cfg.publishAhead))}},
		{name: "rotate", rows: []*ciam.SigningKey{key("a", "ES256", t0, t0)}, now: t0.Add(time.Hour), rotate: true, current: "a",
			create: true, createAt: t0.Add(time.Hour + cfg.publishAhead)},
		{name: "successor active", now: t0.Add(2 * time.Hour), current: "b", rows: []*ciam.SigningKey{
			key("a", "ES256", t0, t0), key("b", "ES256", t0.Add(time.Hour), t0.Add(time.Hour+cfg.publishAhead))},
			retire: map[string][2]time.Time{"a": {t0.Add(time.Hour + cfg.publishAhead), t0.Add(time.Hour + cfg.publishAhead + cfg.maxLifetime)}}},
		{name: "raced first keys: same time, greatest id signs", now: t0.Add(time.Second), current: "b", rows: []*ciam.SigningKey{
			key("b", "ES256", t0, t0), key("a", "ES256", t0, t0)},
			retire: map[string][2]time.Time{"a": {t0, t0.Add(cfg.cacheTTL + cfg.maxLifetime)}}},
		{name: "raced first keys: latest ActiveAt signs", now: t0.Add(time.Second), current: "a", rows: []*ciam.SigningKey{
			key("b", "ES256", t0, t0), key("a", "ES256", t0.Add(time.Millisecond), t0.Add(time.Millisecond))},
			retire: map[string][2]time.Time{"b": {t0.Add(time.Millisecond), t0.Add(time.Millisecond + cfg.cacheTTL + cfg.maxLifetime)}}},
		{name: "retired key never signs", now: t0.Add(time.Hour), create: true, createAt: t0.Add(time.Hour), rows: []*ciam.SigningKey{
			{ID: "a", Alg: "ES256", CreatedAt: t0, ActiveAt: t0, RetiredAt: t0.Add(time.Minute), ExpiresAt: t0.Add(25 * time.Hour)}}},
		{name: "only a pending key", now: t0, create: true, createAt: t0, rows: []*ciam.SigningKey{
			key("a", "ES256", t0, t0.Add(time.Minute))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, alg := range []string{"ES256"} {
				p := decide(tc.rows, alg, tc.now, cfg, tc.rotate)
				cur := ""
				if p.current != nil {
					cur = p.current.ID
				}
				if cur != tc.current {
					t.Fatalf("current %q, want %q", cur, tc.current)
				}
				if p.create != tc.create || (tc.create && !p.activeAt.Equal(tc.createAt)) {
					t.Fatalf("create %v at %s, want %v at %s", p.create, p.activeAt, tc.create, tc.createAt)
				}
				if len(p.retire) != len(tc.retire) {
					t.Fatalf("retire %+v, want %v", p.retire, tc.retire)
				}
				for _, r := range p.retire {
					w, ok := tc.retire[r.id]
					if !ok || !r.retired.Equal(w[0]) || !r.expires.Equal(w[1]) {
						t.Fatalf("retire %+v, want %v", r, tc.retire)
					}
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	s := openStore(t)
	for _, tc := range []struct {
		name                                 string
		publishAhead, cacheTTL, maxTokenLife time.Duration
		ok                                   bool
	}{
		{"defaults", 0, 0, 0, true},
		{"publish ahead equals cache", time.Minute, time.Minute, 0, false},
		{"publish ahead below default cache", 30 * time.Second, 0, 0, false},
		{"negative", 0, 0, -time.Hour, false},
		{"short and consistent", 2 * time.Second, time.Second, 0, true},
	} {
		m := &Manager{Store: s, KEK: testKEK(1), PublishAhead: tc.publishAhead, CacheTTL: tc.cacheTTL, MaxTokenLifetime: tc.maxTokenLife}
		if err := m.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v", tc.name, err)
		}
		if tc.ok {
			continue
		}
		if _, err := m.Signer(context.Background(), "t", ""); err == nil {
			t.Errorf("%s: Signer worked with a bad configuration", tc.name)
		}
	}
}

func TestRotateAll(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	m := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")

	// With no key at all, rotating makes the default one, active at once.
	first, err := m.Rotate(ctx, tenant, "")
	if err != nil || first.Alg != ciam.AlgES256 || !first.ActiveAt.Equal(first.CreatedAt) || first.PrivateSealed != nil {
		t.Fatalf("Rotate on an empty tenant = %+v, %v", first, err)
	}
	rs := mustSigner(t, m, tenant, ciam.AlgRS256).KeyID()
	c.Advance(time.Hour)
	succ, err := m.Rotate(ctx, tenant, "")
	if err != nil || succ.Alg != ciam.AlgES256 || !succ.ActiveAt.Equal(c.Now().Add(10*time.Minute)) {
		t.Fatalf("Rotate all = %+v, %v", succ, err)
	}
	ks := mustKeys(t, m, tenant)
	count := map[string]int{}
	for _, k := range ks {
		count[k.Alg]++
	}
	if count[ciam.AlgES256] != 2 || count[ciam.AlgRS256] != 2 || count[ciam.AlgEdDSA] != 0 {
		t.Fatalf("keys after rotating all: %v", count)
	}
	if got := mustSigner(t, m, tenant, ciam.AlgRS256).KeyID(); got != rs {
		t.Fatalf("RS256 signs with %s before its successor activates", got)
	}
	if _, err := m.Rotate(ctx, tenant, "PS256"); ciam.CodeOf(err) != "unsupported_signing_alg" {
		t.Fatalf("Rotate(PS256) = %v", err)
	}
}
