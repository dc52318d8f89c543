package web

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"direct client", "203.0.113.7:5555", nil, trusted, "203.0.113.7"},
		{"direct client spoofs header", "203.0.113.7:5555", []string{"1.1.1.1"}, trusted, "203.0.113.7"},
		{"no trusted proxies ignores header", "10.0.0.2:80", []string{"1.1.1.1"}, nil, "10.0.0.2"},
		{"one trusted proxy", "10.0.0.2:80", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"client spoof to the left is skipped", "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"chain of trusted proxies", "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.9, 10.1.1.1, 10.2.2.2"}, trusted, "198.51.100.9"},
		{"several header lines", "10.0.0.2:80", []string{"6.6.6.6", "198.51.100.9, 10.1.1.1"}, trusted, "198.51.100.9"},
		{"all hops trusted gives the leftmost", "10.0.0.2:80", []string{"10.9.9.9, 10.1.1.1"}, trusted, "10.9.9.9"},
		{"trusted proxy without header", "10.0.0.2:80", nil, trusted, "10.0.0.2"},
		{"garbage hop stops at the last trusted one", "10.0.0.2:80", []string{"198.51.100.9, garbage, 10.1.1.1"}, trusted, "10.1.1.1"},
		{"empty hop", "10.0.0.2:80", []string{"198.51.100.9,"}, trusted, "10.0.0.2"},
		{"hop with port", "10.0.0.2:80", []string{"198.51.100.9:1234"}, trusted, "198.51.100.9"},
		{"ipv6 hop", "[fd00::1]:443", []string{"2001:db8::5"}, trusted, "2001:db8::5"},
		{"bracketed ipv6 hop with port", "[fd00::1]:443", []string{"[2001:db8::5]:99"}, trusted, "2001:db8::5"},
		{"ipv4-mapped remote", "[::ffff:203.0.113.7]:5555", nil, trusted, "203.0.113.7"},
		{"ipv4-mapped trusted proxy", "[::ffff:10.0.0.2]:80", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"remote without port", "203.0.113.7", nil, trusted, "203.0.113.7"},
		{"unix socket", "@", []string{"1.1.1.1"}, trusted, "@"},
		{"spaces around hops", "10.0.0.2:80", []string{" 198.51.100.9 ,  10.1.1.1 "}, trusted, "198.51.100.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			r.Header.Set("X-Real-IP", "9.9.9.9") // never read
			if got := ClientIP(r, tc.trusted); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
