package main

// A minimal HTTP/1.1 client for the oidc suite's request loop. The load
// generator shares the machine's cores with the server, and net/http's
// client (two goroutines per connection, header maps, a handful of
// allocations per request) costs about as much CPU as the server's cheapest
// endpoints. This client is what wrk and similar tools do: one persistent
// connection per goroutine, a request written from bytes encoded once, and
// the answer parsed only as far as the load generator needs it (status,
// framing, Location, WWW-Authenticate, Connection).
//
// It speaks to one host over plain TCP, sends no Expect header and no HEAD
// requests, and does not support obsolete header folding or upgrades.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rawMaxBody bounds the body the client reads, against a garbled length.
const rawMaxBody = 16 << 20

// appendRequest appends the encoding of one HTTP/1.1 request to dst: the
// request line, Host, the header (name, value pairs), and with a body its
// Content-Length and the body.
func appendRequest(dst []byte, method, target, host, body string, header ...string) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: gatehouse-bench/1\r\n"...)
	for i := 0; i+1 < len(header); i += 2 {
		dst = append(dst, header[i]...)
		dst = append(dst, ": "...)
		dst = append(dst, header[i+1]...)
		dst = append(dst, "\r\n"...)
	}
	if body != "" || method == "POST" || method == "PUT" {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// splitHTTPURL splits an http:// URL into its host (with the port) and its
// request target (path and query).
func splitHTTPURL(u string) (host, target string, ok bool) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return "", "", false
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return rest, "/", rest != ""
	}
	host, target = rest[:i], rest[i:]
	if target[0] == '?' {
		target = "/" + target
	}
	return host, target, host != ""
}

// rawResponse is what the client keeps of an answer. body and the strings
// are overwritten by the next response read into it.
type rawResponse struct {
	status          int
	location        string
	wwwAuthenticate string
	body            []byte
	// close: the server closes the connection after this response (it said
	// Connection: close, it answered HTTP/1.0 without keep-alive, or the
	// body ran to the end of the connection).
	close bool
}

var errMalformed = errors.New("malformed response")

// readResponse reads one whole response from br into r: status line,
// header, and the body, framed by Content-Length, chunked
// Transfer-Encoding, or the end of the connection. Informational (1xx)
// responses before it are skipped.
func readResponse(br *bufio.Reader, r *rawResponse) error {
	for {
		if err := readOne(br, r); err != nil {
			return err
		}
		if r.status >= 200 || r.status == 101 {
			break
		}
	}
	return nil
}

// readOne reads a status line and header into r, then the body.
func readOne(br *bufio.Reader, r *rawResponse) error {
	r.status, r.location, r.wwwAuthenticate, r.body, r.close = 0, "", "", r.body[:0], false
	line, err := readLine(br)
	if err != nil {
		return err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return fmt.Errorf("%w: status line %q", errMalformed, trimForError(line))
	}
	http10 := line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: status line %q", errMalformed, trimForError(line))
		}
		r.status = r.status*10 + int(c-'0')
	}
	length, chunked, keepAlive := int64(-1), false, false
	for {
		line, err := readLine(br)
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: header line %q", errMalformed, trimForError(line))
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return fmt.Errorf("%w: Content-Length %q", errMalformed, trimForError(value))
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			// chunked is the last coding whenever there is a body to frame
			// (RFC 9112 section 6.1); the client asks for no other.
			if !hasToken(value, "chunked") || !asciiEqualFold(lastToken(value), "chunked") {
				return fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, trimForError(value))
			}
			chunked = true
		case asciiEqualFold(name, "connection"):
			if hasToken(value, "close") {
				r.close = true
			}
			if hasToken(value, "keep-alive") {
				keepAlive = true
			}
		case asciiEqualFold(name, "location"):
			r.location = string(value)
		case asciiEqualFold(name, "www-authenticate"):
			r.wwwAuthenticate = string(value)
		}
	}
	if http10 && !keepAlive {
		r.close = true
	}
	switch {
	case r.status < 200 || r.status == 204 || r.status == 304:
		return nil // no body
	case chunked:
		return readChunked(br, r)
	case length >= 0:
		if length > rawMaxBody {
			return fmt.Errorf("%w: Content-Length %d", errMalformed, length)
		}
		r.body = grow(r.body, int(length))
		if _, err := io.ReadFull(br, r.body); err != nil {
			return unexpected(err)
		}
		return nil
	}
	// No framing: the body is the rest of the connection.
	r.close = true
	for {
		if len(r.body) == cap(r.body) {
			if len(r.body) >= rawMaxBody {
				return fmt.Errorf("%w: body longer than %d bytes", errMalformed, rawMaxBody)
			}
			r.body = append(r.body, 0)[:len(r.body)]
		}
		n, err := br.Read(r.body[len(r.body):cap(r.body)])
		r.body = r.body[:len(r.body)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readChunked reads a chunked body and its trailer section into r.body.
func readChunked(br *bufio.Reader, r *rawResponse) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return unexpected(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) == 0 || len(line) > 8 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, trimForError(line))
		}
		n, err := strconv.ParseUint(string(line), 16, 32)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, trimForError(line))
		}
		if n == 0 {
			break
		}
		if uint64(len(r.body))+n > rawMaxBody {
			return fmt.Errorf("%w: body longer than %d bytes", errMalformed, rawMaxBody)
		}
		old := len(r.body)
		r.body = grow(r.body, old+int(n))
		if _, err := io.ReadFull(br, r.body[old:]); err != nil {
			return unexpected(err)
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			if err != nil {
				return unexpected(err)
			}
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
	// The trailer section, which the client ignores, ends with an empty line.
	for {
		line, err := readLine(br)
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// readLine reads one line without its CRLF (or bare LF). The line is only
// valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, br.Size())
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// grow returns b resized to n bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// unexpected turns the end of the connection inside a response into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (any case).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if asciiEqualFold(bytes.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.Trim(v, " \t")
}

func trimForError(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// rawConn is one goroutine's persistent connection to addr (host:port). It
// dials on first use, and again after the server closed the connection.
type rawConn struct {
	addr   string
	dialer net.Dialer
	conn   net.Conn
	br     *bufio.Reader
	used   bool // the connection has carried a request
	resp   rawResponse

	// The deadline set on conn, and the cancellation it watches.
	deadline time.Time
	done     <-chan struct{}
	stop     func() bool
}

func newRawConn(addr string) *rawConn {
	return &rawConn{addr: addr, dialer: net.Dialer{Timeout: 10 * time.Second}}
}

// roundTrip writes one encoded request and reads its response, which stays
// valid until the next call. A request that finds a kept-alive connection
// closed by the server (the write fails, or the connection ends before the
// first byte of an answer) is sent again once on a new connection.
func (c *rawConn) roundTrip(ctx context.Context, wire []byte) (*rawResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			if err := c.dial(ctx); err != nil {
				return nil, err
			}
		}
		c.watch(ctx)
		reused := c.used
		c.used = true
		answered := false
		_, err := c.conn.Write(wire)
		if err == nil {
			// Peek fills the buffer with the first read; it says whether
			// any of the answer came.
			if _, err = c.br.Peek(1); err == nil {
				answered = true
				err = readResponse(c.br, &c.resp)
			}
		}
		if err == nil {
			if c.resp.close {
				c.close()
			}
			return &c.resp, nil
		}
		c.close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if reused && !answered && attempt == 0 && closedByPeer(err) {
			continue
		}
		if !answered && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

func (c *rawConn) dial(ctx context.Context) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.conn, c.used = conn, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

// watch makes ctx's deadline the connection's, and ctx's cancellation end
// any read or write in progress. Both are set once per connection and
// context, not per request.
func (c *rawConn) watch(ctx context.Context) {
	if dl, _ := ctx.Deadline(); !dl.Equal(c.deadline) {
		_ = c.conn.SetDeadline(dl)
		c.deadline = dl
	}
	if d := ctx.Done(); d != c.done {
		if c.stop != nil {
			c.stop()
		}
		c.done, c.stop = d, nil
		if d != nil {
			conn := c.conn
			c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		}
	}
}

// close closes the connection; the next request dials a new one.
func (c *rawConn) close() {
	if c.stop != nil {
		c.stop()
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.conn, c.deadline, c.done, c.stop = nil, time.Time{}, nil, nil
}

// closedByPeer reports whether err says the server had closed the
// connection.
func closedByPeer(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// rawErr names a raw client error as netErr names net/http's.
func rawErr(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errMalformed):
		return errMalformed.Error()
	}
	return netErr(err)
}
