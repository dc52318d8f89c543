package password

import (
	"bufio"
	"compress/gzip"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func loadBlocklist(t testing.TB) *Blocklist {
	t.Helper()
	b, err := LoadBlocklist()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlocklistFile checks the embedded file as internal/genblocklist writes
// it: at least 100,000 entries, each folded, distinct and long enough to pass
// the length rule, and that loading keeps them all.
func TestBlocklistFile(t *testing.T) {
	zr, err := gzip.NewReader(strings.NewReader(blocklistGz))
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int)
	sc := bufio.NewScanner(zr)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case fold(s) != s:
			t.Errorf("line %d %q is not folded (want %q)", line, s, fold(s))
		case utf8.RuneCountInString(s) < ciam.PasswordMinMultiFactor:
			t.Errorf("line %d %q is shorter than %d", line, s, ciam.PasswordMinMultiFactor)
		case seen[s] != 0:
			t.Errorf("line %d %q repeats line %d", line, s, seen[s])
		}
		seen[s] = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if line < 100_000 {
		t.Errorf("%d entries, want at least 100,000", line)
	}
	if got := loadBlocklist(t).Len(); got != line {
		t.Errorf("LoadBlocklist().Len() = %d, the file has %d", got, line)
	}
	// The most common passwords come first.
	for i, want := range []string{"password", "12345678", "123456789"} {
		if s := strings.Split(firstLines(t, 3), "\n")[i]; s != want {
			t.Errorf("line %d = %q, want %q", i+1, s, want)
		}
	}
}

func firstLines(t *testing.T, n int) string {
	zr, err := gzip.NewReader(strings.NewReader(blocklistGz))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var lines []string
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines, "\n")
}

func TestBlocklistContains(t *testing.T) {
	b := loadBlocklist(t)
	tests := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"iloveyou", true},
		{"qwertyuiop", true},
		{"password1234", true},
		{"password123456789", true},
		{"1qaz2wsx3edc4rfv", true},
		{"passwordpassword", true},
		{"123456789987654321", true},
		{"PASSWORD1234", true},
		{"PassWord1234", true},
		{"ｐａｓｓｗｏｒｄ１２３４", true}, // full-width, NFKC-equal
		{"ＰＡＳＳＷＯＲＤ１２３４", true},
		{"!@#$%^&*", true},    // added from john's list
		{"rastafarian", true}, // only in john's list
		{"123456", false},     // too short to be listed: length refuses it
		{"password1234 ", false},
		{"", false},
		{"correct horse battery staple", false},
		{"v7#Lq!m2zP_rT9", false},
	}
	for _, tt := range tests {
		if got := b.Contains(tt.pw); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
	var nilList *Blocklist
	if nilList.Contains("password") || nilList.Len() != 0 {
		t.Error("a nil Blocklist is not empty")
	}
}

func TestNewBlocklist(t *testing.T) {
	b := NewBlocklist([]string{"Foo", "foo", "ＦＯＯ", "foo ", "", "  ", "\u3000", "bar", "cafe\u0301"})
	if b.Len() != 4 {
		t.Errorf("Len() = %d, want 4 (foo, \"foo \", bar, café)", b.Len())
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{{"FOO", true}, {"foo ", true}, {"Bar", true}, {"CAFÉ", true}, {"ba", false}, {"bar2", false}, {"", false}, {" ", false}, {"zzz", false}, {"a", false}} {
		if got := b.Contains(tt.pw); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
	if e := NewBlocklist(nil); e.Len() != 0 || e.Contains("x") {
		t.Error("an empty Blocklist is not empty")
	}
}

// TestBlocklistFootprint holds what LoadBlocklist keeps to 10 MB and logs how
// long loading took; BenchmarkLoadBlocklist measures the time (about 40 ms).
func TestBlocklistFootprint(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	b := loadBlocklist(t)
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	for range 2 {
		start = time.Now()
		loadBlocklist(t)
		took = min(took, time.Since(start))
	}
	t.Logf("%d entries; load %v (fastest of 3); retained heap %.2f MB (data and table %.2f MB); allocated while loading %.2f MB; embedded .gz %.0f KB",
		b.Len(), took, float64(retained)/1e6, float64(b.footprint())/1e6,
		float64(after.TotalAlloc-before.TotalAlloc)/1e6, float64(len(blocklistGz))/1e3)
	if b.footprint() > 10e6 || retained > 10e6 {
		t.Errorf("the blocklist keeps %d bytes (%d retained), want under 10 MB", b.footprint(), retained)
	}
	runtime.KeepAlive(b)
}

func BenchmarkLoadBlocklist(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		loadBlocklist(b)
	}
}

func BenchmarkBlocklistContains(b *testing.B) {
	l := loadBlocklist(b)
	for b.Loop() {
		l.Contains("Correct Horse Battery Staple")
	}
}
