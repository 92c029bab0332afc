package httpapi

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/validate"
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
	// Track false answers without recording exposures (SPEC §4: to prefetch before the offer
	// can be seen; docs/assignment.md says when to ask for what); absent or null means true.
	Track *bool `json:"track"`
	// Context is what the shopper is looking at, for strategies whose products are chosen
	// from it (SPEC §2, learned complements).
	Context *assignContext `json:"context"`

	// ctx is where the fast decoder puts Context, reused with the request's pooled state.
	ctx assignContext
	// contextAt is where the fast decoder found Context's value in the body (zero when it
	// did not), so that a returning shopper's exposures are known as recorded whatever the
	// cart (requestDigests).
	contextAt [2]int
	// attrsJSON is the attributes object as the body spells it, when the fast decoder found
	// it fit to be stored as is (see storedAttributes); empty otherwise. attrsKeys is the
	// number of attributes it holds.
	attrsJSON string
	attrsKeys int
}

// assignContext is the "context" of an assign request.
type assignContext struct {
	// Products are the SKUs on the page or in the cart, at most maxContextProducts.
	Products []string `json:"products"`
}

// MaxBackdate is how far back an admin may place an assignment with "at".
const MaxBackdate = 90 * 24 * time.Hour

// maxAssignExperiments bounds the experiments one request may name.
const maxAssignExperiments = 100

func (s *Server) assign(c *gin.Context) {
	st := assignStates.Get().(*assignState)
	defer assignStates.Put(st)
	body, err := readJSONInto(c, st.body[:0])
	st.body = body[:0]
	if err != nil {
		s.renderError(c, err)
		return
	}
	req := &st.req
	*req = assignRequest{Experiments: req.Experiments[:0], ctx: assignContext{Products: req.ctx.Products[:0]}}
	fast := parseAssign(body, req, st.attrs)
	if !fast {
		// The general decoder, for every other shape and to explain a bad body. It gets its
		// own copy: the buffer goes back to the pool.
		*req = assignRequest{}
		if err := decodeBody(bytes.Clone(body), req); err != nil {
			s.renderError(c, err)
			return
		}
	}
	if err := s.validateAssign(c, req); err != nil {
		s.renderError(c, err)
		return
	}
	pooledAttrs := fast || req.Attributes == nil
	if req.Attributes == nil {
		clear(st.attrs)
		req.Attributes = st.attrs
	}
	snap := s.deps.Assignments.Snapshot()
	model := s.complementsModel()
	// The context is hashed once, for the learned answers' choices and the request's digest.
	st.offers.Reset(model, req.contextProducts())
	d := requestDigests(body, req, snap.Generation, model, st.offers.ContextKey())
	rec := s.deps.Exposures
	track := req.Track == nil || *req.Track
	d.exposures = d.exposures && track && !rec.Recorded(d.exposureDigest)
	d.offers = d.offers && track && !rec.Recorded(d.offerDigest)
	var record func(experiments.Exposure)
	if d.exposures || d.offers {
		st.exps = st.exps[:0]
		record = func(e experiments.Exposure) {
			st.exps = append(st.exps, exposures.Exposure{Experiment: e.Experiment, Phase: e.Phase, Variant: e.Variant})
		}
	}
	st.out = snap.Assign(req.ShopperID, req.Attributes, req.Experiments, st.out[:0], record)
	snap.Limit(req.ShopperID, st.out, track, answeredAt(req.At))
	// Each answer was encoded when the cache loaded; the response is their concatenation, with
	// the products of learned strategies chosen for the request's context.
	b := append(st.json[:0], `{"shopper_id":`...)
	b = appendJSONString(b, req.ShopperID)
	b = append(b, `,"assignments":[`...)
	for i := range st.out {
		if i > 0 {
			b = append(b, ',')
		}
		b = st.out[i].AppendJSONWith(b, &st.offers)
	}
	b = append(b, "]}"...)
	st.json = b
	// Recorded once the products are chosen, so that what learned strategies offered is
	// recorded with the exposures.
	if record != nil {
		s.recordExposures(st, req, d, pooledAttrs)
	}
	writeJSON(c, http.StatusOK, b)
}

// recordExposures hands the request's exposures and offers (those d says are not known as
// recorded) to the recorder, as one row, and remembers the request once they are queued.
func (s *Server) recordExposures(st *assignState, req *assignRequest, d digests, pooledAttrs bool) {
	rec := s.deps.Exposures
	r := exposures.Request{ShopperID: req.ShopperID, Attributes: req.Attributes}
	if d.exposures {
		// Only a row with exposures stores the attributes: a returning shopper's new cart
		// records its offers without building their JSON.
		r.Exposures, r.AttributesJSON = st.exps, req.storedAttributes()
	}
	if d.offers {
		r.Offers = st.offeredProducts()
	}
	queued := true
	if len(r.Exposures) > 0 || len(r.Offers) > 0 {
		if req.At != nil {
			r.At = req.At.UTC()
		}
		var kept bool
		queued, kept = rec.Record(r)
		if kept && pooledAttrs {
			// The queued request holds the attributes until it is written.
			st.attrs = make(map[string]any, 8)
		}
	}
	if !queued {
		return
	}
	if d.exposures {
		rec.MarkRecorded(d.exposureDigest)
	}
	if d.offers {
		rec.MarkRecorded(d.offerDigest)
	}
}

// digests say what of a request may need recording, and how it is known as recorded. The same
// body under the same snapshot gets the same answers: once its exposures are queued, a
// returning shopper's request costs one probe, not one per experiment. Exposures do not depend
// on the context, so when the fast decoder says where the context is, the exposures' digest
// leaves it out: a returning shopper with a new cart records only what learned strategies
// offered (their digest covers the context, by its key under the model (contextKey), and the
// model's version, since a new model may offer other products).
type digests struct {
	exposures, offers           bool // whether there may be exposures or offers to record
	exposureDigest, offerDigest uint64
}

func requestDigests(body []byte, req *assignRequest, generation uint64, model *complements.Model, contextKey uint64) digests {
	d := digests{exposures: true}
	at := req.contextAt
	if at[1] == 0 {
		d.exposureDigest = maphash.Bytes(requestSeed, body)
	} else {
		// What comes before the context and what comes after, each hashed whole rather than
		// streamed through a maphash.Hash, which copies them into its buffer first
		// (BenchmarkRequestDigest), and mixed asymmetrically.
		before, after := maphash.Bytes(requestSeed, body[:at[0]]), maphash.Bytes(requestSeed, body[at[1]:])
		d.exposureDigest = bits.RotateLeft64(before*0x9e3779b97f4a7c15, 31) ^ after
	}
	d.exposureDigest ^= generation * 0x9e3779b97f4a7c15
	if model == nil || req.Context == nil {
		return d
	}
	d.offers = true
	d.offerDigest = d.exposureDigest ^ uint64(model.Version)*0xbf58476d1ce4e5b9 ^ contextKey
	return d
}

// offeredProducts lists the products that the learned answers of the request's recorded
// exposures offered (st.offered, reused), for analysis to judge those shoppers' cross-sell
// on. Exposures are recorded in the order of the answers, so one pass pairs them.
func (st *assignState) offeredProducts() []exposures.Offer {
	st.offered = st.offered[:0]
	j := 0
	for i := range st.exps {
		e := &st.exps[i]
		for k := j; k < len(st.out); k++ {
			a := &st.out[k]
			if a.Experiment != e.Experiment || a.Phase != e.Phase {
				continue
			}
			j = k + 1
			for _, p := range a.Offered(&st.offers) {
				st.offered = append(st.offered, exposures.Offer{Experiment: e.Experiment, Phase: e.Phase, Variant: e.Variant, SKU: p.SKU})
			}
			break
		}
	}
	return st.offered
}

var requestSeed = maphash.MakeSeed()

// storedAttributes is req.Attributes as JSON for the exposure's row, made from the body's own
// bytes (attrsJSON) rather than by encoding the map, or "" when the map must be encoded: a
// new shopper's attributes are stored with each exposure, and encoding them was a third of
// recording (docs/benchmarks.md). Assignment adds the shopper_id attribute to the map when
// the body has none; it is added to the JSON the same way. Any other difference between the
// map and the body's object leaves the map to the encoder.
func (r *assignRequest) storedAttributes() string {
	switch len(r.Attributes) {
	case r.attrsKeys:
		return r.attrsJSON
	case r.attrsKeys + 1:
		if r.attrsJSON == "" {
			return ""
		}
		if id, ok := r.Attributes["shopper_id"].(string); !ok || id != r.ShopperID {
			return ""
		}
		// The id came from the body as a string without escapes or control characters,
		// valid UTF-8: its JSON spelling is itself.
		obj := strings.TrimRight(r.attrsJSON[:len(r.attrsJSON)-1], " \t\r\n") // without its "}"
		sep := ","
		if r.attrsKeys == 0 {
			sep = ""
		}
		return obj + sep + `"shopper_id":"` + r.ShopperID + `"}`
	}
	return ""
}

// answeredAt is when an assignment counts as given: now, or the past time an admin's
// back-dated request names.
func answeredAt(at *time.Time) time.Time {
	if at != nil {
		return *at
	}
	return time.Now()
}

// assignState is what one assignment needs besides the request, reused across requests so
// that a steady stream of assignments allocates little beyond the request itself.
type assignState struct {
	body  []byte
	req   assignRequest
	attrs map[string]any
	out   []experiments.Assignment
	exps  []exposures.Exposure
	// offered are the products learned answers offered, for the exposures' record.
	offered []exposures.Offer
	offers  experiments.Offers
	json    []byte
}

// contextProducts are the products of the request's context, or none.
func (r *assignRequest) contextProducts() []string {
	if r.Context == nil {
		return nil
	}
	return r.Context.Products
}

// complementsModel is the complements model learned strategies choose from; nil on a server
// built without it.
func (s *Server) complementsModel() *complements.Model {
	if s.deps.Complements == nil {
		return nil
	}
	return s.deps.Complements.Model()
}

var assignStates = sync.Pool{New: func() any {
	return &assignState{body: make([]byte, 0, 1024), attrs: make(map[string]any, 8), json: make([]byte, 0, 4096)}
}}

func (s *Server) validateAssign(c *gin.Context, req *assignRequest) error {
	var p apperr.Problems
	validate.ShopperID(&p, "shopper_id", req.ShopperID)
	if req.Attributes != nil {
		validate.Attributes(&p, "attributes", req.Attributes)
	}
	if len(req.Experiments) > maxAssignExperiments {
		p.Add("experiments", "too_many", "at most %d experiments per request, got %d", maxAssignExperiments, len(req.Experiments))
	} else {
		for i, k := range req.Experiments {
			field := "experiments[" + strconv.Itoa(i) + "]"
			if validate.Text(&p, field, k) && (k == "" || len(k) > 64) {
				p.Add(field, "invalid_format", "must be an experiment key")
			}
		}
	}
	if req.Context != nil {
		checkContext(&p, req.Context)
	}
	if req.At != nil {
		now := time.Now()
		switch {
		case s.caller(c).Role != RoleAdmin:
			p.Add("at", "not_allowed", "only an admin key may back-date an assignment")
		case req.At.After(now):
			p.Add("at", "in_the_future", "must be in the past")
		case now.Sub(*req.At) > MaxBackdate:
			p.Add("at", "out_of_range", "must be at most 90 days ago")
		}
	}
	return p.Err()
}

// maxContextProducts bounds the "context" of an assign request (SPEC §2).
const maxContextProducts = 100

func checkContext(p *apperr.Problems, ctx *assignContext) {
	if len(ctx.Products) > maxContextProducts {
		p.Add("context.products", "too_many", "at most %d products, not %d", maxContextProducts, len(ctx.Products))
		return
	}
	for i, sku := range ctx.Products {
		// The field's path is built only for a SKU that fails: this runs on every request
		// with a context.
		if code, msg, ok := validate.SKUProblem(sku); !ok {
			p.Add("context.products["+strconv.Itoa(i)+"]", code, "%s", msg)
		}
	}
}

// jsonContentType is shared by every answer written with writeJSON; net/http only reads it.
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeJSON sends b, already encoded, with its length: without one, net/http sends a body
// over 2 KB chunked, in two writes. With the length, the connection can send an answer
// longer than net/http's buffer in one write (wholeconn.go).
func writeJSON(c *gin.Context, status int, b []byte) {
	h := c.Writer.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	c.Status(status)
	announceWhole(c.Request)
	_, _ = c.Writer.Write(b)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		// encoding/json escapes these (the last three for HTML); let it.
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
