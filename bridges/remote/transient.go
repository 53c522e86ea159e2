package remote

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"net/http"
	"syscall"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
)

// ErrTransient marks an error that passes by itself (a database or a
// homeserver that is down for a while): the event is tried again.
var ErrTransient = errors.New("temporary failure")

// ErrNotReady is wrapped by the error of a queue that is not running yet or
// any more (the governance gate before Start or after Stop).
var ErrNotReady = errors.New("not ready")

// Transient reports whether bridging may succeed later if tried again: the
// homeserver did not answer or answered with a server error or a rate
// limit, the database failed, or the queue was not ready.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrTransient) || errors.Is(err, ErrNotReady) || errors.Is(err, bridgev2.ErrDatabaseError) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, mautrix.MLimitExceeded) {
		return true
	}
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) {
		return httpErrTransient(&httpErr)
	}
	var httpErrPtr *mautrix.HTTPError
	if errors.As(err, &httpErrPtr) && httpErrPtr != nil {
		return httpErrTransient(httpErrPtr)
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

func httpErrTransient(e *mautrix.HTTPError) bool {
	if e.Response == nil {
		// No answer at all: the homeserver is unreachable.
		return true
	}
	code := e.Response.StatusCode
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}
