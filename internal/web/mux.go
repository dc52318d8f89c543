package web

import (
	"log/slog"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// A HandlerFunc serves a request or returns an error for [Mux] to render. A
// handler that has already started writing its response should not return an
// error: once headers are sent the error can only be logged.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ErrorRenderer writes an error response. status is the HTTP status chosen by
// [Mux.Error]; e carries a stable Code and a Msg that is safe to show, and its
// cause (Err) has already been removed. The request id is available from
// [RequestID](r.Context()).
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error)

// Mux wraps [http.ServeMux]; patterns use Go 1.22 syntax ("GET /t/{tenant}/login").
// Requests that match no pattern get a 404 (or 405 with an Allow header)
// rendered through OnError like any other error.
//
// Register routes before serving; Mux is safe for concurrent use once serving.
type Mux struct {
	// OnError renders error responses. When nil, errors are rendered as JSON:
	// {"error":{"code":..,"message":..,"field":..,"request_id":..}}.
	// The hosted UI sets it to render an HTML page.
	OnError ErrorRenderer

	mux *http.ServeMux
	log *slog.Logger
}

// NewMux returns an empty Mux that logs through log. A nil log discards.
func NewMux(log *slog.Logger) *Mux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mux{mux: http.NewServeMux(), log: log}
}

// Group returns a Mux that registers on the same routing table and logs to the
// same logger as m, but renders the errors of the routes registered through it
// with onError (nil means JSON). It lets the hosted UI render HTML errors while
// the admin API on the same server renders JSON.
func (m *Mux) Group(onError ErrorRenderer) *Mux {
	return &Mux{OnError: onError, mux: m.mux, log: m.log}
}

// Handle registers h for pattern. An error h returns is rendered by [Mux.Error].
// It panics, like [http.ServeMux.Handle], if pattern is invalid or conflicts
// with a registered one.
func (m *Mux) Handle(pattern string, h HandlerFunc) {
	m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteRoute(r)
		if err := h(w, r); err != nil {
			m.Error(w, r, err)
		}
	}))
}

// HandleHTTP registers a plain [http.Handler] for pattern (static files, the
// Prometheus handler, a nested handler).
func (m *Mux) HandleHTTP(pattern string, h http.Handler) {
	m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteRoute(r)
		h.ServeHTTP(w, r)
	}))
}

// ServeHTTP dispatches the request to the handler whose pattern matches it.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mux.ServeHTTP(&muxWriter{ResponseWriter: w, m: m, r: r}, r)
}

// noteRoute records the matched pattern in the request state, where access
// logs and metrics outside the mux find it. The innermost Mux wins.
func noteRoute(r *http.Request) {
	if st := stateFrom(r.Context()); st != nil && r.Pattern != "" {
		st.route = r.Pattern
	}
}

// muxWriter tracks whether the response has started, and turns the plain-text
// 404 and 405 responses of http.ServeMux for unmatched requests into errors
// rendered by the Mux.
type muxWriter struct {
	http.ResponseWriter
	m           *Mux
	r           *http.Request
	wrote       bool // the final status has been written
	discard     bool // the body belongs to ServeMux's plain-text error: drop it
	passthrough bool // an inner Mux already renders this response
}

func (w *muxWriter) WriteHeader(code int) {
	if w.wrote || (code >= 100 && code < 200 && code != http.StatusSwitchingProtocols) {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	if w.r.Pattern == "" && !w.passthrough && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.discard = true
		if inner, ok := w.ResponseWriter.(*muxWriter); ok {
			inner.passthrough = true
		}
		var e *ciam.Error
		if code == http.StatusNotFound {
			e = ciam.Errorf(ciam.NotFound, "not_found", "There is nothing at this address.")
		} else {
			e = ciam.Errorf(ciam.Invalid, "method_not_allowed", "This address does not accept %s requests.", safeMethod(w.r.Method))
		}
		w.m.logError(w.r, code, e)
		w.m.render(w.ResponseWriter, w.r, code, e)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxWriter) Write(b []byte) (int, error) {
	if w.discard {
		return len(b), nil
	}
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush implements [http.Flusher].
func (w *muxWriter) Flush() {
	if w.discard {
		return
	}
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *muxWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// safeMethod returns method if it is a standard one, for use in messages.
func safeMethod(method string) string {
	if m := methodLabel(method); m != "other" {
		return m
	}
	return "such"
}
