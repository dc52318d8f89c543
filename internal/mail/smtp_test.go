package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

func sender(host string, port int) *mail.SMTP {
	return &mail.SMTP{Config: mail.Config{Host: host, Port: port, TLS: mail.TLSNone, From: "no-reply@gatehouse.test", Timeout: 10 * time.Second}}
}

func mailpitSender(mp *testenv.MailpitServer) *mail.SMTP { return sender(mp.SMTPHost, mp.SMTPPort) }

func simple(to string) *mail.Message {
	return &mail.Message{From: "Gatehouse <no-reply@gatehouse.test>", To: to, Subject: "Hello", Text: "Hello there.\n"}
}

// deliveryError asserts that err is a *DeliveryError with the given
// permanence and returns it.
func deliveryError(t *testing.T, err error, permanent bool) *mail.DeliveryError {
	t.Helper()
	var de *mail.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("got %v (%T), want a *mail.DeliveryError", err, err)
	}
	if mail.Permanent(err) != permanent || de.Permanent != permanent {
		t.Fatalf("Permanent = %v, want %v: %v", mail.Permanent(err), permanent, err)
	}
	return de
}

func TestPermanentOfOtherErrors(t *testing.T) {
	if mail.Permanent(nil) || mail.Permanent(errors.New("x")) || mail.Permanent(context.DeadlineExceeded) {
		t.Error("errors that are not a DeliveryError must count as temporary")
	}
}

// TestSendRefusesBadMessages needs no server: the message is refused
// before any connection, and permanently.
func TestSendRefusesBadMessages(t *testing.T) {
	s := sender("127.0.0.1", 1)
	for name, m := range map[string]*mail.Message{
		"nil":              nil,
		"bad recipient":    {From: "a@example.com", To: "not an address", Text: "x"},
		"no recipient":     {From: "a@example.com", To: "", Text: "x"},
		"two recipients":   {From: "a@example.com", To: "b@example.com, c@example.com", Text: "x"},
		"recipient inject": {From: "a@example.com", To: "b@example.com\r\nBcc: c@example.com", Text: "x"},
		"bad sender":       {From: "nobody", To: "b@example.com", Text: "x"},
		"no text":          {From: "a@example.com", To: "b@example.com", HTML: "<p>x</p>"},
		"header inject":    {From: "a@example.com", To: "b@example.com", Text: "x", Headers: map[string]string{"X-Tag": "a\r\nBcc: c@example.com"}},
		"reserved header":  {From: "a@example.com", To: "b@example.com", Text: "x", Headers: map[string]string{"bcc": "c@example.com"}},
		"bad header name":  {From: "a@example.com", To: "b@example.com", Text: "x", Headers: map[string]string{"X Tag": "1"}},
		"bad message id":   {From: "a@example.com", To: "b@example.com", Text: "x", Headers: map[string]string{"Message-ID": "<no-at-sign>"}},
		"bad reply-to":     {From: "a@example.com", To: "b@example.com", Text: "x", Headers: map[string]string{"Reply-To": "nobody"}},
	} {
		t.Run(name, func(t *testing.T) {
			de := deliveryError(t, s.Send(context.Background(), m), true)
			if de.Stage != "message" {
				t.Errorf("stage %q", de.Stage)
			}
		})
	}
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	err = sender("127.0.0.1", port).Send(context.Background(), simple("ada@example.com"))
	deliveryError(t, err, false)
}

// silentServer accepts connections and never answers, like a relay that
// hangs or a firewall that swallows packets after the handshake.
func silentServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				<-done
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); close(done) })
	return l.Addr().(*net.TCPAddr).Port
}

func TestSendTimeout(t *testing.T) {
	port := silentServer(t)
	// Tests never assert on time; the bound only proves the send gave up
	// instead of waiting for the 10 s default of the other cases.
	run := func(name string, s *mail.SMTP, ctx context.Context, wantCtxErr error) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := s.Send(ctx, simple("ada@example.com"))
			de := deliveryError(t, err, false)
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("gave up after %s", took)
			}
			if wantCtxErr != nil && !errors.Is(err, wantCtxErr) {
				t.Errorf("got %v, want %v in the chain", err, wantCtxErr)
			}
			t.Logf("%s: %v", de.Stage, err)
		})
	}
	short := sender("127.0.0.1", port)
	short.Config.Timeout = 300 * time.Millisecond
	run("config timeout", short, context.Background(), context.DeadlineExceeded)

	long := sender("127.0.0.1", port)
	long.Config.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	run("context deadline", long, ctx, context.DeadlineExceeded)

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel2)
	run("context cancelled", long, ctx2, context.Canceled)
}

func TestSendThroughMailpit(t *testing.T) {
	mp := testenv.Mailpit(t)
	r := renderer(t, "")
	tn := acme()
	cfg := mail.Config{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: mail.TLSNone, From: "no-reply@acme.test"}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

	d := data(mail.VerifyEmail, "de-AT")
	out, err := r.Render(mail.VerifyEmail, d)
	if err != nil {
		t.Fatal(err)
	}
	m := out.Message(cfg.FromFor(tn), "Ada Lovelace <ada@example.com>")
	m.Headers = map[string]string{"Message-ID": mail.MessageID("01jexampleoutboxentry", "acme.test"), "X-Gatehouse-Kind": string(mail.VerifyEmail)}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// A retry of the same outbox entry carries the same Message-ID.
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	list := mp.WaitMessages(2)
	if len(list) != 2 || list[0].MessageID != "01jexampleoutboxentry@acme.test" || list[1].MessageID != list[0].MessageID {
		t.Fatalf("messages: %+v", list)
	}
	got := mp.Message(list[0].ID)
	if got.From == nil || got.From.Address != "no-reply@acme.test" || got.From.Name != "Acme Shop" {
		t.Errorf("From %+v", got.From)
	}
	if len(got.To) != 1 || got.To[0].Address != "ada@example.com" || got.To[0].Name != "Ada Lovelace" {
		t.Errorf("To %+v", got.To)
	}
	if got.Subject != out.Subject || !strings.HasPrefix(got.Subject, "Bestätigen Sie") {
		t.Errorf("Subject %q, want %q", got.Subject, out.Subject)
	}
	if !got.Date.Equal(s.Now()) {
		t.Errorf("Date %v", got.Date)
	}
	if strings.TrimSpace(strings.ReplaceAll(got.Text, "\r\n", "\n")) != strings.TrimSpace(out.Text) {
		t.Errorf("text part differs:\n%q\nwant\n%q", got.Text, out.Text)
	}
	for _, s := range []string{"042917", "Acme Shop", `href="https://id.acme.test/t/acme/verify?token=abc&amp;lang=de"`, "#ffcc00"} {
		if !strings.Contains(got.HTML, s) {
			t.Errorf("HTML part lacks %q", s)
		}
	}
	raw := mp.Raw(list[0].ID)
	for _, s := range []string{"multipart/alternative", "text/plain; charset=UTF-8", "text/html; charset=UTF-8", "Auto-Submitted: auto-generated", "X-Gatehouse-Kind: verify_email"} {
		if !strings.Contains(raw, s) {
			t.Errorf("raw message lacks %q", s)
		}
	}
	if strings.Index(raw, "text/plain") > strings.Index(raw, "text/html") {
		t.Error("the HTML part comes before the text part; clients show the last alternative they understand")
	}
	if strings.Contains(strings.ToLower(raw), "go-mail") {
		t.Error("the message advertises the mail library")
	}
}

func TestSendRejectedRecipientIsPermanent(t *testing.T) {
	mp := testenv.MailpitWith(t, testenv.MailpitOptions{Args: []string{"--smtp-allowed-recipients", `@example\.com$`}})
	s := mailpitSender(mp)
	de := deliveryError(t, s.Send(context.Background(), simple("someone@elsewhere.test")), true)
	if de.Code != 550 || de.Stage != "rcpt to" {
		t.Errorf("code %d stage %q: %v", de.Code, de.Stage, de)
	}
	if err := s.Send(context.Background(), simple("ada@example.com")); err != nil {
		t.Fatalf("allowed recipient: %v", err)
	}
	if n := len(mp.WaitMessages(1)); n != 1 {
		t.Errorf("%d messages", n)
	}
}

func TestSendServerErrors(t *testing.T) {
	mp := testenv.MailpitWith(t, testenv.MailpitOptions{Args: []string{"--enable-chaos", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure"}})
	s := mailpitSender(mp)
	for _, c := range []struct {
		name      string
		chaos     testenv.MailpitChaos
		permanent bool
		code      int
		stage     string
	}{
		{"recipient 451", testenv.MailpitChaos{Recipient: testenv.MailpitTrigger{ErrorCode: 451, Probability: 100}}, false, 451, "rcpt to"},
		{"recipient 452", testenv.MailpitChaos{Recipient: testenv.MailpitTrigger{ErrorCode: 452, Probability: 100}}, false, 452, "rcpt to"},
		{"recipient 550", testenv.MailpitChaos{Recipient: testenv.MailpitTrigger{ErrorCode: 550, Probability: 100}}, true, 550, "rcpt to"},
		{"sender 421", testenv.MailpitChaos{Sender: testenv.MailpitTrigger{ErrorCode: 421, Probability: 100}}, false, 421, "mail from"},
		{"sender 553", testenv.MailpitChaos{Sender: testenv.MailpitTrigger{ErrorCode: 553, Probability: 100}}, true, 553, "mail from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mp.SetChaos(c.chaos)
			de := deliveryError(t, s.Send(context.Background(), simple("ada@example.com")), c.permanent)
			if de.Code != c.code || de.Stage != c.stage {
				t.Errorf("code %d stage %q, want %d %q: %v", de.Code, de.Stage, c.code, c.stage, de)
			}
		})
	}
	// A refused login is the relay's configuration, not the message's fault.
	mp.SetChaos(testenv.MailpitChaos{Authentication: testenv.MailpitTrigger{ErrorCode: 535, Probability: 100}})
	auth := mailpitSender(mp)
	auth.Config.Username, auth.Config.Password = "acme", "wrong"
	de := deliveryError(t, auth.Send(context.Background(), simple("ada@example.com")), false)
	if de.Code != 535 {
		t.Errorf("auth failure: %v", de)
	}
	mp.SetChaos(testenv.MailpitChaos{})
	if err := s.Send(context.Background(), simple("ada@example.com")); err != nil {
		t.Fatalf("after chaos: %v", err)
	}
	if n := len(mp.Messages()); n != 1 {
		t.Errorf("%d messages stored, want only the last", n)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestSendTLS(t *testing.T) {
	testenv.MailpitPath(t) // skip before making certificates
	certFile, keyFile, pool := selfSigned(t)
	for _, c := range []struct {
		mode mail.TLSMode
		flag string
	}{
		{mail.TLSStartTLS, "--smtp-require-starttls"},
		{mail.TLSImplicit, "--smtp-require-tls"},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			mp := testenv.MailpitWith(t, testenv.MailpitOptions{Args: []string{
				"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, c.flag, "--smtp-auth-accept-any",
			}})
			cfg := mail.Config{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: c.mode, Username: "acme-relay", Password: "secret", From: "no-reply@acme.test", Timeout: 10 * time.Second}
			if err := cfg.Validate("mail"); err != nil {
				t.Fatal(err)
			}
			s := &mail.SMTP{Config: cfg, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			if err := s.Send(context.Background(), simple("ada@example.com")); err != nil {
				t.Fatalf("send: %v", err)
			}
			list := mp.WaitMessages(1)
			if list[0].Username != "acme-relay" {
				t.Errorf("authenticated as %q", list[0].Username)
			}
			// The system roots do not trust the test certificate: the relay
			// is misconfigured, which a retry after a fix can cure.
			untrusted := &mail.SMTP{Config: cfg}
			de := deliveryError(t, untrusted.Send(context.Background(), simple("ada@example.com")), false)
			t.Logf("untrusted: %v", de)
			// Without TLS the server refuses to go on: temporary as well.
			plain := cfg
			plain.TLS, plain.Username, plain.Password = mail.TLSNone, "", ""
			if c.mode == mail.TLSImplicit {
				plain.Timeout = 2 * time.Second // a TLS listener waits for a ClientHello
			}
			err := (&mail.SMTP{Config: plain}).Send(context.Background(), simple("ada@example.com"))
			if err == nil {
				t.Fatal("sent in clear text to a server that requires TLS")
			}
			deliveryError(t, err, false)
			t.Logf("clear text: %v", err)
			if n := len(mp.Messages()); n != 1 {
				t.Errorf("%d messages stored, want 1", n)
			}
		})
	}
}

// TestSendStartTLSRequired: a relay that offers no STARTTLS is refused
// when starttls is configured, before any credentials are sent.
func TestSendStartTLSRequired(t *testing.T) {
	mp := testenv.Mailpit(t)
	s := mailpitSender(mp)
	s.Config.TLS = mail.TLSStartTLS
	s.Config.Username, s.Config.Password = "u", "p"
	deliveryError(t, s.Send(context.Background(), simple("ada@example.com")), false)
	if n := len(mp.Messages()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	if _, err := mail.NewSMTP(mail.Config{}); err == nil {
		t.Error("empty config accepted")
	}
	s, err := mail.NewSMTP(mail.Config{Host: "smtp.example.com", Username: "u", Password: "p", From: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "smtp://smtp.example.com:587 (starttls)" {
		t.Errorf("String() = %q", got)
	}
}
