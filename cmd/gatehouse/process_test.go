package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// binary builds the gatehouse binary once per test run.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "gatehouse")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Stderr = os.Stderr
	return out, cmd.Run()
})

// proc is a running gatehouse process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	out  *strings.Builder
	mu   *sync.Mutex
}

// start runs `gatehouse serve` in dir with env and waits until it listens.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &strings.Builder{}, mu: &sync.Mutex{}}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	re := regexp.MustCompile(`listening on http://(\S+)`)
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("gatehouse exited before listening:\n%s", p.output())
			}
			if m := re.FindStringSubmatch(l); m != nil {
				p.addr = m[1]
				return p
			}
		case <-deadline:
			t.Fatalf("gatehouse did not start:\n%s", p.output())
		}
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestServeZeroConfig starts the binary with no configuration at all, as the
// quick start does, uses its pages, and stops it with SIGTERM.
func TestServeZeroConfig(t *testing.T) {
	if !portFree("localhost:8080") {
		t.Skip("localhost:8080 is in use; the zero-configuration start needs it")
	}
	dir := t.TempDir()
	p := start(t, dir, nil)
	for i := 0; i < 100 && !strings.Contains(p.output(), "/setup?token="); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.output(), "/setup?token=") {
		t.Errorf("no first-run link printed:\n%s", p.output())
	}
	if _, err := os.Stat(filepath.Join(dir, "gatehouse-data", "gatehouse.db")); err != nil {
		t.Errorf("database not created where documented: %v", err)
	}
	res, err := http.Get("http://localhost:8080/t/default/signup")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("signup page: %v %v", res, err)
	}
	res.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
	}
}

// TestSigtermDrains checks that a request in flight when SIGTERM arrives
// completes, and the process exits 0.
func TestSigtermDrains(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, []string{"GATEHOUSE_ADDR=127.0.0.1:0"})
	base := "http://" + p.addr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	token := csrfFrom(t, c, base+"/t/default/signup")
	// The request's body arrives in two halves with SIGTERM in between, so the
	// request is certainly in flight when the signal comes.
	body := url.Values{"csrf_token": {token}, "email": {"drain@example.com"}, "password": {"correct horse battery staple"}}.Encode()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/t/default/signup", pr)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.ContentLength = int64(len(body))
	done := make(chan int, 1)
	go func() {
		res, err := c.Do(req)
		if err != nil {
			t.Logf("in-flight request: %v", err)
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	io.WriteString(pw, body[:len(body)/2])
	time.Sleep(200 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	io.WriteString(pw, body[len(body)/2:])
	pw.Close()
	if st := <-done; st != http.StatusSeeOther {
		t.Errorf("in-flight sign-up got %d, want 303", st)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.output())
	}
}

func csrfFrom(t *testing.T, c *http.Client, page string) string {
	t.Helper()
	res, err := c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token on %s", page)
	}
	return string(m[1])
}

// TestKillDuringSignup kills the process (SIGKILL) while sign-ups are in
// flight; after a restart every user either exists completely (password and
// audit event) or not at all, and the audit chain verifies.
func TestKillDuringSignup(t *testing.T) {
	dir := t.TempDir()
	env := []string{"GATEHOUSE_ADDR=127.0.0.1:0", "GATEHOUSE_DATABASE=sqlite:" + filepath.Join(dir, "g.db")}
	p := start(t, dir, env)
	base := "http://" + p.addr
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		token := csrfFrom(t, c, base+"/t/default/signup")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := c.PostForm(base+"/t/default/signup", url.Values{"csrf_token": {token}, "email": {fmt.Sprintf("kill%d@example.com", i)}, "password": {"correct horse battery staple"}})
			if err == nil {
				res.Body.Close()
			}
		}(i)
	}
	time.Sleep(350 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	wg.Wait()

	// Restart once to prove the database opens and recovers, then inspect it directly.
	p2 := start(t, dir, env)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	p2.cmd.Wait()

	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tn, err := st.System().TenantBySlug(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	var users []*ciam.User
	signups := map[string]bool{}
	err = st.View(ctx, tn.ID, func(tx store.Tx) error {
		users, err = tx.Users().List(ctx, store.UserFilter{Limit: 1000})
		if err != nil {
			return err
		}
		for _, u := range users {
			if _, err := tx.Passwords().Get(ctx, u.ID); err != nil {
				return fmt.Errorf("user %s has no password: %w", u.Email, err)
			}
		}
		evs, err := tx.Audit().List(ctx, store.AuditFilter{Type: audit.UserSignup, Limit: 1000})
		for _, e := range evs {
			signups[e.TargetID] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !signups[string(u.ID)] {
			t.Errorf("user %s exists without its sign-up event", u.Email)
		}
		delete(signups, string(u.ID))
	}
	if len(signups) > 0 {
		t.Errorf("sign-up events without users: %v", signups)
	}
	if brk, _, err := audit.Verify(ctx, st, tn.ID); err != nil || brk != nil {
		t.Errorf("audit chain after the crash: %v %v", brk, err)
	}
	t.Logf("%d of 24 sign-ups had committed when the process was killed", len(users))
}

// TestOpsListener: with ops_addr set, /metrics leaves the public listener
// and is served, with the health checks, on the operations listener.
func TestOpsListener(t *testing.T) {
	p := start(t, t.TempDir(), []string{"GATEHOUSE_ADDR=127.0.0.1:0", "GATEHOUSE_OPS_ADDR=127.0.0.1:0"})
	re := regexp.MustCompile(`Operations \(/healthz, /readyz, /metrics\) on http://(\S+)`)
	var ops string
	for i := 0; i < 200 && ops == ""; i++ {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			ops = m[1]
		} else {
			time.Sleep(25 * time.Millisecond)
		}
	}
	if ops == "" {
		t.Fatalf("no operations listener announced:\n%s", p.output())
	}
	get := func(u string) (int, string) {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("http://" + p.addr + "/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics answered %d, want 404", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get("http://" + p.addr + path); code != 200 {
			t.Errorf("public %s answered %d", path, code)
		}
		if code, _ := get("http://" + ops + path); code != 200 {
			t.Errorf("operations %s answered %d", path, code)
		}
	}
	if code, body := get("http://" + ops + "/metrics"); code != 200 || !strings.Contains(body, "gatehouse_outbox_pending") {
		t.Errorf("operations /metrics: %d\n%.300s", code, body)
	}
	if code, _ := get("http://" + ops + "/t/default/login"); code != http.StatusNotFound {
		t.Errorf("the operations listener serves pages: %d", code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
	}
}

// TestBinaryLogin: the real binary signs up and logs in a user, without
// Redis and (when GATEHOUSE_TEST_REDIS is set) with it, so the wiring of
// the failed-login counters is exercised as deployed.
func TestBinaryLogin(t *testing.T) {
	cases := map[string][]string{"without Redis": nil}
	if u := os.Getenv("GATEHOUSE_TEST_REDIS"); u != "" {
		cases["with Redis"] = []string{"GATEHOUSE_REDIS_URL=" + u}
	} else {
		t.Log("NOTICE: the Redis case is skipped: set GATEHOUSE_TEST_REDIS=redis://127.0.0.1:6379/0 to run it.")
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := append([]string{"GATEHOUSE_ADDR=127.0.0.1:0", "GATEHOUSE_DATABASE=sqlite:" + filepath.Join(dir, "g.db")}, extra...)
			p := start(t, dir, env)
			base := "http://" + p.addr
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			form := url.Values{"email": {"bin@example.com"}, "password": {"correct horse battery staple"}}
			form.Set("csrf_token", csrfFrom(t, c, base+"/t/default/signup"))
			res, err := c.PostForm(base+"/t/default/signup", form)
			if err != nil || res.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-up: %v %v\n%s", res, err, p.output())
			}
			res.Body.Close()
			jar2, _ := cookiejar.New(nil)
			c2 := &http.Client{Jar: jar2, Timeout: 10 * time.Second, CheckRedirect: c.CheckRedirect}
			form.Set("csrf_token", csrfFrom(t, c2, base+"/t/default/login"))
			res, err = c2.PostForm(base+"/t/default/login", form)
			if err != nil || res.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %v %v\n%s", res, err, p.output())
			}
			res.Body.Close()
			jar3, _ := cookiejar.New(nil)
			c3 := &http.Client{Jar: jar3, Timeout: 10 * time.Second, CheckRedirect: c.CheckRedirect}
			form.Set("password", "a wrong password entirely")
			form.Set("csrf_token", csrfFrom(t, c3, base+"/t/default/login"))
			res, err = c3.PostForm(base+"/t/default/login", form)
			if err != nil || res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password: %v %v\n%s", res, err, p.output())
			}
			res.Body.Close()
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		})
	}
}
