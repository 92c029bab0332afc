package experiments

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/complements"
)

// Source is where a strategy's products come from (SPEC §2, learned complements).
type Source string

// The sources of a strategy's products.
const (
	SourceFixed       Source = "fixed"       // Products, typed in by the growth team
	SourceComplements Source = "complements" // chosen per shopper from the complements model
)

// Bounds and defaults of a learned strategy.
const (
	MaxLearnedProducts     = 20  // products one answer may offer
	DefaultLearnedProducts = 3   // max_products when not given
	DefaultMinLift         = 1.0 // min_lift when not given: any complement (lift is above 1)
	MaxMinLift             = 1000
)

// Learned reports whether the strategy's products are chosen from the complements model.
func (s *Strategy) Learned() bool { return s.Source == SourceComplements }

// normalizeSource fills a learned strategy's defaults, so that what is stored and shown says
// what the server does.
func (s *Strategy) normalizeSource() {
	if !s.Learned() {
		return
	}
	if s.MaxProducts == nil {
		n := DefaultLearnedProducts
		s.MaxProducts = &n
	}
	if s.MinLift == nil {
		l := DefaultMinLift
		s.MinLift = &l
	}
}

// validateSource checks where the products of a suggestion, bundle or loyalty_points strategy
// come from: a fixed list, or (suggestion and bundle) the complements model, with its bounds.
func (s *Strategy) validateSource(p *apperr.Problems, path string) {
	switch s.Source {
	case "", SourceFixed:
		if len(s.Products) == 0 {
			p.Add(path+".products", "required", "a %q strategy needs at least one product, or \"source\": \"complements\"", s.Type)
		}
		checkSKUs(p, path+".products", s.Products, false)
		if s.MaxProducts != nil {
			p.Add(path+".max_products", "not_allowed", "goes with \"source\": \"complements\"")
		}
		if s.MinLift != nil {
			p.Add(path+".min_lift", "not_allowed", "goes with \"source\": \"complements\"")
		}
		return
	case SourceComplements:
	default:
		p.Add(path+".source", "not_allowed", "must be fixed or complements, got %q", s.Source)
		return
	}
	if !slices.Contains([]StrategyType{StrategySuggestion, StrategyBundle}, s.Type) {
		p.Add(path+".source", "not_allowed", "only suggestion and bundle strategies take their products from complements")
	}
	if len(s.Products) > 0 {
		p.Add(path+".products", "not_allowed", "a strategy whose source is complements gets its products from the model, for each shopper")
	}
	if n := s.MaxProducts; n != nil && (*n < 1 || *n > MaxLearnedProducts) {
		p.Add(path+".max_products", "out_of_range", "must be a whole number from 1 to %d, got %d", MaxLearnedProducts, *n)
	}
	if l := s.MinLift; l != nil && !(*l >= 0 && *l <= MaxMinLift) {
		p.Add(path+".min_lift", "out_of_range", "must be a number from 0 to %d, got %v", MaxMinLift, *l)
	}
}

// learnedAnswer is the answer of a variant whose products are learned, prepared around the
// products each request chooses:
//
//	head | "sku-1","sku-2" | ],"scores":[ | 12.5,3.1 | tail
//
// head ends with the strategy's type and `,"products":[`; tail is `]`, the rest of the
// strategy and the closing braces. headNone is head with "offer": "no_complements", unless
// the answer is an override of the offer pipeline (capped, budget_exhausted, holdout), whose
// offer says why the shopper gets the control's experience whatever the model chooses.
type learnedAnswer struct {
	max            int
	minLift        float64
	head, headNone []byte
	tail           []byte
}

// prepareLearned attaches to the answers of learned variants their learned form; when the
// control is learned, the answers that give the control's experience — to shoppers outside
// the experiment, and the offer pipeline's overrides — are learned too.
func (c *compiled) prepareLearned(variants []Variant) {
	for i := range variants {
		s := variants[i].Strategy
		if !s.Learned() {
			continue
		}
		s.normalizeSource()
		c.assigned[i].learned = newLearnedAnswer(c.assigned[i], &s)
		c.forcedIn[i].learned = newLearnedAnswer(c.forcedIn[i], &s)
		if !variants[i].Control {
			continue
		}
		for _, a := range []*Assignment{&c.notTargeted, &c.notInCoverage, &c.notInLayer} {
			a.learned = newLearnedAnswer(*a, &s)
		}
		for o := range c.overridden {
			for j := range c.overridden[o] {
				a := &c.overridden[o][j]
				a.learned = newLearnedAnswer(*a, &s)
			}
		}
	}
}

// newLearnedAnswer prepares the learned answer of a, whose strategy s is learned.
func newLearnedAnswer(a Assignment, s *Strategy) *learnedAnswer {
	strategy := a.Strategy
	a.Strategy, a.raw = nil, nil
	prefix := func(offer Offer) []byte {
		a.Offer = offer
		b, err := json.Marshal(a)
		if err != nil {
			panic(err) // strings and numbers only
		}
		// {...,"reason":"assigned"} → {...,"reason":"assigned","strategy":
		return append(b[:len(b)-1], `,"strategy":`...)
	}
	// The strategy's JSON starts with its type: {"type":"bundle", then the rest.
	cut := bytes.IndexByte(strategy, ',')
	if cut < 0 {
		cut = len(strategy) - 1
	}
	none := OfferNoComplements
	if a.Offer != OfferShow {
		none = a.Offer
	}
	head := append(prefix(a.Offer), strategy[:cut]...)
	headNone := append(prefix(none), strategy[:cut]...)
	l := &learnedAnswer{max: *s.MaxProducts, minLift: *s.MinLift}
	l.head = append(head, `,"products":[`...)
	l.headNone = append(headNone, `,"products":[`...)
	l.tail = append(append([]byte("]"), strategy[cut:]...), '}')
	return l
}

// appendJSON appends the answer with the products offers chooses for it.
func (l *learnedAnswer) appendJSON(dst []byte, offers *Offers) []byte {
	skus, scores := offers.encoded(l.minLift, l.max)
	if len(skus) == 0 {
		dst = append(dst, l.headNone...)
		dst = append(dst, `],"scores":[`...)
		return append(dst, l.tail...)
	}
	dst = append(dst, l.head...)
	dst = append(dst, skus...)
	dst = append(dst, `],"scores":[`...)
	dst = append(dst, scores...)
	return append(dst, l.tail...)
}

// Offered returns the products offers chooses for the answer when its strategy is learned (the
// products it lists, shared: callers must not change them), nil otherwise. After
// AppendJSONWith with the same offers, it costs a look-up of what that chose.
func (a *Assignment) Offered(offers *Offers) []complements.Suggestion {
	if a.learned == nil {
		return nil
	}
	return offers.choose(a.learned.minLift, a.learned.max)
}

// Learned reports whether the answer's products are chosen per request (Offered).
func (a *Assignment) Learned() bool { return a.learned != nil }

// Offers chooses, for one request, the products of learned strategies: from the complements
// model, for the products the shopper is looking at. A nil *Offers, or one without a model or
// context, offers nothing. It hashes the context once (ContextKey), remembers each
// (min_lift, max_products)'s choice as JSON, so that experiments with the same learned
// strategy share one look-up and one encoding (and the model remembers choices across
// requests, as JSON: complements.Context.ChooseJSON), and lists the products only when asked
// what was offered; Reset reuses its memory.
type Offers struct {
	model   *complements.Model
	context complements.Context
	memo    []offerMemo
	chosen  []complements.Suggestion // the memos' lists, one after the other
	json    []byte                   // every memo's SKUs and scores as JSON array elements
}

type offerMemo struct {
	minLift float64
	max     int
	// listed says whether chosen[start:end] is the list (a list remembered as JSON is listed
	// when asked for).
	listed     bool
	start, end int
	// json[from:skus] are the list's SKUs as JSON, json[skus:scores] its scores.
	from, skus, scores int
}

// Reset sets the model and context of a new request.
func (o *Offers) Reset(model *complements.Model, context []string) {
	o.model = model
	o.context.Reset(model, context)
	o.memo = o.memo[:0]
	clear(o.chosen) // let the strings go
	o.chosen = o.chosen[:0]
	o.json = o.json[:0]
}

// ContextKey is a 64-bit digest of the request's context under the model (Reset's
// products, in order), for the caller's digest of what the request offered; 0 without a
// model.
func (o *Offers) ContextKey() uint64 { return o.context.Key() }

// choose returns up to max products for the context with a lift of at least minLift.
func (o *Offers) choose(minLift float64, max int) []complements.Suggestion {
	m := o.find(minLift, max)
	if m == nil {
		return nil
	}
	if !m.listed {
		start := len(o.chosen)
		o.chosen = o.context.Choose(max, minLift, o.chosen)
		m.start, m.end, m.listed = start, len(o.chosen), true
	}
	return o.chosen[m.start:m.end:m.end]
}

// encoded returns choose's products as the elements of a JSON array of SKUs and one of scores.
func (o *Offers) encoded(minLift float64, max int) (skus, scores []byte) {
	m := o.find(minLift, max)
	if m == nil || m.from == m.scores {
		return nil, nil
	}
	return o.json[m.from:m.skus], o.json[m.skus:m.scores]
}

// find returns the memo of (minLift, max), choosing its products when new; nil when nothing
// can be offered.
func (o *Offers) find(minLift float64, max int) *offerMemo {
	if o == nil || o.model == nil || len(o.context.Products) == 0 {
		return nil
	}
	for i := range o.memo {
		if m := &o.memo[i]; m.minLift == minLift && m.max == max {
			return m
		}
	}
	m := offerMemo{minLift: minLift, max: max, start: len(o.chosen), from: len(o.json)}
	o.json, m.skus, o.chosen, m.listed = o.context.ChooseJSON(max, minLift, o.json, o.chosen)
	m.end, m.scores = len(o.chosen), len(o.json)
	o.memo = append(o.memo, m)
	return &o.memo[len(o.memo)-1]
}
