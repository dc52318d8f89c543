package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runResult is one (db, dataset, operation, clients) level.
type runResult struct {
	DB         string         `json:"db"`
	Dataset    string         `json:"dataset"`
	Op         string         `json:"op"`
	Clients    int            `json:"clients"`
	WindowSecs float64        `json:"window_seconds"`
	Completed  int            `json:"completed"` // successful operations in the window
	OpsPerSec  float64        `json:"ops_per_second"`
	P50ms      float64        `json:"p50_ms"` // latency of successful operations (sample.lat)
	P90ms      float64        `json:"p90_ms"`
	P99ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	GetP50ms   float64        `json:"get_p50_ms"` // the GET before each POST (form, or authorization request)
	GetP99ms   float64        `json:"get_p99_ms"`
	Errors     int            `json:"errors"`
	ErrorsBy   map[string]int `json:"errors_by,omitempty"`
	// Server process figures: VmHWM is the peak RSS over the server's life so
	// far (levels run in increasing order, so it includes this level).
	PeakRSSMB   float64 `json:"server_peak_rss_mb"`
	RSSMB       float64 `json:"server_rss_mb"`
	StartRSSMB  float64 `json:"server_start_rss_mb"`
	ServerCores float64 `json:"server_cores_busy"`
	ServerCPUms float64 `json:"server_cpu_ms_per_op"`
	// ClientCores is the load generator's own CPU (this process) during
	// the window, and ClientCPUus the same per successful operation.
	ClientCores float64 `json:"client_cores_busy"`
	ClientCPUus float64 `json:"client_cpu_us_per_op"`
	// OtherCores is what the rest of the machine (neither this server nor
	// the load generator) used during the window; more than ~0.1 means the
	// figures are disturbed by other work.
	OtherCores float64 `json:"other_cores_busy"`
	// PostgresCores is what processes named "postgres" used (on PostgreSQL
	// runs, mostly this server's backends).
	PostgresCores float64 `json:"postgres_cores_busy"`
	LoadAvg       string  `json:"loadavg_at_start,omitempty"`
	// QuietWaitSecs is how long the level waited for the machine to be
	// quiet, and OtherBeforeCores what other processes used just before it.
	QuietWaitSecs    float64 `json:"quiet_wait_seconds"`
	OtherBeforeCores float64 `json:"other_cores_before"`
	// Attempts is how many times the level ran: a window disturbed by
	// other processes is run again, and the least disturbed one kept.
	Attempts int    `json:"attempts"`
	PerfData string `json:"perf_data,omitempty"`
}

// sample is one finished operation. lat is the latency the p50 and p99
// columns report: the POST of a form, or the one request of an OAuth
// operation (the whole round trip for the authorization-code flow); get is
// the GET before it (the form, or the authorization request), when there is
// one.
type sample struct {
	end      time.Time
	lat, get time.Duration
	err      string // "" on success
}

var csrfPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// words make sign-up passwords: five random ones are never on the blocklist.
var words = strings.Fields(`amber anchor apricot arcade aspen atlas autumn badger bamboo banjo basil beacon
birch biscuit blossom bonfire boulder bramble breeze bronze cactus canyon caramel cascade cedar cello
chestnut cinder citrus clover cobalt comet coral cosmos cotton crater cricket crystal cypress dahlia
delta dune ember falcon fennel fjord flint fossil galaxy garnet geyser ginger glacier granite harbor
hazel heron hickory horizon iris ivory jasmine juniper kayak kelp kettle lagoon lantern lavender lemon
lichen lily lotus lunar magnet mango maple marble meadow meteor mint monsoon mosaic moss nebula nectar
nutmeg oasis obsidian ocean olive onyx orchid otter paddle pebble pepper pine plume poppy prairie prism
quartz quill radish raven reef ribbon river saffron sage sapphire sequoia shadow sierra silver sparrow
spruce summit sunset tango thistle thunder tide timber topaz tulip tundra velvet violet walnut willow
zephyr zinc`)

// client is one simulated browser: its own connection and cookie jar.
type client struct {
	hc   *http.Client
	base string
	r    *rand.Rand
	id   int
	run  string
	n    int
}

func newClient(base string, id int, run string) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{
		hc: &http.Client{
			Transport: tr,
			Timeout:   2 * time.Minute,
			// The 303 after a sign-up or login is the answer: do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		base: base, id: id, run: run,
		r: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(id))),
	}
}

// freshJar starts a new browser session: no session cookie of an earlier
// login (whose presence would redirect the login page), no old CSRF cookie.
func (c *client) freshJar() {
	jar, _ := cookiejar.New(nil)
	c.hc.Jar = jar
}

// form GETs a page and returns its CSRF token.
func (c *client) form(ctx context.Context, path string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	req.Header.Set("User-Agent", "gatehouse-bench/1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET: %s", netErr(err))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("GET: read: %s", netErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %d", resp.StatusCode)
	}
	m := csrfPattern.FindSubmatch(body)
	if m == nil {
		return "", errors.New("GET 200 without csrf_token")
	}
	return html.UnescapeString(string(m[1])), nil
}

// post submits a form and wants 303 to the tenant's account page.
func (c *client) post(ctx context.Context, path, slug string, form url.Values) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "gatehouse-bench/1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %s", netErr(err))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST %d", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/t/"+slug+"/account" {
		return fmt.Errorf("POST 303 to %q", loc)
	}
	return nil
}

// signup is GET /t/{t}/signup, then POST of a new account.
func (c *client) signup(ctx context.Context, d *dataset) sample {
	c.freshJar()
	slug := d.signupSlug(c.r)
	t0 := time.Now()
	tok, err := c.form(ctx, "/t/"+slug+"/signup")
	t1 := time.Now()
	if err != nil {
		return sample{end: t1, get: t1.Sub(t0), err: err.Error()}
	}
	c.n++
	pw := make([]string, 5)
	for i := range pw {
		pw[i] = words[c.r.IntN(len(words))]
	}
	form := url.Values{
		"csrf_token": {tok},
		"email":      {fmt.Sprintf("s%s-%d-%d@bench.example.com", c.run, c.id, c.n)},
		"name":       {fmt.Sprintf("Signup %d", c.n)},
		"password":   {strings.Join(pw, " ")},
	}
	t2 := time.Now()
	err = c.post(ctx, "/t/"+slug+"/signup", slug, form)
	t3 := time.Now()
	s := sample{end: t3, get: t1.Sub(t0), lat: t3.Sub(t2)}
	if err != nil {
		s.err = err.Error()
	}
	return s
}

// login is GET /t/{t}/login for a CSRF token (a successful login rotates the
// CSRF cookie, and a browser opens the page first anyway), then the POST.
func (c *client) login(ctx context.Context, d *dataset) sample {
	slug, email := d.loginUser(c.r)
	return c.loginAs(ctx, slug, email)
}

// loginAs logs email in to tenant slug in a fresh browser session.
func (c *client) loginAs(ctx context.Context, slug, email string) sample {
	c.freshJar()
	t0 := time.Now()
	tok, err := c.form(ctx, "/t/"+slug+"/login")
	t1 := time.Now()
	if err != nil {
		return sample{end: t1, get: t1.Sub(t0), err: err.Error()}
	}
	form := url.Values{"csrf_token": {tok}, "email": {email}, "password": {seedPassword}}
	t2 := time.Now()
	err = c.post(ctx, "/t/"+slug+"/login", slug, form)
	t3 := time.Now()
	s := sample{end: t3, get: t1.Sub(t0), lat: t3.Sub(t2)}
	if err != nil {
		s.err = err.Error()
	}
	return s
}

func netErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Op + " " + ne.Err.Error()
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

var runCounter atomic.Int64

// worker is one client goroutine of a level: do runs one operation and is
// called in a loop until the window ends; done, when set, runs after.
type worker struct {
	do   func(ctx context.Context) sample
	done func()
}

// pagesWorkers makes the hosted-page clients of one level: each has its own
// connection and a fresh cookie jar per operation.
func pagesWorkers(srv *serverProc, d *dataset, op string) func(i int) worker {
	runID := fmt.Sprintf("%d%03d", time.Now().Unix()%1_000_000, runCounter.Add(1))
	return func(i int) worker {
		cl := newClient(srv.base, i, runID)
		do := cl.login
		if op == "signup" {
			do = cl.signup
		}
		return worker{do: func(ctx context.Context) sample { return do(ctx, d) }, done: cl.hc.CloseIdleConnections}
	}
}

// runLevel runs c clients for the warm-up plus the measured window and
// returns the figures of the window: operations that finished inside it.
// Clients start no operation after the window; the ones in flight finish
// (and are not counted) so that the next level starts on an idle server.
func runLevel(ctx context.Context, o *options, srv *serverProc, db, ds, op string, c int, newWorker func(i int) worker) (*runResult, error) {
	start := time.Now()
	winStart := start.Add(o.warmup)
	winEnd := winStart.Add(o.duration)

	// CPU counters at the window's edges.
	var srvCPU0, srvCPU1, selfCPU0, selfCPU1, allCPU0, allCPU1 float64
	var pg0, pg1 map[int]float64
	loadAvg := loadavg()
	var perfWait func()
	edges := make(chan struct{})
	perfOut := ""
	go func() {
		defer close(edges)
		if !sleepCtx(ctx, time.Until(winStart)) {
			return
		}
		pg0 = commCPUSeconds("postgres")
		srvCPU0, selfCPU0, allCPU0 = srv.cpuSeconds(), selfCPUSeconds(), machineCPUSeconds()
		if o.perfDir != "" {
			perfOut = filepath.Join(o.perfDir, fmt.Sprintf("%s-%s-%s-%d.perf.data", db, ds, op, c))
			perfWait = perfRecord(srv.pid, o.duration, perfOut)
		}
		if !sleepCtx(ctx, time.Until(winEnd)) {
			return
		}
		srvCPU1, selfCPU1, allCPU1 = srv.cpuSeconds(), selfCPUSeconds(), machineCPUSeconds()
		pg1 = commCPUSeconds("postgres")
	}()

	// One deadline for every request of the level, rather than a timer per
	// request (http.Client.Timeout starts a goroutine and a timer for each):
	// a request still running a minute after the window is a timeout.
	lctx, cancel := context.WithDeadline(ctx, winEnd.Add(time.Minute))
	defer cancel()
	// Fewer collections: the load generator's CPU is taken from the server.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	results := make([][]sample, c)
	var wg sync.WaitGroup
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(i)
			if w.done != nil {
				defer w.done()
			}
			var out []sample
			for time.Now().Before(winEnd) && ctx.Err() == nil {
				s := w.do(lctx)
				out = append(out, s)
				if s.err != "" {
					time.Sleep(10 * time.Millisecond) // no hot loop against a failing server
				}
			}
			results[i] = out
		}()
	}
	wg.Wait()
	<-edges
	if perfWait != nil {
		perfWait()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &runResult{DB: db, Op: op, Clients: c, WindowSecs: o.duration.Seconds(), ErrorsBy: map[string]int{}, PerfData: perfOut}
	var lat, get []time.Duration
	for _, out := range results {
		for _, s := range out {
			if s.end.Before(winStart) || s.end.After(winEnd) {
				continue
			}
			if s.get > 0 {
				get = append(get, s.get)
			}
			if s.err != "" {
				r.Errors++
				r.ErrorsBy[s.err]++
				continue
			}
			r.Completed++
			lat = append(lat, s.lat)
		}
	}
	r.OpsPerSec = float64(r.Completed) / o.duration.Seconds()
	slices.Sort(lat)
	slices.Sort(get)
	r.P50ms, r.P90ms, r.P99ms = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	r.GetP50ms, r.GetP99ms = pct(get, 50), pct(get, 99)
	r.PeakRSSMB, r.RSSMB, r.StartRSSMB = srv.status("VmHWM"), srv.status("VmRSS"), srv.startMB
	if srvCPU0 >= 0 && srvCPU1 >= 0 {
		r.ServerCores = (srvCPU1 - srvCPU0) / o.duration.Seconds()
		if r.Completed > 0 {
			r.ServerCPUms = (srvCPU1 - srvCPU0) * 1000 / float64(r.Completed)
		}
	}
	r.ClientCores = (selfCPU1 - selfCPU0) / o.duration.Seconds()
	if r.Completed > 0 {
		r.ClientCPUus = (selfCPU1 - selfCPU0) * 1e6 / float64(r.Completed)
	}
	r.PostgresCores = cpuDelta(pg0, pg1) / o.duration.Seconds()
	if allCPU0 >= 0 && allCPU1 >= 0 {
		r.OtherCores = max(0, (allCPU1-allCPU0)/o.duration.Seconds()-r.ServerCores-r.ClientCores-r.PostgresCores)
	}
	r.LoadAvg = loadAvg
	if len(r.ErrorsBy) == 0 {
		r.ErrorsBy = nil
	}
	return r, nil
}

// otherCores measures for d what the machine used apart from the server
// (pid), this process and processes named postgres.
func otherCores(d time.Duration, pid int) float64 {
	a0, s0, p0, pg0 := machineCPUSeconds(), selfCPUSeconds(), procCPUSeconds(pid), commCPUSeconds("postgres")
	time.Sleep(d)
	a1, s1, p1, pg1 := machineCPUSeconds(), selfCPUSeconds(), procCPUSeconds(pid), commCPUSeconds("postgres")
	return max(0, ((a1-a0)-(s1-s0)-(p1-p0)-cpuDelta(pg0, pg1))/d.Seconds())
}

// waitQuiet waits, up to max, until other processes use less than a
// quarter of a core over two seconds, and says how long it waited and what
// they used last.
func waitQuiet(ctx context.Context, maxWait time.Duration, pid int) (time.Duration, float64) {
	start := time.Now()
	other := otherCores(time.Second, pid)
	noted := false
	for other >= 0.25 && time.Since(start) < maxWait && ctx.Err() == nil {
		if !noted {
			fmt.Printf("  (other processes use %.2f cores; waiting up to %s for a quiet machine)\n", other, maxWait)
			noted = true
		}
		other = otherCores(2*time.Second, pid)
	}
	if noted {
		fmt.Printf("  (waited %s; other processes now at %.2f cores)\n", time.Since(start).Round(time.Second), other)
	}
	return time.Since(start), other
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// pct is the nearest-rank percentile of sorted durations, in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
