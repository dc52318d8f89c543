package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

func queue(t *testing.T, e *testenv.Env, tn *ciam.Tenant, msg notify.Message) *ciam.OutboxMessage {
	t.Helper()
	ctx := context.Background()
	err := e.Store.Tx(ctx, tn.ID, func(tx store.Tx) error { return e.Server.Mailer.Queue(ctx, tx, tn, msg, e.Clock.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	var list []*ciam.OutboxMessage
	e.Store.View(ctx, tn.ID, func(tx store.Tx) (err error) {
		list, err = tx.Outbox().List(ctx, store.OutboxFilter{Kind: notify.Kind, Limit: 1})
		return err
	})
	if len(list) != 1 {
		t.Fatalf("queued %d", len(list))
	}
	return list[0]
}

func resetMsg() notify.Message {
	return notify.Message{Kind: mail.PasswordReset, To: "ann@example.com", Locale: "de", Path: "/t/default/reset", LinkToken: "s3cret-link", ExpiresIn: 30 * time.Minute}
}

func TestQueueSealsAndRenderOpens(t *testing.T) {
	e := testenv.New(t)
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	om := queue(t, e, tn, resetMsg())
	if bytes.Contains(om.Payload, []byte("s3cret-link")) {
		t.Fatal("the link secret is stored in clear")
	}
	pv, err := e.Server.Mailer.Render(tn, om)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Link != e.URL+"/t/default/reset?token=s3cret-link" || pv.Rendered.Lang != "de" || pv.Delivered {
		t.Fatalf("preview: link %q lang %q delivered %v", pv.Link, pv.Rendered.Lang, pv.Delivered)
	}
}

func TestSecurityChanged(t *testing.T) {
	e := testenv.New(t)
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	u := &ciam.User{ID: "u-ann", Email: "ann@example.com", Name: "Ann", Locale: "de-AT"}
	msg := notify.SecurityChanged(tn, u, mail.ChangeRecoveryCodes)
	if msg.Kind != mail.SecurityNotice || msg.Change != "recovery_codes" || msg.Path != "/t/default/forgot" || msg.To != u.Email || msg.UserID != u.ID {
		t.Fatalf("message %+v", msg)
	}
	om := queue(t, e, tn, msg)
	var p map[string]any
	if err := json.Unmarshal(om.Payload, &p); err != nil || p["change"] != "recovery_codes" || p["sealed"] != nil {
		t.Errorf("payload %s", om.Payload)
	}
	pv, err := e.Server.Mailer.Render(tn, om)
	if err != nil {
		t.Fatal(err)
	}
	name := tn.DisplayName
	if name == "" {
		name = tn.Slug
	}
	link := e.URL + "/t/default/forgot"
	if pv.Kind != mail.SecurityNotice || pv.UserID != u.ID || pv.Link != link || pv.Rendered.Lang != "de" {
		t.Errorf("preview: kind %q user %q link %q lang %q", pv.Kind, pv.UserID, pv.Link, pv.Rendered.Lang)
	}
	if want := "Für Ihr Konto bei " + name + " wurden neue Wiederherstellungscodes erstellt"; pv.Rendered.Subject != want {
		t.Errorf("subject %q, want %q", pv.Rendered.Subject, want)
	}
	for _, s := range []string{"Hallo Ann,", "Die bisherigen Wiederherstellungscodes sind nicht mehr gültig.", "Wenn Sie das waren, müssen Sie nichts tun.", link} {
		if !strings.Contains(pv.Rendered.Text, s) {
			t.Errorf("text lacks %q:\n%s", s, pv.Rendered.Text)
		}
	}
	if strings.Contains(pv.Rendered.Text, "Passkey") {
		t.Errorf("text reports another change:\n%s", pv.Rendered.Text)
	}

	// A change the templates do not know is dead-lettered, not sent blank.
	p["change"] = "password_guessed"
	bad := *om
	bad.Payload, _ = json.Marshal(p)
	if _, err := e.Server.Mailer.Render(tn, &bad); !outbox.IsPermanent(err) {
		t.Errorf("unknown change: %v, want a permanent error", err)
	}
}

func TestDeliverFailures(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	tn, _ := e.Server.Tenants.BySlug(ctx, "default")
	om := queue(t, e, tn, resetMsg())
	m := e.Server.Mailer

	garbled := *om
	garbled.Payload = []byte("{not json")
	if err := m.Deliver(ctx, &garbled); !outbox.IsPermanent(err) {
		t.Errorf("garbled payload: %v, want a permanent error", err)
	}
	// A payload copied into another tenant's outbox does not open there.
	other, err := e.Server.Tenants.Create(ctx, "other", tenantSettings(), "test", audit.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	moved := *om
	moved.TenantID = other.ID
	if err := m.Deliver(ctx, &moved); !outbox.IsPermanent(err) {
		t.Errorf("payload of another tenant: %v, want a permanent error", err)
	}
	gone := *om
	gone.TenantID = "no-such-tenant"
	if err := m.Deliver(ctx, &gone); !outbox.IsPermanent(err) {
		t.Errorf("unknown tenant: %v, want a permanent error", err)
	}
	// Another key-encryption key is a configuration problem: retried.
	wrong := *m
	wrong.KEK = bytes.Repeat([]byte{9}, keys.KEKSize)
	if err := wrong.Deliver(ctx, om); err == nil || outbox.IsPermanent(err) {
		t.Errorf("wrong KEK: %v, want a temporary error", err)
	}
	// A link path that is not absolute is refused, not turned into a link
	// to another host.
	var p map[string]any
	json.Unmarshal(om.Payload, &p)
	p["path"] = "//evil.example/x"
	bad := *om
	bad.Payload, _ = json.Marshal(p)
	pv, err := m.Render(tn, &bad)
	if err == nil {
		if u, _ := url.Parse(pv.Link); u == nil || !strings.HasPrefix(pv.Link, e.URL+"/") {
			t.Errorf("path //evil.example gave link %q", pv.Link)
		}
	}
}

// A recipient the SMTP server refuses for good dead-letters the mail at once.
func TestDeliverPermanentRefusal(t *testing.T) {
	mp := testenv.MailpitWith(t, testenv.MailpitOptions{Args: []string{"--enable-chaos"}})
	e := testenv.NewWith(t, testenv.Options{Mail: mail.Config{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: mail.TLSNone, From: "no-reply@gatehouse.test"}})
	mp.SetChaos(testenv.MailpitChaos{Recipient: testenv.MailpitTrigger{ErrorCode: 550, Probability: 100}})
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	om := queue(t, e, tn, resetMsg())
	err := e.Server.Mailer.Deliver(context.Background(), om)
	if !outbox.IsPermanent(err) {
		t.Fatalf("550 to the recipient: %v, want a permanent error", err)
	}
	var de *mail.DeliveryError
	if !errors.As(err, &de) {
		t.Errorf("error %T is not a *mail.DeliveryError", err)
	}
}

func tenantSettings() tenant.Settings { return tenant.Settings{} }
