package httpapi

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
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

// explainEvents reports every problem of a batch that the strict decoder refused: its own
// problems (unknown, repeated or misspelt names, bad text, wrong types, numbers out of range),
// those inside an event given as the event's index and the field's path within it, then the
// events package's field-by-field report of every event (SPEC §5's rules) for fields the
// decoder did not already name. Details are ordered by event, the decoder's first.
func (s *Server) explainEvents(body []byte, decodeErr error) error {
	orig, ok := decodeErr.(*apperr.Error)
	if !ok {
		return decodeErr
	}
	type key struct {
		index int
		field string
	}
	named := map[key]bool{}
	details := make([]apperr.Detail, 0, len(orig.Details))
	for _, d := range orig.Details {
		if i, field, ok := eventField(d.Field); ok {
			d.Index, d.Field = &i, field
			named[key{i, field}] = true
		}
		details = append(details, d)
	}
	var raw rawEventsRequest
	if json.Unmarshal(body, &raw) == nil && raw.Events != nil {
		if explained, ok := s.deps.Events.Explain(raw.Events).(*apperr.Error); ok {
			for _, d := range explained.Details {
				if d.Index == nil || !named[key{*d.Index, d.Field}] {
					details = append(details, d)
				}
			}
		}
	}
	slices.SortStableFunc(details, func(a, b apperr.Detail) int {
		return cmp.Compare(indexOf(a), indexOf(b))
	})
	var p apperr.Problems
	for _, d := range details[:min(len(details), maxProblems)] {
		if d.Index != nil {
			p.AddAt(*d.Index, d.Field, d.Code, "%s", d.Message)
		} else {
			p.Add(d.Field, d.Code, "%s", d.Message)
		}
	}
	return p.Err()
}

// eventField splits a decoder path inside the batch, events[3].items[0].sku, into the event's
// index and the path within it.
func eventField(path string) (int, string, bool) {
	rest, ok := strings.CutPrefix(path, "events[")
	if !ok {
		return 0, "", false
	}
	n, rest, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if !ok || err != nil {
		return 0, "", false
	}
	return i, strings.TrimPrefix(rest, "."), true
}

// indexOf orders details outside any event first.
func indexOf(d apperr.Detail) int {
	if d.Index == nil {
		return -1
	}
	return *d.Index
}
