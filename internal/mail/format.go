package mail

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Lang picks the language of a mail from a BCP 47 locale: German for "de"
// and its regional variants ("de-AT", "de_CH"), English for anything else.
func Lang(locale string) string {
	l := strings.ToLower(strings.TrimSpace(locale))
	if l == "de" || strings.HasPrefix(l, "de-") || strings.HasPrefix(l, "de_") {
		return "de"
	}
	return "en"
}

// checkLink accepts an absolute https URL, or http to this machine for
// development. Links are built from the configured public URL by the
// caller; anything else is a bug or an attempt to point mail elsewhere.
func checkLink(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`"'<>\`, r) }) {
		return errors.New("contains spaces, quotes or control characters; pass it percent-encoded")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL; build it from the configured public URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return nil
		}
		return errors.New("plain http is only allowed for localhost and 127.0.0.1; use https")
	}
	return fmt.Errorf("scheme %q: want https", u.Scheme)
}

// oneLine makes s safe for a header or a single line of text: control
// characters and runs of white space become one space.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}), " ")
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// DefaultColor is the button colour of a tenant without a valid one.
const DefaultColor = "#2f5bea"

// brandColor returns c when it is "#rrggbb", else DefaultColor.
func brandColor(c string) string {
	if len(c) != 7 || c[0] != '#' {
		return DefaultColor
	}
	if _, err := strconv.ParseUint(c[1:], 16, 32); err != nil {
		return DefaultColor
	}
	return strings.ToLower(c)
}

// textOn returns a text colour readable on background c ("#rrggbb").
func textOn(c string) string {
	v, _ := strconv.ParseUint(c[1:], 16, 32)
	lin := func(x uint64) float64 {
		f := float64(x) / 255
		if f <= 0.04045 {
			return f / 12.92
		}
		return math.Pow((f+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(v>>16&0xff) + 0.7152*lin(v>>8&0xff) + 0.0722*lin(v&0xff)
	// White text needs contrast (1.05)/(l+0.05); black needs (l+0.05)/0.05.
	if 1.05/(l+0.05) >= (l+0.05)/0.05 {
		return "#ffffff"
	}
	return "#111111"
}

// logoURL returns u when it is an https URL a mail client may load, else "".
func logoURL(u string) string {
	if !strings.HasPrefix(u, "https://") || len(u) > 2048 || strings.ContainsAny(u, "\"'<> \\\r\n\t") {
		return ""
	}
	if p, err := url.Parse(u); err != nil || p.Host == "" || p.User != nil {
		return ""
	}
	return u
}

// HumanDuration writes d for a person in lang ("en" or "de"), rounded up to
// whole minutes: "10 minutes", "72 hours", "7 days" / "10 Minuten",
// "72 Stunden", "7 Tage". Days are used from four days on.
func HumanDuration(d time.Duration, lang string) string {
	if d < time.Minute {
		d = time.Minute
	}
	mins := int64((d + time.Minute - 1) / time.Minute)
	n, unit := mins, 0
	switch {
	case mins%(24*60) == 0 && mins >= 4*24*60:
		n, unit = mins/(24*60), 2
	case mins%60 == 0:
		n, unit = mins/60, 1
	}
	words := [2][3][2]string{
		{{"minute", "minutes"}, {"hour", "hours"}, {"day", "days"}},
		{{"Minute", "Minuten"}, {"Stunde", "Stunden"}, {"Tag", "Tage"}},
	}
	l := 0
	if lang == "de" {
		l = 1
	}
	plural := 1
	if n == 1 {
		plural = 0
	}
	return strconv.FormatInt(n, 10) + " " + words[l][unit][plural]
}

// maskEmail hides most of an address's local part: "j***@example.com".
func maskEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return ""
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}
