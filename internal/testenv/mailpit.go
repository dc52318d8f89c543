package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// MailpitServer is a mailpit process (a real SMTP server with a REST API)
// that receives what a test sends. Start one with Mailpit.
type MailpitServer struct {
	SMTPHost string // 127.0.0.1
	SMTPPort int
	URL      string // base URL of the web UI and REST API, http://127.0.0.1:PORT

	t    testing.TB
	http *http.Client
}

// MailpitOptions adjust the mailpit process.
type MailpitOptions struct {
	// Args are extra command-line flags, for example
	// "--smtp-allowed-recipients", `@example\.com$` or "--enable-chaos".
	Args []string
}

// mailpitEnv names the mailpit executable the mail tests use.
const mailpitEnv = "GATEHOUSE_TEST_MAILPIT"

// MailpitPath returns the mailpit executable named by GATEHOUSE_TEST_MAILPIT,
// or skips the test with a notice when it is not set; a path that is not an
// executable fails the test.
func MailpitPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv(mailpitEnv)
	if p == "" {
		t.Skip("NOTICE: mail test skipped: GATEHOUSE_TEST_MAILPIT is not set. Build mailpit with " +
			"`(cd tools && go build -o /tmp/gatehouse-ci-bin/mailpit github.com/axllent/mailpit)` and set " +
			"GATEHOUSE_TEST_MAILPIT=/tmp/gatehouse-ci-bin/mailpit (.ci/run does both).")
	}
	exe, err := exec.LookPath(p)
	if err != nil {
		t.Fatalf("%s=%q is not an executable: %v", mailpitEnv, p, err)
	}
	return exe
}

// Mailpit starts mailpit on free loopback ports for the test and stops it
// when the test ends. Messages are kept in a database in the test's
// temporary directory. Without GATEHOUSE_TEST_MAILPIT the test is skipped
// with a notice.
func Mailpit(t testing.TB) *MailpitServer {
	t.Helper()
	return MailpitWith(t, MailpitOptions{})
}

// MailpitWith starts mailpit with extra flags.
func MailpitWith(t testing.TB, o MailpitOptions) *MailpitServer {
	t.Helper()
	exe := MailpitPath(t)
	var lastErr error
	// A port picked free can be taken before mailpit binds it; try again.
	for range 3 {
		m, err := startMailpit(t, exe, o)
		if err == nil {
			return m
		}
		lastErr = err
	}
	t.Fatalf("start mailpit: %v", lastErr)
	return nil
}

func startMailpit(t testing.TB, exe string, o MailpitOptions) (*MailpitServer, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	smtpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	args := []string{
		"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check",
		"--smtp-disable-rdns",
		"--quiet",
	}
	args = append(args, o.Args...)
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", exe, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	m := &MailpitServer{
		SMTPHost: "127.0.0.1", SMTPPort: smtpPort,
		URL: "http://127.0.0.1:" + strconv.Itoa(httpPort),
		t:   t, http: &http.Client{Timeout: 10 * time.Second},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("mailpit exited during start-up: %s", out.String())
		default:
		}
		if m.ready() {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("mailpit not ready after 20s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("mailpit output:\n%s", out.String())
		}
	})
	return m, nil
}

// ready reports whether both the API and the SMTP port answer.
func (m *MailpitServer) ready() bool {
	res, err := m.http.Get(m.URL + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", m.SMTPAddr(), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// SMTPAddr is the host:port of the SMTP server.
func (m *MailpitServer) SMTPAddr() string {
	return net.JoinHostPort(m.SMTPHost, strconv.Itoa(m.SMTPPort))
}

// MailAddress is an address in mailpit's answers.
type MailAddress struct {
	Name    string
	Address string
}

// MailSummary is one entry of mailpit's message list.
type MailSummary struct {
	ID        string // mailpit's database id, for Message
	MessageID string // the Message-ID header, without angle brackets
	From      *MailAddress
	To        []MailAddress
	Subject   string
	Username  string // the SMTP AUTH user that sent it, if any
	Created   time.Time
}

// MailMessage is a received message with its parts.
type MailMessage struct {
	ID        string
	MessageID string
	From      *MailAddress
	To        []MailAddress
	ReplyTo   []MailAddress
	Subject   string
	Date      time.Time
	Text      string // the text/plain part
	HTML      string // the text/html part
	Username  string
}

// Messages lists the received messages, newest first.
func (m *MailpitServer) Messages() []MailSummary {
	m.t.Helper()
	var res struct {
		Total    int
		Messages []MailSummary `json:"messages"`
	}
	m.get("/api/v1/messages?limit=1000", &res)
	return res.Messages
}

// WaitMessages waits until at least n messages arrived and returns them,
// newest first; it fails the test after 10 seconds.
func (m *MailpitServer) WaitMessages(n int) []MailSummary {
	m.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := m.Messages()
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mailpit: %d messages after 10s, want %d", len(list), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Message fetches a message with its text and HTML parts.
func (m *MailpitServer) Message(id string) *MailMessage {
	m.t.Helper()
	var msg MailMessage
	m.get("/api/v1/message/"+url.PathEscape(id), &msg)
	return &msg
}

// Headers fetches a message's header fields.
func (m *MailpitServer) Headers(id string) map[string][]string {
	m.t.Helper()
	var h map[string][]string
	m.get("/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h
}

// Raw fetches a message's source as received.
func (m *MailpitServer) Raw(id string) string {
	m.t.Helper()
	res, err := m.http.Get(m.URL + "/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		m.t.Fatalf("mailpit raw: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		m.t.Fatalf("mailpit raw: %s: %s", res.Status, b)
	}
	return string(b)
}

// DeleteAll removes every received message.
func (m *MailpitServer) DeleteAll() {
	m.t.Helper()
	m.do(http.MethodDelete, "/api/v1/messages", struct{}{}, nil)
}

// MailpitTrigger makes mailpit answer an SMTP stage with an error code, with
// a probability in percent (0 disables it).
type MailpitTrigger struct {
	ErrorCode   int
	Probability int
}

// MailpitChaos sets the error triggers of a mailpit started with
// "--enable-chaos"; zero triggers are disabled.
type MailpitChaos struct {
	Sender         MailpitTrigger // MAIL FROM
	Recipient      MailpitTrigger // RCPT TO
	Authentication MailpitTrigger // AUTH
}

// SetChaos makes mailpit fail SMTP stages on purpose (it must run with
// "--enable-chaos").
func (m *MailpitServer) SetChaos(c MailpitChaos) {
	m.t.Helper()
	m.do(http.MethodPut, "/api/v1/chaos", c, nil)
}

func (m *MailpitServer) get(path string, out any) {
	m.t.Helper()
	m.do(http.MethodGet, path, nil, out)
}

func (m *MailpitServer) do(method, path string, in, out any) {
	m.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			m.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, m.URL+path, body)
	if err != nil {
		m.t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := m.http.Do(req)
	if err != nil {
		m.t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		m.t.Fatalf("mailpit %s %s: %s: %s", method, path, res.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			m.t.Fatalf("mailpit %s %s: %v in %s", method, path, err, b)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects a process's output from two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
