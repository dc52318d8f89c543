package main

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn/password"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Datasets.
const (
	dsEmpty  = "empty"
	dsSeeded = "seeded"
)

// seedPassword is every seeded user's password: 38 characters of unrelated
// words, not on the blocklist. Its hash is computed once and stored for all.
const seedPassword = "copper lantern meadow quartz violin 42"

func datasetLabel(ds string, o *options) string {
	if ds == dsSeeded {
		return fmt.Sprintf("%s tenants + %s users", short(o.seedTenants), short(o.seedUsers))
	}
	return "empty"
}

// short writes 10000 as 10k and 1000000 as 1M.
func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000 && n%100_000 == 0:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// dataset says which tenants and accounts the load uses.
type dataset struct {
	signupSlugs []string // sign-ups go to a random one of these
	logins      []loginTenant
}

type loginTenant struct {
	slug   string
	emails func(k int) string
	n      int
}

func (d *dataset) signupSlug(r *rand.Rand) string { return d.signupSlugs[r.IntN(len(d.signupSlugs))] }

// loginUser picks a tenant, then one of its users, uniformly.
func (d *dataset) loginUser(r *rand.Rand) (slug, email string) {
	t := &d.logins[r.IntN(len(d.logins))]
	return t.slug, t.emails(r.IntN(t.n))
}

// seedReport is what seeding did and how long it took.
type seedReport struct {
	DB          string  `json:"db"`
	Dataset     string  `json:"dataset"`
	Tenants     int     `json:"tenants_seeded"`
	Users       int     `json:"users_seeded"`
	AuditEvents int     `json:"audit_events_seeded"`
	MigrateSecs float64 `json:"migrate_seconds"`
	HashSecs    float64 `json:"hash_seconds"`
	InsertSecs  float64 `json:"insert_seconds"`
	FinishSecs  float64 `json:"finish_seconds"` // ANALYZE (PostgreSQL) or WAL checkpoint (SQLite)
	TotalSecs   float64 `json:"total_seconds"`
	SizeMB      float64 `json:"size_mb"`
	UsersPerSec float64 `json:"users_per_second"`
}

// prepared is a seeded database ready for a server.
type prepared struct {
	db, ds    string
	serverDSN string
	data      *dataset
	seed      seedReport
	verify    []string // tenant slugs whose audit chain is checked after the runs
	env       []string // settings every gatehouse process on this database needs
	cleanup   func()
}

// seedTenant is one tenant to write: a new one (create), or an existing one
// whose audit chain continues from head.
type seedTenant struct {
	id       ciam.TenantID
	slug     string
	create   bool
	headSeq  int64
	headHash []byte
	emails   []string
}

// prepare creates a fresh database for (db, ds), migrates it, creates the
// built-in tenants the way the server does, and seeds it.
func prepare(ctx context.Context, o *options, work, db, ds string) (*prepared, error) {
	p := &prepared{db: db, ds: ds, seed: seedReport{DB: db, Dataset: datasetLabel(ds, o)}}
	total := time.Now()

	// 1. A fresh database, migrated, with the built-in tenants.
	t := time.Now()
	var (
		st   store.Store
		sink seedDB
		err  error
	)
	switch db {
	case "sqlite":
		path := filepath.Join(work, fmt.Sprintf("g-%s.db", ds))
		removeSQLite(path)
		p.serverDSN = "sqlite:" + path
		p.cleanup = func() { removeSQLite(path) }
		if st, err = sqlite.Open(ctx, sqlite.Config{Path: path}); err != nil {
			return nil, err
		}
		if err = ensureBuiltin(ctx, st); err != nil {
			return nil, err
		}
		if sink, err = openSQLiteSeed(path); err != nil {
			return nil, err
		}
	case "postgres":
		schema := fmt.Sprintf("gatehouse_bench_%d_%s", os.Getpid(), ds)
		if err := dropSchema(ctx, o.postgres, schema); err != nil {
			return nil, err
		}
		p.cleanup = func() {
			if err := dropSchema(context.Background(), o.postgres, schema); err != nil {
				fmt.Fprintln(os.Stderr, "bench: drop schema:", err)
			}
		}
		if p.serverDSN, err = withSearchPath(o.postgres, schema); err != nil {
			return nil, err
		}
		// PostgreSQL deployments seal their signing keys with a key that
		// every process on the database shares.
		kek := make([]byte, 32)
		_, _ = crand.Read(kek)
		p.env = []string{"GATEHOUSE_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(kek)}
		if st, err = postgres.Open(ctx, postgres.Config{DSN: o.postgres, Schema: schema}); err != nil {
			return nil, err
		}
		if err = ensureBuiltin(ctx, st); err != nil {
			return nil, err
		}
		if sink, err = openPostgresSeed(ctx, o.postgres, schema); err != nil {
			return nil, err
		}
	}
	st.Close()
	defer sink.close()
	p.seed.MigrateSecs = time.Since(t).Seconds()

	// 2. One argon2id hash of seedPassword, shared by every seeded user.
	t = time.Now()
	hash, err := password.NewHasher(1).Hash(ctx, seedPassword)
	if err != nil {
		return nil, err
	}
	p.seed.HashSecs = time.Since(t).Seconds()

	// 3. The accounts.
	var tenants []*seedTenant
	data := &dataset{}
	switch ds {
	case dsEmpty:
		id, seq, head, err := sink.tenantHead(ctx, tenant.DefaultSlug)
		if err != nil {
			return nil, err
		}
		dt := &seedTenant{id: id, slug: tenant.DefaultSlug, headSeq: seq, headHash: head}
		email := func(k int) string { return fmt.Sprintf("login%d@example.com", k) }
		for k := range o.emptyLoginUsers {
			dt.emails = append(dt.emails, email(k))
		}
		tenants = append(tenants, dt)
		data.signupSlugs = []string{tenant.DefaultSlug}
		data.logins = []loginTenant{{slug: tenant.DefaultSlug, emails: email, n: o.emptyLoginUsers}}
		p.verify = []string{tenant.DefaultSlug}
	case dsSeeded:
		width := len(fmt.Sprint(o.seedTenants - 1))
		width = max(width, 5)
		base, extra := o.seedUsers/o.seedTenants, o.seedUsers%o.seedTenants
		for j := range o.seedTenants {
			slug := fmt.Sprintf("bt%0*d", width, j)
			n := base
			if j < extra {
				n++
			}
			st := &seedTenant{id: ciam.TenantID(ciam.NewID()), slug: slug, create: true}
			st.emails = make([]string, n)
			for k := range n {
				st.emails[k] = seededEmail(slug, k)
			}
			tenants = append(tenants, st)
			data.signupSlugs = append(data.signupSlugs, slug)
			data.logins = append(data.logins, loginTenant{slug: slug, emails: func(k int) string { return seededEmail(slug, k) }, n: n})
		}
		// Insert in primary-key order: every B-tree then grows at its end.
		slices.SortFunc(tenants, func(a, b *seedTenant) int { return cmp.Compare(a.id, b.id) })
		p.verify = []string{data.signupSlugs[0], data.signupSlugs[len(data.signupSlugs)-1]}
	}
	p.data = data

	t = time.Now()
	n, err := seedAll(ctx, sink, tenants, hash)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	p.seed.InsertSecs = time.Since(t).Seconds()
	p.seed.Users, p.seed.AuditEvents = n.users, n.events
	p.seed.Tenants = n.tenants

	t = time.Now()
	if err := sink.finish(ctx); err != nil {
		return nil, err
	}
	p.seed.FinishSecs = time.Since(t).Seconds()
	p.seed.TotalSecs = time.Since(total).Seconds()
	if p.seed.InsertSecs > 0 {
		p.seed.UsersPerSec = float64(p.seed.Users) / p.seed.InsertSecs
	}
	p.seed.SizeMB, _ = sink.sizeMB(ctx)
	return p, nil
}

func seededEmail(slug string, k int) string { return fmt.Sprintf("user%d@%s.example.com", k, slug) }

func ensureBuiltin(ctx context.Context, st store.Store) error {
	svc := &tenant.Service{Store: st, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	return svc.EnsureBuiltin(ctx)
}

func removeSQLite(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

// seedDB writes seed rows to one database.
type seedDB interface {
	// tenantHead returns the id of the tenant with slug and its audit chain head.
	tenantHead(ctx context.Context, slug string) (ciam.TenantID, int64, []byte, error)
	// write inserts a batch in one transaction; rows of earlier tables first.
	write(ctx context.Context, b *batch) error
	finish(ctx context.Context) error
	sizeMB(ctx context.Context) (float64, error)
	close()
}

// Columns of the seeded tables, in the order of the rows in a batch.
var (
	tenantCols = []string{"id", "slug", "display_name", "logo_url", "primary_color", "signup_open", "listed", "is_system",
		"password_min_length", "mfa_policy", "require_verified_email", "session_idle_ns", "session_absolute_ns",
		"created_at", "updated_at", "version"}
	userCols = []string{"tenant_id", "id", "email", "email_verified", "name", "locale", "status",
		"created_at", "updated_at", "last_login_at", "version", "pii_key"}
	passwordCols = []string{"tenant_id", "user_id", "hash", "updated_at"}
	eventCols    = []string{"tenant_id", "seq", "occurred_at", "event_type", "actor_id", "target_id", "outcome",
		"request_id", "ip", "data", "pii", "prev_hash", "hash"}
	headCols = []string{"tenant_id", "seq", "hash"}
)

// batch is rows for one transaction. headUpdates move the chain head of
// tenants that existed before seeding.
type batch struct {
	tenants, users, passwords, events, heads [][]any
	headUpdates                              [][]any // seq, hash, tenant_id
}

type seedCounts struct{ tenants, users, events int }

// batchUsers is about how many users go in one transaction.
const batchUsers = 20000

// seedAll generates the rows (ids, per-user PII keys, sealed audit data and
// the hash chains) on one goroutine and writes them on another.
func seedAll(ctx context.Context, sink seedDB, tenants []*seedTenant, hash string) (seedCounts, error) {
	var n seedCounts
	ch := make(chan *batch, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	genErr := make(chan error, 1)
	go func() {
		defer close(ch)
		genErr <- generate(ctx, tenants, hash, ch, &n)
	}()
	var werr error
	for b := range ch {
		if werr != nil {
			continue // drain
		}
		if werr = sink.write(ctx, b); werr != nil {
			cancel()
		}
	}
	if err := <-genErr; err != nil && werr == nil {
		werr = err
	}
	return n, werr
}

func generate(ctx context.Context, tenants []*seedTenant, hash string, ch chan<- *batch, n *seedCounts) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	nowMicros := now.UnixMicro()
	idle, absolute := int64(ciam.DefaultSessionIdle), int64(ciam.DefaultSessionAbsolute)
	b := &batch{}
	users := 0
	for _, t := range tenants {
		tid := string(t.id)
		seq, prev := t.headSeq, t.headHash
		appendEvent := func(e *ciam.AuditEvent) error {
			seq++
			e.TenantID, e.Seq, e.Time = t.id, seq, now
			e.Outcome, e.RequestID = ciam.OutcomeSuccess, "cli"
			data := "{}" // how sqlstore stores an empty map
			if len(e.Data) > 0 {
				j, err := json.Marshal(e.Data)
				if err != nil {
					return err
				}
				data = string(j)
			}
			e.Hash = e.ComputeHash(prev)
			b.events = append(b.events, []any{tid, seq, nowMicros, e.Type, e.ActorID, e.TargetID, e.Outcome,
				e.RequestID, e.IP, data, nilIfEmpty(e.PII), nilIfEmpty(prev), e.Hash})
			prev = e.Hash
			n.events++
			return nil
		}
		if t.create {
			b.tenants = append(b.tenants, []any{tid, t.slug, t.slug, "", "#2f5bea", true, false, false,
				int32(0), ciam.MFAOff, false, idle, absolute, nowMicros, nowMicros, int64(1)})
			n.tenants++
			// What tenant.Service.Create records, with the CLI as the actor.
			if err := appendEvent(&ciam.AuditEvent{Type: audit.TenantCreated, ActorID: "cli", TargetID: tid,
				Data: map[string]string{"slug": t.slug}}); err != nil {
				return err
			}
		}
		ids := make([]string, len(t.emails))
		for k := range ids {
			ids[k] = ciam.NewID()
		}
		slices.Sort(ids)
		for k, email := range t.emails {
			uid := ids[k]
			key := audit.NewPIIKey()
			b.users = append(b.users, []any{tid, uid, email, false, fmt.Sprintf("Bench User %d", k), "en", string(ciam.UserActive),
				nowMicros, nowMicros, nil, int64(1), key})
			b.passwords = append(b.passwords, []any{tid, uid, hash, nowMicros})
			// What user.Service.Create records for `gatehouse user create`.
			sealed, err := audit.Seal(key, audit.PII{Email: email})
			if err != nil {
				return err
			}
			if err := appendEvent(&ciam.AuditEvent{Type: audit.UserCreated, ActorID: "cli", TargetID: uid, PII: sealed}); err != nil {
				return err
			}
			n.users++
			users++
		}
		if t.create || t.headSeq == 0 {
			b.heads = append(b.heads, []any{tid, seq, prev})
		} else if seq != t.headSeq {
			b.headUpdates = append(b.headUpdates, []any{seq, prev, tid})
		}
		if users >= batchUsers {
			select {
			case ch <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			b, users = &batch{}, 0
		}
	}
	if len(b.tenants)+len(b.users)+len(b.heads)+len(b.headUpdates) > 0 {
		select {
		case ch <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// verifySeed runs `gatehouse audit verify` on a few tenants: their chains
// (seeded, then extended by the load) must check out.
func verifySeed(ctx context.Context, bin string, p *prepared) error {
	for _, slug := range p.verify {
		cmd := exec.CommandContext(ctx, bin, "audit", "verify", "--tenant", slug)
		cmd.Env = serverEnv(append([]string{"GATEHOUSE_DATABASE=" + p.serverDSN, "GATEHOUSE_LOG_LEVEL=warn"}, p.env...)...)
		out, err := cmd.CombinedOutput()
		fmt.Printf("  check: %s", out)
		if err != nil {
			return fmt.Errorf("gatehouse audit verify --tenant %s: %w", slug, err)
		}
	}
	return nil
}

func multiInsert(table string, cols []string, rows int, dollar bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	n := 0
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			if dollar {
				fmt.Fprintf(&b, "$%d", n)
			} else {
				b.WriteString("?")
			}
		}
		b.WriteString(")")
	}
	return b.String()
}
