package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/prometheus/client_golang/prometheus"
)

// gather returns "name{label=value,...}" -> value for counters and sample
// counts for histograms.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	m := NewMux(nil)
	m.Handle("GET /t/{tenant}/login", func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, "page")
		return err
	})
	m.Handle("POST /t/{tenant}/login", func(w http.ResponseWriter, r *http.Request) error {
		return ciam.Errorf(ciam.Unauthenticated, "bad_credentials", "Wrong.")
	})
	m.Handle("GET /panic", func(w http.ResponseWriter, r *http.Request) error { panic("x") })
	// Metrics outermost, with context-copying middleware inside it.
	h := Chain(m, metrics.Wrap, AssignRequestID, SecurityHeaders{}.Wrap, m.Recover)

	requests := []struct{ method, path string }{
		{"GET", "/t/acme/login"},
		{"GET", "/t/other/login?x=1"},
		{"POST", "/t/acme/login"},
		{"GET", "/random/1"},
		{"GET", "/random/2"},
		{"BREW", "/random/3"},
		{"GET", "/panic"},
	}
	for _, req := range requests {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}

	got := gather(t, reg)
	want := map[string]float64{
		"gatehouse_http_requests_total{method=GET,route=/t/{tenant}/login,status=200}":  2,
		"gatehouse_http_requests_total{method=POST,route=/t/{tenant}/login,status=401}": 1,
		"gatehouse_http_requests_total{method=GET,route=unmatched,status=404}":          2,
		"gatehouse_http_requests_total{method=other,route=unmatched,status=404}":        1,
		"gatehouse_http_requests_total{method=GET,route=/panic,status=500}":             1,
		"gatehouse_http_request_duration_seconds{method=GET,route=/t/{tenant}/login}":   2,
		"gatehouse_http_request_duration_seconds{method=POST,route=/t/{tenant}/login}":  1,
		"gatehouse_http_request_duration_seconds{method=GET,route=unmatched}":           2,
		"gatehouse_http_request_duration_seconds{method=other,route=unmatched}":         1,
		"gatehouse_http_request_duration_seconds{method=GET,route=/panic}":              1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d (cardinality must stay bounded): %v", len(got), len(want), got)
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	a.Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	b.Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := gather(t, reg)["gatehouse_http_requests_total{method=GET,route=unmatched,status=200}"]; got != 2 {
		t.Errorf("count = %v, want 2 on the shared collectors", got)
	}
	NewMetrics(nil).Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestMetricRoute(t *testing.T) {
	tests := map[string]string{
		"GET /t/{tenant}/login": "/t/{tenant}/login",
		"/static/":              "/static/",
		"POST example.com/x":    "example.com/x",
		"unmatched":             "unmatched",
	}
	for in, want := range tests {
		if got := metricRoute(in); got != want {
			t.Errorf("metricRoute(%q) = %q, want %q", in, got, want)
		}
	}
}
