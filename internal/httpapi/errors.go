package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
)

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
		apperr.IdempotencyConflict, apperr.InsufficientPoints, apperr.Conflict, apperr.RequiresNewPhase:
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

// renderError answers with err in the JSON error shape; anything that is not an *apperr.Error
// is a bug or an outage, so it is logged with the request id and its text is not shown.
func (s *Server) renderError(c *gin.Context, err error) {
	var e *apperr.Error
	if !errors.As(err, &e) {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()),
			slog.String("error", err.Error()))
		e = &apperr.Error{Code: apperr.Internal, Message: "internal error; the server log has the details under this request id"}
	} else if e.Code == apperr.Internal || e.Code == apperr.Unavailable {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()),
			slog.String("error", e.Error()))
	}
	c.AbortWithStatusJSON(statusOf(e.Code), errorBody{Error: errorPayload{
		Code: e.Code, Message: e.Message, Details: e.Details, RequestID: requestID(c),
	}})
}
