// Command bench is Gatehouse's load generator. It builds the gatehouse
// binary, runs `gatehouse serve` as a separate process on SQLite and on
// PostgreSQL, seeds the database straight through SQL (empty, or many
// tenants and users), and drives it with N concurrent clients: the hosted
// sign-up and login pages (suite "pages"), or the OAuth 2.0 / OpenID Connect
// endpoints (suite "oidc": client credentials, introspection, userinfo,
// refresh rotation, discovery, JWKS and the authorization-code round trip).
// It prints throughput, p50/p99 latency, errors by cause, CPU and the
// server's peak RSS for every run, and compares them with the targets. It
// reports; it never fails on a figure.
//
// Run it from the repository root:
//
//	go run ./bench -quick
//	go run ./bench -postgres "$GATEHOUSE_TEST_POSTGRES" -json bench.json
//	go run ./bench -suite oidc -quick
//
// See bench/README.md for what each figure means.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Targets from the issue; the printout compares against them.
const (
	targetLoginsPerSec = 75.0
	targetMaxRSSMB     = 300.0
	targetClients      = 256
)

// Suites.
const (
	suitePages = "pages"
	suiteOIDC  = "oidc"
)

// suiteDefaults are each suite's operations, client levels and datasets
// when the flags do not name them.
var suiteDefaults = map[string]struct{ ops, clients, datasets string }{
	suitePages: {"signup,login", "4,32,256", "empty,seeded"},
	suiteOIDC:  {strings.Join(oidcOps, ","), "32", "empty"},
}

type options struct {
	suite           string
	dbs             []string
	ops             []string
	clients         []int
	duration        time.Duration
	warmup          time.Duration
	seed            bool
	seedTenants     int
	seedUsers       int
	emptyLoginUsers int
	postgres        string
	jsonOut         string
	quick           bool
	binary          string
	keep            bool
	workDir         string
	perfDir         string
	hashConcurrency int
	verify          bool
	seedOnly        bool
	quietWait       time.Duration
	retries         int
	serverEnv       []string
	datasets        []string
	cpuProfile      string
	httpClient      string
}

// disturbed is how much CPU other processes may use during a window before
// the level is run again.
const disturbed = 0.15

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	var dbs, ops, clients string
	fs.StringVar(&o.suite, "suite", suitePages, "what to load: pages (hosted sign-up and login) or oidc (the OAuth/OpenID Connect endpoints)")
	fs.StringVar(&dbs, "db", "sqlite,postgres", "databases to run: sqlite,postgres")
	fs.StringVar(&ops, "ops", "", "operations to run (default: all of the suite): signup,login for pages; "+strings.Join(oidcOps, ",")+" for oidc")
	fs.StringVar(&clients, "clients", "", "concurrent clients per level, run in increasing order (default 4,32,256 for pages, 32 for oidc)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per level (after the warm-up)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up per level, not counted")
	fs.BoolVar(&o.seed, "seed", true, "also run on a seeded database (-seed=false: the empty database only)")
	fs.IntVar(&o.seedTenants, "seed-tenants", 10000, "tenants in the seeded dataset")
	fs.IntVar(&o.seedUsers, "seed-users", 1000000, "users in the seeded dataset, spread evenly over the tenants")
	fs.IntVar(&o.emptyLoginUsers, "empty-login-users", 1000, "users seeded into the default tenant of the empty dataset for the login runs")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("GATEHOUSE_TEST_POSTGRES"), "PostgreSQL DSN (default $GATEHOUSE_TEST_POSTGRES); empty skips PostgreSQL")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.quick, "quick", false, "quick mode: 3s per level after a 1s warm-up, 1,000 tenants / 20,000 users (explicit flags still win)")
	fs.StringVar(&o.binary, "gatehouse", "", "use this gatehouse binary instead of building ./cmd/gatehouse")
	fs.BoolVar(&o.keep, "keep", false, "keep the databases (SQLite files, PostgreSQL schemas) and the work directory")
	fs.StringVar(&o.workDir, "workdir", "", "directory for the binary, databases and server logs (default a new temporary directory)")
	fs.StringVar(&o.perfDir, "perf", "", "record `perf record -g` of the server during every measured window into this directory")
	fs.IntVar(&o.hashConcurrency, "hash-concurrency", 0, "pass GATEHOUSE_HASH_CONCURRENCY to the server (0: its default, the CPU count)")
	fs.BoolVar(&o.verify, "verify", true, "after seeding, check a few seeded tenants with `gatehouse audit verify` and `user list`")
	fs.DurationVar(&o.quietWait, "quiet-wait", 3*time.Minute, "before each level, wait up to this long for other processes to use under 0.25 cores (0: do not wait)")
	fs.IntVar(&o.retries, "retries", 2, "run a level again up to this many times when other processes used more than 0.15 cores during its window; the least disturbed run is kept")
	var senv, datasets string
	fs.StringVar(&datasets, "datasets", "", "datasets to run: empty,seeded (default empty,seeded for pages, empty for oidc; -seed=false drops seeded)")
	fs.StringVar(&senv, "server-env", "", "extra environment of the server process, comma-separated KEY=VALUE (e.g. GOMAXPROCS=3,GOGC=200), for experiments")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator itself (not the server) to this file")
	fs.StringVar(&o.httpClient, "http-client", httpRaw, "HTTP client of the oidc suite's measured requests: raw (a minimal HTTP/1.1 client, one connection per client goroutine) or std (net/http); setup always uses net/http")
	fs.BoolVar(&o.seedOnly, "seed-only", false, "prepare and seed the databases, check them, print the seeding times, and run no load")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def, ok := suiteDefaults[o.suite]
	if !ok {
		return nil, fmt.Errorf("-suite: unknown suite %q (want pages, oidc)", o.suite)
	}
	if o.httpClient != httpRaw && o.httpClient != httpStd {
		return nil, fmt.Errorf("-http-client: unknown client %q (want raw, std)", o.httpClient)
	}
	if !set["ops"] {
		ops = def.ops
	}
	if !set["clients"] {
		clients = def.clients
	}
	if !set["datasets"] {
		datasets = def.datasets
	}
	if o.quick {
		if !set["duration"] {
			o.duration = 3 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		if !set["seed-tenants"] {
			o.seedTenants = 1000
		}
		if !set["seed-users"] {
			o.seedUsers = 20000
		}
		if !set["quiet-wait"] {
			o.quietWait = 10 * time.Second
		}
		if !set["retries"] {
			o.retries = 0
		}
	}
	for _, kv := range splitList(senv) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.HasPrefix(k, "GATEHOUSE_") {
			return nil, fmt.Errorf("-server-env: %q is not KEY=VALUE (GATEHOUSE_* settings are the bench's)", kv)
		}
		o.serverEnv = append(o.serverEnv, kv)
	}
	for _, d := range splitList(datasets) {
		if d != dsEmpty && d != dsSeeded {
			return nil, fmt.Errorf("-datasets: unknown dataset %q (want empty, seeded)", d)
		}
		if d == dsSeeded && !o.seed {
			continue
		}
		o.datasets = append(o.datasets, d)
	}
	for _, d := range splitList(dbs) {
		if d != "sqlite" && d != "postgres" {
			return nil, fmt.Errorf("-db: unknown database %q (want sqlite, postgres)", d)
		}
		o.dbs = append(o.dbs, d)
	}
	valid := strings.Split(def.ops, ",")
	for _, op := range splitList(ops) {
		if !slices.Contains(valid, op) {
			return nil, fmt.Errorf("-ops: unknown operation %q of suite %s (want %s)", op, o.suite, def.ops)
		}
		o.ops = append(o.ops, op)
	}
	for _, c := range splitList(clients) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients: %q is not a positive number", c)
		}
		o.clients = append(o.clients, n)
	}
	slices.Sort(o.clients)
	o.clients = slices.Compact(o.clients)
	switch {
	case len(o.dbs) == 0 || len(o.ops) == 0 || len(o.clients) == 0 || len(o.datasets) == 0:
		return nil, fmt.Errorf("-db, -datasets, -ops and -clients must each name at least one value")
	case o.duration <= 0 || o.warmup < 0:
		return nil, fmt.Errorf("-duration must be positive and -warmup not negative")
	case slices.Contains(o.datasets, dsSeeded) && (o.seedTenants < 1 || o.seedUsers < o.seedTenants):
		return nil, fmt.Errorf("-seed-tenants must be at least 1 and -seed-users at least -seed-tenants")
	case o.emptyLoginUsers < 1:
		return nil, fmt.Errorf("-empty-login-users must be at least 1")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer f.Close()
	}
	err = run(ctx, o)
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report is everything the JSON file holds.
type report struct {
	Started   time.Time     `json:"started"`
	Machine   machine       `json:"machine"`
	Config    configReport  `json:"config"`
	Seeding   []seedReport  `json:"seeding"`
	Runs      []*runResult  `json:"runs"`
	Targets   []targetCheck `json:"targets"`
	Notices   []string      `json:"notices,omitempty"`
	TotalSecs float64       `json:"total_seconds"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel,omitempty"`
	CPUModel  string `json:"cpu_model,omitempty"`
}

type configReport struct {
	Suite           string   `json:"suite"`
	DBs             []string `json:"dbs"`
	Datasets        []string `json:"datasets"`
	Ops             []string `json:"ops"`
	Clients         []int    `json:"clients"`
	DurationSecs    float64  `json:"duration_seconds"`
	WarmupSecs      float64  `json:"warmup_seconds"`
	SeedTenants     int      `json:"seed_tenants,omitempty"`
	SeedUsers       int      `json:"seed_users,omitempty"`
	EmptyLoginUsers int      `json:"empty_login_users"`
	HashConcurrency int      `json:"hash_concurrency"`
	ServerEnv       []string `json:"server_env,omitempty"`
	Quick           bool     `json:"quick"`
	HTTPClient      string   `json:"http_client,omitempty"`
	LatencyMeasures string   `json:"latency_measures"`
}

func run(ctx context.Context, o *options) error {
	start := time.Now()
	rep := &report{
		Started: start,
		Machine: machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: kernel(), CPUModel: cpuModel()},
		Config: configReport{
			Suite: o.suite, DBs: o.dbs, Datasets: o.datasets, Ops: o.ops, Clients: o.clients,
			DurationSecs: o.duration.Seconds(), WarmupSecs: o.warmup.Seconds(),
			EmptyLoginUsers: o.emptyLoginUsers, HashConcurrency: o.hashConcurrency, ServerEnv: o.serverEnv, Quick: o.quick,
			LatencyMeasures: latencyMeasures[o.suite],
		},
	}
	if o.suite == suiteOIDC {
		rep.Config.HTTPClient = o.httpClient
	}
	if slices.Contains(o.datasets, dsSeeded) {
		rep.Config.SeedTenants, rep.Config.SeedUsers = o.seedTenants, o.seedUsers
	}

	work := o.workDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	if o.perfDir != "" {
		if err := os.MkdirAll(o.perfDir, 0o755); err != nil {
			return err
		}
	}
	bin := o.binary
	if bin == "" {
		bin = filepath.Join(work, "gatehouse")
		fmt.Printf("building gatehouse into %s ...\n", bin)
		t := time.Now()
		if err := buildGatehouse(ctx, bin); err != nil {
			return err
		}
		fmt.Printf("built in %s\n", round(time.Since(t)))
	}
	fmt.Printf("machine: %d CPUs (%s), %s; client and server share the machine\n", rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion)
	fmt.Printf("suite %s; per level: %s warm-up, %s measured; clients %v; ops %v", o.suite, o.warmup, o.duration, o.clients, o.ops)
	if o.suite == suiteOIDC {
		fmt.Printf("; HTTP client %s", o.httpClient)
	}
	fmt.Print("\n\n")

	for _, db := range o.dbs {
		if db == "postgres" && o.postgres == "" {
			n := "PostgreSQL skipped: no DSN (set -postgres or GATEHOUSE_TEST_POSTGRES)"
			fmt.Println("NOTICE:", n)
			rep.Notices = append(rep.Notices, n)
			continue
		}
		for _, ds := range o.datasets {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := runDataset(ctx, o, rep, bin, work, db, ds); err != nil {
				return fmt.Errorf("%s/%s: %w", db, ds, err)
			}
		}
	}

	rep.Targets = checkTargets(rep.Runs)
	rep.TotalSecs = time.Since(start).Seconds()
	fmt.Println()
	printSummary(os.Stdout, rep)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nwrote %s\n", o.jsonOut)
	}
	return nil
}

// latencyMeasures says, per suite, what p50 and p99 measure (in the JSON).
var latencyMeasures = map[string]string{
	suitePages: "the POST only (the GET of the form before it is timed separately as get_p50/get_p99); ops/s counts completed GET+POST pairs",
	suiteOIDC: "the one request of the operation; for code, the whole round trip (authorize GET + token POST), with the authorize " +
		"step alone as get_p50/get_p99; ops/s counts successful operations",
}

// loadSuite makes the load of one operation against a running server.
type loadSuite interface {
	// setup prepares op for up to n clients on a server just started; it is
	// not measured.
	setup(ctx context.Context, srv *serverProc, op string, n int) error
	// workers returns the client goroutines of one level.
	workers(srv *serverProc, op string) func(i int) worker
}

// pagesSuite drives the hosted sign-up and login pages.
type pagesSuite struct{ d *dataset }

func (pagesSuite) setup(context.Context, *serverProc, string, int) error { return nil }

func (p pagesSuite) workers(srv *serverProc, op string) func(i int) worker {
	return pagesWorkers(srv, p.d, op)
}

// runDataset prepares one fresh database, then runs every operation against
// a server started afresh for it, so each operation's peak RSS is its own.
func runDataset(ctx context.Context, o *options, rep *report, bin, work, db, ds string) error {
	fmt.Printf("=== %s, %s ===\n", db, datasetLabel(ds, o))
	prep, err := prepare(ctx, o, work, db, ds)
	if err != nil {
		return err
	}
	if !o.keep {
		defer prep.cleanup()
	}
	rep.Seeding = append(rep.Seeding, prep.seed)
	printSeed(os.Stdout, prep.seed)
	fmt.Println()
	ops := o.ops
	var suite loadSuite = pagesSuite{prep.data}
	switch {
	case o.seedOnly:
		ops = nil
	case o.suite == suiteOIDC:
		s, err := newOIDCSuite(ctx, bin, prep)
		if err != nil {
			return err
		}
		s.client = o.httpClient
		// Log the users in on a server of their own: the password hashes
		// then count in no operation's CPU or peak RSS.
		srv, err := startServer(ctx, bin, work, prep.serverDSN, o.hashConcurrency, append(slices.Clone(prep.env), o.serverEnv...), fmt.Sprintf("%s-%s-logins", db, ds))
		if err != nil {
			return err
		}
		err = s.loginAll(ctx, srv.base, slices.Max(o.clients))
		_ = srv.stop()
		if err != nil {
			return fmt.Errorf("log the users in: %w (server log %s)", err, srv.logPath)
		}
		suite = s
	}
	if len(ops) > 0 {
		printHeader(os.Stdout)
	}
	for _, op := range ops {
		srv, err := startServer(ctx, bin, work, prep.serverDSN, o.hashConcurrency, append(slices.Clone(prep.env), o.serverEnv...), fmt.Sprintf("%s-%s-%s", db, ds, op))
		if err != nil {
			return err
		}
		err = runOp(ctx, o, rep, suite, srv, db, ds, op)
		if serr := srv.stop(); serr != nil {
			fmt.Printf("  (server exit: %v; log %s)\n", serr, srv.logPath)
		}
		if err != nil {
			return fmt.Errorf("%s: %w (server log %s)", op, err, srv.logPath)
		}
	}
	if o.verify {
		// The seeded chains, extended by the runs' sign-ups and logins, must verify.
		if err := verifySeed(ctx, bin, prep); err != nil {
			return fmt.Errorf("seeded data does not check out: %w", err)
		}
	}
	fmt.Println()
	return nil
}

// runOp sets op up on srv and runs its levels, each up to 1+retries times
// when other processes disturbed it, keeping the least disturbed attempt.
func runOp(ctx context.Context, o *options, rep *report, suite loadSuite, srv *serverProc, db, ds, op string) error {
	if err := suite.setup(ctx, srv, op, slices.Max(o.clients)); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	for _, c := range o.clients {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r *runResult
		for attempt := 1; attempt <= 1+o.retries; attempt++ {
			waited, other := waitQuiet(ctx, o.quietWait, srv.pid)
			a, err := runLevel(ctx, o, srv, db, ds, op, c, suite.workers(srv, op))
			if err != nil {
				return err
			}
			a.QuietWaitSecs, a.OtherBeforeCores, a.Attempts = waited.Seconds(), other, attempt
			if r == nil || a.OtherCores < r.OtherCores {
				r = a
			}
			if a.OtherCores <= disturbed || attempt > o.retries {
				break
			}
			fmt.Printf("  (%d clients: other processes used %.2f cores during the window (%.1f ops/s); running the level again)\n", c, a.OtherCores, a.OpsPerSec)
		}
		r.Dataset = datasetLabel(ds, o)
		rep.Runs = append(rep.Runs, r)
		printRow(os.Stdout, r)
	}
	return nil
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
