package experiments

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xsell/xsell/internal/targeting"
)

// compiled is an experiment prepared for assignment: everything that does not depend on the
// shopper is worked out once, when the cache loads, not per request.
type compiled struct {
	// The fields up to answers.assigned are what every assignment reads: they are kept in
	// three cache lines (the limiter's among them, in what would be padding).
	key    string
	status Status
	phase  int
	seed   targeting.Seed
	// limitID and limits are the answer as the offer pipeline's limiter takes it (Limit): its
	// number and the experiment's caps; limiting says whether the limiter rules on its answers
	// at all (a cap or a per-shopper limit somewhere, or the global cap).
	limitID       uint32
	limits        CapLimits
	limiting      bool
	hashAttribute string
	condition     *targeting.Condition // nil: everyone is targeted
	layer         *Layer
	ranges        [][2]float64
	variantKeys   []string
	forced        map[string]int // shopper → variant index
	// sticky remembers a bandit's shoppers' first variants (sticky.go); nil for fixed weights.
	sticky *stickyTable
	// period is the bandit period whose weights the ranges hold; -1 for fixed weights.
	period int
	// condSlot and layerSlot index a request's memo: experiments with the same targeting, or
	// the same layer and hash attribute, share a slot, so that one request evaluates each
	// once. -1: not memoised.
	condSlot, layerSlot int32
	answers
	// exhausted says which variants' budgets are spent.
	exhausted []bool
	// variantLimits are each variant's limits when some variant has a cap of its own (nil
	// otherwise), control is the control's strategy and swaps what each override of
	// overrides changes in each variant's answer (overrideIn); the first variants' capped
	// ones are kept here too, beside control, the override a busy shop's requests get most.
	variantLimits []CapLimits
	control       json.RawMessage
	capped        [inlineSwaps]swap
	swaps         [len(overrides)][]swap
}

func compile(e *Experiment, o *SnapshotOptions) (*compiled, error) {
	c := &compiled{
		key: e.Key, status: e.Status, phase: e.Phase, seed: targeting.NewSeed(e.Seed), hashAttribute: e.HashAttribute,
		layer: e.Layer, ranges: targeting.BucketRanges(len(e.Variants), *e.Coverage, e.CurrentWeights()),
		condSlot: -1, layerSlot: -1, period: -1,
	}
	if e.Allocation.IsBandit() && e.Status == StatusRunning {
		c.sticky, _ = o.Sticky.table(e.Key, e.Phase)
		c.period = 0
		if e.Bandit != nil {
			c.period = e.Bandit.Period
		}
	}
	if len(e.Targeting) > 0 {
		cond, err := targeting.Parse(e.Targeting)
		if err != nil {
			return nil, fmt.Errorf("experiment %s: %w", e.Key, err)
		}
		c.condition = cond
	}
	var strategies []json.RawMessage
	var control json.RawMessage
	index := map[string]int{}
	for i, v := range e.Variants {
		index[v.Key] = i
		c.variantKeys = append(c.variantKeys, v.Key)
		s, err := json.Marshal(v.Strategy)
		if err != nil {
			return nil, fmt.Errorf("experiment %s: encoding variant %s: %w", e.Key, v.Key, err)
		}
		strategies = append(strategies, s)
		if v.Control {
			control = s
		}
	}
	if len(e.Forced) > 0 {
		c.forced = make(map[string]int, len(e.Forced))
		for shopper, variant := range e.Forced {
			if i, ok := index[variant]; ok {
				c.forced[shopper] = i
			}
		}
	}
	c.answers = prepareAnswers(c, strategies, control)
	c.prepareLearned(e.Variants)
	c.control = control
	c.prepareSwaps()
	c.compileLimits(e, o)
	return c, nil
}

// compileLimits works out what the offer pipeline needs of the experiment.
func (c *compiled) compileLimits(e *Experiment, o *SnapshotOptions) {
	limited := e.FrequencyCap != nil || (e.Budget != nil && e.Budget.PerShopper != nil)
	horizon := o.State.GlobalCap.window()
	ownCaps := false
	for _, v := range e.Variants {
		limited = limited || v.FrequencyCap != nil || (v.Budget != nil && v.Budget.PerShopper != nil)
		ownCaps = ownCaps || v.FrequencyCap != nil
		horizon = max(horizon, e.FrequencyCap.window(), v.FrequencyCap.window())
	}
	if o.Limiter != nil && (limited || o.State.GlobalCap != nil) {
		c.limiting = true
		c.limitID = o.Limiter.ID(e.Key, horizon)
		c.limits.add(e.FrequencyCap)
		if ownCaps {
			c.variantLimits = make([]CapLimits, len(e.Variants))
			for i, v := range e.Variants {
				c.variantLimits[i] = c.limits
				c.variantLimits[i].add(v.FrequencyCap)
			}
		}
	}
	c.exhausted = e.exhausted(o.State.Budgets)
}

// Snapshot is an immutable set of compiled experiments; the cache swaps whole snapshots so
// that a request never sees a half-applied change.
type Snapshot struct {
	// Generation tells snapshots apart: answers, and so exposures, may differ between two.
	Generation uint64
	// Loaded is when the experiments were read; a reload that finds them unchanged keeps the
	// snapshot and this time.
	Loaded time.Time

	byKey   map[string]*compiled
	running []*compiled // in key order, for requests that name no experiment
	// fingerprint identifies the experiments the cache compiled this snapshot from.
	fingerprint [32]byte

	// The offer pipeline's program-wide parts.
	holdout   holdout
	globalCap *FrequencyCap
	limiter   Limiter
}

// SnapshotOptions are what a snapshot compiles in besides the experiments: the offers' state
// and the limiter that keeps per-shopper counts.
type SnapshotOptions struct {
	State   OfferState
	Limiter Limiter
	// Sticky remembers bandits' shoppers' first variants (sticky.go); nil: a fresh memory.
	Sticky *Sticky
}

var generations atomic.Uint64

// NewSnapshot compiles experiments for assignment. An experiment that fails to compile (it
// cannot, having been validated on save) is reported rather than silently skipped.
func NewSnapshot(list []*Experiment, loaded time.Time) (*Snapshot, error) {
	return NewSnapshotWith(list, loaded, SnapshotOptions{})
}

// newSnapshot compiles experiments whose bandits remember their shoppers in sticky.
func newSnapshot(list []*Experiment, loaded time.Time, sticky *Sticky) (*Snapshot, error) {
	return NewSnapshotWith(list, loaded, SnapshotOptions{Sticky: sticky})
}

// NewSnapshotWith is NewSnapshot with the offers' state and limiter, and the memory of
// bandits' shoppers.
func NewSnapshotWith(list []*Experiment, loaded time.Time, o SnapshotOptions) (*Snapshot, error) {
	if o.Sticky == nil {
		o.Sticky = NewSticky(0, nil)
	}
	s := &Snapshot{Generation: generations.Add(1), byKey: make(map[string]*compiled, len(list)), Loaded: loaded,
		holdout: compileHoldout(o.State.Holdout), globalCap: o.State.GlobalCap, limiter: o.Limiter}
	conds, layers := map[string]int32{}, map[[2]string]int32{}
	for _, e := range list {
		c, err := compile(e, &o)
		if err != nil {
			return nil, err
		}
		if c.condition != nil {
			c.condSlot = memoSlot(conds, string(e.Targeting))
		}
		if c.layer != nil {
			c.layerSlot = memoSlot(layers, [2]string{c.layer.Name, c.hashAttribute})
		}
		s.byKey[e.Key] = c
		if e.Status == StatusRunning {
			s.running = append(s.running, c)
		}
	}
	return s, nil
}

// BanditPeriod is the phase and the period of a running bandit whose weights the snapshot
// assigns with; false when key is not a running bandit.
func (s *Snapshot) BanditPeriod(key string) (phase, period int, ok bool) {
	c := s.byKey[key]
	if c == nil || c.period < 0 {
		return 0, 0, false
	}
	return c.phase, c.period, true
}

// Len is the number of experiments in the snapshot.
func (s *Snapshot) Len() int { return len(s.byKey) }

// memoSlots bounds the distinct targeting rules (and layers) one request remembers.
const memoSlots = 64

// memoSlot numbers a distinct key, up to memoSlots; beyond them, -1.
func memoSlot[K comparable](slots map[K]int32, k K) int32 {
	if i, ok := slots[k]; ok {
		return i
	}
	if len(slots) == memoSlots {
		return -1
	}
	slots[k] = int32(len(slots))
	return slots[k]
}

// assignMemo is what one request has worked out so far: whether each distinct targeting rule
// holds, and where the shopper falls in each layer. It lives on the request's stack.
type assignMemo struct {
	cond  [memoSlots]uint8   // 0 not yet evaluated, 1 holds, 2 does not
	layer [memoSlots]float64 // 0 not yet hashed, else the layer hash + 1
}
