package experiments

import "encoding/json"

// Reason says why a shopper got the answer they got (SPEC §4).
type Reason string

// The reasons of an assignment.
const (
	ReasonAssigned          Reason = "assigned"
	ReasonForced            Reason = "forced"
	ReasonNotTargeted       Reason = "not_targeted"
	ReasonNotInCoverage     Reason = "not_in_coverage"
	ReasonNotInLayer        Reason = "not_in_layer"
	ReasonNotRunning        Reason = "not_running"
	ReasonUnknownExperiment Reason = "unknown_experiment"
)

// Offer says whether checkout shows the strategy of the answer (SPEC §2a): "show", or why
// not. Every answer carries one. The offer pipeline's overrides (capped, budget_exhausted,
// holdout) tell the shopper, staying in their variant, to get the control's experience; a
// learned strategy with nothing to offer for the request's context says no_complements. An
// override wins over no_complements: it says why the variant's own offer is not shown.
type Offer string

// The offers of an answer.
const (
	OfferShow            Offer = "show"
	OfferCapped          Offer = "capped"           // over a frequency cap
	OfferBudgetExhausted Offer = "budget_exhausted" // the variant's budget, or the shopper's limit, is spent
	OfferHoldout         Offer = "holdout"          // in the program's holdout
	OfferNoComplements   Offer = "no_complements"   // a learned strategy had nothing to offer for the context
)

// overrides are the offers that replace the variant's strategy with the control's, in the
// order of answers.overridden.
var overrides = [...]Offer{OfferCapped, OfferBudgetExhausted, OfferHoldout}

// The overrides' indexes in overrides.
const (
	overCapped = iota
	overBudget
	overHoldout
)

// Assignment is one experiment's answer for one shopper.
type Assignment struct {
	Experiment   string  `json:"experiment"`
	Phase        int     `json:"phase,omitempty"`
	InExperiment bool    `json:"in_experiment"`
	Variant      *string `json:"variant"`
	Reason       Reason  `json:"reason"`
	// Offer comes before the strategy so that a learned answer's prepared head ends with it
	// (learned.go).
	Offer    Offer           `json:"offer"`
	Strategy json.RawMessage `json:"strategy,omitempty"`

	// raw is this answer already encoded, prepared when the cache loaded.
	raw []byte
	// learned, for a strategy whose products come from the complements model, is the answer
	// prepared around the products that each request chooses (learned.go).
	learned *learnedAnswer
	// c and variant say which experiment and variant put the shopper in (c nil otherwise),
	// so that the offer pipeline can swap in another prepared answer.
	c       *compiled
	variant int
}

// AppendJSON appends the assignment as JSON; answers of known experiments were encoded when
// the cache loaded, so this is a copy. A learned strategy's answer offers nothing here: see
// AppendJSONWith.
func (a *Assignment) AppendJSON(dst []byte) []byte {
	return a.AppendJSONWith(dst, nil)
}

// AppendJSONWith is AppendJSON with the products of a learned strategy chosen by offers (nil:
// none, "offer": "no_complements").
func (a *Assignment) AppendJSONWith(dst []byte, offers *Offers) []byte {
	if a.learned != nil {
		return a.learned.appendJSON(dst, offers)
	}
	if a.raw != nil {
		return append(dst, a.raw...)
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err) // strings and prepared JSON only
	}
	return append(dst, b...)
}

// prepared returns the answer with its encoded form filled in.
func (a Assignment) prepared() Assignment {
	a.raw = a.AppendJSON(nil)
	return a
}

// answers is every answer an experiment can give, prepared when the cache loads so that a
// request only copies them out.
type answers struct {
	assigned, forcedIn []Assignment // by variant index
	// overridden holds, for each offer of overrides, each variant's answer with the control's
	// strategy: the shopper stays in the variant and is told why they see no offer.
	overridden                                  [len(overrides)][]Assignment
	notTargeted, notInCoverage, notInLayer, off Assignment
}

// prepareAnswers encodes the answers of an experiment with these variants and strategies; the
// control's strategy is what a shopper outside the experiment gets.
func prepareAnswers(c *compiled, strategies []json.RawMessage, control json.RawMessage) answers {
	key, phase := c.key, c.phase
	var a answers
	for i := range c.variantKeys {
		v := &c.variantKeys[i]
		in := Assignment{Experiment: key, Phase: phase, InExperiment: true, Variant: v, Reason: ReasonAssigned,
			Strategy: strategies[i], Offer: OfferShow, c: c, variant: i}
		a.assigned = append(a.assigned, in.prepared())
		forced := in
		forced.Reason = ReasonForced
		a.forcedIn = append(a.forcedIn, forced.prepared())
		for o, offer := range overrides {
			x := in
			x.Strategy, x.Offer = control, offer
			a.overridden[o] = append(a.overridden[o], x.prepared())
		}
	}
	out := func(r Reason) Assignment {
		return Assignment{Experiment: key, Phase: phase, Reason: r, Strategy: control, Offer: OfferShow}.prepared()
	}
	a.notTargeted, a.notInCoverage, a.notInLayer = out(ReasonNotTargeted), out(ReasonNotInCoverage), out(ReasonNotInLayer)
	a.off = Assignment{Experiment: key, Reason: ReasonNotRunning, Offer: OfferShow}.prepared()
	return a
}

// swap is what an override changes in a variant's answer besides its offer and strategy.
type swap struct {
	raw     []byte
	learned *learnedAnswer
}

// prepareSwaps lists what each override changes in each variant's answer, once the answers
// are prepared, learned ones included.
func (c *compiled) prepareSwaps() {
	for o := range c.overridden {
		c.swaps[o] = make([]swap, len(c.overridden[o]))
		for i, a := range c.overridden[o] {
			c.swaps[o][i] = swap{raw: a.raw, learned: a.learned}
		}
	}
	copy(c.capped[:], c.swaps[overCapped])
}

// inlineSwaps is how many variants' capped answers the compiled experiment keeps in itself.
const inlineSwaps = 4

// overrideIn turns a, variant a.variant's answer, into what override o (an index of
// overrides) answers: the same as answers.overridden[o][a.variant], writing only the
// fields that differ, from memory the experiment keeps together.
func (c *compiled) overrideIn(a *Assignment, o int) {
	var w *swap
	if o == overCapped && a.variant < inlineSwaps {
		w = &c.capped[a.variant]
	} else {
		w = &c.swaps[o][a.variant]
	}
	a.Offer, a.Strategy, a.raw, a.learned = overrides[o], c.control, w.raw, w.learned
}
