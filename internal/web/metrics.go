package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is middleware that counts requests and measures their duration:
//
//	gatehouse_http_requests_total{route,method,status}
//	gatehouse_http_request_duration_seconds{route,method}
//
// route is the matched pattern without its method ("/t/{tenant}/login"), or
// "unmatched"; method is a standard method or "other"; status is the numeric
// status. All three come from bounded sets, so the label cardinality is
// bounded by the number of registered routes.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered). If reg already holds them (a second server in one process, as
// in tests) the registered ones are reused. It panics on any other
// registration error, which is a programming error.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_http_requests_total",
		Help: "HTTP requests served, by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_http_request_duration_seconds",
		Help:    "Time to serve HTTP requests, by route pattern and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	if reg != nil {
		requests = register(reg, requests)
		duration = register(reg, duration)
	}
	return &Metrics{requests: requests, duration: duration}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic("web: register metrics: " + err.Error())
}

// Wrap returns next instrumented.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, st := withState(r)
		rec := track(w)
		defer func() {
			p := recover()
			route := metricRoute(routeLabel(st, r))
			method := methodLabel(r.Method)
			m.requests.WithLabelValues(route, method, statusLabel(rec.finalStatus(p != nil))).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// metricRoute drops the method from a pattern ("GET /x" becomes "/x"): the
// method is a label of its own.
func metricRoute(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}
