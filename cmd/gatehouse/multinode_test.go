package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestTwoNodesOnePostgres runs two gatehouse processes on one PostgreSQL
// database: a code issued by one node is redeemed by ten concurrent requests
// spread over both, and exactly one of them gets tokens; the same holds for
// rotating the refresh token it returned.
func TestTwoNodesOnePostgres(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("set GATEHOUSE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the two-node test")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "twonodes_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	var k [32]byte
	rand.Read(k[:])
	const public = "http://localhost:9" // both nodes stand behind one name
	env := []string{"GATEHOUSE_DATABASE=" + u.String(), "GATEHOUSE_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(k[:]),
		"GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_PUBLIC_URL=" + public}
	dir := t.TempDir()
	nodes := []*proc{
		start(t, dir, append(env, "GATEHOUSE_ADDR=127.0.0.1:0")),
		start(t, dir, append(env, "GATEHOUSE_ADDR=127.0.0.1:0")),
	}
	base := func(i int) string { return "http://" + nodes[i%2].addr }

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"client", "create", "--name", "Two nodes", "--first-party",
		"--redirect-uri", "https://app.example.com/cb", "--output", "json"}, env, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("client create: %s", errb.String())
	}
	var cl struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	json.Unmarshal(out.Bytes(), &cl)

	// Sign up on node A and authorize there.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	token := csrfFrom(t, c, base(0)+"/t/default/signup")
	res, err := c.PostForm(base(0)+"/t/default/signup", url.Values{"csrf_token": {token}, "email": {"nodes@example.com"}, "password": {"correct horse battery staple"}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %v %v", res, err)
	}
	res.Body.Close()
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	authz := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {"https://app.example.com/cb"},
		"scope": {"openid offline_access"}, "state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	res, err = c.Get(base(0) + "/t/default/authorize?" + authz.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("iss") != public+"/t/default" {
		t.Fatalf("authorization response: %d %s", res.StatusCode, res.Header.Get("Location"))
	}

	race := func(form url.Values) ([]int, []string) {
		var mu sync.Mutex
		var statuses []int
		var bodies []string
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req, _ := http.NewRequest("POST", base(i)+"/t/default/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(url.QueryEscape(cl.ID), url.QueryEscape(cl.Secret))
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				mu.Lock()
				statuses = append(statuses, res.StatusCode)
				bodies = append(bodies, string(body))
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		return statuses, bodies
	}
	winners := func(statuses []int, bodies []string) (int, string) {
		n, body := 0, ""
		for i, s := range statuses {
			switch s {
			case 200:
				n++
				body = bodies[i]
			case 400:
				if !strings.Contains(bodies[i], "invalid_grant") {
					t.Errorf("loser's answer: %s", bodies[i])
				}
			default:
				t.Errorf("status %d: %s", s, bodies[i])
			}
		}
		return n, body
	}

	n, body := winners(race(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example.com/cb"}, "code_verifier": {verifier}}))
	if n != 1 {
		t.Fatalf("%d redemptions of one code succeeded across two nodes; want exactly 1", n)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal([]byte(body), &tok)
	if tok.RefreshToken == "" {
		t.Fatalf("no refresh token: %s", body)
	}
	// The replays revoked the family, so its refresh token no longer works.
	statuses, _ := race(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	for _, s := range statuses {
		if s == 200 {
			t.Fatal("a refresh token of a replayed code still works")
		}
	}

	// A fresh code; its refresh token rotated by ten racers: one winner.
	res, err = c.Get(base(1) + "/t/default/authorize?" + authz.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ = url.Parse(res.Header.Get("Location"))
	if loc.Query().Get("code") == "" {
		t.Fatalf("second authorization: %s", res.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"https://app.example.com/cb"}, "code_verifier": {verifier}}
	req, _ := http.NewRequest("POST", base(1)+"/t/default/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cl.ID), url.QueryEscape(cl.Secret))
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("redeem: %v %v", res, err)
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if n, _ := winners(race(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})); n != 1 {
		t.Fatalf("%d rotations of one refresh token succeeded across two nodes; want exactly 1", n)
	}
}
