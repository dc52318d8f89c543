package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r, for rate limits and
// audit records.
//
// It is the peer address (RemoteAddr) unless that peer is a trusted proxy (in
// one of the trusted prefixes). Only then is X-Forwarded-For read, from the
// right, skipping trusted proxies: the first untrusted address is the client.
// Addresses a client wrote into the header itself lie to the left of what the
// trusted proxies appended and are never reached. If every hop is trusted the
// leftmost one is returned; if a hop does not parse, the last trusted hop
// before it is. Headers from an untrusted peer are never read. IPv4-mapped
// IPv6 addresses are returned as IPv4.
//
// RemoteAddr that is not an IP address (a Unix socket) is returned unchanged.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for last := false; !last; {
			hop := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				last = true
			}
			a, ok := parseHop(hop)
			if !ok {
				return client.String()
			}
			client = a
			if !isTrusted(a, trusted) {
				return a.String()
			}
		}
	}
	return client.String()
}

// parseHop parses "addr", "addr:port" or "[addr]:port".
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
