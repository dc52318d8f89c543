// Package notify sends a tenant's transactional mail through the outbox.
// Queue writes a mail in the transaction of the change that needs it, with
// the link or code it carries sealed under the key-encryption key, so that
// neither a crash nor a database reader can turn a queued mail into a
// usable secret. Deliver (the outbox deliverer of Kind) opens it, builds
// the link from the configured public URL, renders the tenant's templates
// and sends over SMTP with the deployment's settings and the tenant's
// override. Without any SMTP settings it logs each message's link and code
// and keeps the message in the outbox, where platform administrators read
// it in the browser (Preview): the quick start works without a mail server.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// Kind is the outbox kind of a mail.
const Kind = "mail"

// Message is a mail to queue. Path and LinkToken make the link: the public
// URL, then Path, then "?token=" and LinkToken.
type Message struct {
	Kind      mail.Kind
	UserID    ciam.UserID // the user it is about, for the audit trail
	To        string      // the recipient's address
	Name      string      // the recipient's name; may be empty
	Locale    string      // picks the language
	Path      string      // e.g. "/t/acme/verify"; empty for mail without a link
	LinkToken string      // the link's secret
	Code      string      // a six-digit code, or empty
	ExpiresIn time.Duration
	NewEmail  string // email_change_notice: the new address
	Change    string // security_notice: which change, one of mail.SecurityChanges
}

// PasswordChanged is the notice that u's password changed, with a link to
// reset it should the change not be theirs.
func PasswordChanged(t *ciam.Tenant, u *ciam.User) Message {
	return Message{
		Kind: mail.PasswordChanged, UserID: u.ID, To: u.Email, Name: u.Name, Locale: u.Locale,
		Path: "/t/" + t.Slug + "/forgot",
	}
}

// SecurityChanged is the notice that a security setting of u's account
// changed (change is one of mail.SecurityChanges, such as "totp_added"),
// with a link to reset the password should the change not be theirs.
func SecurityChanged(t *ciam.Tenant, u *ciam.User, change string) Message {
	return Message{
		Kind: mail.SecurityNotice, UserID: u.ID, To: u.Email, Name: u.Name, Locale: u.Locale,
		Path: "/t/" + t.Slug + "/forgot", Change: change,
	}
}

// payload is what the outbox keeps: secrets only sealed.
type payload struct {
	Kind      mail.Kind     `json:"kind"`
	UserID    ciam.UserID   `json:"user_id,omitempty"`
	To        string        `json:"to"`
	Name      string        `json:"name,omitempty"`
	Locale    string        `json:"locale,omitempty"`
	Path      string        `json:"path,omitempty"`
	Sealed    []byte        `json:"sealed,omitempty"` // secrets{} under the KEK
	ExpiresIn time.Duration `json:"expires_in,omitempty"`
	NewEmail  string        `json:"new_email,omitempty"`
	Change    string        `json:"change,omitempty"`
}

type secrets struct {
	LinkToken string `json:"link_token,omitempty"`
	Code      string `json:"code,omitempty"`
}

// TenantLookup finds a tenant by id.
type TenantLookup interface {
	ByID(ctx context.Context, id ciam.TenantID) (*ciam.Tenant, error)
}

// Mailer queues and delivers mail. Its fields are set once in server.New.
type Mailer struct {
	PublicURL *url.URL
	KEK       []byte      // seals the secrets in queued mail and tenants' SMTP passwords
	SMTP      mail.Config // the deployment's relay; Host empty: none
	Renderer  *mail.Renderer
	Tenants   TenantLookup
	Store     store.Store // read by KeptMail
	Log       *slog.Logger
	Now       func() time.Time
	// Send is the transport; nil means SMTP with the merged settings. Tests
	// may replace it.
	Send func(ctx context.Context, cfg mail.Config, m *mail.Message) error
	// OnLocal, when set, is told of each mail kept locally for lack of SMTP.
	OnLocal func(kind mail.Kind)
}

// sealContext binds a sealed secret to its tenant, so a payload copied to
// another tenant's outbox does not open.
func sealContext(t ciam.TenantID) string { return "mail secret\x00" + string(t) }

// Queue writes msg to tenant t's outbox in tx; it is sent once tx commits.
func (m *Mailer) Queue(ctx context.Context, tx store.Tx, t *ciam.Tenant, msg Message, now time.Time) error {
	p := payload{
		Kind: msg.Kind, UserID: msg.UserID, To: msg.To, Name: msg.Name, Locale: msg.Locale,
		Path: msg.Path, ExpiresIn: msg.ExpiresIn, NewEmail: msg.NewEmail, Change: msg.Change,
	}
	if msg.LinkToken != "" || msg.Code != "" {
		b, err := json.Marshal(secrets{LinkToken: msg.LinkToken, Code: msg.Code})
		if err != nil {
			return err
		}
		if p.Sealed, err = keys.Seal(m.KEK, sealContext(t.ID), b); err != nil {
			return fmt.Errorf("notify: seal %s: %w", msg.Kind, err)
		}
	}
	_, err := outbox.Add(ctx, tx, Kind, p, now)
	return err
}

// Preview is a queued mail as it is or would be sent.
type Preview struct {
	To        string
	From      string
	Rendered  *mail.Rendered
	Link      string
	Code      string
	Kind      mail.Kind
	UserID    ciam.UserID
	Delivered bool // false: kept locally, SMTP is not configured for the tenant
}

// Render opens and renders an outbox message of Kind for tenant t.
func (m *Mailer) Render(t *ciam.Tenant, om *ciam.OutboxMessage) (*Preview, error) {
	var p payload
	if err := json.Unmarshal(om.Payload, &p); err != nil {
		return nil, outbox.Permanent(fmt.Errorf("notify: garbled mail payload: %w", err))
	}
	var sec secrets
	if len(p.Sealed) > 0 {
		plain, err := keys.Open(m.KEK, sealContext(om.TenantID), p.Sealed)
		if err != nil {
			if errors.Is(err, keys.ErrWrongKEK) {
				return nil, fmt.Errorf("notify: %w", err) // a configuration problem: retry after it is fixed
			}
			return nil, outbox.Permanent(fmt.Errorf("notify: mail secret: %w", err))
		}
		if err := json.Unmarshal(plain, &sec); err != nil {
			return nil, outbox.Permanent(fmt.Errorf("notify: garbled mail secret: %w", err))
		}
	}
	d := mail.Data{
		Tenant: mail.BrandOf(t), Locale: p.Locale, Name: p.Name, Email: p.To,
		Code: sec.Code, ExpiresIn: p.ExpiresIn, NewEmail: p.NewEmail, Change: p.Change,
	}
	if p.Path != "" {
		if !strings.HasPrefix(p.Path, "/") {
			return nil, outbox.Permanent(fmt.Errorf("notify: link path %q is not absolute", p.Path))
		}
		link := m.PublicURL.JoinPath(p.Path).String()
		if sec.LinkToken != "" {
			link += "?token=" + url.QueryEscape(sec.LinkToken)
		}
		d.Link = link
	}
	r, err := m.Renderer.Render(p.Kind, d)
	if err != nil {
		return nil, outbox.Permanent(fmt.Errorf("notify: render %s: %w", p.Kind, err))
	}
	cfg := m.config(t)
	return &Preview{To: p.To, From: cfg.FromFor(t), Rendered: r, Link: d.Link, Code: sec.Code, Kind: p.Kind, UserID: p.UserID, Delivered: cfg.Enabled()}, nil
}

// config is the deployment's SMTP settings with tenant t's override; the
// tenant's password is opened here.
func (m *Mailer) config(t *ciam.Tenant) mail.Config {
	o := t.Mail
	over := mail.Config{Host: o.Host, Port: o.Port, TLS: mail.TLSMode(o.TLS), Username: o.Username, From: o.From}
	if len(o.SealedPassword) > 0 {
		if pw, err := keys.Open(m.KEK, tenantPasswordContext(t.ID), o.SealedPassword); err == nil {
			over.Password = string(pw)
		}
	}
	return m.SMTP.Merge(over)
}

func tenantPasswordContext(t ciam.TenantID) string { return "tenant smtp password\x00" + string(t) }

// SealTenantPassword seals a tenant's SMTP password for ciam.TenantMail.
func SealTenantPassword(kek []byte, t ciam.TenantID, password string) ([]byte, error) {
	if password == "" {
		return nil, nil
	}
	return keys.Seal(kek, tenantPasswordContext(t), []byte(password))
}

// TenantConfig is tenant t's effective SMTP settings, for validation.
func (m *Mailer) TenantConfig(t *ciam.Tenant) mail.Config { return m.config(t) }

// Deliver sends an outbox message of Kind (outbox.Deliverer).
func (m *Mailer) Deliver(ctx context.Context, om *ciam.OutboxMessage) error {
	t, err := m.Tenants.ByID(ctx, om.TenantID)
	if err != nil {
		if ciam.KindOf(err) == ciam.NotFound {
			return outbox.Permanent(fmt.Errorf("notify: tenant %s is gone", om.TenantID))
		}
		return err
	}
	pv, err := m.Render(t, om)
	if err != nil {
		return err
	}
	cfg := m.config(t)
	if !cfg.Enabled() {
		// The quick start: no relay. The link goes to the log for the
		// operator, and the message stays readable on the admin mail page.
		if m.Log != nil {
			m.Log.InfoContext(ctx, "mail kept locally: no SMTP server is configured",
				"tenant", t.Slug, "kind", string(pv.Kind), "user", string(pv.UserID), "link", pv.Link, "code", pv.Code, "message", om.ID)
		}
		if m.OnLocal != nil {
			m.OnLocal(pv.Kind)
		}
		return nil
	}
	if err := cfg.Validate("mail"); err != nil {
		return fmt.Errorf("notify: tenant %s mail settings: %w", t.Slug, err)
	}
	msg := pv.Rendered.Message(pv.From, pv.To)
	domain := strings.TrimSuffix(addrDomain(cfg.From), ">")
	if domain == "" {
		domain = "gatehouse.invalid"
	}
	msg.Headers = map[string]string{"Message-ID": mail.MessageID(om.ID, domain)}
	send := m.Send
	if send == nil {
		send = sendSMTP
	}
	if err := send(ctx, cfg, msg); err != nil {
		if mail.Permanent(err) {
			return outbox.Permanent(err)
		}
		return err
	}
	return nil
}

func sendSMTP(ctx context.Context, cfg mail.Config, msg *mail.Message) error {
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		return err
	}
	return s.Send(ctx, msg)
}

// addrDomain returns the domain of the address in from ("Name <a@b>" or a@b).
func addrDomain(from string) string {
	i := strings.LastIndexByte(from, '@')
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(from[i+1:])
}

// Kept is a mail kept in the local outbox for lack of SMTP.
type Kept struct {
	Tenant  *ciam.Tenant
	Message *ciam.OutboxMessage
	Preview *Preview
}

// KeptMail returns the newest mail of the given tenants that was kept
// locally because no SMTP server is configured for them, at most limit,
// newest first. Mail of tenants that send over SMTP is never shown: its
// links are for the recipients alone.
func (m *Mailer) KeptMail(ctx context.Context, tenants []*ciam.Tenant, limit int) ([]Kept, error) {
	var out []Kept
	for _, t := range tenants {
		if m.config(t).Enabled() {
			continue
		}
		var msgs []*ciam.OutboxMessage
		err := m.Store.View(ctx, t.ID, func(tx store.Tx) (err error) {
			msgs, err = tx.Outbox().List(ctx, store.OutboxFilter{Kind: Kind, Limit: limit})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, om := range msgs {
			pv, err := m.Render(t, om)
			if err != nil {
				continue // unreadable (another KEK, a garbled row): nothing to show
			}
			out = append(out, Kept{Tenant: t, Message: om, Preview: pv})
		}
	}
	slices.SortFunc(out, func(a, b Kept) int { return b.Message.CreatedAt.Compare(a.Message.CreatedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
