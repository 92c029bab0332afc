package experiments

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/xsell/xsell/internal/targeting"
)

// The offer pipeline (SPEC §2a, §2b; docs/offers.md): after a shopper is put in a variant,
// three overrides may give them the control's experience while they stay in the variant, in
// this order — holdout, frequency cap, budget. The holdout comes first: it is the program's
// own randomisation and its shoppers count nowhere. The cap comes before the budget because it
// must count every arm's opportunities alike, and a spent budget closes one arm only. Each
// override's answer was prepared with the others when the cache loaded (answers.overridden).

// HoldoutExperiment is the key under which the holdout's exposures are recorded: phase is the
// holdout's generation, variant HoldoutVariant or RestVariant. No experiment key can take it.
const HoldoutExperiment = "__holdout"

// The two arms of the holdout's exposures.
const (
	HoldoutVariant = "holdout"
	RestVariant    = "rest"
)

// Holdout is the program's holdout: Percent of shoppers, hashed on their shopper id with Seed,
// see no offer. Generation grows with every change of either.
type Holdout struct {
	Percent    float64 `json:"percent"`
	Seed       string  `json:"seed"`
	Generation int     `json:"generation"`
}

// BudgetKind is what a budget counts: discount (minor units) or points.
type BudgetKind string

// The kinds of budget.
const (
	BudgetDiscount BudgetKind = "discount"
	BudgetPoints   BudgetKind = "points"
)

// BudgetSpent is what one budget row has spent (internal/offers keeps them).
type BudgetSpent struct {
	Experiment string
	Variant    string // "" for the experiment's own budget
	Kind       BudgetKind
	Currency   string // of a discount; "" for points
	Spent      int64
	// ExhaustedAt is when the budget last closed, nil while open.
	ExhaustedAt *time.Time
}

// OfferState is the program-wide state of the offers a snapshot compiles in.
type OfferState struct {
	Holdout   Holdout
	GlobalCap *FrequencyCap
	Budgets   []BudgetSpent
}

// OfferSource reads the offer state; the cache loads it with the experiments.
type OfferSource interface {
	OfferState(ctx context.Context) (OfferState, error)
}

// Limiter keeps what the pipeline needs per shopper (internal/offers): the opportunities
// counted against frequency caps, and offers a per-shopper limit closed.
type Limiter interface {
	// ID numbers an experiment key for the limiter, the same number for the process's life,
	// and says how long its opportunities must be kept: its longest window.
	ID(key string, horizon time.Duration) uint32
	// Admit decides, for a shopper's candidate answers of one request (in answer order), which
	// are capped by their own caps or the global one, and which a per-shopper limit closed;
	// it counts the uncapped ones as opportunities when count is true.
	Admit(shopperID string, at time.Time, count bool, global *FrequencyCap, cands []Candidate)
}

// Candidate is one answer that the limiter rules on.
type Candidate struct {
	// Limits are the experiment's cap and the variant's, by window.
	Limits CapLimits
	// ID is the experiment's number (Limiter.ID).
	ID uint32
	// index is the answer's place in the request's answers.
	index uint16
	// Result is set by Admit.
	Result Verdict
}

// CapLimits are the frequency caps that count one answer, by window (Windows' order): entry w
// is the fewest offers a cap over Windows[w] allows, 0 when no cap counts over that window.
// The answer is capped when the shopper's opportunities within some window reach its entry.
type CapLimits [3]uint16

// add counts cap (nil: none) in the limits.
func (l *CapLimits) add(cap *FrequencyCap) {
	if cap == nil {
		return
	}
	w := cap.Per.index()
	if l[w] == 0 || int(l[w]) > cap.Offers {
		l[w] = uint16(min(cap.Offers, MaxCapOffers))
	}
}

// Largest is the most offers any of the caps allows (0 for none): no more opportunities of
// the answer's experiment can count within the longest window.
func (l CapLimits) Largest() int { return int(max(l[0], l[1], l[2])) }

// Reached reports whether opportunities within each window (n, Windows' order) reach a limit.
// n is read in place: the counter keeps its counts in 32 bits.
func (l CapLimits) Reached(n *[3]int32) bool {
	return (l[0] != 0 && n[0] >= int32(l[0])) || (l[1] != 0 && n[1] >= int32(l[1])) || (l[2] != 0 && n[2] >= int32(l[2]))
}

// Verdict is the limiter's ruling on a candidate.
type Verdict uint8

// The verdicts of Admit.
const (
	VerdictShow   Verdict = iota
	VerdictCapped         // over a frequency cap
	VerdictClosed         // a per-shopper limit closed the offer to the shopper
)

var candidates = sync.Pool{New: func() any { s := make([]Candidate, 0, 32); return &s }}

// holdout is a compiled Holdout.
type holdout struct {
	on         bool
	seed       targeting.Seed
	threshold  float64 // shoppers hashing below it are held out
	generation int
}

func compileHoldout(h Holdout) holdout {
	if h.Percent <= 0 {
		return holdout{}
	}
	return holdout{on: true, seed: targeting.NewSeed(h.Seed), threshold: h.Percent / 100, generation: h.Generation}
}

// holds reports whether the shopper is in the holdout: GrowthBook's hash (version 2) of seed
// and shopper id below the percentage, so that raising it keeps everyone held out in.
func (h *holdout) holds(shopperID string) bool {
	return h.on && h.seed.Hash(shopperID) < h.threshold
}

// InHoldout reports whether the snapshot's holdout holds the shopper.
func (s *Snapshot) InHoldout(shopperID string) bool { return s.holdout.holds(shopperID) }

// Limit is the per-shopper stage of the pipeline, run over the answers Assign gave: frequency
// caps, and offers a per-shopper limit closed. count says whether the answers are
// opportunities to count ("track": false answers are not); at is when they were given.
func (s *Snapshot) Limit(shopperID string, out []Assignment, count bool, at time.Time) {
	if s.limiter == nil || len(out) > math.MaxUint16 {
		return
	}
	// The candidates go through an interface, so they would escape to the heap from the
	// stack: a pooled buffer costs less than an allocation per request.
	scratch := candidates.Get().(*[]Candidate)
	defer candidates.Put(scratch)
	cands := (*scratch)[:0]
	defer func() { *scratch = cands[:0] }()
	for i := range out {
		a := &out[i]
		c := a.c
		if c == nil || !c.limiting || a.Reason != ReasonAssigned || a.Offer == OfferHoldout {
			continue
		}
		cand := Candidate{ID: c.limitID, Limits: c.limits, index: uint16(i)}
		if c.variantLimits != nil {
			cand.Limits = c.variantLimits[a.variant]
		}
		cands = append(cands, cand)
	}
	if len(cands) == 0 {
		return
	}
	s.limiter.Admit(shopperID, at, count, s.globalCap, cands)
	for _, cand := range cands {
		a := &out[cand.index]
		switch {
		case cand.Result == VerdictCapped:
			a.c.overrideIn(a, overCapped)
		case cand.Result == VerdictClosed && a.Offer == OfferShow:
			a.c.overrideIn(a, overBudget)
		}
	}
}
