package main

// Go benchmarks for profiling what the load generator measures, with the
// whole server in this process (so `go test -cpuprofile` sees every stack).
// They run only when asked for with -bench; `go test ./...` runs nothing:
//
//	go test ./bench -run '^$' -bench 'Login' -benchtime 400x -cpu 2 -cpuprofile /tmp/cpu.out
//	go test ./bench -run '^$' -bench 'ClientCredentials' -benchtime 3s -cpu 2 -cpuprofile /tmp/cpu.out
//	go tool pprof -top -focus 'net/http.\(\*conn\).serve' /tmp/cpu.out
//
// The -focus keeps the server's side of the connections (the client runs in
// the same process).

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authn/password"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// BenchmarkHashVerify is the password check alone, with the server's
// concurrency bound (GOMAXPROCS): the floor of a login's cost.
func BenchmarkHashVerify(b *testing.B) {
	h := password.NewHasher(0)
	hash, err := h.Hash(context.Background(), seedPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := h.Verify(context.Background(), seedPassword, hash); err != nil || !ok {
				b.Error("verify failed", err)
			}
		}
	})
}

// benchServer is an in-process server over a fresh SQLite database with
// users seeded into the default tenant.
func benchServer(b *testing.B, users int) (*httptest.Server, *dataset) {
	ctx := context.Background()
	st, d, err := seedBenchDB(ctx, filepath.Join(b.TempDir(), "g.db"), users)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	u, _ := url.Parse("http://127.0.0.1")
	srv, err := server.New(ctx, server.Config{PublicURL: u, KEK: benchKEK()}, st)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	return ts, d
}

// benchKEK is a random key-encryption key, which seals the signing keys at
// rest (the gatehouse command keeps one in a file beside a SQLite database).
func benchKEK() []byte {
	kek := make([]byte, 32)
	_, _ = crand.Read(kek)
	return kek
}

// seedBenchDB creates a SQLite database at path with the built-in tenants
// and users seeded into the default tenant, and opens it.
func seedBenchDB(ctx context.Context, path string, users int) (store.Store, *dataset, error) {
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (store.Store, *dataset, error) {
		st.Close()
		return nil, nil, err
	}
	if err := ensureBuiltin(ctx, st); err != nil {
		return fail(err)
	}
	sink, err := openSQLiteSeed(path)
	if err != nil {
		return fail(err)
	}
	defer sink.close()
	id, seq, head, err := sink.tenantHead(ctx, tenant.DefaultSlug)
	if err != nil {
		return fail(err)
	}
	hash, err := password.NewHasher(1).Hash(ctx, seedPassword)
	if err != nil {
		return fail(err)
	}
	email := func(k int) string { return fmt.Sprintf("login%d@example.com", k) }
	dt := &seedTenant{id: id, slug: tenant.DefaultSlug, headSeq: seq, headHash: head}
	for k := range users {
		dt.emails = append(dt.emails, email(k))
	}
	if _, err := seedAll(ctx, sink, []*seedTenant{dt}, hash); err != nil {
		return fail(err)
	}
	return st, &dataset{
		signupSlugs: []string{tenant.DefaultSlug},
		logins:      []loginTenant{{slug: tenant.DefaultSlug, emails: email, n: users}},
	}, nil
}

// BenchmarkLogin is one whole login as the load generator does it (GET the
// form, POST the credentials) over loopback HTTP, client included.
func BenchmarkLogin(b *testing.B) { benchOp(b, "login") }

// BenchmarkSignup is one whole sign-up (GET the form, POST a new account).
func BenchmarkSignup(b *testing.B) { benchOp(b, "signup") }

func benchOp(b *testing.B, op string) {
	ts, d := benchServer(b, 1000)
	var ids atomic.Int64
	var failed atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := newClient(ts.URL, int(ids.Add(1)), fmt.Sprint(time.Now().UnixNano()))
		defer c.hc.CloseIdleConnections()
		for pb.Next() {
			var s sample
			if op == "login" {
				s = c.login(context.Background(), d)
			} else {
				s = c.signup(context.Background(), d)
			}
			if s.err != "" {
				failed.Add(1)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), op+"s/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d %ss failed", n, b.N, op)
	}
}
