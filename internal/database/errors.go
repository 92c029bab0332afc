package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
)

// Wrap is how every store error says what was being done: "doing what: cause". A failure of
// the database itself (unreachable, shutting down, too slow, out of connections) becomes an
// apperr.Unavailable, which the API answers with 503 and Retry-After. An *apperr.Error that
// reports a client's mistake passes unchanged: its message is the answer. Wrap(nil) is nil.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Code != apperr.Unavailable && ae.Code != apperr.Internal {
		return err
	}
	wrapped := fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
	if ae == nil && IsUnavailable(err) {
		return Unavailable(wrapped)
	}
	return wrapped
}

// Answer is err as the API and the console answer it: the *apperr.Error it carries; else an
// Unavailable when it is an outage — a failure IsUnavailable names, or any failure met once
// ctx's deadline has passed (a database too slow to answer in time fails in more ways than a
// driver names: a statement cancelled between two others, a transaction the deadline rolled
// back), for which the client's remedy is the same, to retry later; else nil, a bug.
func Answer(ctx context.Context, err error) *apperr.Error {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e
	}
	if IsUnavailable(err) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Unavailable(err)
	}
	return nil
}

// Unavailable is the API error of an outage, with cause for the log.
func Unavailable(cause error) *apperr.Error {
	return &apperr.Error{Code: apperr.Unavailable,
		Message: "the database is unavailable or did not answer in time; retry shortly", Err: cause}
}

// IsUnavailable reports whether err is a failure of the database or of the way to it rather
// than of the statement: the connection refused or lost, the server shutting down or not
// accepting connections, a statement or the caller's deadline running out (a frozen or
// overloaded database), no connection free in the pool in time, or contention that retries
// did not resolve. Such an error says nothing about the data, so it is answered with 503 and
// a background consumer tries the same rows again later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code.Class() {
	case "08", // connection exception
		"40", // serialization failure or deadlock that Transact's retries did not get past
		"53", // insufficient resources: too many connections, disk full, out of memory
		"57": // operator intervention: statement timeout or cancel, admin or crash shutdown, cannot connect now
		return true
	}
	switch pe.Code {
	case "55P03", // lock_not_available (lock_timeout)
		"25P03": // idle_in_transaction_session_timeout
		return true
	}
	return false
}

// Refused reports whether err is the database refusing the data of a statement: a value out
// of range or not valid text (class 22), a constraint (23), a row beyond a limit (54). For a
// background consumer that means one row is poison and belongs in quarantine; any other
// error (an outage, a bug in the SQL) stops the batch and is retried.
func Refused(err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) || IsUnavailable(err) {
		return false
	}
	switch pe.Code.Class() {
	case "22", "23", "54":
		return true
	}
	return false
}

// SQLState is the Postgres error code in err, or "" when it has none.
func SQLState(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

// retryable reports whether a transaction that failed with err may succeed if run again at
// once: a serialization failure or a deadlock, where Postgres rolled back one party.
func retryable(err error) bool {
	switch SQLState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}
