package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// StatusOf is the HTTP status of an error code, for other faces of the server (the console)
// that render errors their own way.
func StatusOf(code apperr.Code) int { return statusOf(code) }

// statusOf maps each error code to its HTTP status: the one place where this happens.
func statusOf(code apperr.Code) int {
	switch code {
	case apperr.Invalid, apperr.MalformedJSON:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case apperr.AlreadyExists, apperr.InvalidTransition, apperr.VersionConflict,
		apperr.IdempotencyConflict, apperr.InsufficientPoints, apperr.Conflict, apperr.RequiresNewPhase,
		apperr.RequestInProgress, apperr.BudgetExhausted, apperr.ShopperLimit:
		return http.StatusConflict
	case apperr.PreconditionRequired:
		return http.StatusPreconditionRequired
	case apperr.PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.RateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// RetryAfter is the Retry-After header of an error code ("" for none), for other faces of the
// server (the console).
func RetryAfter(code apperr.Code) string { return retryAfter(code) }

// retryAfter is the Retry-After of the answers that ask the client to come back, in seconds:
// a database outage (most last seconds: a restart, a fail-over) and a request still in
// progress under the same idempotency key. Zero for every other code.
func retryAfter(code apperr.Code) string {
	switch code {
	case apperr.Unavailable:
		return "2"
	case apperr.RequestInProgress:
		return "1"
	}
	return ""
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code      apperr.Code     `json:"code"`
	Message   string          `json:"message"`
	Details   []apperr.Detail `json:"details,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
}

// renderError answers with err in the JSON error shape (database.Answer: an outage no store
// named as one is still answered as one); anything that is not an *apperr.Error is a bug, so
// it is logged with the request id and its text is not shown.
func (s *Server) renderError(c *gin.Context, err error) {
	e := database.Answer(c.Request.Context(), err)
	if e == nil {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()),
			slog.String("error", err.Error()))
		e = &apperr.Error{Code: apperr.Internal, Message: "internal error; the server log has the details under this request id"}
	} else if e.Code == apperr.Internal || e.Code == apperr.Unavailable {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()),
			slog.String("error", e.Error()))
	}
	if after := retryAfter(e.Code); after != "" {
		c.Header("Retry-After", after)
	}
	c.AbortWithStatusJSON(statusOf(e.Code), errorBody{Error: errorPayload{
		Code: e.Code, Message: e.Message, Details: e.Details, RequestID: requestID(c),
	}})
}
