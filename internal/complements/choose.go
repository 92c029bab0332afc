package complements

import (
	"hash/maphash"
	"slices"
	"sync/atomic"
)

// choiceSlots is the number of contexts whose choice a model remembers (a power of two).
const choiceSlots = 16384

// choices remembers recent choices for contexts: product pages and carts repeat across
// shoppers, and a choice depends only on the model, the context and the strategy's bounds. A
// slot holds the last choice that hashed to it; a collision replaces it.
type choices struct {
	seed  maphash.Seed
	slots [choiceSlots]atomic.Pointer[choice]
}

// choice is one remembered answer of ForContext; it is never changed once stored.
type choice struct {
	hash    uint64
	max     int
	minLift float64
	context []string
	list    []Suggestion
}

// Choose is ForContext remembered: the same context, max and minLift on the same model get
// the same list, computed once. The list is shared: callers must not change it.
func (m *Model) Choose(context []string, max int, minLift float64) []Suggestion {
	if len(context) == 0 {
		return nil
	}
	h := uint64(max)
	for _, p := range context {
		h = h*0x100000001b3 ^ maphash.String(m.choices.seed, p)
	}
	slot := &m.choices.slots[h&(choiceSlots-1)]
	if c := slot.Load(); c != nil && c.hash == h && c.max == max && c.minLift == minLift && slices.Equal(c.context, context) {
		return c.list
	}
	list := m.ForContext(context, max, minLift, nil)
	slot.Store(&choice{hash: h, max: max, minLift: minLift, context: slices.Clone(context), list: list})
	return list
}
