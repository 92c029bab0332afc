package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
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
	// The body is kept so that a batch the typed decode refuses (it stops at the first wrong
	// type) can be examined event by event and all its problems reported.
	var body bytes.Buffer
	c.Request.Body = readCloser{io.TeeReader(c.Request.Body, &body), c.Request.Body}
	var req eventsRequest
	if err := decodeJSON(c, &req); err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			err = s.explainEvents(body.Bytes(), err)
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

type readCloser struct {
	io.Reader
	io.Closer
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
