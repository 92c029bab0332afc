package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/events"
)

// eventRoutes registers the /v1 routes of this area.
func (s *Server) eventRoutes(v1 *gin.RouterGroup) {
	v1.POST("/events", s.authenticate(RoleCheckout), s.postEvents)
}

// eventsRequest is the body of POST /v1/events.
type eventsRequest struct {
	Events []*events.Input `json:"events"`
}

// rawEventsRequest is the same body with each event left as JSON, for the full error report.
type rawEventsRequest struct {
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
	body, err := readJSON(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	var req eventsRequest
	if err := decodeBody(body, &req); err != nil {
		// The typed decode stops at the first wrong type; the body is examined again event by
		// event so that every problem is reported.
		if apperr.CodeOf(err) == apperr.Invalid {
			err = s.explainEvents(body, err)
		}
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

// explainEvents replaces the decoder's problems inside events with the events package's
// field-by-field report of every event, keeping those outside events (such as an unknown
// top-level field).
func (s *Server) explainEvents(body []byte, decodeErr error) error {
	var raw rawEventsRequest
	if json.Unmarshal(body, &raw) != nil || raw.Events == nil {
		return decodeErr
	}
	explained, ok := s.deps.Events.Explain(raw.Events).(*apperr.Error)
	if !ok {
		return decodeErr
	}
	orig, _ := decodeErr.(*apperr.Error)
	var details []apperr.Detail
	if orig != nil {
		for _, d := range orig.Details {
			if d.Field != "events" && !strings.HasPrefix(d.Field, "events[") && !strings.HasPrefix(d.Field, "events.") {
				details = append(details, d)
			}
		}
	}
	merged := *explained
	merged.Details = append(details, explained.Details...)
	return &merged
}
