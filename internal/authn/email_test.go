package authn

import (
	"strings"
	"testing"
)

func TestParseBinding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Binding
	}{
		{"abc.def", Binding{TokenID: "abc", Secret: "def"}},
		{"abc.def.ghi", Binding{TokenID: "abc", Secret: "def.ghi"}},
		{"", Binding{}},
		{"abc", Binding{}},
		{".def", Binding{}},
		{"abc.", Binding{}},
		{"a." + strings.Repeat("x", 300), Binding{}},
	} {
		if got := ParseBinding(c.in); got != c.want {
			t.Errorf("ParseBinding(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	b := newBinding()
	if got := ParseBinding(b.String()); got != b {
		t.Errorf("round trip: %+v != %+v", got, b)
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{"123456": "123456", " 123 456 ": "123456", "12-34-56": "123456", "١٢٣": "", "abc": ""} {
		if got := normalizeCode(in); got != want {
			t.Errorf("normalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewCodeIsSixDigits(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := newCode()
		if len(c) != 6 || normalizeCode(c) != c {
			t.Fatalf("newCode() = %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Errorf("%d distinct codes of 200", len(seen))
	}
}

// FuzzParseBinding: any cookie value parses without panicking, and a
// parsed binding prints back to the value it came from.
func FuzzParseBinding(f *testing.F) {
	f.Add("abc.def")
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, v string) {
		b := ParseBinding(v)
		if b == (Binding{}) {
			return
		}
		if b.TokenID == "" || b.Secret == "" || strings.Contains(b.TokenID, ".") || b.String() != v {
			t.Fatalf("ParseBinding(%q) = %+v", v, b)
		}
	})
}

// FuzzNormalizeCode: the result holds only ASCII digits.
func FuzzNormalizeCode(f *testing.F) {
	f.Add("123 456")
	f.Add("\x00١٢")
	f.Fuzz(func(t *testing.T, v string) {
		for _, r := range normalizeCode(v) {
			if r < '0' || r > '9' {
				t.Fatalf("normalizeCode(%q) kept %q", v, r)
			}
		}
	})
}
