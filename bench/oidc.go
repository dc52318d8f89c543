package main

// The oidc suite: load on the OAuth 2.0 / OpenID Connect endpoints of one
// tenant, by clients registered with `gatehouse client create` and users
// logged in once through the hosted login page.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/session"
)

// oidcOps are the operations of the oidc suite, in the order they run.
var oidcOps = []string{"cc", "introspect", "userinfo", "refresh", "discovery", "jwks", "code"}

const (
	// oidcApps is how many OAuth clients the suite registers; client
	// goroutine i uses client i mod oidcApps.
	oidcApps = 4
	// oidcRedirectURI is the clients' redirect URI. Nothing listens there:
	// the load generator reads the code from the 303's Location.
	oidcRedirectURI = "http://127.0.0.1:9/cb"
)

var escapedRedirectURI = url.QueryEscape(oidcRedirectURI)

// oidcApp is a registered confidential client.
type oidcApp struct {
	id, secret string
	basic      string // Authorization header for client_secret_basic
}

func newOIDCApp(id, secret string) oidcApp {
	// RFC 6749 section 2.3.1: both are form-urlencoded before base64.
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return oidcApp{id: id, secret: secret, basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

// oidcEndpoints are the URLs the discovery document names.
type oidcEndpoints struct {
	Issuer        string `json:"issuer"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	Userinfo      string `json:"userinfo_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	JWKS          string `json:"jwks_uri"`
	discovery     string
}

// oidcSlot is what one client goroutine holds. Slots outlive the server
// processes (one per operation): sessions and tokens live in the database.
type oidcSlot struct {
	app     *oidcApp
	cookie  string // Cookie header value: the logged-in user's session
	access  string // an access token of the user (scope openid profile email)
	refresh string // the current refresh token of the slot's own family
}

// oidcSuite makes the load of the oidc operations.
type oidcSuite struct {
	slug  string      // the tenant
	users loginTenant // its users; slot i logs in user i mod users.n
	apps  []oidcApp
	// logins, when positive, is how many distinct users log in; slots
	// share their sessions. Zero: every slot logs its own user in once.
	logins int

	slots []*oidcSlot
	ep    oidcEndpoints
	hc    *http.Client
	// client is the HTTP client of the measured requests: httpRaw (the
	// minimal client of rawhttp.go, one connection per goroutine) or
	// httpStd (net/http, hc). Setup always uses net/http.
	client string
	base   string // the server's http://host:port
}

// The -http-client values.
const (
	httpStd = "std"
	httpRaw = "raw"
)

// newOIDCSuite registers the suite's clients in the dataset's first tenant
// with the CLI, against the database, before a server runs.
func newOIDCSuite(ctx context.Context, bin string, p *prepared) (*oidcSuite, error) {
	users := p.data.logins[0]
	t := time.Now()
	apps, err := createAppsCLI(ctx, bin, p, users.slug, oidcApps)
	if err != nil {
		return nil, err
	}
	fmt.Printf("registered %d clients in tenant %s with `gatehouse client create` in %s\n", len(apps), users.slug, round(time.Since(t)))
	return &oidcSuite{slug: users.slug, users: users, apps: apps}, nil
}

func createAppsCLI(ctx context.Context, bin string, p *prepared, slug string, n int) ([]oidcApp, error) {
	var apps []oidcApp
	for i := range n {
		cmd := exec.CommandContext(ctx, bin, "client", "create", "--tenant", slug,
			"--name", fmt.Sprintf("Bench app %d", i+1), "--redirect-uri", oidcRedirectURI,
			"--grant", "authorization_code,refresh_token,client_credentials", "--first-party",
			"--scopes", "openid,profile,email,offline_access", "--access-token-ttl", "1h", "--output", "json")
		cmd.Env = serverEnv(append([]string{"GATEHOUSE_DATABASE=" + p.serverDSN, "GATEHOUSE_LOG_LEVEL=warn"}, p.env...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("gatehouse client create: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		var j struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal(out, &j); err != nil || j.ID == "" || j.Secret == "" {
			return nil, fmt.Errorf("gatehouse client create: unexpected output %q", out)
		}
		apps = append(apps, newOIDCApp(j.ID, j.Secret))
	}
	return apps, nil
}

// connect makes the net/http client of setup and of -http-client std, which
// every goroutine shares: one transport keeping an idle connection per
// goroutine, no cookie jar, no redirects.
func (s *oidcSuite) connect(n int) {
	if s.hc != nil {
		s.hc.CloseIdleConnections()
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        n + 8,
		MaxIdleConnsPerHost: n + 8,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	// No Client.Timeout: it costs a goroutine and a timer per request.
	// runLevel gives the level's requests one deadline; setup its own.
	s.hc = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// loginAll gives the first n slots a session: each logs its own user in
// through the hosted login page once (or the first s.logins do, and the
// others share theirs). Sessions are in the database, so they serve every
// later server; bench runs this on a server of its own, so that the
// password hashes do not count in any operation's figures or peak RSS.
func (s *oidcSuite) loginAll(ctx context.Context, base string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for i := len(s.slots); i < n; i++ {
		s.slots = append(s.slots, &oidcSlot{app: &s.apps[i%len(s.apps)]})
	}
	logins := n
	if s.logins > 0 {
		logins = min(n, s.logins)
	}
	t := time.Now()
	fresh := slices.ContainsFunc(s.slots[:logins], func(sl *oidcSlot) bool { return sl.cookie == "" })
	err := parallel(ctx, logins, 4, func(i int) error {
		if s.slots[i].cookie != "" {
			return nil
		}
		c, err := s.login(ctx, base, i)
		s.slots[i].cookie = c
		return err
	})
	if err != nil {
		return err
	}
	for i := logins; i < n; i++ {
		s.slots[i].cookie = s.slots[i%logins].cookie
	}
	if fresh {
		fmt.Printf("logged %d users in through the login page in %s\n", logins, round(time.Since(t)))
	}
	return nil
}

// setup reads discovery from the new server and gives the first n slots
// the tokens op needs. Tokens name the issuer, whose port changes with every
// server, so each operation gets new ones.
func (s *oidcSuite) setup(ctx context.Context, srv *serverProc, op string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	s.connect(n)
	s.base = srv.base
	if s.client == httpRaw {
		if _, _, ok := splitHTTPURL(srv.base); !ok {
			return fmt.Errorf("the raw HTTP client needs an http:// server, not %s", srv.base)
		}
	}
	if err := s.discover(ctx, srv.base); err != nil {
		return err
	}
	if err := s.loginAll(ctx, srv.base, n); err != nil {
		return err
	}
	if op != "introspect" && op != "userinfo" && op != "refresh" {
		return nil
	}
	return parallel(ctx, n, 4, func(i int) error {
		sl := s.slots[i]
		h := &stdHTTP{hc: s.hc}
		if op == "refresh" {
			return s.newFamily(ctx, h, sl)
		}
		r, _, err := s.codeRound(ctx, h, sl, "openid profile email")
		if err != nil {
			return err
		}
		sl.access = jsonString(r.body, "access_token")
		return nil
	})
}

// discover reads the tenant's discovery document.
func (s *oidcSuite) discover(ctx context.Context, base string) error {
	iss := base + "/t/" + s.slug
	u := iss + "/.well-known/openid-configuration"
	r, err := (&stdHTTP{hc: s.hc}).do(ctx, &oidcRequest{method: http.MethodGet, url: u})
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("discovery: %d %s", r.status, r.body)
	}
	var ep oidcEndpoints
	if err := json.Unmarshal(r.body, &ep); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if ep.Issuer != iss || ep.Token == "" || ep.Authorization == "" || ep.Userinfo == "" || ep.Introspection == "" || ep.JWKS == "" {
		return fmt.Errorf("discovery: issuer %q (want %q) or an endpoint missing: %s", ep.Issuer, iss, r.body)
	}
	ep.discovery = u
	s.ep = ep
	return nil
}

// login logs user i in through the hosted login page and returns the
// session's Cookie header value.
func (s *oidcSuite) login(ctx context.Context, base string, i int) (string, error) {
	c := newClient(base, i, "setup")
	defer c.hc.CloseIdleConnections()
	if r := c.loginAs(ctx, s.slug, s.users.emails(i%s.users.n)); r.err != "" {
		return "", fmt.Errorf("login: %s", r.err)
	}
	u, _ := url.Parse(base)
	name := session.CookieName(s.slug, false)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("login: no %s cookie", name)
}

// newFamily starts a refresh-token family for sl with a code round trip.
func (s *oidcSuite) newFamily(ctx context.Context, h oidcHTTP, sl *oidcSlot) error {
	r, _, err := s.codeRound(ctx, h, sl, "openid offline_access")
	if err != nil {
		return err
	}
	if sl.refresh = jsonString(r.body, "refresh_token"); sl.refresh == "" {
		return errors.New("token 200 without refresh_token")
	}
	return nil
}

// oidcRequest is one request of an operation, for either HTTP client.
type oidcRequest struct {
	method, url string
	header      []string // name, value pairs
	body        string
	// wire is the raw client's encoding of the request, made when empty;
	// set clears it.
	wire []byte
}

// set gives the request a new URL and body.
func (q *oidcRequest) set(u, body string) {
	q.url, q.body, q.wire = u, body, q.wire[:0]
}

// oidcReply is what the operations look at in an answer. body is valid
// until the client's next request.
type oidcReply struct {
	status                    int
	location, wwwAuthenticate string
	body                      []byte
}

// oidcHTTP sends the requests of one client goroutine and reads the whole
// answers.
type oidcHTTP interface {
	do(ctx context.Context, q *oidcRequest) (oidcReply, error)
	// close ends the goroutine's connections.
	close()
}

// stdHTTP is net/http: the suite's shared client, and a body buffer of
// the goroutine's own.
type stdHTTP struct {
	hc  *http.Client
	buf bytes.Buffer
}

func (h *stdHTTP) do(ctx context.Context, q *oidcRequest) (oidcReply, error) {
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(ctx, q.method, q.url, body)
	if err != nil {
		return oidcReply{}, err
	}
	for i := 0; i+1 < len(q.header); i += 2 {
		req.Header.Set(q.header[i], q.header[i+1])
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return oidcReply{}, errors.New(netErr(err))
	}
	h.buf.Reset()
	_, err = h.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return oidcReply{}, errors.New("read: " + netErr(err))
	}
	return oidcReply{
		status:          resp.StatusCode,
		location:        resp.Header.Get("Location"),
		wwwAuthenticate: resp.Header.Get("WWW-Authenticate"),
		body:            h.buf.Bytes(),
	}, nil
}

func (h *stdHTTP) close() {}

// rawHTTP is the minimal client of rawhttp.go: one connection of the
// goroutine's own to the server.
type rawHTTP struct{ c *rawConn }

func (h *rawHTTP) do(ctx context.Context, q *oidcRequest) (oidcReply, error) {
	if len(q.wire) == 0 {
		host, target, ok := splitHTTPURL(q.url)
		if !ok || host != h.c.addr {
			return oidcReply{}, fmt.Errorf("raw client: %s is not on %s", q.url, h.c.addr)
		}
		q.wire = appendRequest(q.wire, q.method, target, host, q.body, q.header...)
	}
	r, err := h.c.roundTrip(ctx, q.wire)
	if err != nil {
		return oidcReply{}, errors.New(rawErr(err))
	}
	return oidcReply{status: r.status, location: r.location, wwwAuthenticate: r.wwwAuthenticate, body: r.body}, nil
}

func (h *rawHTTP) close() { h.c.close() }

// newHTTP makes the HTTP client of one goroutine of a level.
func (s *oidcSuite) newHTTP() oidcHTTP {
	if s.client == httpRaw {
		host, _, _ := splitHTTPURL(s.base)
		return &rawHTTP{c: newRawConn(host)}
	}
	return &stdHTTP{hc: s.hc}
}

// formPost is a form POST with client_secret_basic.
func formPost(endpoint string, app *oidcApp, form string) *oidcRequest {
	return &oidcRequest{
		method: http.MethodPost, url: endpoint, body: form,
		header: []string{"Authorization", app.basic, "Content-Type", "application/x-www-form-urlencoded"},
	}
}

// codeRound is the authorization-code flow of a logged-in user: GET
// authorize (PKCE S256, state, nonce) with the session cookie, which answers
// 303 to the redirect URI with a code, then POST token with the verifier.
// It returns the token response and the authorize step's latency.
func (s *oidcSuite) codeRound(ctx context.Context, h oidcHTTP, sl *oidcSlot, scope string) (oidcReply, time.Duration, error) {
	var rnd [48]byte
	_, _ = crand.Read(rnd[:])
	verifier := base64.RawURLEncoding.EncodeToString(rnd[:32])
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := base64.RawURLEncoding.EncodeToString(rnd[32:40])
	nonce := base64.RawURLEncoding.EncodeToString(rnd[40:])
	au := s.ep.Authorization + "?response_type=code&client_id=" + url.QueryEscape(sl.app.id) +
		"&redirect_uri=" + escapedRedirectURI + "&scope=" + url.QueryEscape(scope) +
		"&state=" + state + "&nonce=" + nonce + "&code_challenge=" + challenge + "&code_challenge_method=S256"

	t0 := time.Now()
	r, err := h.do(ctx, &oidcRequest{method: http.MethodGet, url: au, header: []string{"Cookie", sl.cookie}})
	authz := time.Since(t0)
	if err != nil {
		return r, authz, fmt.Errorf("authorize: %w", err)
	}
	if r.status != http.StatusSeeOther {
		return r, authz, fmt.Errorf("authorize %d", r.status)
	}
	loc := r.location
	if !strings.HasPrefix(loc, oidcRedirectURI+"?") {
		if i := strings.IndexByte(loc, '?'); i >= 0 {
			loc = loc[:i]
		}
		return r, authz, fmt.Errorf("authorize 303 to %s", loc)
	}
	q, err := url.ParseQuery(loc[len(oidcRedirectURI)+1:])
	if err != nil {
		return r, authz, errors.New("authorize 303: unreadable query")
	}
	if e := q.Get("error"); e != "" {
		return r, authz, fmt.Errorf("authorize error=%s", e)
	}
	code := q.Get("code")
	if code == "" || q.Get("state") != state {
		return r, authz, errors.New("authorize 303 without code or with another state")
	}

	form := "grant_type=authorization_code&code=" + url.QueryEscape(code) + "&redirect_uri=" + escapedRedirectURI + "&code_verifier=" + verifier
	r, err = h.do(ctx, formPost(s.ep.Token, sl.app, form))
	if err != nil {
		return r, authz, fmt.Errorf("token: %w", err)
	}
	if err := want(r, "token", `"access_token":"`, `"id_token":"`); err != nil {
		return r, authz, err
	}
	return r, authz, nil
}

// want checks for a 200 whose body holds every one of marks, and otherwise
// names the failure: step, status and the OAuth error code.
func want(r oidcReply, step string, marks ...string) error {
	if r.status != http.StatusOK {
		code := jsonString(r.body, "error")
		if code == "" {
			// Bearer errors are in WWW-Authenticate (RFC 6750 section 3).
			if _, rest, ok := strings.Cut(r.wwwAuthenticate, `error="`); ok {
				code, _, _ = strings.Cut(rest, `"`)
			}
		}
		return fmt.Errorf("%s %d %s", step, r.status, code)
	}
	for _, m := range marks {
		if !bytes.Contains(r.body, []byte(m)) {
			return fmt.Errorf("%s 200 without %s", step, strings.Trim(m, `":`))
		}
	}
	return nil
}

// jsonString returns the string member key of a flat JSON object without
// decoding the rest; it decodes properly only when the value has escapes.
func jsonString(b []byte, key string) string {
	pat := `"` + key + `":"`
	i := bytes.Index(b, []byte(pat))
	if i < 0 {
		return ""
	}
	rest := b[i+len(pat):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	if bytes.IndexByte(rest[:j], '\\') < 0 {
		return string(rest[:j])
	}
	var m map[string]json.RawMessage
	var v string
	if json.Unmarshal(b, &m) != nil || json.Unmarshal(m[key], &v) != nil {
		return ""
	}
	return v
}

// oidcWorker is one client goroutine: its slot, its HTTP client, and the
// requests of its operation, encoded once per level where they are fixed.
type oidcWorker struct {
	s  *oidcSuite
	sl *oidcSlot
	h  oidcHTTP
	q  *oidcRequest
}

func (s *oidcSuite) workers(srv *serverProc, op string) func(i int) worker {
	return func(i int) worker {
		w := &oidcWorker{s: s, sl: s.slots[i%len(s.slots)], h: s.newHTTP()}
		var do func(context.Context) sample
		switch op {
		case "cc":
			w.q = formPost(s.ep.Token, w.sl.app, "grant_type=client_credentials")
			do = func(ctx context.Context) sample { return w.fixed(ctx, "token", `"access_token":"`) }
		case "introspect":
			w.q = formPost(s.ep.Introspection, w.sl.app, "token="+url.QueryEscape(w.sl.access)+"&token_type_hint=access_token")
			do = func(ctx context.Context) sample { return w.fixed(ctx, "introspect", `"active":true`) }
		case "userinfo":
			w.q = &oidcRequest{method: http.MethodGet, url: s.ep.Userinfo, header: []string{"Authorization", "Bearer " + w.sl.access}}
			do = func(ctx context.Context) sample { return w.fixed(ctx, "userinfo", `"sub":"`) }
		case "refresh":
			w.q = formPost(s.ep.Token, w.sl.app, "")
			do = w.refresh
		case "discovery":
			w.q = &oidcRequest{method: http.MethodGet, url: s.ep.discovery}
			do = func(ctx context.Context) sample { return w.fixed(ctx, "discovery", `"issuer":"`) }
		case "jwks":
			w.q = &oidcRequest{method: http.MethodGet, url: s.ep.JWKS}
			do = func(ctx context.Context) sample { return w.fixed(ctx, "jwks", `"keys":[`) }
		case "code":
			do = w.code
		}
		return worker{do: do, done: w.h.close}
	}
}

// finish turns the outcome of a request timed from t0 into a sample.
func finish(t0 time.Time, err error) sample {
	t1 := time.Now()
	s := sample{end: t1, lat: t1.Sub(t0)}
	if err != nil {
		s.err = err.Error()
	}
	return s
}

// fixed sends the worker's fixed request (cc, introspect, userinfo,
// discovery, jwks) and wants a 200 whose body holds mark.
func (w *oidcWorker) fixed(ctx context.Context, step, mark string) sample {
	t0 := time.Now()
	r, err := w.h.do(ctx, w.q)
	if err == nil {
		err = want(r, step, mark)
	} else {
		err = fmt.Errorf("%s: %w", step, err)
	}
	return finish(t0, err)
}

// refresh rotates the slot's refresh token and keeps the new one. After a
// failure the family may be spent (a rotation whose answer was lost counts
// as reuse when retried), so the slot starts a new family, untimed.
func (w *oidcWorker) refresh(ctx context.Context) sample {
	w.q.set(w.s.ep.Token, "grant_type=refresh_token&refresh_token="+url.QueryEscape(w.sl.refresh))
	t0 := time.Now()
	r, err := w.h.do(ctx, w.q)
	if err == nil {
		if err = want(r, "token", `"access_token":"`); err == nil {
			if w.sl.refresh = jsonString(r.body, "refresh_token"); w.sl.refresh == "" {
				err = errors.New("token 200 without refresh_token")
			}
		}
	} else {
		err = fmt.Errorf("token: %w", err)
	}
	s := finish(t0, err)
	if err != nil && ctx.Err() == nil {
		if ferr := w.s.newFamily(ctx, w.h, w.sl); ferr != nil {
			w.sl.refresh = ""
		}
	}
	return s
}

// code is the whole authorization-code round trip.
func (w *oidcWorker) code(ctx context.Context) sample {
	t0 := time.Now()
	_, authz, err := w.s.codeRound(ctx, w.h, w.sl, "openid")
	s := finish(t0, err)
	s.get = authz
	return s
}

// parallel runs f(0..n-1) on up to par goroutines and returns the first error.
func parallel(ctx context.Context, n, par int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
