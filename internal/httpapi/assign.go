package httpapi

import (
	"encoding/json"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
)

// assignRoutes registers POST /v1/assign for checkout (and admins, who may back-date).
func (s *Server) assignRoutes(v1 *gin.RouterGroup) {
	v1.POST("/assign", s.authenticate(RoleCheckout, RoleAdmin), s.assign)
}

// assignRequest is the body of POST /v1/assign (SPEC §4).
type assignRequest struct {
	ShopperID   string         `json:"shopper_id"`
	Attributes  map[string]any `json:"attributes"`
	Experiments []string       `json:"experiments"`
	// At back-dates the exposure, for simulated or back-filled traffic: admin key only, in
	// the past, at most MaxBackdate ago. Live checkout never sends it.
	At *time.Time `json:"at"`
}

// MaxBackdate is how far back an admin may place an assignment with "at".
const MaxBackdate = 90 * 24 * time.Hour

// maxAssignExperiments bounds the experiments one request may name.
const maxAssignExperiments = 100

func (s *Server) assign(c *gin.Context) {
	body, err := readJSON(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	var req assignRequest
	if err := decodeBody(body, &req); err != nil {
		s.renderError(c, err)
		return
	}
	if err := s.validateAssign(c, &req); err != nil {
		s.renderError(c, err)
		return
	}
	if req.Attributes == nil {
		req.Attributes = make(map[string]any, 1)
	}
	snap := s.deps.Assignments.Snapshot()
	// The same body under the same snapshot gets the same answers: once its exposures are
	// queued, a returning shopper's request costs one probe, not one per experiment.
	digest := maphash.Bytes(requestSeed, body) ^ snap.Generation*0x9e3779b97f4a7c15
	rec := s.deps.Exposures
	var record func(experiments.Exposure)
	queued := true
	if !rec.Recorded(digest) {
		record = func(e experiments.Exposure) {
			if req.At != nil {
				e.At = req.At.UTC()
			}
			queued = rec.Record(e) && queued
		}
	}
	buf := answerBuffers.Get().(*answerBuffer)
	buf.out = snap.Assign(req.ShopperID, req.Attributes, req.Experiments, buf.out[:0], record)
	if record != nil && queued {
		rec.MarkRecorded(digest)
	}
	// Each answer was encoded when the cache loaded; the response is their concatenation.
	shopper, _ := json.Marshal(req.ShopperID)
	b := append(buf.json[:0], `{"shopper_id":`...)
	b = append(b, shopper...)
	b = append(b, `,"assignments":[`...)
	for i := range buf.out {
		if i > 0 {
			b = append(b, ',')
		}
		b = buf.out[i].AppendJSON(b)
	}
	b = append(b, "]}"...)
	// Without a length, net/http sends a body over 2 KB chunked, in two writes.
	c.Header("Content-Length", strconv.Itoa(len(b)))
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
	buf.json = b
	answerBuffers.Put(buf)
}

var requestSeed = maphash.MakeSeed()

// answerBuffer is reused across requests, so that a steady stream of assignments allocates
// little beyond the request itself.
type answerBuffer struct {
	out  []experiments.Assignment
	json []byte
}

var answerBuffers = sync.Pool{New: func() any { return &answerBuffer{json: make([]byte, 0, 4096)} }}

func (s *Server) validateAssign(c *gin.Context, req *assignRequest) error {
	var p apperr.Problems
	switch {
	case req.ShopperID == "":
		p.Add("shopper_id", "required", "is required")
	case len(req.ShopperID) > 128:
		p.Add("shopper_id", "too_long", "must be at most 128 bytes, got %d", len(req.ShopperID))
	}
	if len(req.Experiments) > maxAssignExperiments {
		p.Add("experiments", "too_many", "at most %d experiments per request, got %d", maxAssignExperiments, len(req.Experiments))
	}
	for i, k := range req.Experiments {
		if k == "" || len(k) > 64 {
			p.Add("experiments["+strconv.Itoa(i)+"]", "invalid_format", "must be an experiment key")
		}
	}
	if req.At != nil {
		now := time.Now()
		switch {
		case caller(c).Role != RoleAdmin:
			p.Add("at", "not_allowed", "only an admin key may back-date an assignment")
		case req.At.After(now):
			p.Add("at", "in_the_future", "must be in the past")
		case now.Sub(*req.At) > MaxBackdate:
			p.Add("at", "out_of_range", "must be at most 90 days ago")
		}
	}
	return p.Err()
}
