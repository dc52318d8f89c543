package password

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestPolicyCheck(t *testing.T) {
	p, err := NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	const email = "alice.smith@example.com"
	maxLen := ciam.PasswordMaxLength
	tests := []struct {
		name   string
		pw     string
		minLen int
		ids    []string
		code   string // "" means accepted
	}{
		{"empty", "", 8, nil, CodeRequired},
		{"invalid UTF-8", "purple\xff\xfeotter kelp", 8, nil, CodeInvalid},
		{"only spaces", strings.Repeat(" ", 20), 15, nil, CodeOnlyWhitespace},
		{"only tabs and newlines", "\t\n\t\n\t\n\t\n\r\n", 8, nil, CodeOnlyWhitespace},
		{"only ideographic spaces", strings.Repeat("\u3000", 20), 15, nil, CodeOnlyWhitespace},
		{"only no-break spaces", strings.Repeat("\u00a0", 20), 15, nil, CodeOnlyWhitespace},

		{"14 of 15", "zq7 wombat kel", 15, nil, CodeTooShort},
		{"15 of 15", "zq7 wombat kelp", 15, nil, ""},
		{"7 of 8", "tuba-kx", 8, nil, CodeTooShort},
		{"8 of 8", "tuba-kx9", 8, nil, ""},
		{"minimum below 8 is raised to 8", "tuba-kx", 6, nil, CodeTooShort},
		{"minimum 0 is raised to 8", "tuba-kx", 0, nil, CodeTooShort},
		{"spaces count", "  tuba  ", 8, nil, ""},
		{"characters, not bytes: 7 é", strings.Repeat("é", 7), 8, nil, CodeTooShort},
		{"characters, not bytes: 8 é", strings.Repeat("é", 8), 8, nil, ""},
		{"counted after NFKC: 8 decomposed é are 8", strings.Repeat("e\u0301", 8), 8, nil, ""},
		{"counted after NFKC: 8 decomposed é are not 9", strings.Repeat("e\u0301", 8), 9, nil, CodeTooShort},
		{"counted after NFKC: ligature is 2", "\ufb01zzbox7", 8, nil, ""},
		{"emoji", "🐢🐢🐢🐢 go slow", 8, nil, ""},

		{"256 accepted", strings.Repeat("ab3 ", maxLen/4), 15, nil, ""},
		{"257 refused", strings.Repeat("ab3 ", maxLen/4) + "x", 15, nil, CodeTooLong},
		{"256 multibyte accepted", strings.Repeat("é", maxLen), 15, nil, ""},
		{"257 multibyte refused", strings.Repeat("é", maxLen+1), 15, nil, CodeTooLong},
		{"far too long", strings.Repeat("x", 10000), 15, nil, CodeTooLong},
		{"minimum above the maximum is capped", strings.Repeat("ab3 ", maxLen/4), 1000, nil, ""},

		{"common", "password123456789", 15, nil, CodeCommon},
		{"common, 8", "iloveyou", 8, nil, CodeCommon},
		{"common, upper case", "PASSWORD1234", 8, nil, CodeCommon},
		{"common, mixed case", "QwertyUiop", 8, nil, CodeCommon},
		{"common, full-width", "ｐａｓｓｗｏｒｄ１２３４", 8, nil, CodeCommon},
		{"common, with a trailing space", "password1234 ", 8, nil, CodeCommon},
		{"common, 16", "1qaz2wsx3edc4rfv", 15, nil, CodeCommon},
		{"common but too short is too short", "password", 15, nil, CodeTooShort},
		{"not common", "correct horse battery staple", 15, nil, ""},

		{"the email", email, 15, []string{email}, CodeContainsIdentifier},
		{"the email, other case", "Alice.Smith@Example.com", 15, []string{email}, CodeContainsIdentifier},
		{"the local part", "alice.smith", 8, []string{email}, CodeContainsIdentifier},
		{"the local part plus a year", "alice.smith2024", 8, []string{email}, CodeContainsIdentifier},
		{"the email plus a digit", email + "1", 15, []string{email}, CodeContainsIdentifier},
		{"the username", "wonderland42", 8, []string{"wonderland42"}, CodeContainsIdentifier},
		{"the local part in a sentence", "alice.smith likes long walks", 15, []string{email}, ""},
		{"unrelated", "correct horse battery staple", 15, []string{email, "alice"}, ""},
		{"blank identifiers are ignored", "zq7 wombat kelp", 15, []string{"", "  "}, ""},
		{"short identifiers only by equality", "al is my best friend", 15, []string{"al@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.pw, tt.minLen, tt.ids...)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Check(%.40q, %d) = %v, want nil", tt.pw, tt.minLen, err)
				}
				return
			}
			e := ciam.As(err)
			if e == nil {
				t.Fatalf("Check(%.40q, %d) = %v, want a *ciam.Error %s", tt.pw, tt.minLen, err, tt.code)
			}
			if e.Code != tt.code || e.Kind != ciam.Invalid || e.Field != "password" || e.Msg == "" {
				t.Errorf("Check(%.40q, %d) = {Kind %v, Code %q, Field %q, Msg %q}, want Kind invalid, Code %q, Field password",
					tt.pw, tt.minLen, e.Kind, e.Code, e.Field, e.Msg, tt.code)
			}
		})
	}
}

func TestPolicyMessages(t *testing.T) {
	p := &Policy{}
	err := p.Check("tuba-kx", 15)
	if e := ciam.As(err); e == nil || !strings.Contains(e.Msg, "at least 15 characters") {
		t.Errorf("too short: %v, want a message naming 15 characters", err)
	}
	err = p.Check("tuba-kx", 3)
	if e := ciam.As(err); e == nil || !strings.Contains(e.Msg, "at least "+strconv.Itoa(ciam.PasswordMinMultiFactor)+" characters") {
		t.Errorf("too short: %v, want a message naming %d characters", err, ciam.PasswordMinMultiFactor)
	}
	err = p.Check(strings.Repeat("x", 300), 15)
	if e := ciam.As(err); e == nil || !strings.Contains(e.Msg, "at most 256 characters") {
		t.Errorf("too long: %v, want a message naming 256 characters", err)
	}
	bl := &Policy{Blocklist: NewBlocklist([]string{"correct horse battery staple"})}
	err = bl.Check("Correct Horse Battery Staple", 15)
	if e := ciam.As(err); e == nil || e.Code != CodeCommon || !strings.Contains(e.Msg, "most commonly used") {
		t.Errorf("common: %v", err)
	}
}

func TestPolicyWithoutBlocklist(t *testing.T) {
	var nilPolicy *Policy
	for _, p := range []*Policy{nilPolicy, {}} {
		if err := p.Check("password1234", 8); err != nil {
			t.Errorf("Check without a blocklist = %v", err)
		}
		if err := p.Check("short", 8); ciam.CodeOf(err) != CodeTooShort {
			t.Errorf("Check without a blocklist of a short password = %v", err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	p, err := NewPolicy()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p.Check("Correct Horse Battery Staple", 15, "alice.smith@example.com")
	}
}
