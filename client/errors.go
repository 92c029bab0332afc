package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The error codes of the API (the "code" of an error answer) that callers act on. The
// document at /openapi.json lists, per operation, every code it can answer.
const (
	CodeInvalidRequest       = "invalid_request"       // 400: details say every problem and where
	CodeMalformedJSON        = "malformed_json"        // 400
	CodeUnauthorized         = "unauthorized"          // 401: no key or an unknown one
	CodeForbidden            = "forbidden"             // 403: the key's role may not do this
	CodeNotFound             = "not_found"             // 404
	CodeAlreadyExists        = "already_exists"        // 409: an experiment with that key exists
	CodeInvalidTransition    = "invalid_transition"    // 409: not from the experiment's current status
	CodeVersionConflict      = "version_conflict"      // 409: the experiment changed since the version sent
	CodeRequiresNewPhase     = "requires_new_phase"    // 409: the change needs a new phase
	CodeConflict             = "conflict"              // 409: another rule of the resource's state
	CodeIdempotencyConflict  = "idempotency_conflict"  // 409: the idempotency key was used for another request
	CodeInsufficientPoints   = "insufficient_points"   // 409: the balance does not cover the redemption
	CodeRequestInProgress    = "request_in_progress"   // 409: the key's first request is still running (retried)
	CodePreconditionRequired = "precondition_required" // 428: an update needs the version it is based on
	CodePayloadTooLarge      = "payload_too_large"     // 413
	CodeRateLimited          = "rate_limited"          // 429 (retried)
	CodeUnavailable          = "unavailable"           // 503 (retried)
	CodeInternal             = "internal"              // 500: a bug, logged under the request id
)

// Error is an answer of the API outside 2xx. Its Code is the API's stable error code (empty
// when the answer was not the API's error shape, such as a proxy's page).
type Error struct {
	Status     int           // HTTP status
	Code       string        // such as insufficient_points
	Message    string        // what is wrong, in words
	Details    []Detail      // every problem of the request, in a stable order
	RequestID  string        // quote it when asking about this error; the server logs it
	RetryAfter time.Duration // what Retry-After said, if anything

	method, path string
}

// Detail locates one problem of a request.
type Detail struct {
	Index   *int   `json:"index,omitempty"` // the position of the item in a batch (for SendEvents, in the whole slice)
	Field   string `json:"field,omitempty"` // the JSON path, such as variants[1].strategy.type
	Code    string `json:"code,omitempty"`  // such as required or out_of_range
	Message string `json:"message"`
}

// Error implements error. Both *Error, which the client returns, and Error implement it, so
// that either errors.As idiom works: var e *client.Error; errors.As(err, &e) — or
// e := &client.Error{}; errors.As(err, e).
func (e Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.method, e.path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// As fills a *Error target from e, for errors.As(err, &client.Error{}).
func (e *Error) As(target any) bool {
	if t, ok := target.(*Error); ok {
		*t = *e
		return true
	}
	return false
}

// IsCode says whether err is, or wraps, an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// StatusOf is the HTTP status of the API error err holds, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// parseError reads an error answer; one that is not the API's error shape keeps its status
// and the start of its body as the message.
func parseError(method, path string, resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header, time.Now()), method: method, path: path,
		RequestID: resp.Header.Get("X-Request-ID")}
	var body struct {
		Error *struct {
			Code      string   `json:"code"`
			Message   string   `json:"message"`
			Details   []Detail `json:"details"`
			RequestID string   `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
		if body.Error.RequestID != "" {
			e.RequestID = body.Error.RequestID
		}
		return e
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}
