package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"
)

// DeliveryError is what Send returns when a message was not delivered. A
// worker retries a temporary failure later and dead-letters a permanent one
// (see Permanent).
type DeliveryError struct {
	// Permanent is true when retrying the same message cannot succeed: the
	// server refused it or its recipient with a 5xx reply, or the message
	// itself is invalid (bad address, header injection).
	Permanent bool
	// Code is the SMTP reply code when the server gave one, else 0.
	Code int
	// Stage names the step that failed: "message", "connect", "mail from",
	// "rcpt to", "data", ...
	Stage string
	Err   error
}

func (e *DeliveryError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("mail: %s failure (%s, SMTP %d): %v", kind, e.Stage, e.Code, e.Err)
	}
	return fmt.Sprintf("mail: %s failure (%s): %v", kind, e.Stage, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent reports whether err says that delivering the message again
// cannot succeed, so the caller should dead-letter it instead of retrying.
// Errors that are not a DeliveryError (and nil) are not permanent: when in
// doubt, retry.
func Permanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// invalid returns a permanent error for a message that cannot be sent as is.
func invalid(format string, args ...any) error {
	return &DeliveryError{Permanent: true, Stage: "message", Err: fmt.Errorf(format, args...)}
}

// classify turns an error from go-mail into a DeliveryError. ctx is the
// delivery's context, whose deadline is the effective timeout.
//
// Replies to the message's own commands (MAIL FROM, RCPT TO, DATA) are
// permanent when 5xx and temporary when 4xx. Everything about reaching the
// relay (refused or reset connections, timeouts, TLS, a 5xx to EHLO or
// AUTH, and the 530/534/535/538 replies that mean "authenticate or encrypt
// first") is temporary: it concerns the deployment, not this message, and
// dead-lettering every message because the relay is down or misconfigured
// would lose mail that a fixed configuration delivers.
func classify(ctx context.Context, err error) *DeliveryError {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &DeliveryError{Stage: "cancelled", Err: fmt.Errorf("%w (%v)", context.Canceled, err)}
	case ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return &DeliveryError{Stage: "timeout", Err: fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)}
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		de := &DeliveryError{Code: se.ErrorCode(), Stage: sendStage(se.Reason), Err: err}
		if de.Code == 0 {
			de.Code = replyCode(err)
		}
		switch se.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			de.Permanent = true
		case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			switch de.Code {
			case 530, 534, 535, 538: // authentication or encryption required: the relay's configuration
			default:
				de.Permanent = de.Code >= 500 && de.Code < 600
			}
		}
		return de
	}
	de := &DeliveryError{Stage: "connect", Code: replyCode(err), Err: err}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var rh tls.RecordHeaderError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &rh) {
		de.Stage = "tls"
	}
	return de
}

// replyCode finds an SMTP reply code in err's chain.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return 0
}

func sendStage(r gomail.SendErrReason) string {
	switch r {
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		return "message"
	case gomail.ErrSMTPMailFrom:
		return "mail from"
	case gomail.ErrSMTPRcptTo:
		return "rcpt to"
	case gomail.ErrSMTPData:
		return "data"
	case gomail.ErrSMTPDataClose:
		return "end of data"
	case gomail.ErrWriteContent:
		return "write"
	case gomail.ErrSMTPReset:
		return "reset"
	case gomail.ErrConnCheck:
		return "connection"
	}
	return "send"
}
