package main

// In-process benchmarks of the oidc suite's operations: the same clients
// and requests as `go run ./bench -suite oidc`, against a server in this
// process on SQLite, so that a CPU profile has the server's Go stacks:
//
//	go test ./bench -run '^$' -bench 'Introspect' -benchtime 3s -cpu 2 -cpuprofile /tmp/cpu.out
//	go tool pprof -top -focus 'net/http.\(\*conn\).serve' /tmp/cpu.out
//
// Their requests go through the raw client, as the load generator's do by
// default; -args -http-client std makes them use net/http.
//
// All of them share one server, database, set of clients and sessions,
// made at the first benchmark that needs them.

import (
	"context"
	"flag"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	clientreg "github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func BenchmarkClientCredentials(b *testing.B) { benchOIDC(b, "cc") }
func BenchmarkIntrospect(b *testing.B)        { benchOIDC(b, "introspect") }
func BenchmarkUserinfo(b *testing.B)          { benchOIDC(b, "userinfo") }
func BenchmarkRefresh(b *testing.B)           { benchOIDC(b, "refresh") }
func BenchmarkDiscovery(b *testing.B)         { benchOIDC(b, "discovery") }
func BenchmarkJWKS(b *testing.B)              { benchOIDC(b, "jwks") }
func BenchmarkCodeRoundTrip(b *testing.B)     { benchOIDC(b, "code") }

// benchHTTPClient is the client of the benchmarks' requests, as the load
// generator's -http-client: go test ./bench -bench Introspect -args -http-client std
var benchHTTPClient = flag.String("http-client", httpRaw, "HTTP client of the OIDC benchmarks: raw or std")

// oidcParallelism is goroutines per GOMAXPROCS: 16 at -cpu 2 makes the
// load generator's default 32 clients.
const oidcParallelism = 16

func benchOIDC(b *testing.B, op string) {
	s, srv := inProcessOIDC(b)
	ctx := context.Background()
	n := oidcParallelism * runtime.GOMAXPROCS(0)
	if err := s.setup(ctx, srv, op, n); err != nil {
		b.Fatal(err)
	}
	newWorker := s.workers(srv, op)
	var ids, failed atomic.Int64
	var firstErr atomic.Value
	b.SetParallelism(oidcParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := newWorker(int(ids.Add(1) - 1))
		for pb.Next() {
			if r := w.do(ctx); r.err != "" {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d %s operations failed, first: %v", n, b.N, op, firstErr.Load())
	}
}

// inProc is the shared in-process server of the OIDC benchmarks.
var inProc struct {
	once  sync.Once
	suite *oidcSuite
	srv   *serverProc
	err   error
	close func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if inProc.close != nil {
		inProc.close()
	}
	os.Exit(code)
}

func inProcessOIDC(b *testing.B) (*oidcSuite, *serverProc) {
	inProc.once.Do(func() { inProc.suite, inProc.srv, inProc.close, inProc.err = startInProcessOIDC() })
	if inProc.err != nil {
		b.Fatal(inProc.err)
	}
	return inProc.suite, inProc.srv
}

// startInProcessOIDC serves a fresh SQLite database whose public URL is
// the listener's (the issuer is in every token), registers the clients as
// `gatehouse client create` does, and logs a few users in.
func startInProcessOIDC() (*oidcSuite, *serverProc, func(), error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gatehouse-bench-oidc-")
	if err != nil {
		return nil, nil, nil, err
	}
	st, d, err := seedBenchDB(ctx, dir+"/g.db", 100)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	ts := httptest.NewUnstartedServer(nil)
	closeAll := func() {
		ts.Close()
		st.Close()
		os.RemoveAll(dir)
	}
	u, _ := url.Parse("http://" + ts.Listener.Addr().String())
	srv, err := server.New(ctx, server.Config{PublicURL: u, KEK: benchKEK()}, st)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()

	t, err := srv.Tenants.BySlug(ctx, tenant.DefaultSlug)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	var apps []oidcApp
	for range oidcApps {
		c, secret, err := srv.Clients.Create(ctx, t, clientreg.Input{
			Name: "Bench app", FirstParty: true, RedirectURIs: []string{oidcRedirectURI},
			GrantTypes:     []string{ciam.GrantAuthorizationCode, ciam.GrantRefreshToken, ciam.GrantClientCredentials},
			Scopes:         []string{"openid", "profile", "email", "offline_access"},
			AccessTokenTTL: time.Hour,
		}, "bench", audit.Meta{RequestID: "bench"})
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		apps = append(apps, newOIDCApp(string(c.ID), secret))
	}
	// Four logins (four argon2id hashes in the profile), shared by all slots.
	s := &oidcSuite{slug: tenant.DefaultSlug, users: d.logins[0], apps: apps, logins: 4, client: *benchHTTPClient}
	sp := &serverProc{base: ts.URL}
	if err := s.loginAll(ctx, sp.base, oidcParallelism*runtime.GOMAXPROCS(0)); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return s, sp, closeAll, nil
}
