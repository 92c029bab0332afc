package experiments

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"
)

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
	Experiment   string          `json:"experiment"`
	Phase        int             `json:"phase,omitempty"`
	InExperiment bool            `json:"in_experiment"`
	Variant      *string         `json:"variant"`
	Reason       Reason          `json:"reason"`
	Strategy     json.RawMessage `json:"strategy,omitempty"`

	// raw is this answer already encoded, prepared when the cache loaded.
	raw []byte
}

// AppendJSON appends the assignment as JSON; answers of known experiments were encoded when
// the cache loaded, so this is a copy.
func (a *Assignment) AppendJSON(dst []byte) []byte {
	if a.raw != nil {
		return append(dst, a.raw...)
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err) // strings and prepared JSON only
	}
	return append(dst, b...)
}

// compiled is an experiment prepared for assignment: everything that does not depend on the
// shopper is worked out once, when the cache loads, not per request.
type compiled struct {
	key           string
	status        Status
	phase         int
	seedState     uint32 // FNV-1a state after the seed, for hash version 2
	hashAttribute string
	condition     *Condition
	layer         *Layer
	ranges        [][2]float64
	variantKeys   []string
	strategies    []json.RawMessage
	control       json.RawMessage // the control's strategy, shown when not in the experiment
	forced        map[string]int  // shopper → variant index
	// condSlot and layerSlot index a request's memo: experiments with the same targeting, or
	// the same layer and hash attribute, share a slot, so that one request evaluates each
	// once. -1: not memoised.
	condSlot, layerSlot int

	// Every answer this experiment can give, prepared once: for each variant assigned and
	// forced, and one for each reason to stay out.
	assigned, forcedAnswers                     []Assignment
	notTargeted, notInCoverage, notInLayer, off Assignment
}

// prepare fills the answers' encoded form.
func (a Assignment) prepare() Assignment {
	a.raw = a.AppendJSON(nil)
	return a
}

func (c *compiled) prepareAnswers() {
	for i := range c.variantKeys {
		v := &c.variantKeys[i]
		c.assigned = append(c.assigned, Assignment{Experiment: c.key, Phase: c.phase, InExperiment: true, Variant: v, Reason: ReasonAssigned, Strategy: c.strategies[i]}.prepare())
		c.forcedAnswers = append(c.forcedAnswers, Assignment{Experiment: c.key, Phase: c.phase, InExperiment: true, Variant: v, Reason: ReasonForced, Strategy: c.strategies[i]}.prepare())
	}
	out := func(r Reason) Assignment {
		return Assignment{Experiment: c.key, Phase: c.phase, Reason: r, Strategy: c.control}.prepare()
	}
	c.notTargeted, c.notInCoverage, c.notInLayer = out(ReasonNotTargeted), out(ReasonNotInCoverage), out(ReasonNotInLayer)
	c.off = Assignment{Experiment: c.key, Reason: ReasonNotRunning}.prepare()
}

func compile(e *Experiment) (*compiled, error) {
	c := &compiled{
		key: e.Key, status: e.Status, phase: e.Phase, seedState: seedPrefix(e.Seed), hashAttribute: e.HashAttribute,
		layer: e.Layer, ranges: GetBucketRanges(len(e.Variants), *e.Coverage, e.Weights()),
	}
	if len(e.Targeting) > 0 {
		cond, err := ParseCondition(e.Targeting)
		if err != nil {
			return nil, err
		}
		c.condition = cond
	}
	index := map[string]int{}
	for i, v := range e.Variants {
		index[v.Key] = i
		c.variantKeys = append(c.variantKeys, v.Key)
		s, err := json.Marshal(v.Strategy)
		if err != nil {
			return nil, err
		}
		c.strategies = append(c.strategies, s)
		if v.Control {
			c.control = s
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
	c.prepareAnswers()
	return c, nil
}

// Snapshot is an immutable set of compiled experiments; the cache swaps whole snapshots so
// that a request never sees a half-applied change.
type Snapshot struct {
	// Generation tells snapshots apart: answers, and so exposures, may differ between two.
	Generation uint64

	byKey   map[string]*compiled
	running []*compiled // in key order, for requests that name no experiment
	// Loaded is when the experiments were read; a reload that finds them unchanged keeps the
	// snapshot and this time.
	Loaded time.Time
	// fingerprint identifies the experiments the cache compiled this snapshot from.
	fingerprint [32]byte
}

var generations atomic.Uint64

// NewSnapshot compiles experiments for assignment. An experiment that fails to compile (it
// cannot, having been validated on save) is reported rather than silently skipped.
func NewSnapshot(list []*Experiment, loaded time.Time) (*Snapshot, error) {
	s := &Snapshot{Generation: generations.Add(1), byKey: make(map[string]*compiled, len(list)), Loaded: loaded}
	conds, layers := map[string]int{}, map[[2]string]int{}
	for _, e := range list {
		c, err := compile(e)
		if err != nil {
			return nil, err
		}
		c.condSlot, c.layerSlot = -1, -1
		if c.condition != nil {
			c.condSlot = memoSlot(conds, string(c.condition.raw))
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

// memoSlots bounds the distinct targeting rules (and layers) one request remembers.
const memoSlots = 64

// memoSlot numbers a distinct key, up to memoSlots; beyond them, -1.
func memoSlot[K comparable](slots map[K]int, k K) int {
	if i, ok := slots[k]; ok {
		return i
	}
	if len(slots) == memoSlots {
		return -1
	}
	slots[k] = len(slots)
	return slots[k]
}

// assignMemo is what one request has worked out so far: whether each distinct targeting rule
// holds, and where the shopper falls in each layer. It lives on the request's stack.
type assignMemo struct {
	cond  [memoSlots]uint8   // 0 not yet evaluated, 1 holds, 2 does not
	layer [memoSlots]float64 // 0 not yet hashed, else the layer hash + 1
}

// Len is the number of experiments in the snapshot.
func (s *Snapshot) Len() int { return len(s.byKey) }

// Exposure is a shopper's being put in a variant, to be recorded for analysis.
type Exposure struct {
	Experiment string
	Phase      int
	ShopperID  string
	Variant    string
	Attributes map[string]any
	At         time.Time
}

// Assign answers for one shopper: for the named experiments, or every running one when keys is
// empty. attrs must already hold shopper_id (Assign adds it when absent). record is called
// for each answer that puts the shopper in an experiment by randomisation; forced QA
// overrides are not recorded, so that testers never enter the analysis.
func (s *Snapshot) Assign(shopperID string, attrs map[string]any, keys []string, out []Assignment, record func(Exposure)) []Assignment {
	if _, ok := attrs["shopper_id"]; !ok {
		attrs["shopper_id"] = shopperID
	}
	var memo assignMemo
	if len(keys) == 0 {
		for _, c := range s.running {
			out = append(out, c.assign(shopperID, attrs, &memo, record))
		}
		return out
	}
	for _, k := range keys {
		c, ok := s.byKey[k]
		if !ok {
			out = append(out, Assignment{Experiment: k, Reason: ReasonUnknownExperiment})
			continue
		}
		out = append(out, c.assign(shopperID, attrs, &memo, record))
	}
	return out
}

// assign applies SPEC §4's order: not running → forced → targeting → layer → coverage/variant.
func (c *compiled) assign(shopperID string, attrs map[string]any, memo *assignMemo, record func(Exposure)) Assignment {
	if c.status != StatusRunning {
		return c.off
	}
	if i, ok := c.forced[shopperID]; ok {
		return c.forcedAnswers[i]
	}
	if !c.targets(attrs, memo) {
		return c.notTargeted
	}
	id, ok := hashValue(c.hashAttribute, shopperID, attrs)
	if !ok {
		// No value to hash on: the shopper cannot be placed consistently, so they are not
		// targeted, as GrowthBook skips such experiments.
		return c.notTargeted
	}
	if c.layer != nil && !c.inLayer(id, memo) {
		return c.notInLayer
	}
	n := hashV2(c.seedState, id)
	i := ChooseVariation(n, c.ranges)
	if i < 0 {
		return c.notInCoverage
	}
	if record != nil {
		record(Exposure{Experiment: c.key, Phase: c.phase, ShopperID: shopperID, Variant: c.variantKeys[i], Attributes: attrs})
	}
	return c.assigned[i]
}

// targets evaluates the experiment's targeting, once per distinct rule and request.
func (c *compiled) targets(attrs map[string]any, memo *assignMemo) bool {
	if c.condSlot < 0 {
		return c.condition.Eval(attrs, nil)
	}
	switch memo.cond[c.condSlot] {
	case 1:
		return true
	case 2:
		return false
	}
	ok := c.condition.Eval(attrs, nil)
	memo.cond[c.condSlot] = 2
	if ok {
		memo.cond[c.condSlot] = 1
	}
	return ok
}

// inLayer says whether the shopper falls in the experiment's range of its layer; the hash
// is GrowthBook's namespace hash, computed once per layer and request.
func (c *compiled) inLayer(id string, memo *assignMemo) bool {
	if c.layerSlot < 0 {
		return InNamespace(id, c.layer.Name, c.layer.Range[0], c.layer.Range[1])
	}
	n := memo.layer[c.layerSlot] - 1
	if n < 0 {
		n = namespaceHash(id, c.layer.Name)
		memo.layer[c.layerSlot] = n + 1
	}
	return n >= c.layer.Range[0] && n < c.layer.Range[1]
}

// hashValue is the identifier the experiment hashes on, as text the way JavaScript would
// stringify it.
func hashValue(attr, shopperID string, attrs map[string]any) (string, bool) {
	if attr == "shopper_id" {
		return shopperID, shopperID != ""
	}
	switch v := attrs[attr].(type) {
	case string:
		return v, v != ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
