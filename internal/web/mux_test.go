package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		kind ciam.Kind
		want int
	}{
		{ciam.Invalid, 400},
		{ciam.Unauthenticated, 401},
		{ciam.Forbidden, 403},
		{ciam.NotFound, 404},
		{ciam.Conflict, 409},
		{ciam.TooLarge, 413},
		{ciam.TooManyRequests, 429},
		{ciam.Unavailable, 503},
		{ciam.Internal, 500},
		{ciam.Kind(99), 500},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			if got := Status(tc.kind); got != tc.want {
				t.Errorf("Status(%v) = %d, want %d", tc.kind, got, tc.want)
			}
		})
	}
}

func TestMuxError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string // substring
		wantField  string
		wantRetry  string
		wantLevel  slog.Level
	}{
		{
			name:       "invalid with field",
			err:        ciam.Errorf(ciam.Invalid, "email_invalid", "Enter a valid email address.").OnField("email"),
			wantStatus: 400, wantCode: "email_invalid", wantMsg: "Enter a valid email address.", wantField: "email",
			wantLevel: slog.LevelDebug,
		},
		{
			name:       "wrapped not found",
			err:        fmt.Errorf("get user: %w", ciam.Errorf(ciam.NotFound, "user_not_found", "No such user.")),
			wantStatus: 404, wantCode: "user_not_found", wantMsg: "No such user.",
			wantLevel: slog.LevelDebug,
		},
		{
			name: "unauthenticated", err: ciam.Errorf(ciam.Unauthenticated, "login_required", "Sign in."),
			wantStatus: 401, wantCode: "login_required", wantMsg: "Sign in.", wantLevel: slog.LevelDebug,
		},
		{
			name: "forbidden", err: ciam.Errorf(ciam.Forbidden, "not_admin", "Admins only."),
			wantStatus: 403, wantCode: "not_admin", wantMsg: "Admins only.", wantLevel: slog.LevelDebug,
		},
		{
			name: "conflict", err: ciam.Errorf(ciam.Conflict, "email_taken", "Taken."),
			wantStatus: 409, wantCode: "email_taken", wantMsg: "Taken.", wantLevel: slog.LevelDebug,
		},
		{
			name:       "too many requests sets Retry-After",
			err:        &ciam.Error{Kind: ciam.TooManyRequests, Code: "login_throttled", Msg: "Wait.", RetryAfter: 8},
			wantStatus: 429, wantCode: "login_throttled", wantMsg: "Wait.", wantRetry: "8",
			wantLevel: slog.LevelDebug,
		},
		{
			name:       "unavailable is logged as error",
			err:        ciam.Wrap(errors.New("dial tcp: refused"), ciam.Unavailable, "db_down", "Try later."),
			wantStatus: 503, wantCode: "db_down", wantMsg: "Try later.", wantLevel: slog.LevelError,
		},
		{
			name:       "unclassified becomes internal with a generic message",
			err:        errors.New("pq: secret table details"),
			wantStatus: 500, wantCode: "internal", wantMsg: "Something went wrong", wantLevel: slog.LevelError,
		},
		{
			name:       "classified without code or message gets defaults",
			err:        &ciam.Error{Kind: ciam.NotFound},
			wantStatus: 404, wantCode: "not_found", wantMsg: "nothing at this address", wantLevel: slog.LevelDebug,
		},
		{
			name:       "max bytes error wins over the classification around it",
			err:        ciam.Wrap(fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 1 << 20}), ciam.Invalid, "bad_json", "Bad JSON."),
			wantStatus: 413, wantCode: "body_too_large", wantMsg: "the limit is 1 MiB", wantLevel: slog.LevelDebug,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs, log := newCapture()
			m := NewMux(log)
			m.Handle("GET /x", func(w http.ResponseWriter, r *http.Request) error { return tc.err })
			h := Chain(m, AssignRequestID)
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set(RequestIDHeader, "req-123")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetry)
			}
			body := decodeError(t, rec)
			if body.Code != tc.wantCode || !strings.Contains(body.Message, tc.wantMsg) || body.Field != tc.wantField || body.RequestID != "req-123" {
				t.Errorf("body = %+v, want code %q, message containing %q, field %q, request id req-123", body, tc.wantCode, tc.wantMsg, tc.wantField)
			}
			if strings.Contains(rec.Body.String(), "secret table") || strings.Contains(rec.Body.String(), "refused") {
				t.Errorf("body leaks the cause: %s", rec.Body.String())
			}
			failed := logs.find("request failed")
			if len(failed) != 1 {
				t.Fatalf("logged %d 'request failed' lines, want 1: %+v", len(failed), logs.all())
			}
			if failed[0].Level != tc.wantLevel || failed[0].Attrs["request_id"] != "req-123" || failed[0].Attrs["route"] != "GET /x" {
				t.Errorf("log = %+v, want level %v with request id and route", failed[0], tc.wantLevel)
			}
			if !strings.Contains(failed[0].Attrs["err"], tc.err.Error()) {
				t.Errorf("log err = %q, want the cause %q", failed[0].Attrs["err"], tc.err.Error())
			}
		})
	}
}

func TestMuxOnError(t *testing.T) {
	m := NewMux(nil)
	var gotStatus int
	var gotErr *ciam.Error
	m.OnError = func(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
		gotStatus, gotErr = status, e
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, "<p>"+e.Msg+"</p>")
	}
	m.Handle("POST /login", func(w http.ResponseWriter, r *http.Request) error {
		return ciam.Wrap(errors.New("argon2: mismatch"), ciam.Unauthenticated, "bad_credentials", "Wrong email or password.")
	})
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
	if rec.Code != 401 || gotStatus != 401 {
		t.Errorf("status = %d (hook got %d), want 401", rec.Code, gotStatus)
	}
	if gotErr == nil || gotErr.Code != "bad_credentials" || gotErr.Err != nil {
		t.Errorf("hook got %+v, want code bad_credentials and the cause stripped", gotErr)
	}
	if rec.Body.String() != "<p>Wrong email or password.</p>" {
		t.Errorf("body = %q", rec.Body.String())
	}
}

func TestMuxGroup(t *testing.T) {
	m := NewMux(nil)
	html := m.Group(func(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
		w.WriteHeader(status)
		io.WriteString(w, "html:"+e.Code)
	})
	fail := func(w http.ResponseWriter, r *http.Request) error {
		return ciam.Errorf(ciam.Invalid, "nope", "No.")
	}
	html.Handle("GET /ui", fail)
	m.Handle("GET /api", fail)

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/ui", nil))
	if rec.Body.String() != "html:nope" {
		t.Errorf("group route body = %q, want the group's renderer", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	html.ServeHTTP(rec, httptest.NewRequest("GET", "/api", nil))
	if decodeError(t, rec).Code != "nope" {
		t.Errorf("root route body = %q, want JSON", rec.Body.String())
	}
}

func TestMuxRoutes(t *testing.T) {
	m := NewMux(nil)
	m.Handle("GET /t/{tenant}/login", func(w http.ResponseWriter, r *http.Request) error {
		return JSON(w, http.StatusOK, map[string]string{"tenant": r.PathValue("tenant")})
	})
	m.HandleHTTP("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "static "+r.URL.Path)
	}))
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string // substring
		wantCode           string
		wantAllow          string
	}{
		{name: "path value", method: "GET", path: "/t/acme/login", wantStatus: 200, wantBody: `{"tenant":"acme"}`},
		{name: "plain handler", method: "GET", path: "/static/a.css", wantStatus: 200, wantBody: "static /static/a.css"},
		{name: "unmatched is rendered 404", method: "GET", path: "/nope", wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method is rendered 405", method: "DELETE", path: "/t/acme/login", wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantBody != "" && !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body = %q, want %q", rec.Body.String(), tc.wantBody)
			}
			if tc.wantCode != "" {
				if got := decodeError(t, rec).Code; got != tc.wantCode {
					t.Errorf("code = %q, want %q (body %q)", got, tc.wantCode, rec.Body.String())
				}
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

// A handler's own 404 (a file server's, say) is not replaced by the mux.
func TestMuxMatchedHandler404Untouched(t *testing.T) {
	m := NewMux(nil)
	m.HandleHTTP("GET /files/", http.NotFoundHandler())
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/files/x", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "404 page not found") {
		t.Errorf("got %d %q, want the handler's own 404", rec.Code, rec.Body.String())
	}
}

// Nested muxes render an unmatched request once, through the inner mux.
func TestMuxNested404(t *testing.T) {
	outer, inner := NewMux(nil), NewMux(nil)
	inner.OnError = func(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
		w.WriteHeader(status)
		io.WriteString(w, "inner "+e.Code)
	}
	inner.Handle("GET /api/ok", func(w http.ResponseWriter, r *http.Request) error { return nil })
	outer.HandleHTTP("/api/", inner)
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, httptest.NewRequest("GET", "/api/missing", nil))
	if rec.Code != 404 || rec.Body.String() != "inner not_found" {
		t.Errorf("got %d %q, want 404 rendered by the inner mux", rec.Code, rec.Body.String())
	}
}

func TestMuxErrorAfterWrite(t *testing.T) {
	logs, log := newCapture()
	m := NewMux(log)
	m.Handle("GET /x", func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial")
		return errors.New("template: boom")
	})
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 200 || rec.Body.String() != "partial" {
		t.Errorf("got %d %q, want the partial response untouched", rec.Code, rec.Body.String())
	}
	got := logs.find("error after the response started")
	if len(got) != 1 || got[0].Level != slog.LevelWarn || !strings.Contains(got[0].Attrs["err"], "template: boom") {
		t.Errorf("logs = %+v, want one warning with the cause", logs.all())
	}
}

func TestMuxClientGone(t *testing.T) {
	logs, log := newCapture()
	m := NewMux(log)
	m.Handle("GET /x", func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("query: %w", r.Context().Err())
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil).WithContext(ctx))
	if rec.Code != StatusClientClosedRequest || rec.Body.Len() != 0 {
		t.Errorf("got %d %q, want 499 and no body", rec.Code, rec.Body.String())
	}
	for _, r := range logs.all() {
		if r.Level >= slog.LevelWarn {
			t.Errorf("logged %+v at %v, want nothing above debug", r, r.Level)
		}
	}
	if len(logs.find("client went away")) != 1 {
		t.Errorf("logs = %+v, want one debug line", logs.all())
	}
}

// A cancelled context while the client is still there is a real failure.
func TestMuxCanceledButClientPresent(t *testing.T) {
	m := NewMux(nil)
	m.Handle("GET /x", func(w http.ResponseWriter, r *http.Request) error { return context.Canceled })
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 {
		t.Errorf("status = %d, want 500", rec.Code)
	}
}

func TestClassifyFormatsLimit(t *testing.T) {
	tests := []struct {
		limit int64
		want  string
	}{
		{1 << 20, "1 MiB"},
		{64 << 10, "64 KiB"},
		{1000, "1000 bytes"},
		{1, "1 byte"},
	}
	for _, tc := range tests {
		e, status := Classify(&http.MaxBytesError{Limit: tc.limit})
		if status != 413 || e.Code != "body_too_large" || !strings.Contains(e.Msg, tc.want) {
			t.Errorf("Classify(limit %d) = %d %+v, want 413 body_too_large naming %q", tc.limit, status, e, tc.want)
		}
	}
}
