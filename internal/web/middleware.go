package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// Chain wraps h in middleware; the first one listed is the outermost.
func Chain(h http.Handler, middleware ...func(http.Handler) http.Handler) http.Handler {
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	return h
}

// reqState is the per-request state the middleware share. It lives in the
// request context under ctxKey; the first middleware that needs it creates
// it, so the request is copied for context only once.
type reqState struct {
	id    string // request id
	route string // matched pattern, set by Mux
	nonce string // CSP nonce, set by SecurityHeaders
}

type ctxKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	return st
}

// withState returns r carrying a request state, and that state.
func withState(r *http.Request) (*http.Request, *reqState) {
	if st := stateFrom(r.Context()); st != nil {
		return r, st
	}
	st := &reqState{}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)), st
}

// routeOf returns the pattern that matched r, or "unmatched".
func routeOf(r *http.Request) string {
	if st := stateFrom(r.Context()); st != nil && st.route != "" {
		return st.route
	}
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// RequestIDHeader is the header that carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID returns the request id carried by ctx, or "" if there is none.
func RequestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// WithRequestID returns a context carrying id as its request id, for work that
// happens outside a request (background jobs) and for tests.
func WithRequestID(ctx context.Context, id string) context.Context {
	st := &reqState{id: id}
	if old := stateFrom(ctx); old != nil {
		st.route, st.nonce = old.route, old.nonce
	}
	return context.WithValue(ctx, ctxKey{}, st)
}

// AssignRequestID is middleware that gives every request an id: the incoming
// X-Request-Id when it is sane (1 to 64 characters of [A-Za-z0-9-_.]), else a
// fresh random one. The id is echoed in the X-Request-Id response header and
// available to handlers through [RequestID].
func AssignRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, st := withState(r)
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		st.id = id
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Recover is middleware that turns a panic into a logged error (with stack and
// request id) and a 500 response rendered like any other error. It re-panics
// [http.ErrAbortHandler], and aborts the response (so the client sees a broken
// response, not a truncated one) when the panic comes after the response
// started.
func (m *Mux) Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := track(w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			m.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", RequestID(r.Context())),
				slog.String("method", r.Method),
				slog.String("route", routeOf(r)),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if headerWritten(rec) {
				panic(http.ErrAbortHandler)
			}
			m.render(rec, r, http.StatusInternalServerError, &ciam.Error{Kind: ciam.Internal, Code: "internal", Msg: internalMessage})
		}()
		next.ServeHTTP(rec, r)
	})
}

// AccessLog returns middleware that logs one line per request at Info level:
// method, route (the matched pattern, never the raw path or query, which may
// carry codes and tokens), status, duration, bytes written and request id.
func AccessLog(log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			r, st := withState(r)
			rec := track(w)
			defer func() {
				// Logged even when a panic passes through, then re-raised.
				p := recover()
				log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
					slog.String("method", methodLabel(r.Method)),
					slog.String("route", routeLabel(st, r)),
					slog.Int("status", rec.finalStatus(p != nil)),
					slog.Duration("duration", time.Since(start)),
					slog.Int64("bytes", rec.bytes),
					slog.String("request_id", st.id))
				if p != nil {
					panic(p)
				}
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

func routeLabel(st *reqState, r *http.Request) string {
	if st.route != "" {
		return st.route
	}
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// methodLabel bounds the method to the standard ones; anything else is "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// BodyLimit returns middleware that limits request bodies to n bytes. A
// request that declares a larger Content-Length is refused at once with 413
// (code "body_too_large") through the error renderer; otherwise the body is
// wrapped in [http.MaxBytesReader], and a handler that reads past the limit
// gets a *http.MaxBytesError which [Mux.Error] renders as the same 413.
func (m *Mux) BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				m.Error(w, r, &http.MaxBytesError{Limit: n})
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r2 := *r
				r2.Body = http.MaxBytesReader(w, r.Body, n)
				r = &r2
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recorder records the status and the number of body bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int // 0 until the final status is written
	bytes  int64
}

// track returns w if it already is a recorder, else a recorder around w.
func track(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{ResponseWriter: w}
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && (code < 100 || code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements [http.Flusher].
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finalStatus is the status to report for a finished request: what was
// written, 200 if nothing was (net/http's default), or 500 if a panic is on
// its way up and nothing was written.
func (w *recorder) finalStatus(panicking bool) int {
	switch {
	case w.status != 0:
		return w.status
	case panicking:
		return http.StatusInternalServerError
	default:
		return http.StatusOK
	}
}
