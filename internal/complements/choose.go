package complements

import (
	"math"
	"sync/atomic"
)

// rememberedList bounds a remembered list: a longer one is chosen afresh on every request
// (max_products is at most 20).
const rememberedList = 20

// Remembered choices live in two tables of slots: one of narrow slots, one cache line each,
// for lists of up to narrowList products (max_products's default is 3), and one of wide
// slots, four lines, for longer ones, made when first needed. A slot is words of numbers
// only, so that the table holds no pointer and the garbage collector never scans it (a table
// of pointers to remembered lists cost a scan of every one at every collection:
// docs/benchmarks.md):
//
//	word 0         a sequence lock: seq<<16 | len(list)<<8 | max; seq is odd while a writer
//	               fills the slot
//	word 1         the key: a 64-bit hash of the context's SKUs, max and min_lift
//	records        the list's SKUs, as their records in the index, two a word
//	scores         the list's scores
//
// The key is hashed from the context's strings rather than their ids, so that a remembered
// choice costs no look-up of the context in the model; two contexts taken for one need their
// 64-bit keys to collide, from hashes seeded per model, out of an attacker's reach.
const (
	narrowList  = 4
	narrowWords = 2 + narrowList/2 + narrowList // 8: one cache line
	narrowSlots = 16384
	wideWords   = 2 + rememberedList/2 + rememberedList // 32: four lines
	wideSlots   = 4096
)

// choices remembers recent choices for contexts: product pages and carts repeat across
// shoppers, and a choice depends only on the model, the context and the strategy's bounds. A
// slot holds the last choice that hashed to it; a collision replaces it, and a writer that
// finds the slot being written skips remembering.
type choices struct {
	// narrow and wide are the tables; a large allocation starts on a page, so that each
	// slot fills whole cache lines.
	narrow   []atomic.Uint64
	wide     atomic.Pointer[[]atomic.Uint64]
	computed atomic.Int64 // choices computed rather than remembered, for tests
}

func newChoices() *choices {
	return &choices{narrow: make([]atomic.Uint64, narrowSlots*narrowWords)}
}

// slot returns the slot of key for lists of max products, and the number of products it
// holds.
func (c *choices) slot(key uint64, max int) ([]atomic.Uint64, int) {
	if max <= narrowList {
		i := key & (narrowSlots - 1)
		return c.narrow[i*narrowWords : (i+1)*narrowWords], narrowList
	}
	wide := c.wide.Load()
	if wide == nil {
		t := make([]atomic.Uint64, wideSlots*wideWords)
		if !c.wide.CompareAndSwap(nil, &t) {
			wide = c.wide.Load()
		} else {
			wide = &t
		}
	}
	i := key & (wideSlots - 1)
	return (*wide)[i*wideWords : (i+1)*wideWords], rememberedList
}

// Choose is ForContext remembered: the same context, max and minLift on the same model get
// the same list, computed once. The list is appended to out.
func (m *Model) Choose(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	if len(context) == 0 {
		return out
	}
	if max < 1 || max > rememberedList {
		m.choices.computed.Add(1)
		return m.ForContext(context, max, minLift, out)
	}
	var hashes [maxHashed]uint64
	key := mix(math.Float64bits(minLift) ^ uint64(max)<<56)
	for i, p := range context {
		h := m.hash(p)
		if i < maxHashed {
			hashes[i] = h
		}
		key = mix(key ^ h)
	}
	var known []uint64 // the hashes, unless the context is too long to keep them
	if len(context) <= maxHashed {
		known = hashes[:len(context)]
	}
	slot, size := m.choices.slot(key, max)
	if got, ok := m.recall(slot, size, key, max, out); ok {
		return got
	}
	m.choices.computed.Add(1)
	var small [16]uint32
	var buf [smallCandidates]candidate
	chosen := m.rank(m.known(context, known, small[:0]), max, minLift, buf[:0])
	remember(slot, size, key, max, chosen)
	for _, c := range chosen {
		out = append(out, m.suggestion(c.record, c.score))
	}
	return out
}

// maxHashed is the largest context whose products' hashes Choose keeps for looking them up
// (a product page or a cart of usual size; a larger one's are computed again).
const maxHashed = 16

// mix is a bijective mixing of 64 bits (splitmix64's finalizer), so that the key of a
// context differs from another's that differs in one product.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// recall appends the choice the slot holds for this key, if it holds it whole.
func (m *Model) recall(slot []atomic.Uint64, size int, key uint64, max int, out []Suggestion) ([]Suggestion, bool) {
	head := slot[0].Load()
	if head&(1<<16) != 0 || slot[1].Load() != key || int(head&0xff) != max {
		return out, false
	}
	n := int(head >> 8 & 0xff)
	if n > size {
		return out, false
	}
	var records [rememberedList]uint32
	var scores [rememberedList]float64
	for i := range n {
		records[i] = uint32(slot[2+i/2].Load() >> (32 * (i % 2)))
		scores[i] = math.Float64frombits(slot[2+size/2+i].Load())
	}
	if slot[0].Load() != head {
		return out, false // rewritten meanwhile
	}
	for i := range n {
		out = append(out, m.suggestion(records[i], scores[i]))
	}
	return out, true
}

// remember stores a choice in the slot, unless another writer is filling it.
func remember(slot []atomic.Uint64, size int, key uint64, max int, list []candidate) {
	head := slot[0].Load()
	if head&(1<<16) != 0 || !slot[0].CompareAndSwap(head, head+1<<16) {
		return
	}
	slot[1].Store(key)
	for i := 0; i < len(list); i += 2 {
		w := uint64(list[i].record)
		if i+1 < len(list) {
			w |= uint64(list[i+1].record) << 32
		}
		slot[2+i/2].Store(w)
	}
	for i := range list {
		slot[2+size/2+i].Store(math.Float64bits(list[i].score))
	}
	seq := head>>16 + 2
	slot[0].Store(seq<<16 | uint64(len(list))<<8 | uint64(max))
}
