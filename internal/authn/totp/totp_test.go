package totp

import (
	"strings"
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1, truncated to six digits.
func TestCodeMatchesRFC6238(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		got, err := Code(secret, Step(time.Unix(tc.unix, 0)))
		if err != nil || got != tc.want {
			t.Errorf("Code at %d = %q, %v; want %q", tc.unix, got, err, tc.want)
		}
	}
}

func TestCheckWindow(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_000, 0)
	cur := Step(now)
	for _, tc := range []struct {
		name string
		step int64
		ok   bool
	}{
		{"current", cur, true},
		{"one step early", cur - 1, true},
		{"one step late", cur + 1, true},
		{"two steps early", cur - 2, false},
		{"two steps late", cur + 2, false},
	} {
		code, _ := Code(secret, tc.step)
		step, ok := Check(secret, code, now)
		if ok != tc.ok || (ok && step != tc.step) {
			t.Errorf("%s: Check = %d, %v; want %d, %v", tc.name, step, ok, tc.step, tc.ok)
		}
	}
	code, _ := Code(secret, cur)
	if _, ok := Check(secret, code[:3]+" "+code[3:], now); !ok {
		t.Error("a code typed with a space is refused")
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "１２３４５６"} {
		if _, ok := Check(secret, bad, now); ok {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
}

func TestNewEnrolment(t *testing.T) {
	e, err := New("Acme Shop", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secret) != SecretSize {
		t.Fatalf("secret is %d bytes", len(e.Secret))
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/Acme%20Shop:ada@example.com?") || !strings.Contains(e.URI, "issuer=Acme%20Shop") {
		t.Errorf("URI = %s", e.URI)
	}
	if !strings.HasPrefix(e.QR, "data:image/png;base64,") || len(e.QR) < 500 {
		t.Errorf("QR = %.60s…", e.QR)
	}
	if strings.ReplaceAll(e.Text, " ", "") != b32.EncodeToString(e.Secret) {
		t.Errorf("Text %q does not spell the secret", e.Text)
	}
	again, err := ForSecret("Acme Shop", "ada@example.com", e.Secret)
	if err != nil || again.URI != e.URI {
		t.Errorf("ForSecret gives another URI: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("123456")
	f.Add("12 34 56")
	f.Add("\x00\x00\x00\x00\x00\x00")
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, code string) {
		step, ok := Check(secret, code, now)
		if ok {
			want, _ := Code(secret, step)
			if Normalize(code) != want {
				t.Fatalf("Check(%q) accepted step %d whose code is %s", code, step, want)
			}
		}
	})
}
