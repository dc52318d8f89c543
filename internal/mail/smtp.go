package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one outbound mail, ready to send.
type Message struct {
	From    string // "Display Name <address>" or a bare address
	To      string // one recipient, "Name <address>" or a bare address
	Subject string
	Text    string // the plain-text part; required
	HTML    string // the HTML alternative; optional
	// Headers are extra header fields. Set "Message-ID" (with or without
	// the angle brackets) to a value derived from the outbox entry, so a
	// retried delivery carries the same Message-ID and receivers can drop
	// the duplicate. Address, subject and MIME headers cannot be set here.
	Headers map[string]string
}

// Sender delivers messages. Implementations return a *DeliveryError, so
// callers can ask Permanent(err) whether a retry can help.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// SMTP delivers messages to an SMTP relay, one connection per message.
// It is safe for concurrent use.
type SMTP struct {
	Config Config
	// TLSConfig is used for starttls and tls; nil means the system roots,
	// TLS 1.2 or later, and the server name Config.Host.
	TLSConfig *tls.Config
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
}

var _ Sender = (*SMTP)(nil)

// NewSMTP validates cfg and returns a sender for it.
func NewSMTP(cfg Config) (*SMTP, error) {
	if err := cfg.Validate("mail"); err != nil {
		return nil, err
	}
	return &SMTP{Config: cfg}, nil
}

// reserved reports whether the caller may not set header name (canonical
// form) through Message.Headers: go-mail writes it from the message.
func reserved(name string) bool {
	switch name {
	case "From", "To", "Cc", "Bcc", "Subject", "Sender", "Date", "Mime-Version",
		"Content-Type", "Content-Transfer-Encoding", "Return-Path":
		return true
	}
	return false
}

// Send delivers m. It returns nil once the server accepted the message,
// otherwise a *DeliveryError (see Permanent). It gives up after
// Config.Timeout or when ctx ends, whichever comes first.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	cfg := s.Config.withDefaults()
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	timeout := cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tlsCfg := s.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsCfg = tlsCfg.Clone()
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = cfg.Host
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsCfg),
		gomail.WithDialContextFunc(dialer(ctx, cfg.TLS, tlsCfg)),
	}
	switch cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default: // none, or tls where the dialer already encrypted the connection
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		// PLAIN and LOGIN refuse to run over an unencrypted connection to
		// anything but localhost; the SCRAM mechanisms come first.
		opts = append(opts, gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthPlain, gomail.SMTPAuthLogin, gomail.SMTPAuthCramMD5))
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return &DeliveryError{Permanent: false, Stage: "config", Err: err}
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return classify(ctx, err)
	}
	defer client.CloseWithSMTPClient(conn)
	if err := client.SendWithSMTPClient(conn, msg); err != nil && !msg.IsDelivered() {
		return classify(ctx, err)
	}
	return nil
}

// dialer connects to the relay, with TLS from the first byte in tls mode,
// and closes the connection when ctx ends, which aborts a conversation that
// hangs (go-mail's own deadlines only bound each command).
func dialer(ctx context.Context, mode TLSMode, tlsCfg *tls.Config) gomail.DialContextFunc {
	return func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		if mode == TLSImplicit {
			tc := tls.Client(conn, tlsCfg)
			if err := tc.HandshakeContext(dialCtx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
}

// build checks m and turns it into a go-mail message.
func (s *SMTP) build(m *Message) (*gomail.Msg, error) {
	if m == nil {
		return nil, invalid("no message")
	}
	from, err := parseAddress(m.From)
	if err != nil {
		return nil, invalid("sender %q: %v", m.From, err)
	}
	to, err := parseAddress(m.To)
	if err != nil {
		return nil, invalid("recipient %q: %v", m.To, err)
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, invalid("the message has no text part")
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.Subject(oneLine(m.Subject))
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	msg.SetDateWithValue(now())
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		name := textproto.CanonicalMIMEHeaderKey(k)
		if !validHeaderName(name) || reserved(name) {
			return nil, invalid("header %q cannot be set", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, invalid("header %s: value contains a line break", name)
		}
		if name == "Reply-To" {
			a, err := parseAddress(v)
			if err != nil {
				return nil, invalid("Reply-To %q: %v", v, err)
			}
			msg.ReplyToMailAddress(a)
			continue
		}
		if name == "Message-Id" {
			id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "<"), ">")
			if !validMessageID(id) {
				return nil, invalid("Message-ID %q: want left@right with no spaces or angle brackets", v)
			}
			msg.SetMessageIDWithValue(id)
			continue
		}
		msg.SetGenHeader(gomail.Header(name), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return false
		}
	}
	return true
}

func validMessageID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	return ok && left != "" && right != "" && !strings.ContainsAny(id, " \t<>\"\\") && !strings.Contains(right, "@")
}

// MessageID returns a Message-ID for the outbox entry key sent from domain,
// the same for every delivery attempt of that entry: "<key@domain>".
func MessageID(key, domain string) string {
	return "<" + key + "@" + domain + ">"
}

// hostPort joins host and port for messages.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// String describes the relay without credentials, for logs.
func (s *SMTP) String() string {
	c := s.Config.withDefaults()
	return fmt.Sprintf("smtp://%s (%s)", hostPort(c.Host, c.Port), c.TLS)
}
