package password

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var (
	salt16 = base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key32  = base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	valid  = "$argon2id$v=19$m=19456,t=2,p=1$" + salt16 + "$" + key32
)

func withParams(p string) string { return "$argon2id$v=19$" + p + "$" + salt16 + "$" + key32 }

func withSaltKey(salt, key string) string {
	return "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
}

func b64n(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }

// malformedPHC are strings Verify must refuse with ErrInvalidHash.
var malformedPHC = []string{
	"",
	"$",
	"password",
	"$argon2id",
	"$argon2id$v=19",
	"$argon2id$v=19$m=19456,t=2,p=1",
	"$argon2id$v=19$m=19456,t=2,p=1$" + salt16,
	valid + "$",
	valid + "$extra",
	"x" + valid,
	valid + " ",
	" " + valid,
	strings.Replace(valid, "argon2id", "argon2i", 1),
	strings.Replace(valid, "argon2id", "argon2d", 1),
	strings.Replace(valid, "argon2id", "ARGON2ID", 1),
	strings.Replace(valid, "v=19", "v=16", 1),
	strings.Replace(valid, "v=19", "v=019", 1),
	strings.Replace(valid, "$v=19", "", 1), // version omitted
	"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	// parameters
	withParams("m=19456,t=2"),
	withParams("m=19456,t=2,p=1,keyid=abc"),
	withParams("t=2,m=19456,p=1"),
	withParams("m=19456,p=1,t=2"),
	withParams("m=019456,t=2,p=1"),
	withParams("m=+19456,t=2,p=1"),
	withParams("m=-19456,t=2,p=1"),
	withParams("m=19456 ,t=2,p=1"),
	withParams("m=0x4c00,t=2,p=1"),
	withParams("m=,t=2,p=1"),
	withParams("M=19456,t=2,p=1"),
	withParams("m=19456,t=0,p=1"),
	withParams("m=19456,t=2,p=0"),
	withParams("m=19456,t=2,p=5"),
	withParams("m=19456,t=11,p=1"),
	withParams("m=19456,t=4294967297,p=1"),
	withParams("m=7,t=2,p=1"),
	withParams("m=31,t=1,p=4"),
	withParams("m=65537,t=1,p=1"),
	withParams("m=65536,t=3,p=1"),   // each within bounds, m*t above
	withParams("m=4194304,t=2,p=1"), // 4 GiB
	withParams("m=4294967295,t=2,p=1"),
	withParams("m=99999999999999999999,t=2,p=1"),
	// salt and key
	withSaltKey(salt16+"==", key32),
	withSaltKey(salt16, key32+"="),
	withSaltKey(b64n(7), key32),
	withSaltKey(b64n(65), key32),
	withSaltKey(salt16, b64n(15)),
	withSaltKey(salt16, b64n(65)),
	withSaltKey("", key32),
	withSaltKey(salt16, ""),
	withSaltKey(salt16, strings.Replace(key32, "M", "-", 1)),                 // URL alphabet
	withSaltKey(salt16, base64.StdEncoding.EncodeToString(make([]byte, 32))), // padded
	withSaltKey("MDEyMzQ1Njc4OWFiY2RlZh", key32),                             // non-zero trailing bits
	withSaltKey(salt16, key32[:len(key32)-1]+"\x00"),
	withSaltKey(salt16[:10]+"\n"+salt16[10:], key32), // the decoder would skip line breaks
	withSaltKey(salt16, key32[:20]+"\r\n"+key32[20:]),
	withSaltKey(b64n(16), b64n(64)+strings.Repeat("A", 200)), // too long overall
}

func TestParsePHC(t *testing.T) {
	p, err := parsePHC(valid)
	if err != nil {
		t.Fatalf("parsePHC(valid) = %v", err)
	}
	if p.params != current() || string(p.salt) != "0123456789abcdef" || len(p.key) != 32 {
		t.Errorf("parsePHC(valid) = %+v", p)
	}
	if p.String() != valid {
		t.Errorf("String() = %q, want %q", p.String(), valid)
	}
	for _, s := range []string{
		withParams("m=65536,t=2,p=1"),
		withParams("m=8,t=1,p=1"),
		withParams("m=32,t=10,p=4"),
		withSaltKey(b64n(8), b64n(16)),
		withSaltKey(b64n(64), b64n(64)),
	} {
		if _, err := parsePHC(s); err != nil {
			t.Errorf("parsePHC(%q) = %v, want ok (at the bounds)", s, err)
		}
	}
	for _, s := range malformedPHC {
		if p, err := parsePHC(s); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("parsePHC(%.80q) = %+v, %v; want ErrInvalidHash", s, p, err)
		}
	}
}

// FuzzParsePHC checks that the parser never panics, that whatever it accepts
// is within bounds and that it accepts only the canonical encoding.
func FuzzParsePHC(f *testing.F) {
	f.Add(valid)
	f.Add(withParams("m=65536,t=2,p=1"))
	for _, s := range malformedPHC {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("error %v does not wrap ErrInvalidHash", err)
			}
			return
		}
		switch {
		case p.memory > maxMemoryKiB, p.time < 1, p.time > maxTime, p.threads < 1, p.threads > maxThreads,
			p.memory < 8*uint32(p.threads), uint64(p.memory)*uint64(p.time) > maxCost,
			len(p.salt) < minSaltLen, len(p.salt) > maxSaltLen, len(p.key) < minKeyLen, len(p.key) > maxKeyLen:
			t.Fatalf("parsePHC(%q) accepted out-of-bounds %+v", s, p)
		}
		if got := p.String(); got != s {
			t.Fatalf("parsePHC(%q) accepted a non-canonical form of %q", s, got)
		}
	})
}
