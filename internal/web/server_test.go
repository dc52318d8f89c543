package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/prometheus/client_golang/prometheus"
)

// The whole chain over a real connection: headers, error body, request id,
// flushing through the wrappers.
func TestFullChainOverHTTP(t *testing.T) {
	logs, log := newCapture()
	m := NewMux(log)
	m.Handle("GET /t/{tenant}/stream", func(w http.ResponseWriter, r *http.Request) error {
		io.WriteString(w, "part1;")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		_, err := io.WriteString(w, "part2")
		return err
	})
	m.Handle("POST /t/{tenant}/login", func(w http.ResponseWriter, r *http.Request) error {
		return &ciam.Error{Kind: ciam.TooManyRequests, Code: "login_throttled", Msg: "Wait a little.", RetryAfter: 4}
	})
	reg := prometheus.NewRegistry()
	h := Chain(m, AssignRequestID, AccessLog(log), NewMetrics(reg).Wrap, m.Recover,
		SecurityHeaders{HTTPS: true}.Wrap, m.BodyLimit(1<<20))
	srv := httptest.NewServer(h)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/t/acme/stream?code=SECRET")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "part1;part2" || res.Header.Get("Strict-Transport-Security") == "" || res.Header.Get(RequestIDHeader) == "" {
		t.Errorf("stream: %q, headers %v", b, res.Header)
	}

	res, err = http.Post(srv.URL+"/t/acme/login", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	var body errorBody
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "4" || body.Error.Code != "login_throttled" ||
		body.Error.RequestID != res.Header.Get(RequestIDHeader) || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("login: %d %+v %v", res.StatusCode, body, res.Header)
	}

	routes := map[string]bool{}
	for _, r := range logs.find("http request") {
		routes[r.Attrs["route"]+" "+r.Attrs["status"]] = true
	}
	if !routes["GET /t/{tenant}/stream 200"] || !routes["POST /t/{tenant}/login 429"] {
		t.Errorf("access log routes = %v", routes)
	}
}
