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

// Assignment is one experiment's answer for one shopper.
type Assignment struct {
	Experiment   string  `json:"experiment"`
	Phase        int     `json:"phase,omitempty"`
	InExperiment bool    `json:"in_experiment"`
	Variant      *string `json:"variant"`
	Reason       Reason  `json:"reason"`
	// Offer says whether to show the strategy (SPEC §2a): absent means show.
	Offer    Offer           `json:"offer,omitempty"`
	Strategy json.RawMessage `json:"strategy,omitempty"`

	// raw is this answer already encoded, prepared when the cache loaded.
	raw []byte
	// learned, for a strategy whose products come from the complements model, is the answer
	// prepared around the products that each request chooses (learned.go).
	learned *learnedAnswer
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
	assigned, forcedIn                          []Assignment // by variant index
	notTargeted, notInCoverage, notInLayer, off Assignment
}

// prepareAnswers encodes the answers of an experiment with these variants and strategies; the
// control's strategy is what a shopper outside the experiment gets.
func prepareAnswers(key string, phase int, variantKeys []string, strategies []json.RawMessage, control json.RawMessage) answers {
	var a answers
	for i := range variantKeys {
		v := &variantKeys[i]
		a.assigned = append(a.assigned, Assignment{Experiment: key, Phase: phase, InExperiment: true, Variant: v, Reason: ReasonAssigned, Strategy: strategies[i]}.prepared())
		a.forcedIn = append(a.forcedIn, Assignment{Experiment: key, Phase: phase, InExperiment: true, Variant: v, Reason: ReasonForced, Strategy: strategies[i]}.prepared())
	}
	out := func(r Reason) Assignment {
		return Assignment{Experiment: key, Phase: phase, Reason: r, Strategy: control}.prepared()
	}
	a.notTargeted, a.notInCoverage, a.notInLayer = out(ReasonNotTargeted), out(ReasonNotInCoverage), out(ReasonNotInLayer)
	a.off = Assignment{Experiment: key, Reason: ReasonNotRunning}.prepared()
	return a
}
