package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

func TestOperationsEndpoints(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	if res := b.Get("/healthz"); res.Status != 200 || !strings.Contains(res.Body, `"ok"`) {
		t.Fatalf("healthz: %d %s", res.Status, res.Body)
	}
	if res := b.Get("/readyz"); res.Status != 200 || !strings.Contains(res.Body, "ready") {
		t.Fatalf("readyz: %d %s", res.Status, res.Body)
	}
	// A failed and a successful login show up in the metrics.
	b.Submit("/t/default/login", "/t/default/login", url.Values{"email": {"x@example.com"}, "password": {"wrong wrong wrong"}})
	res := b.Get("/metrics")
	for _, want := range []string{
		`gatehouse_logins_total{outcome="invalid_credentials"} 1`,
		`gatehouse_http_requests_total{method="POST",route="/t/{tenant}/login",status="401"} 1`,
		`gatehouse_http_request_duration_seconds_bucket`,
		`gatehouse_password_hash_waiting`,
		`gatehouse_password_hash_running`,
	} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if res.Status != http.StatusOK {
		t.Fatalf("metrics: %d", res.Status)
	}
	// Every response carries a request id.
	if res.Header.Get("X-Request-Id") == "" {
		t.Error("no request id")
	}
}

func TestSweepRemovesEndedRecords(t *testing.T) {
	e := testenv.New(t)
	b := e.Browser()
	b.Submit("/t/default/signup", "/t/default/signup", url.Values{"email": {"sweep@example.com"}, "password": {"correct horse battery staple"}})
	e.Clock.Advance(40 * 24 * time.Hour)
	e.Server.Sweep(context.Background())
	tn, _ := e.Server.Tenants.BySlug(context.Background(), "default")
	var n int
	e.Store.View(context.Background(), tn.ID, func(tx store.Tx) error {
		u, _ := tx.Users().ByEmail(context.Background(), "sweep@example.com")
		ss, err := tx.Sessions().ListActive(context.Background(), u.ID, time.Time{})
		n = len(ss)
		return err
	})
	if n != 0 {
		t.Fatalf("%d sessions left after the sweep", n)
	}
}
