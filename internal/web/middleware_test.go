package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }), mw("a"), mw("b"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := strings.Join(order, ","); got != "a,b,handler" {
		t.Errorf("order = %s, want a,b,handler", got)
	}
}

func TestAssignRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "abc-DEF_123.x", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "abc def", false},
		{"newline injection", "abc\r\nSet-Cookie: x=y", false},
		{"slash", "a/b", false},
		{"unicode", "é", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen string
			h := AssignRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestID(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tc.incoming != "" {
				req.Header.Set(RequestIDHeader, tc.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get(RequestIDHeader); got != seen {
				t.Errorf("response header %q != context id %q", got, seen)
			}
			if tc.keep && seen != tc.incoming {
				t.Errorf("id = %q, want the incoming %q", seen, tc.incoming)
			}
			if !tc.keep && (seen == tc.incoming || !saneRequestID(seen) || len(seen) != 16) {
				t.Errorf("id = %q, want a fresh 16-character id", seen)
			}
		})
	}
}

func TestRequestIDUnique(t *testing.T) {
	seen := map[string]bool{}
	h := AssignRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 1000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		id := rec.Header().Get(RequestIDHeader)
		if seen[id] {
			t.Fatalf("id %q issued twice", id)
		}
		seen[id] = true
	}
}

func TestWithRequestID(t *testing.T) {
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("RequestID(empty) = %q", got)
	}
	if got := RequestID(WithRequestID(context.Background(), "job-1")); got != "job-1" {
		t.Errorf("RequestID = %q, want job-1", got)
	}
}

func TestRecover(t *testing.T) {
	logs, log := newCapture()
	m := NewMux(log)
	m.Handle("GET /boom", func(w http.ResponseWriter, r *http.Request) error { panic("kaboom") })
	h := Chain(m, AssignRequestID, m.Recover)
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set(RequestIDHeader, "rid-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != 500 {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	body := decodeError(t, rec)
	if body.Code != "internal" || body.RequestID != "rid-1" || strings.Contains(rec.Body.String(), "kaboom") {
		t.Errorf("body = %s, want a generic internal error with the request id", rec.Body.String())
	}
	got := logs.find("panic serving request")
	if len(got) != 1 {
		t.Fatalf("logs = %+v, want one panic line", logs.all())
	}
	if got[0].Level != slog.LevelError || got[0].Attrs["panic"] != "kaboom" || got[0].Attrs["request_id"] != "rid-1" ||
		got[0].Attrs["route"] != "GET /boom" || !strings.Contains(got[0].Attrs["stack"], "middleware_test.go") {
		t.Errorf("log = %+v, want error level, panic value, request id, route and stack", got[0])
	}
}

func TestRecoverAbortHandler(t *testing.T) {
	m := NewMux(nil)
	h := m.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Error("ErrAbortHandler was swallowed")
}

func TestRecoverAfterWriteAborts(t *testing.T) {
	m := NewMux(nil)
	h := m.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "half a page")
		panic("late")
	}))
	rec := httptest.NewRecorder()
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler so the response is cut", v)
		}
		if rec.Body.String() != "half a page" {
			t.Errorf("body = %q, want nothing appended", rec.Body.String())
		}
	}()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name, method, target string
		wantRoute            string
		wantStatus           string
		wantBytes            string
	}{
		{"matched", "GET", "/t/acme/callback?code=SECRETCODE&state=s", "GET /t/{tenant}/callback", "200", "3"},
		{"error", "POST", "/t/acme/fail?token=SECRETTOKEN", "POST /t/{tenant}/fail", "400", ""},
		{"unmatched", "GET", "/nope?x=SECRETX", "unmatched", "404", ""},
		{"odd method", "BREW", "/nope", "unmatched", "404", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs, log := newCapture()
			m := NewMux(log)
			m.Handle("GET /t/{tenant}/callback", func(w http.ResponseWriter, r *http.Request) error {
				_, err := io.WriteString(w, "ok\n")
				return err
			})
			m.Handle("POST /t/{tenant}/fail", func(w http.ResponseWriter, r *http.Request) error {
				return ciam.Wrap(errors.New("parse form"), ciam.Invalid, "bad_form", "Bad form.")
			})
			// AccessLog outside the request id, the way round that cannot see
			// r.Pattern directly: the route must still be found.
			h := Chain(m, AccessLog(log), AssignRequestID)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))

			got := logs.find("http request")
			if len(got) != 1 {
				t.Fatalf("logs = %+v, want one access line", logs.all())
			}
			a := got[0].Attrs
			wantMethod := tc.method
			if tc.method == "BREW" {
				wantMethod = "other"
			}
			if a["route"] != tc.wantRoute || a["status"] != tc.wantStatus || a["method"] != wantMethod ||
				a["request_id"] != rec.Header().Get(RequestIDHeader) || a["request_id"] == "" || a["duration"] == "" {
				t.Errorf("access log = %+v, want route %q status %s method %s", a, tc.wantRoute, tc.wantStatus, wantMethod)
			}
			if tc.wantBytes != "" && a["bytes"] != tc.wantBytes {
				t.Errorf("bytes = %s, want %s", a["bytes"], tc.wantBytes)
			}
			for _, r := range logs.all() {
				for k, v := range r.Attrs {
					if strings.Contains(v, "SECRET") {
						t.Errorf("log %q attr %s = %q leaks the query string", r.Msg, k, v)
					}
				}
			}
		})
	}
}

func TestAccessLogPanicPassingThrough(t *testing.T) {
	logs, log := newCapture()
	h := AccessLog(log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	got := logs.find("http request")
	if len(got) != 1 || got[0].Attrs["status"] != "500" {
		t.Errorf("logs = %+v, want one line with status 500", logs.all())
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		contentLength int64 // -1: unknown (chunked)
		wantStatus    int
		wantCalled    bool
	}{
		{"under the limit", "0123456789", 10, 200, true},
		{"declared too large is refused early", strings.Repeat("x", 11), 11, 413, false},
		{"chunked over the limit", strings.Repeat("x", 100), -1, 413, true},
		{"chunked under the limit", "short", -1, 200, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMux(nil)
			called := false
			m.Handle("POST /upload", func(w http.ResponseWriter, r *http.Request) error {
				called = true
				b, err := io.ReadAll(r.Body)
				if err != nil {
					return err
				}
				return JSON(w, 200, len(b))
			})
			h := Chain(m, m.BodyLimit(10))
			req := httptest.NewRequest("POST", "/upload", strings.NewReader(tc.body))
			req.ContentLength = tc.contentLength
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || called != tc.wantCalled {
				t.Errorf("status %d, handler called %v; want %d, %v", rec.Code, called, tc.wantStatus, tc.wantCalled)
			}
			if tc.wantStatus == 413 {
				body := decodeError(t, rec)
				if body.Code != "body_too_large" || !strings.Contains(body.Message, "10 bytes") {
					t.Errorf("body = %+v, want body_too_large naming the limit", body)
				}
			}
		})
	}
}
