package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
)

// eventRoutes registers the /v1 routes of this area.
func (s *Server) eventRoutes(v1 *gin.RouterGroup) {
	v1.POST("/events", s.authenticate(RoleCheckout), s.postEvents)
}

// eventsRequest is the body of POST /v1/events. The events stay raw JSON here: the events
// package decodes each one field by field, so that every problem comes back with its index.
type eventsRequest struct {
	Events []json.RawMessage `json:"events"`
}

// eventsResponse says how many events of the batch were stored and how many were repeats.
type eventsResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// postEvents answers 200 only once the batch is committed.
func (s *Server) postEvents(c *gin.Context) {
	if s.deps.Events == nil {
		s.renderError(c, apperr.New(apperr.Internal, "the events service is not wired"))
		return
	}
	var req eventsRequest
	if err := decodeJSON(c, &req); err != nil {
		s.renderError(c, err)
		return
	}
	res, err := s.deps.Events.Ingest(c.Request.Context(), req.Events)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, eventsResponse{Accepted: res.Accepted, Duplicates: res.Duplicates})
}
