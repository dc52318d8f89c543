package ciam

import (
	"errors"
	"fmt"
)

// Kind classifies an error for transports; each Kind maps to one HTTP status.
type Kind int

// The kinds of error. The zero value is Internal so that an unclassified error
// is never mistaken for a client mistake.
const (
	Internal        Kind = iota // a bug or an unexpected failure (500)
	Invalid                     // the request is malformed or breaks a rule (400)
	Unauthenticated             // credentials are missing or wrong (401)
	Forbidden                   // the caller may not do this (403)
	NotFound                    // the thing does not exist, or the caller may not know it does (404)
	Conflict                    // a duplicate or a stale version (409)
	TooLarge                    // the request body is too large (413)
	TooManyRequests             // throttled (429)
	Unavailable                 // a dependency is down; try again later (503)
)

var kindNames = [...]string{"internal", "invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large", "too_many_requests", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error classified for the people who see it: Code is a stable
// snake_case identifier clients and message catalogues key on, Msg is safe to
// show, Err is the cause, which is logged and never sent. Field names a form
// field the error belongs to, when it belongs to one.
type Error struct {
	Kind  Kind
	Code  string
	Msg   string
	Field string
	Err   error
	// RetryAfter, when non-zero, is how long a throttled caller should wait (seconds).
	RetryAfter int
}

// Errorf builds an Error with a formatted safe message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap classifies err. The message is safe to show; err is kept as the cause.
func Wrap(err error, kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Msg: msg, Err: err}
}

// OnField returns a copy of e tied to a form field.
func (e *Error) OnField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// KindOf returns the Kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	if e := As(err); e != nil {
		return e.Kind
	}
	return Internal
}

// CodeOf returns the Code of the first *Error in err's chain, or "internal".
func CodeOf(err error) string {
	if e := As(err); e != nil {
		return e.Code
	}
	return "internal"
}
