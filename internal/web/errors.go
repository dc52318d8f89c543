package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

// StatusClientClosedRequest is the status recorded (in access logs and
// metrics) for a request whose client went away before it was answered. It is
// nginx's convention; the client never sees it.
const StatusClientClosedRequest = 499

// Status returns the HTTP status for an error kind. It is the one mapping from
// ciam.Kind to HTTP; unknown kinds are 500.
func Status(kind ciam.Kind) int {
	switch kind {
	case ciam.Invalid:
		return http.StatusBadRequest
	case ciam.Unauthenticated:
		return http.StatusUnauthorized
	case ciam.Forbidden:
		return http.StatusForbidden
	case ciam.NotFound:
		return http.StatusNotFound
	case ciam.Conflict:
		return http.StatusConflict
	case ciam.TooLarge:
		return http.StatusRequestEntityTooLarge
	case ciam.TooManyRequests:
		return http.StatusTooManyRequests
	case ciam.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// defaultMessage is shown when a classified error has no message of its own.
func defaultMessage(kind ciam.Kind) string {
	switch kind {
	case ciam.Invalid:
		return "The request is not valid."
	case ciam.Unauthenticated:
		return "You need to sign in first."
	case ciam.Forbidden:
		return "You are not allowed to do this."
	case ciam.NotFound:
		return "There is nothing at this address."
	case ciam.Conflict:
		return "This conflicts with something that already exists or has changed. Reload and try again."
	case ciam.TooLarge:
		return "The request is too large."
	case ciam.TooManyRequests:
		return "Too many attempts. Wait a moment and try again."
	case ciam.Unavailable:
		return "The service is temporarily unavailable. Try again in a moment."
	default:
		return internalMessage
	}
}

const internalMessage = "Something went wrong on our side. Try again later; if it keeps happening, contact support and quote the request id."

// Classify turns any error into the *ciam.Error a client may see, together with
// its HTTP status. A *http.MaxBytesError anywhere in the chain wins and becomes
// TooLarge with code "body_too_large"; otherwise the first *ciam.Error in the
// chain is used; anything else becomes Internal with a generic message. The
// returned error's Err is the original err (for logging) and must not be shown.
func Classify(err error) (*ciam.Error, int) {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &ciam.Error{Kind: ciam.TooLarge, Code: "body_too_large", Msg: tooLargeMessage(mbe.Limit), Err: err}, http.StatusRequestEntityTooLarge
	}
	if ce := ciam.As(err); ce != nil {
		e := *ce
		if e.Code == "" {
			e.Code = e.Kind.String()
		}
		if e.Msg == "" {
			e.Msg = defaultMessage(e.Kind)
		}
		e.Err = err
		return &e, Status(e.Kind)
	}
	return &ciam.Error{Kind: ciam.Internal, Code: "internal", Msg: internalMessage, Err: err}, http.StatusInternalServerError
}

func tooLargeMessage(limit int64) string {
	return fmt.Sprintf("The request body is too large: the limit is %s.", formatBytes(limit))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	case n == 1:
		return "1 byte"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}

// Error writes err as an error response. It is the one place a ciam.Kind
// becomes an HTTP status (see [Status] and [Classify]). Clients get a stable
// code, the safe message, the field it belongs to and the request id, through
// OnError; a TooManyRequests error with RetryAfter also sets Retry-After. The
// cause is logged with the request id: at Error level for 5xx, Debug otherwise.
//
// If the client has gone away (context.Canceled while the request context is
// done) nothing is rendered and the status is recorded as 499. If the response
// has already started, the error is only logged.
func (m *Mux) Error(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		m.log.LogAttrs(r.Context(), slog.LevelDebug, "client went away",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("route", routeOf(r)),
			slog.Any("err", err))
		if !headerWritten(w) {
			w.WriteHeader(StatusClientClosedRequest)
		}
		return
	}
	e, status := Classify(err)
	if headerWritten(w) {
		level := slog.LevelWarn
		if r.Context().Err() != nil {
			level = slog.LevelDebug
		}
		m.log.LogAttrs(r.Context(), level, "error after the response started",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("route", routeOf(r)),
			slog.String("code", e.Code),
			slog.Any("err", err))
		return
	}
	m.logError(r, status, e)
	m.render(w, r, status, e)
}

func (m *Mux) logError(r *http.Request, status int, e *ciam.Error) {
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := r.Context()
	if !m.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", RequestID(ctx)),
		slog.String("method", r.Method),
		slog.String("route", routeOf(r)),
		slog.Int("status", status),
		slog.String("code", e.Code),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.Any("err", e.Err))
	}
	m.log.LogAttrs(ctx, level, "request failed", attrs...)
}

// render writes the error response through OnError (or JSON). The cause is
// stripped before the renderer sees it.
func (m *Mux) render(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	safe := *e
	safe.Err = nil
	if m.OnError != nil {
		m.OnError(w, r, status, &safe)
		return
	}
	RenderJSONError(w, r, status, &safe)
}

type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// RenderJSONError is the default [ErrorRenderer]: it writes
// {"error":{"code":..,"message":..,"field":..,"request_id":..}} with status.
// field and request_id are omitted when empty.
func RenderJSONError(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
	_ = JSON(w, status, errorBody{Error: errorJSON{
		Code:      e.Code,
		Message:   e.Msg,
		Field:     e.Field,
		RequestID: RequestID(r.Context()),
	}})
}

// headerWritten reports whether any response tracker in w's chain has seen the
// final status go out.
func headerWritten(w http.ResponseWriter) bool {
	for w != nil {
		switch t := w.(type) {
		case *muxWriter:
			if t.wrote {
				return true
			}
		case *recorder:
			if t.status != 0 {
				return true
			}
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}
