package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in       string
		status         int
		body, location string
		close          bool
		err            error // errors.Is; nil: success
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}",
			status: 200, body: `{"a":"bcd"}`},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
			status: 200, body: "hello, world"},
		{name: "chunked wins over length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
			status: 200, body: "0123456789"},
		{name: "redirect", in: "HTTP/1.1 303 See Other\r\nlocation: http://127.0.0.1:9/cb?code=abc&state=xyz\r\nContent-Length: 0\r\n\r\n",
			status: 303, location: "http://127.0.0.1:9/cb?code=abc&state=xyz"},
		{name: "connection close", in: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
			status: 400, body: "no", close: true},
		{name: "no length reads to the end", in: "HTTP/1.0 200 OK\r\n\r\nall of it",
			status: 200, body: "all of it", close: true},
		{name: "no content", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "informational skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
			status: 201, body: "x"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200, body: "ok"},
		{name: "bad status line", in: "HTTP/2 200\r\n\r\n", err: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errMalformed},
		{name: "no CRLF after chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", err: errMalformed},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", err: io.ErrUnexpectedEOF},
		{name: "truncated chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", err: io.ErrUnexpectedEOF},
		{name: "truncated header", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", err: io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rawResponse
			err := readResponse(bufio.NewReader(strings.NewReader(tc.in)), &r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tc.status || string(r.body) != tc.body || r.location != tc.location || r.close != tc.close {
				t.Errorf("got status %d body %q location %q close %v, want %d %q %q %v",
					r.status, r.body, r.location, r.close, tc.status, tc.body, tc.location, tc.close)
			}
		})
	}
}

// Two responses on one connection: the second is read from what follows
// the first, through the same reader and into the same reused response.
func TestReadResponseKeepAlive(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		_, _ = io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 401 Unauthorized\r\n"+
			"WWW-Authenticate: Bearer error=\"invalid_token\"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n")
	}()
	br := bufio.NewReader(client)
	var r rawResponse
	if err := readResponse(br, &r); err != nil || r.status != 200 || string(r.body) != "first" || r.close {
		t.Fatalf("first: %v, status %d body %q close %v", err, r.status, r.body, r.close)
	}
	if err := readResponse(br, &r); err != nil || r.status != 401 || string(r.body) != "second" ||
		r.wwwAuthenticate != `Bearer error="invalid_token"` {
		t.Fatalf("second: %v, status %d body %q WWW-Authenticate %q", err, r.status, r.body, r.wwwAuthenticate)
	}
	if err := readResponse(br, &r); err != io.EOF {
		t.Fatalf("after the last response: %v, want EOF", err)
	}
}

// rawConn against net/http's server: keep-alive, chunked bodies, a POST
// body, Connection: close, and a connection the server closed while idle.
func TestRawConn(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush() // no length known: chunked
			_, _ = io.WriteString(w, "part two")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Location", "/echoed?"+r.Header.Get("Authorization"))
			_, _ = w.Write(b)
		default:
			_, _ = io.WriteString(w, "plain")
		}
	}))
	defer ts.Close()
	host, _, ok := splitHTTPURL(ts.URL + "/x")
	if !ok {
		t.Fatal("splitHTTPURL", ts.URL)
	}
	c := newRawConn(host)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// get sends a request and wants a 200.
	get := func(method, path, body string, header ...string) *rawResponse {
		t.Helper()
		r, err := c.roundTrip(ctx, appendRequest(nil, method, path, host, body, header...))
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if r.status != 200 {
			t.Fatalf("%s %s: status %d", method, path, r.status)
		}
		return r
	}
	// The connection's local address tells whether it was kept.
	if r := get("GET", "/", ""); string(r.body) != "plain" {
		t.Fatalf("body %q", r.body)
	}
	first := c.conn.LocalAddr().String()
	if r := get("GET", "/chunked", ""); string(r.body) != "part one, part two" {
		t.Fatalf("chunked body %q", r.body)
	}
	if r := get("POST", "/echo", "a=1&b=2", "Authorization", "Basic eDp5", "Content-Type", "application/x-www-form-urlencoded"); string(r.body) != "a=1&b=2" || r.location != "/echoed?Basic eDp5" {
		t.Fatalf("echo: body %q location %q", r.body, r.location)
	}
	if c.conn == nil || c.conn.LocalAddr().String() != first {
		t.Fatal("the connection was not kept alive over three requests")
	}
	if r := get("GET", "/close", ""); string(r.body) != "bye" || !r.close || c.conn != nil {
		t.Fatalf("Connection: close: body %q close %v, connection kept %v", r.body, r.close, c.conn != nil)
	}
	if r := get("GET", "/", ""); string(r.body) != "plain" || c.conn.LocalAddr().String() == first {
		t.Fatalf("after close: body %q, same connection %v", r.body, c.conn.LocalAddr().String() == first)
	}
	// The server closes the idle connection; the next request is sent again
	// on a new one.
	second := c.conn.LocalAddr().String()
	ts.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if r := get("GET", "/chunked", ""); string(r.body) != "part one, part two" || c.conn.LocalAddr().String() == second {
		t.Fatalf("after the server closed: body %q, same connection %v", r.body, c.conn.LocalAddr().String() == second)
	}
}

func TestSplitHTTPURL(t *testing.T) {
	for _, tc := range []struct{ in, host, target string }{
		{"http://127.0.0.1:8080/t/default/token", "127.0.0.1:8080", "/t/default/token"},
		{"http://h:1/a?b=c", "h:1", "/a?b=c"},
		{"http://h:1?b=c", "h:1", "/?b=c"},
		{"http://h:1", "h:1", "/"},
	} {
		host, target, ok := splitHTTPURL(tc.in)
		if !ok || host != tc.host || target != tc.target {
			t.Errorf("%s: %q %q %v", tc.in, host, target, ok)
		}
	}
	if _, _, ok := splitHTTPURL("https://h/"); ok {
		t.Error("https accepted")
	}
}
