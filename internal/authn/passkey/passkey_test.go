package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const publicURL = "https://id.example.com"

// env is one tenant's relying party with a fake clock, its users and the
// passkeys a store would hold.
type env struct {
	t        testing.TB
	now      time.Time
	cache    *Cache
	tenant   *ciam.Tenant
	rp       *RelyingParty
	vrp      virtualwebauthn.RelyingParty // the browser at the right origin
	users    map[ciam.UserID]*ciam.User
	passkeys []*ciam.Passkey
}

func newEnv(t testing.TB, p ciam.TenantPasskeys) *env {
	t.Helper()
	e := &env{t: t, now: t0, users: map[ciam.UserID]*ciam.User{}}
	e.cache = &Cache{PublicURL: publicURL, Now: func() time.Time { return e.now }}
	e.tenant = &ciam.Tenant{ID: "tnt1", Slug: "acme", DisplayName: "Acme", Version: 1, Passkeys: p}
	rp, err := e.cache.For(e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	e.rp = rp
	e.vrp = virtualwebauthn.RelyingParty{Name: "Acme", ID: "id.example.com", Origin: publicURL}
	return e
}

func (e *env) user(id, email, name string) *ciam.User {
	u := &ciam.User{ID: ciam.UserID(id), TenantID: e.tenant.ID, Email: email, Name: name, Status: ciam.UserActive}
	e.users[u.ID] = u
	return u
}

func (e *env) passkeysOf(id ciam.UserID) []*ciam.Passkey {
	var out []*ciam.Passkey
	for _, p := range e.passkeys {
		if p.UserID == id {
			out = append(out, p)
		}
	}
	return out
}

// create begins a registration for u and answers it with cred on auth, as
// a browser at vrp.
func (e *env) create(u *ciam.User, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, vrp virtualwebauthn.RelyingParty) (state, response []byte) {
	e.t.Helper()
	opts, st, err := e.rp.BeginCreate(u, e.passkeysOf(u.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	return st, attest(e.t, opts, auth, cred, vrp)
}

func attest(t testing.TB, opts []byte, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, vrp virtualwebauthn.RelyingParty) []byte {
	t.Helper()
	ao, err := virtualwebauthn.ParseAttestationOptions(string(opts))
	if err != nil {
		t.Fatalf("options %s: %v", opts, err)
	}
	return []byte(virtualwebauthn.CreateAttestationResponse(vrp, auth, cred, *ao))
}

func assert(t testing.TB, opts []byte, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, vrp virtualwebauthn.RelyingParty) []byte {
	t.Helper()
	ao, err := virtualwebauthn.ParseAssertionOptions(string(opts))
	if err != nil {
		t.Fatalf("options %s: %v", opts, err)
	}
	return []byte(virtualwebauthn.CreateAssertionResponse(vrp, auth, cred, *ao))
}

// register runs a whole registration and keeps the passkey.
func (e *env) register(u *ciam.User, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential) *ciam.Passkey {
	e.t.Helper()
	st, resp := e.create(u, auth, cred, e.vrp)
	pk, err := e.rp.FinishCreate(u, st, resp, e.now)
	if err != nil {
		e.t.Fatalf("FinishCreate: %v", err)
	}
	e.passkeys = append(e.passkeys, pk)
	return pk
}

// findByHandle loads the user the handle names, as a store keyed on users would.
func (e *env) findByHandle(_, handle []byte) (*ciam.User, []*ciam.Passkey, error) {
	u := e.users[ciam.UserID(handle)]
	if u == nil {
		return nil, nil, nil
	}
	return u, e.passkeysOf(u.ID), nil
}

// findByCredential loads the owner of the credential, as a store keyed on
// credential ids would.
func (e *env) findByCredential(credID, _ []byte) (*ciam.User, []*ciam.Passkey, error) {
	for _, p := range e.passkeys {
		if bytes.Equal(p.CredentialID, credID) {
			return e.users[p.UserID], e.passkeysOf(p.UserID), nil
		}
	}
	return nil, nil, ciam.Errorf(ciam.NotFound, "not_found", "Not found.")
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want %s", code)
	}
	ce := ciam.As(err)
	if ce == nil {
		t.Fatalf("error %v is not a ciam.Error, want %s", err, code)
	}
	if ce.Code != code {
		t.Fatalf("code %s (%v), want %s", ce.Code, err, code)
	}
	if code != "passkey_config_invalid" && ce.Kind != ciam.Unauthenticated {
		t.Fatalf("kind %v, want unauthenticated", ce.Kind)
	}
	if ce.Msg == "" || strings.Contains(ce.Msg, "webauthn") {
		t.Fatalf("message %q is not a safe message", ce.Msg)
	}
}

// newCred returns a virtual P-256 credential. virtualwebauthn encodes the
// key's coordinates with big.Int.Bytes, which drops leading zero bytes, and
// go-webauthn rightly refuses a coordinate shorter than 32 bytes; so keys
// with a short coordinate (1 in 128) are skipped to keep the tests stable.
func newCred() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		point, err := k.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		if point[1] == 0 || point[33] == 0 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}

// withHandle returns a copy of auth that answers with the user handle h.
func withHandle(auth virtualwebauthn.Authenticator, h string) virtualwebauthn.Authenticator {
	auth.Options.UserHandle = []byte(h)
	return auth
}

func TestRelyingPartyDerivation(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		passkeys   ciam.TenantPasskeys
		rpID       string
		origins    []string
		uvRequired bool
		field      string // for a refusal: the field it names ("" for the public URL)
		refused    bool
	}{
		{name: "localhost", publicURL: "http://localhost:8080", rpID: "localhost", origins: []string{"http://localhost:8080"}},
		{name: "public host", publicURL: "https://id.example.com", rpID: "id.example.com", origins: []string{"https://id.example.com"}},
		{name: "default port and path dropped", publicURL: "https://ID.Example.com:443/gatehouse/", rpID: "id.example.com", origins: []string{"https://id.example.com"}},
		{name: "parent domain", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "example.com"}, rpID: "example.com", origins: []string{"https://id.example.com"}},
		{name: "parent domain in capitals", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "Example.COM"}, rpID: "example.com", origins: []string{"https://id.example.com"}},
		{name: "custom domain", publicURL: "https://id.example.com",
			passkeys: ciam.TenantPasskeys{RPID: "acme.com", Origins: []string{"https://login.acme.com", "https://acme.com:8443"}, UserVerification: ciam.UVRequired},
			rpID:     "acme.com", origins: []string{"https://id.example.com", "https://login.acme.com", "https://acme.com:8443"}, uvRequired: true},
		{name: "duplicate origin", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{Origins: []string{"https://id.example.com/"}},
			rpID: "id.example.com", origins: []string{"https://id.example.com"}},
		{name: "unrelated rp id", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "evil.com"}, refused: true, field: "passkeys.rp_id"},
		{name: "rp id suffix without dot", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "ample.com"}, refused: true, field: "passkeys.rp_id"},
		{name: "child of host", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "a.id.example.com"}, refused: true, field: "passkeys.rp_id"},
		{name: "top-level domain", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "com"}, refused: true, field: "passkeys.rp_id"},
		{name: "rp id with scheme", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "https://example.com"}, refused: true, field: "passkeys.rp_id"},
		{name: "rp id with port", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{RPID: "example.com:443"}, refused: true, field: "passkeys.rp_id"},
		{name: "ip public url", publicURL: "https://127.0.0.1:8080", refused: true},
		{name: "http public url", publicURL: "http://id.example.com", refused: true},
		{name: "no public url", publicURL: "", refused: true},
		{name: "origin with path", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{Origins: []string{"https://login.acme.com/login"}}, refused: true, field: "passkeys.origins"},
		{name: "origin over http", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{Origins: []string{"http://login.acme.com"}}, refused: true, field: "passkeys.origins"},
		{name: "origin not a url", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{Origins: []string{"login.acme.com"}}, refused: true, field: "passkeys.origins"},
		{name: "origin other scheme", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{Origins: []string{"ftp://login.acme.com"}}, refused: true, field: "passkeys.origins"},
		{name: "unknown uv", publicURL: "https://id.example.com", passkeys: ciam.TenantPasskeys{UserVerification: "always"}, refused: true, field: "passkeys.user_verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cache{PublicURL: tt.publicURL}
			rp, err := c.For(&ciam.Tenant{ID: "tnt1", DisplayName: "Acme", Version: 1, Passkeys: tt.passkeys})
			if verr := Validate(tt.publicURL, tt.passkeys); (verr == nil) != (err == nil) {
				t.Fatalf("Validate: %v, For: %v", verr, err)
			}
			if tt.refused {
				wantCode(t, err, "passkey_config_invalid")
				if ce := ciam.As(err); ce.Kind != ciam.Invalid || ce.Field != tt.field {
					t.Fatalf("kind %v field %q, want invalid on %q", ce.Kind, ce.Field, tt.field)
				}
				t.Logf("refused: %s", ciam.As(err).Msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rp.RPID() != tt.rpID || !slices.Equal(rp.Origins(), tt.origins) || rp.UVRequired() != tt.uvRequired {
				t.Fatalf("RP ID %q origins %q uv %v, want %q %q %v", rp.RPID(), rp.Origins(), rp.UVRequired(), tt.rpID, tt.origins, tt.uvRequired)
			}
		})
	}
}

func TestCacheRebuildsOnVersion(t *testing.T) {
	c := &Cache{PublicURL: publicURL}
	tn := &ciam.Tenant{ID: "tnt1", DisplayName: "Acme", Version: 1}
	a, err := c.For(tn)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.For(tn); b != a {
		t.Fatal("same version rebuilt")
	}
	tn2 := *tn
	tn2.Version, tn2.Passkeys.UserVerification = 2, ciam.UVRequired
	b, err := c.For(&tn2)
	if err != nil {
		t.Fatal(err)
	}
	if b == a || !b.UVRequired() || a.UVRequired() {
		t.Fatal("new version not rebuilt")
	}
	other, _ := c.For(&ciam.Tenant{ID: "tnt2", DisplayName: "Other", Version: 2})
	if other == b {
		t.Fatal("tenants share a relying party")
	}
}

func TestBeginCreateOptions(t *testing.T) {
	for _, uv := range []string{"", ciam.UVRequired} {
		e := newEnv(t, ciam.TenantPasskeys{UserVerification: uv})
		alice := e.user("alice01", "alice@example.com", "Alice")
		first := e.register(alice, virtualwebauthn.NewAuthenticator(), newCred())

		opts, st, err := e.rp.BeginCreate(alice, e.passkeysOf(alice.ID))
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			RP        struct{ ID, Name string }
			User      struct{ ID, Name, DisplayName string }
			Challenge string
			Timeout   int
			Exclude   []struct{ Type, ID string } `json:"excludeCredentials"`
			Selection struct {
				ResidentKey        string `json:"residentKey"`
				RequireResidentKey bool   `json:"requireResidentKey"`
				UserVerification   string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Attestation string
			Params      []struct{ Alg int } `json:"pubKeyCredParams"`
		}
		if err := json.Unmarshal(opts, &o); err != nil {
			t.Fatal(err)
		}
		wantUV := "preferred"
		if uv != "" {
			wantUV = uv
		}
		if o.RP.ID != "id.example.com" || o.RP.Name != "Acme" ||
			o.User.ID != base64.RawURLEncoding.EncodeToString([]byte("alice01")) || o.User.Name != "alice@example.com" || o.User.DisplayName != "Alice" ||
			o.Selection.ResidentKey != "required" || !o.Selection.RequireResidentKey || o.Selection.UserVerification != wantUV ||
			o.Attestation != "none" || o.Timeout != 300000 || len(o.Params) == 0 ||
			len(o.Exclude) != 1 || o.Exclude[0].Type != "public-key" || o.Exclude[0].ID != base64.RawURLEncoding.EncodeToString(first.CredentialID) {
			t.Fatalf("options %s", opts)
		}
		ch, exp, err := Challenge(st)
		if err != nil || ch != o.Challenge || !exp.Equal(t0.Add(ChallengeTTL)) {
			t.Fatalf("Challenge = %q %v %v, want %q %v", ch, exp, err, o.Challenge, t0.Add(ChallengeTTL))
		}
	}

	// Fallbacks for user.name and user.displayName.
	e := newEnv(t, ciam.TenantPasskeys{})
	for _, tt := range []struct{ email, name, wantName, wantDisplay string }{
		{"bob@example.com", "", "bob@example.com", "bob@example.com"},
		{"", "", "bob01", "bob01"},
	} {
		opts, _, err := e.rp.BeginCreate(e.user("bob01", tt.email, tt.name), nil)
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			User struct{ Name, DisplayName string }
		}
		_ = json.Unmarshal(opts, &o)
		if o.User.Name != tt.wantName || o.User.DisplayName != tt.wantDisplay {
			t.Fatalf("user %+v, want %s %s", o.User, tt.wantName, tt.wantDisplay)
		}
	}
}

func TestRegisterThenLogIn(t *testing.T) {
	e := newEnv(t, ciam.TenantPasskeys{})
	alice := e.user("alice01", "alice@example.com", "Alice")
	auth := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{BackupEligible: true, BackupState: true})
	cred := newCred()

	e.now = t0.Add(time.Minute)
	pk := e.register(alice, auth, cred)
	if pk.ID == "" || pk.TenantID != "tnt1" || pk.UserID != alice.ID || !bytes.Equal(pk.CredentialID, cred.ID) ||
		len(pk.PublicKey) == 0 || !bytes.Equal(pk.AAGUID, auth.Aaguid[:]) || pk.AttestationType == "" ||
		pk.SignCount != 0 || !pk.UserVerified || !pk.BackupEligible || !pk.BackupState ||
		pk.Name != "Passkey" || !pk.CreatedAt.Equal(e.now) || !pk.LastUsedAt.IsZero() {
		t.Fatalf("passkey %+v", pk)
	}

	t.Run("discoverable", func(t *testing.T) {
		for _, find := range []FindFunc{e.findByHandle, e.findByCredential} {
			opts, st, err := e.rp.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			var o map[string]any
			_ = json.Unmarshal(opts, &o)
			if _, ok := o["allowCredentials"]; ok || o["rpId"] != "id.example.com" || o["userVerification"] != "preferred" || o["challenge"] == "" {
				t.Fatalf("options %s", opts)
			}
			e.now = e.now.Add(ChallengeTTL - time.Second) // still live
			a, err := e.rp.FinishLogin(st, assert(t, opts, withHandle(auth, "alice01"), cred, e.vrp), find)
			if err != nil {
				t.Fatal(err)
			}
			if a.User != alice || a.Passkey != pk || a.NewCount != 0 || !a.BackupState || !a.UserVerified {
				t.Fatalf("assertion %+v", a)
			}
		}
	})

	t.Run("second factor", func(t *testing.T) {
		second := newCred()
		pk2 := e.register(alice, auth, second)
		for _, handle := range []string{"", "alice01"} { // a security key may not return the handle
			opts, st, err := e.rp.BeginSecondFactor(alice, e.passkeysOf(alice.ID))
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				Allow []struct{ ID string } `json:"allowCredentials"`
			}
			_ = json.Unmarshal(opts, &o)
			if len(o.Allow) != 2 {
				t.Fatalf("options %s", opts)
			}
			a, err := e.rp.FinishLogin(st, assert(t, opts, withHandle(auth, handle), second, e.vrp), e.findByHandle)
			if err != nil {
				t.Fatal(err)
			}
			if a.User != alice || a.Passkey != pk2 {
				t.Fatalf("assertion %+v", a)
			}
		}
		if _, _, err := e.rp.BeginSecondFactor(alice, nil); ciam.CodeOf(err) != "passkey_none" {
			t.Fatalf("no passkeys: %v", err)
		}
	})

	t.Run("user verification preferred", func(t *testing.T) {
		noUV := withHandle(auth, "alice01")
		noUV.Options.UserNotVerified = true
		cred := newCred()
		st, resp := e.create(alice, noUV, cred, e.vrp)
		pk, err := e.rp.FinishCreate(alice, st, resp, e.now)
		if err != nil || pk.UserVerified {
			t.Fatalf("FinishCreate without UV on a preferring tenant: %+v %v", pk, err)
		}
		e.passkeys = append(e.passkeys, pk)
		opts, st, _ := e.rp.BeginLogin()
		a, err := e.rp.FinishLogin(st, assert(t, opts, noUV, cred, e.vrp), e.findByHandle)
		if err != nil || a.UserVerified {
			t.Fatalf("login without UV on a preferring tenant: %+v %v", a, err)
		}
	})
}

func TestSignCounter(t *testing.T) {
	e := newEnv(t, ciam.TenantPasskeys{})
	alice := e.user("alice01", "alice@example.com", "Alice")
	auth := withHandle(virtualwebauthn.NewAuthenticator(), "alice01")
	cred := newCred()
	e.register(alice, auth, cred)

	login := func(count uint32) (*Assertion, error) {
		cred.Counter = count
		opts, st, err := e.rp.BeginLogin()
		if err != nil {
			t.Fatal(err)
		}
		a, err := e.rp.FinishLogin(st, assert(t, opts, auth, cred, e.vrp), e.findByCredential)
		if err == nil {
			a.Passkey.SignCount = a.NewCount // what the caller stores
		}
		return a, err
	}
	for _, step := range []struct {
		count uint32
		want  string // "" for success
	}{
		{0, ""}, // synced passkeys keep zero
		{0, ""},
		{5, ""},
		{3, "passkey_counter_regressed"},
		{5, "passkey_counter_regressed"}, // equal is not an increase
		{0, "passkey_counter_regressed"},
		{6, ""},
	} {
		a, err := login(step.count)
		if step.want == "" {
			if err != nil || a.NewCount != step.count {
				t.Fatalf("count %d: %+v %v", step.count, a, err)
			}
			continue
		}
		wantCode(t, err, step.want)
	}
}

func TestFinishCreateRefusals(t *testing.T) {
	tests := []struct {
		name     string
		passkeys ciam.TenantPasskeys
		run      func(e *env, alice, bob *ciam.User) (state, response []byte, now time.Time)
		want     string
	}{
		{name: "wrong origin", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			vrp := e.vrp
			vrp.Origin = "https://id.example.com.evil.net"
			st, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), vrp)
			return st, resp, e.now
		}},
		{name: "wrong rp id", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			vrp := e.vrp
			vrp.ID = "evil.com"
			st, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), vrp)
			return st, resp, e.now
		}},
		{name: "challenge mismatch", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			_, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), e.vrp)
			_, st, _ := e.rp.BeginCreate(alice, nil)
			return st, resp, e.now
		}},
		{name: "expired", want: "passkey_expired", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			st, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), e.vrp)
			return st, resp, e.now.Add(ChallengeTTL)
		}},
		{name: "uv missing when required", passkeys: ciam.TenantPasskeys{UserVerification: ciam.UVRequired}, want: "passkey_verification_required",
			run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
				auth := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})
				st, resp := e.create(alice, auth, newCred(), e.vrp)
				return st, resp, e.now
			}},
		{name: "user presence missing", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			auth := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserNotPresent: true})
			st, resp := e.create(alice, auth, newCred(), e.vrp)
			return st, resp, e.now
		}},
		{name: "state of another user", want: "passkey_invalid", run: func(e *env, alice, bob *ciam.User) ([]byte, []byte, time.Time) {
			// Bob's ceremony finished as Alice: the credential would carry Bob's handle.
			st, resp := e.create(bob, virtualwebauthn.NewAuthenticator(), newCred(), e.vrp)
			_ = alice
			return st, resp, e.now
		}},
		{name: "login state", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			_, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), e.vrp)
			_, st, _ := e.rp.BeginLogin()
			return st, resp, e.now
		}},
		{name: "garbage response", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			_, st, _ := e.rp.BeginCreate(alice, nil)
			return st, []byte(`{"id":`), e.now
		}},
		{name: "garbage state", want: "passkey_invalid", run: func(e *env, alice, _ *ciam.User) ([]byte, []byte, time.Time) {
			_, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), e.vrp)
			return []byte("not json"), resp, e.now
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.passkeys)
			alice := e.user("alice01", "alice@example.com", "Alice")
			bob := e.user("bob01", "bob@example.com", "Bob")
			st, resp, now := tt.run(e, alice, bob)
			pk, err := e.rp.FinishCreate(alice, st, resp, now)
			if pk != nil {
				t.Fatalf("passkey returned: %+v", pk)
			}
			wantCode(t, err, tt.want)
			t.Logf("%v", err)
		})
	}
}

func TestFinishLoginRefusals(t *testing.T) {
	type fixture struct {
		e          *env
		alice, bob *ciam.User
		aliceAuth  virtualwebauthn.Authenticator // answers with Alice's handle
		aliceCred  virtualwebauthn.Credential
		bobAuth    virtualwebauthn.Authenticator
		bobCred    virtualwebauthn.Credential
	}
	discoverable := func(f *fixture, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, vrp virtualwebauthn.RelyingParty) (state, response []byte) {
		opts, st, err := f.e.rp.BeginLogin()
		if err != nil {
			f.e.t.Fatal(err)
		}
		return st, assert(f.e.t, opts, auth, cred, vrp)
	}
	tests := []struct {
		name     string
		passkeys ciam.TenantPasskeys
		run      func(f *fixture) (state, response []byte)
		want     string
	}{
		{name: "wrong origin", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			vrp := f.e.vrp
			vrp.Origin = "https://evil.example.net"
			return discoverable(f, f.aliceAuth, f.aliceCred, vrp)
		}},
		{name: "wrong rp id", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			vrp := f.e.vrp
			vrp.ID = "evil.com"
			return discoverable(f, f.aliceAuth, f.aliceCred, vrp)
		}},
		{name: "challenge of another state", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			_, resp := discoverable(f, f.aliceAuth, f.aliceCred, f.e.vrp)
			_, st, _ := f.e.rp.BeginLogin()
			return st, resp
		}},
		{name: "expired", want: "passkey_expired", run: func(f *fixture) ([]byte, []byte) {
			st, resp := discoverable(f, f.aliceAuth, f.aliceCred, f.e.vrp)
			f.e.now = f.e.now.Add(ChallengeTTL)
			return st, resp
		}},
		{name: "uv missing when required", passkeys: ciam.TenantPasskeys{UserVerification: ciam.UVRequired}, want: "passkey_verification_required",
			run: func(f *fixture) ([]byte, []byte) {
				auth := f.aliceAuth
				auth.Options.UserNotVerified = true
				return discoverable(f, auth, f.aliceCred, f.e.vrp)
			}},
		{name: "uv missing on second factor when required", passkeys: ciam.TenantPasskeys{UserVerification: ciam.UVRequired}, want: "passkey_verification_required",
			run: func(f *fixture) ([]byte, []byte) {
				opts, st, _ := f.e.rp.BeginSecondFactor(f.alice, f.e.passkeysOf(f.alice.ID))
				auth := f.aliceAuth
				auth.Options.UserNotVerified = true
				return st, assert(f.e.t, opts, auth, f.aliceCred, f.e.vrp)
			}},
		{name: "user presence missing", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			auth := f.aliceAuth
			auth.Options.UserNotPresent = true
			return discoverable(f, auth, f.aliceCred, f.e.vrp)
		}},
		{name: "another user's handle", want: "passkey_unknown", run: func(f *fixture) ([]byte, []byte) {
			return discoverable(f, withHandle(f.aliceAuth, "bob01"), f.aliceCred, f.e.vrp)
		}},
		{name: "handle of nobody", want: "passkey_unknown", run: func(f *fixture) ([]byte, []byte) {
			return discoverable(f, withHandle(f.aliceAuth, "nobody"), f.aliceCred, f.e.vrp)
		}},
		{name: "no handle on discoverable login", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			return discoverable(f, withHandle(f.aliceAuth, ""), f.aliceCred, f.e.vrp)
		}},
		{name: "unknown credential", want: "passkey_unknown", run: func(f *fixture) ([]byte, []byte) {
			return discoverable(f, f.aliceAuth, newCred(), f.e.vrp)
		}},
		{name: "key of another credential", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			forged := f.aliceCred
			forged.Key = f.bobCred.Key // Alice's credential id, signed by Bob's key
			return discoverable(f, f.aliceAuth, forged, f.e.vrp)
		}},
		{name: "tampered signature", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			st, resp := discoverable(f, f.aliceAuth, f.aliceCred, f.e.vrp)
			var m map[string]any
			_ = json.Unmarshal(resp, &m)
			r := m["response"].(map[string]any)
			sig, _ := base64.RawURLEncoding.DecodeString(r["signature"].(string))
			sig[len(sig)-1] ^= 1
			r["signature"] = base64.RawURLEncoding.EncodeToString(sig)
			resp, _ = json.Marshal(m)
			return st, resp
		}},
		{name: "registration state", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			_, resp := discoverable(f, f.aliceAuth, f.aliceCred, f.e.vrp)
			_, st, _ := f.e.rp.BeginCreate(f.alice, nil)
			return st, resp
		}},
		{name: "state of another tenant", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			opts, st, _ := f.e.rp.BeginLogin()
			var s state
			_ = json.Unmarshal(st, &s)
			s.Tenant = "tnt2"
			st, _ = json.Marshal(s)
			return st, assert(f.e.t, opts, f.aliceAuth, f.aliceCred, f.e.vrp)
		}},
		{name: "second factor with another user's handle", want: "passkey_unknown", run: func(f *fixture) ([]byte, []byte) {
			opts, st, _ := f.e.rp.BeginSecondFactor(f.alice, f.e.passkeysOf(f.alice.ID))
			return st, assert(f.e.t, opts, withHandle(f.aliceAuth, "bob01"), f.aliceCred, f.e.vrp)
		}},
		{name: "second factor with another user's credential", want: "passkey_unknown", run: func(f *fixture) ([]byte, []byte) {
			opts, st, _ := f.e.rp.BeginSecondFactor(f.alice, f.e.passkeysOf(f.alice.ID))
			return st, assert(f.e.t, opts, withHandle(f.bobAuth, ""), f.bobCred, f.e.vrp)
		}},
		{name: "garbage response", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			_, st, _ := f.e.rp.BeginLogin()
			return st, []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`)
		}},
		{name: "not json", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			_, st, _ := f.e.rp.BeginLogin()
			return st, []byte("<html>")
		}},
		{name: "garbage state", want: "passkey_invalid", run: func(f *fixture) ([]byte, []byte) {
			_, resp := discoverable(f, f.aliceAuth, f.aliceCred, f.e.vrp)
			return []byte(`{"kind":"passkey_login"}`), resp
		}},
	}
	finders := map[string]func(e *env) FindFunc{
		"by handle":     func(e *env) FindFunc { return e.findByHandle },
		"by credential": func(e *env) FindFunc { return e.findByCredential },
	}
	for _, tt := range tests {
		for fname, finder := range finders {
			t.Run(tt.name+"/"+fname, func(t *testing.T) {
				e := newEnv(t, tt.passkeys)
				f := &fixture{e: e, alice: e.user("alice01", "alice@example.com", "Alice"), bob: e.user("bob01", "bob@example.com", "Bob"),
					aliceAuth: withHandle(virtualwebauthn.NewAuthenticator(), "alice01"), aliceCred: newCred(),
					bobAuth: withHandle(virtualwebauthn.NewAuthenticator(), "bob01"), bobCred: newCred()}
				e.register(f.alice, f.aliceAuth, f.aliceCred)
				e.register(f.bob, f.bobAuth, f.bobCred)
				st, resp := tt.run(f)
				a, err := e.rp.FinishLogin(st, resp, finder(e))
				if a != nil {
					t.Fatalf("assertion returned: %+v", a)
				}
				wantCode(t, err, tt.want)
				t.Logf("%v", err)
			})
		}
	}
}

func TestFindError(t *testing.T) {
	e := newEnv(t, ciam.TenantPasskeys{})
	alice := e.user("alice01", "alice@example.com", "Alice")
	auth := withHandle(virtualwebauthn.NewAuthenticator(), "alice01")
	cred := newCred()
	e.register(alice, auth, cred)
	for _, tt := range []struct {
		err  error
		kind ciam.Kind
	}{
		{errors.New("database down"), ciam.Internal},
		{ciam.Errorf(ciam.Unavailable, "unavailable", "database down"), ciam.Unavailable},
	} {
		opts, st, _ := e.rp.BeginLogin()
		_, err := e.rp.FinishLogin(st, assert(t, opts, auth, cred, e.vrp), func(_, _ []byte) (*ciam.User, []*ciam.Passkey, error) {
			return nil, nil, tt.err
		})
		if !errors.Is(err, tt.err) || ciam.KindOf(err) != tt.kind {
			t.Fatalf("err = %v (kind %v), want %v", err, ciam.KindOf(err), tt.kind)
		}
	}
}

func TestLibraryDetailIsLoggedNotShown(t *testing.T) {
	e := newEnv(t, ciam.TenantPasskeys{})
	alice := e.user("alice01", "alice@example.com", "Alice")
	vrp := e.vrp
	vrp.Origin = "https://evil.example.net"
	st, resp := e.create(alice, virtualwebauthn.NewAuthenticator(), newCred(), vrp)
	_, err := e.rp.FinishCreate(alice, st, resp, e.now)
	ce := ciam.As(err)
	if ce == nil || ce.Err == nil || !strings.Contains(ce.Err.Error(), "evil.example.net") || strings.Contains(ce.Msg, "evil") {
		t.Fatalf("err = %#v", err)
	}
}

func TestChallenge(t *testing.T) {
	for _, st := range []string{"", "{}", `{"session":{"challenge":""}}`, "[1]"} {
		if _, _, err := Challenge([]byte(st)); err == nil {
			t.Fatalf("Challenge(%q) succeeded", st)
		}
	}
	e := newEnv(t, ciam.TenantPasskeys{})
	opts, st, _ := e.rp.BeginLogin()
	var o struct{ Challenge string }
	_ = json.Unmarshal(opts, &o)
	ch, exp, err := Challenge(st)
	if err != nil || ch != o.Challenge || !exp.Equal(t0.Add(ChallengeTTL)) {
		t.Fatalf("Challenge = %q %v %v", ch, exp, err)
	}
}

// FuzzFinishLogin feeds arbitrary responses to both kinds of login state.
// The stored counter is already at the one the seed assertion carries, so
// even the genuine seed, replayed, must be refused.
func FuzzFinishLogin(f *testing.F) {
	e := newEnv(f, ciam.TenantPasskeys{})
	alice := e.user("alice01", "alice@example.com", "Alice")
	auth := withHandle(virtualwebauthn.NewAuthenticator(), "alice01")
	cred := newCred()
	pk := e.register(alice, auth, cred)

	cred.Counter = 7
	pk.SignCount = 7
	opts, loginState, err := e.rp.BeginLogin()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(assert(f, opts, auth, cred, e.vrp))
	opts2, mfaState, err := e.rp.BeginSecondFactor(alice, e.passkeysOf(alice.ID))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(assert(f, opts2, auth, cred, e.vrp))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"YWxpY2UwMQ"}}`))

	f.Fuzz(func(t *testing.T, response []byte) {
		for _, st := range [][]byte{loginState, mfaState} {
			a, err := e.rp.FinishLogin(st, response, e.findByCredential)
			if err == nil || a != nil {
				t.Fatalf("FinishLogin accepted %q", response)
			}
			if ce := ciam.As(err); ce == nil || ce.Kind != ciam.Unauthenticated {
				t.Fatalf("FinishLogin(%q) = %v, want an unauthenticated ciam error", response, err)
			}
		}
	})
}
