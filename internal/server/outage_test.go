package server_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/testenv"
)

// cutProxy forwards TCP to a target until it is cut; cut connections are
// closed and new ones refused until it is restored. It stands for a database
// that goes away and comes back.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// TestDatabaseOutage: with PostgreSQL unreachable, /readyz answers 503 and
// requests that need the database get a clear 503 page; when it returns,
// both recover without a restart.
func TestDatabaseOutage(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("set GATEHOUSE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL outage test")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()

	var b [6]byte
	rand.Read(b[:])
	schema := "outage_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{DSN: u.String(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	e := testenv.NewWith(t, testenv.Options{Store: st})
	br := e.Browser()
	signup := func(email string) *testenv.Response {
		return br.Submit("/t/default/signup", "/t/default/signup", url.Values{"email": {email}, "password": {"correct horse battery staple"}})
	}
	if res := signup("before@example.com"); res.Status != http.StatusSeeOther {
		t.Fatalf("sign-up before the outage: %d %s", res.Status, res.Body)
	}
	if res := br.Get("/readyz"); res.Status != 200 {
		t.Fatalf("readyz before the outage: %d", res.Status)
	}

	proxy.setCut(true)
	if res := br.Get("/readyz"); res.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz during the outage: %d", res.Status)
	}
	res := br.Get("/t/default/account")
	if res.Status != http.StatusServiceUnavailable || !strings.Contains(res.Body, "temporarily unavailable") {
		t.Errorf("account page during the outage: %d %s", res.Status, res.Body)
	}
	token := testenv.CSRF(br.Get("/t/default/signup").Body)
	res = br.Post("/t/default/signup", url.Values{"csrf_token": {token}, "email": {"during@example.com"}, "password": {"correct horse battery staple"}})
	if res.Status != http.StatusServiceUnavailable || !strings.Contains(res.Body, "temporarily unavailable") {
		t.Errorf("sign-up during the outage: %d %s", res.Status, res.Body)
	}

	proxy.setCut(false)
	deadline := time.Now().Add(15 * time.Second)
	for br.Get("/readyz").Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after the database returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res := br.Get("/t/default/account"); res.Status != 200 {
		t.Errorf("account page after the outage: %d", res.Status)
	}
	if res := signup("after@example.com"); res.Status != http.StatusSeeOther {
		t.Errorf("sign-up after the outage: %d %s", res.Status, res.Body)
	}
}
