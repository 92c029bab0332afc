// Package apperr is the one error type that domain packages return and the HTTP layer renders,
// so that codes stay stable and map to a status in one place (internal/httpapi).
package apperr

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a stable snake_case word that clients may switch on.
type Code string

// The codes of the API. Add new ones here and map them to a status in httpapi.
const (
	Invalid              Code = "invalid_request"            // the body or a parameter breaks a rule
	MalformedJSON        Code = "malformed_json"             // the body is not the JSON it should be
	Unauthorized         Code = "unauthorized"               // no key or an unknown key
	Forbidden            Code = "forbidden"                  // the key's role may not do this
	NotFound             Code = "not_found"                  // no such resource or route
	MethodNotAllowed     Code = "method_not_allowed"         // the route exists for other methods
	AlreadyExists        Code = "already_exists"             // a resource with that key exists
	InvalidTransition    Code = "invalid_transition"         // the lifecycle does not allow this from the current status
	VersionConflict      Code = "version_conflict"           // the resource changed since the version the client read
	PreconditionRequired Code = "precondition_required"      // an If-Match header or version field is needed
	IdempotencyConflict  Code = "idempotency_conflict"       // an idempotency key was reused with a different body
	InsufficientPoints   Code = "insufficient_points"        // the balance does not cover a redemption
	BudgetExhausted      Code = "budget_exhausted"           // an offer's budget has no room for the spend
	ShopperLimit         Code = "per_shopper_limit_exceeded" // the spend would take the shopper past a per-shopper limit of an offer
	Conflict             Code = "conflict"                   // another rule about the resource's state forbids it
	RequiresNewPhase     Code = "requires_new_phase"         // allocation changes of a started experiment need a new phase
	PayloadTooLarge      Code = "payload_too_large"          // the body exceeds the limit
	UnsupportedMedia     Code = "unsupported_media_type"     // the body is not application/json
	Unavailable          Code = "unavailable"                // a dependency (the database) is down or did not answer in time
	RequestInProgress    Code = "request_in_progress"        // another request with the same idempotency key is still running
	RateLimited          Code = "rate_limited"               // the key made too many requests; Retry-After says when to try again
	Internal             Code = "internal"                   // a bug: logged with the request id
)

// Detail locates one problem of a request.
type Detail struct {
	// Index is the position of the item in a batch, when the request is one.
	Index *int `json:"index,omitempty"`
	// Field is the JSON path of the offending value, such as variants[1].strategy.type.
	Field string `json:"field,omitempty"`
	// Code is a stable word for the problem, such as required or out_of_range.
	Code string `json:"code,omitempty"`
	// Message says what is wrong in words.
	Message string `json:"message"`
}

// Error is an error the API reports to its client.
type Error struct {
	Code    Code
	Message string
	Details []Detail
	// Err is the cause, for the server log: never shown to the client.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Code, e.Message)
	if len(e.Details) > 0 {
		parts := make([]string, len(e.Details))
		for i, d := range e.Details {
			parts[i] = d.Field + ": " + d.Message
		}
		s += " (" + strings.Join(parts, "; ") + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or Internal when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Problems collects every problem of a request, each with its path, so that a client learns
// all of them at once rather than one per try.
type Problems struct {
	details []Detail
}

// Add records a problem at a JSON path.
func (p *Problems) Add(field, code, format string, args ...any) {
	p.details = append(p.details, Detail{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

// AddAt records a problem of the index-th item of a batch.
func (p *Problems) AddAt(index int, field, code, format string, args ...any) {
	i := index
	p.details = append(p.details, Detail{Index: &i, Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

// Len is the number of problems so far.
func (p *Problems) Len() int { return len(p.details) }

// Err returns nil when there is no problem, else an Invalid error listing them all.
func (p *Problems) Err() error {
	if len(p.details) == 0 {
		return nil
	}
	msg := p.details[0].Field + ": " + p.details[0].Message
	if n := len(p.details); n > 1 {
		msg = fmt.Sprintf("%s (and %d more problems)", msg, n-1)
	}
	return &Error{Code: Invalid, Message: msg, Details: p.details}
}
