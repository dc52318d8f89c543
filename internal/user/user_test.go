package user

import (
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		" Ada@Example.COM ":     "ada@example.com",
		"ａｄａ@example.com":       "ada@example.com", // full-width letters fold under NFKC
		"first.last+tag@ex.org": "first.last+tag@ex.org",
	} {
		got, err := NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "plain", "a@b", "a@@b.com", "Ada <ada@example.com>", "a b@example.com", "a@example.com.", "\xff@example.com", "a@exa\x00mple.com", strings.Repeat("a", 250) + "@example.com"} {
		if _, err := NormalizeEmail(in); ciam.CodeOf(err) != "invalid_email" {
			t.Errorf("NormalizeEmail(%q) = %v, want invalid_email", in, err)
		}
	}
}

func TestCleanName(t *testing.T) {
	if n, err := CleanName("  Ada Lovelace "); err != nil || n != "Ada Lovelace" {
		t.Errorf("CleanName: %q %v", n, err)
	}
	for _, in := range []string{"bad\xffname", "tab\tname", strings.Repeat("x", 201)} {
		if _, err := CleanName(in); ciam.KindOf(err) != ciam.Invalid {
			t.Errorf("CleanName(%q) accepted", in)
		}
	}
	if CleanLocale("de-DE") != "de-DE" || CleanLocale("<script>") != "" {
		t.Error("CleanLocale")
	}
}
