package client

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry says how often and how patiently a call is tried again. The wait before retry n is
// BaseDelay·2ⁿ⁻¹ capped at MaxDelay, with random jitter over its upper half so that clients
// that failed together do not come back together — and never shorter than the server's
// Retry-After. The context given to a call bounds the whole, waits included.
type Retry struct {
	MaxAttempts int           // tries in all, the first included; 1 means no retries
	BaseDelay   time.Duration // the wait before the first retry, before jitter
	MaxDelay    time.Duration // the longest wait of the exponential series (Retry-After may ask for more)
}

// DefaultRetry is the retry policy of a new Client: six tries over about six seconds, more
// when the server asks for it with Retry-After.
func DefaultRetry() Retry {
	return Retry{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
}

func (r Retry) check() error {
	if r.MaxAttempts < 1 || r.BaseDelay < 0 || r.MaxDelay < r.BaseDelay {
		return fmt.Errorf("xsell client: retry policy %+v: want MaxAttempts ≥ 1 and 0 ≤ BaseDelay ≤ MaxDelay", r)
	}
	return nil
}

// RetryEvent describes a retry about to happen, for WithRetryHook.
type RetryEvent struct {
	Method, Path string
	Attempt      int           // the attempt that failed, from 1
	Err          error         // why it failed
	Wait         time.Duration // how long the client waits before the next attempt
}

// retryMode says which failures of a call may be tried again without doing its work twice.
type retryMode int

const (
	// retrySafe: the call may be repeated whatever happened to the first try — reads,
	// assignments (the same answer, one exposure), events (their ids), loyalty writes (their
	// idempotency key). Connection failures, 429, 502, 503, 504 and 409 request_in_progress
	// are retried.
	retrySafe retryMode = iota
	// retryUnapplied: only answers that say the server did nothing — 429 and 503 — are
	// retried; a dropped connection is not, since the write may have happened (an experiment
	// created twice would be a 409 already_exists on the retry, hiding the success).
	retryUnapplied
)

// next says whether the failed attempt n is tried again, and after how long.
func (r Retry) next(n int, mode retryMode, err error) (time.Duration, bool) {
	if n >= r.MaxAttempts || !retryable(mode, err) {
		return 0, false
	}
	d := r.BaseDelay << (n - 1)
	if d > r.MaxDelay || d <= 0 {
		d = r.MaxDelay
	}
	if half := int64(d / 2); half > 0 {
		d = time.Duration(half + rand.Int64N(half+1))
	}
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > d {
		d = e.RetryAfter
	}
	return d, true
}

func retryable(mode retryMode, err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return mode == retrySafe && isTransport(err)
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return mode == retrySafe
	case http.StatusConflict:
		return mode == retrySafe && e.Code == CodeRequestInProgress
	}
	return false
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
