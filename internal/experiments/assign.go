package experiments

import (
	"time"

	"github.com/xsell/xsell/internal/targeting"
)

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
// empty, appending to out. attrs are the shopper's attributes; Assign adds shopper_id when it
// is absent, so that conditions can test it. record is called for each answer that puts the
// shopper in an experiment by randomisation; forced QA overrides are not recorded, so that
// testers never enter the analysis. The snapshot-wide stages of the offer pipeline apply here
// (holdout, spent budgets); the per-shopper one is Limit.
//
// A shopper in the holdout keeps their variant in the answer but is recorded in no
// experiment: they are analysed by `analyze holdout` against everyone else, recorded under
// HoldoutExperiment, and would only dilute each experiment's comparison.
func (s *Snapshot) Assign(shopperID string, attrs map[string]any, keys []string, out []Assignment, record func(Exposure)) []Assignment {
	if _, ok := attrs["shopper_id"]; !ok {
		attrs["shopper_id"] = shopperID
	}
	var memo assignMemo
	start := len(out)
	held := s.holdout.holds(shopperID)
	rec := record
	if held {
		rec = nil
	}
	if len(keys) == 0 {
		for _, c := range s.running {
			out = append(out, c.assign(shopperID, attrs, &memo, rec))
		}
	} else {
		for _, k := range keys {
			c, ok := s.byKey[k]
			if !ok {
				out = append(out, Assignment{Experiment: k, Reason: ReasonUnknownExperiment, Offer: OfferShow})
				continue
			}
			out = append(out, c.assign(shopperID, attrs, &memo, rec))
		}
	}
	if s.holdout.on {
		s.applyHoldout(shopperID, attrs, out[start:], held, record)
	}
	return out
}

// applyHoldout turns a held-out shopper's offers into the control's experience, and records
// which side of the holdout a shopper who got an offer opportunity is on.
func (s *Snapshot) applyHoldout(shopperID string, attrs map[string]any, out []Assignment, held bool, record func(Exposure)) {
	seen := false
	for i := range out {
		a := &out[i]
		if a.c == nil || a.Reason != ReasonAssigned {
			continue
		}
		seen = true
		if held {
			a.c.overrideIn(a, overHoldout)
		}
	}
	if seen && record != nil {
		side := RestVariant
		if held {
			side = HoldoutVariant
		}
		record(Exposure{Experiment: HoldoutExperiment, Phase: s.holdout.generation, ShopperID: shopperID, Variant: side, Attributes: attrs})
	}
}

// assign applies SPEC §4's order: not running → forced → targeting → layer → coverage/variant.
func (c *compiled) assign(shopperID string, attrs map[string]any, memo *assignMemo, record func(Exposure)) Assignment {
	if c.status != StatusRunning {
		return c.off
	}
	if i, ok := c.forced[shopperID]; ok {
		return c.forcedIn[i]
	}
	if !c.targets(attrs, memo) {
		return c.notTargeted
	}
	id, ok := c.hashID(shopperID, attrs)
	if !ok {
		// No value to hash on: the shopper cannot be placed consistently, so they are not
		// targeted, as GrowthBook skips such experiments.
		return c.notTargeted
	}
	if c.layer != nil && !c.inLayer(id, memo) {
		return c.notInLayer
	}
	i, known := -1, false
	if c.sticky != nil {
		i, known = c.sticky.get(id)
	}
	if !known {
		if i = targeting.ChooseVariation(c.seed.Hash(id), c.ranges); i < 0 {
			return c.notInCoverage
		}
		// A bandit remembers the first recorded variant, so that new weights do not move it.
		if c.sticky != nil && record != nil {
			i = c.sticky.put(id, i)
		}
	}
	if record != nil {
		record(Exposure{Experiment: c.key, Phase: c.phase, ShopperID: shopperID, Variant: c.variantKeys[i], Attributes: attrs})
	}
	a := c.assigned[i]
	if c.exhausted != nil && c.exhausted[i] {
		c.overrideIn(&a, overBudget)
	}
	return a
}

// targets evaluates the experiment's targeting, once per distinct rule and request.
func (c *compiled) targets(attrs map[string]any, memo *assignMemo) bool {
	if c.condSlot < 0 {
		return c.condition.Eval(attrs)
	}
	switch memo.cond[c.condSlot] {
	case 1:
		return true
	case 2:
		return false
	}
	ok := c.condition.Eval(attrs)
	memo.cond[c.condSlot] = 2
	if ok {
		memo.cond[c.condSlot] = 1
	}
	return ok
}

// inLayer says whether the shopper falls in the experiment's range of its layer, hashing them
// into the layer once per layer and request.
func (c *compiled) inLayer(id string, memo *assignMemo) bool {
	if c.layerSlot < 0 {
		return targeting.InNamespace(id, c.layer.Name, c.layer.Range[0], c.layer.Range[1])
	}
	n := memo.layer[c.layerSlot] - 1
	if n < 0 {
		n = targeting.NamespaceHash(id, c.layer.Name)
		memo.layer[c.layerSlot] = n + 1
	}
	return n >= c.layer.Range[0] && n < c.layer.Range[1]
}

// hashID is the identifier the experiment hashes the shopper on: the shopper id, or the value
// of another hash attribute as GrowthBook's SDK hashes it; false when there is none.
func (c *compiled) hashID(shopperID string, attrs map[string]any) (string, bool) {
	if c.hashAttribute == "shopper_id" {
		return shopperID, shopperID != ""
	}
	return targeting.HashValue(attrs[c.hashAttribute])
}
