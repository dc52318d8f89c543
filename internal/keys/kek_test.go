package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

func TestParseKEK(t *testing.T) {
	raw := testKEK(7)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"standard", base64.StdEncoding.EncodeToString(raw), true},
		{"with newline", base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"unpadded", base64.RawStdEncoding.EncodeToString(raw), true},
		{"url alphabet", base64.URLEncoding.EncodeToString(raw), true},
		{"empty", "", false},
		{"short", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"long", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"not base64", "this is not a key!", false},
		{"hex", strings.Repeat("ab", 32), false},
	} {
		got, err := ParseKEK(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.ok && !bytes.Equal(got, raw) {
			t.Errorf("%s: wrong key", tc.name)
		}
		if !tc.ok && !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("%s: error does not say how to make a key: %v", tc.name, err)
		}
	}
}

func TestLoadOrCreateKEK(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "kek")
	k1, err := LoadOrCreateKEK(path)
	if err != nil || len(k1) != KEKSize {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	if got, err := ParseKEK(string(text)); err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("file holds %q", text)
	}
	k2, err := LoadOrCreateKEK(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load differs: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "data", ".kek-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Processes starting at once agree on one key.
	race := filepath.Join(dir, "race.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 16)
	errs := make([]error, 16)
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKEK(race) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
	}

	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("short\n"), 0o600)
	if _, err := LoadOrCreateKEK(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: %v", err)
	}
}

func TestWrongKEK(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	a := newManager(s, c, testKEK(1))
	tenant := newTenant(t, s, "acme")
	tok := mustSign(t, mustSigner(t, a, tenant, ""), claims{Sub: "u"}, TypeJWT)

	b := newManager(s, c, testKEK(2))
	_, err := b.Signer(ctx, tenant, "")
	if !errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "signing keys cannot be decrypted: the key-encryption key is not the one they were sealed with") {
		t.Fatalf("Signer with another KEK: %v", err)
	}
	// Publishing and verifying need no private key.
	if _, err := b.Verify(ctx, tenant, tok, TypeJWT, nil); err != nil {
		t.Fatal(err)
	}
	if j := mustJWKS(t, b, tenant); len(j) != 1 {
		t.Fatalf("JWKS: %v", j)
	}

	for _, kek := range [][]byte{nil, make([]byte, 16), make([]byte, 33)} {
		m := newManager(s, c, kek)
		if err := m.Check(); err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Fatalf("Check with a %d-byte KEK: %v", len(kek), err)
		}
		if _, err := m.Signer(ctx, tenant, ""); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Fatalf("Signer with a %d-byte KEK: %v", len(kek), err)
		}
		other := newTenant(t, s, "t"+strings.ToLower(ciam.NewID()[:10]))
		if _, err := m.Signer(ctx, other, ""); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Fatalf("first use with a %d-byte KEK: %v", len(kek), err)
		}
	}
}

func TestSealedKeyMoved(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := newClock()
	kek := testKEK(1)
	m := newManager(s, c, kek)
	acme := newTenant(t, s, "acme")
	other := newTenant(t, s, "other")
	insert := func(tenant ciam.TenantID, rows ...*ciam.SigningKey) {
		t.Helper()
		err := s.Tx(ctx, tenant, func(tx store.Tx) error {
			for _, r := range rows {
				if err := tx.SigningKeys().Create(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	now := c.Now()

	// Two keys of one tenant with their sealed halves swapped.
	x, err := newMaterial(kek, acme, ciam.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	y, err := newMaterial(kek, acme, ciam.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	rx, ry := x.row(acme, now, now), y.row(acme, now, now)
	rx.PrivateSealed, ry.PrivateSealed = ry.PrivateSealed, rx.PrivateSealed
	insert(acme, rx, ry)
	_, err = m.Signer(ctx, acme, ciam.AlgES256)
	if err == nil || errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("Signer over swapped sealed keys: %v", err)
	}

	// A key sealed for one tenant, stored under another.
	z, err := newMaterial(kek, acme, ciam.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	insert(other, z.row(other, now, now))
	if _, err = m.Signer(ctx, other, ciam.AlgEdDSA); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("Signer over another tenant's sealed key: %v", err)
	}

	// The same at the sealing level, including damage.
	der := []byte("pkcs8 bytes")
	blob, err := seal(kek, acme, "k1", der)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(kek, acme, "k1", blob); err != nil || string(got) != string(der) {
		t.Fatalf("open = %q, %v", got, err)
	}
	flipped := append([]byte(nil), blob...)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name   string
		kek    []byte
		tenant ciam.TenantID
		kid    string
		blob   []byte
		wrong  bool
	}{
		{"other kid", kek, acme, "k2", blob, false},
		{"other tenant", kek, other, "k1", blob, false},
		{"damaged", kek, acme, "k1", flipped, false},
		{"truncated", kek, acme, "k1", blob[:20], false},
		{"empty", kek, acme, "k1", nil, false},
		{"other KEK", testKEK(9), acme, "k1", blob, true},
	} {
		_, err := open(tc.kek, tc.tenant, tc.kid, tc.blob)
		if err == nil || errors.Is(err, ErrWrongKEK) != tc.wrong {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestSealOpenDerive(t *testing.T) {
	kek := bytes.Repeat([]byte{1}, KEKSize)
	other := bytes.Repeat([]byte{2}, KEKSize)
	sealed, err := Seal(kek, "mail secret\x00t1", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("sealed data holds the plain text")
	}
	if got, err := Open(kek, "mail secret\x00t1", sealed); err != nil || string(got) != "s3cret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := Open(kek, "mail secret\x00t2", sealed); err == nil {
		t.Error("opened under another context")
	}
	if _, err := Open(other, "mail secret\x00t1", sealed); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("Open with another KEK: %v, want ErrWrongKEK", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := Open(kek, "mail secret\x00t1", bad); err == nil {
		t.Error("opened damaged data")
	}
	if _, err := Open(kek, "mail secret\x00t1", sealed[:5]); err == nil {
		t.Error("opened truncated data")
	}
	a, b := Derive(kek, "email codes"), Derive(kek, "other")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, Derive(kek, "email codes")) || bytes.Equal(a, Derive(other, "email codes")) {
		t.Error("Derive is not a stable per-purpose, per-key 32-byte key")
	}
}
