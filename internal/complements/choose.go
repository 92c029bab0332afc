package complements

import (
	"hash/maphash"
	"math"
	"sync/atomic"
)

// choiceSlots is the number of contexts whose choice a model remembers (a power of two).
const choiceSlots = 16384

// rememberedList bounds a remembered list: a longer one is chosen afresh on every request
// (max_products is at most 20).
const rememberedList = 20

// The words of a slot of choices. A slot is a sequence lock (seq, odd while a writer fills
// it) over the key — two independent 64-bit hashes of the context's SKUs and max, and
// min_lift's bits — and the list, as ids and scores: numbers only, so that the table holds no
// pointer and the garbage collector never scans it (a table of pointers to remembered lists
// cost a scan of every one at every collection: docs/benchmarks.md). The key is hashed from
// the context's strings rather than their ids, so that a remembered choice costs no look-up
// of the context in the model's map (a cache miss each); two contexts taken for one need
// both 64-bit hashes to collide.
const (
	wSeq      = 0
	wHash     = 1
	wCheck    = 2
	wLift     = 3
	wSizes    = 4 // max | len(list)<<8
	wList     = 5 // two ids a word
	wScores   = wList + rememberedList/2
	slotWords = wScores + rememberedList
)

// choices remembers recent choices for contexts: product pages and carts repeat across
// shoppers, and a choice depends only on the model, the context and the strategy's bounds. A
// slot holds the last choice that hashed to it; a collision replaces it, and a writer that
// finds the slot being written skips remembering.
type choices struct {
	seed, check maphash.Seed
	words       []atomic.Uint64 // choiceSlots slots of slotWords
	computed    atomic.Int64    // choices computed rather than remembered, for tests
}

func newChoices() *choices {
	return &choices{seed: maphash.MakeSeed(), check: maphash.MakeSeed(), words: make([]atomic.Uint64, choiceSlots*slotWords)}
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
	c := m.choices
	h, check := uint64(max), uint64(max)
	for _, p := range context {
		h = h*0x100000001b3 ^ maphash.String(c.seed, p)
		check = check*0x100000001b3 ^ maphash.String(c.check, p)
	}
	slot := c.words[(h&(choiceSlots-1))*slotWords:][:slotWords]
	if got, ok := m.recall(slot, h, check, max, minLift, out); ok {
		return got
	}
	c.computed.Add(1)
	start := len(out)
	var small [16]int32
	ids := m.known(context, small[:0])
	if len(ids) == 0 {
		return out
	}
	out = m.forIDs(ids, max, minLift, out)
	remember(slot, h, check, max, minLift, out[start:], m.ids)
	return out
}

// recall appends the choice the slot holds for this key, if it holds it whole.
func (m *Model) recall(slot []atomic.Uint64, h, check uint64, max int, minLift float64, out []Suggestion) ([]Suggestion, bool) {
	seq := slot[wSeq].Load()
	if seq&1 != 0 || slot[wHash].Load() != h || slot[wCheck].Load() != check || slot[wLift].Load() != math.Float64bits(minLift) {
		return out, false
	}
	sizes := slot[wSizes].Load()
	n := int(sizes >> 8 & 0xff)
	if int(sizes&0xff) != max || n > rememberedList {
		return out, false
	}
	var listIDs [rememberedList]int32
	var scores [rememberedList]float64
	for i := range n {
		listIDs[i] = halfWord(slot, wList, i)
		scores[i] = math.Float64frombits(slot[wScores+i].Load())
	}
	if slot[wSeq].Load() != seq {
		return out, false // rewritten meanwhile
	}
	for i := range n {
		id := listIDs[i]
		out = append(out, Suggestion{SKU: m.skus[id], Score: scores[i], quoted: m.quoted[id]})
	}
	return out, true
}

// remember stores a choice in the slot, unless another writer is filling it.
func remember(slot []atomic.Uint64, h, check uint64, max int, minLift float64, list []Suggestion, byID map[string]int32) {
	seq := slot[wSeq].Load()
	if seq&1 != 0 || !slot[wSeq].CompareAndSwap(seq, seq+1) {
		return
	}
	slot[wHash].Store(h)
	slot[wCheck].Store(check)
	slot[wLift].Store(math.Float64bits(minLift))
	slot[wSizes].Store(uint64(max) | uint64(len(list))<<8)
	var listIDs [rememberedList]int32
	for i := range list {
		listIDs[i] = byID[list[i].SKU]
		slot[wScores+i].Store(math.Float64bits(list[i].Score))
	}
	for i := 0; i < len(list); i += 2 {
		slot[wList+i/2].Store(pair(listIDs[:len(list)], i))
	}
	slot[wSeq].Store(seq + 2)
}

// pair packs ids i and i+1 (0 past the end) into a word.
func pair(ids []int32, i int) uint64 {
	w := uint64(uint32(ids[i]))
	if i+1 < len(ids) {
		w |= uint64(uint32(ids[i+1])) << 32
	}
	return w
}

// halfWord reads id i of the ids packed two a word from word base on.
func halfWord(slot []atomic.Uint64, base, i int) int32 {
	return int32(uint32(slot[base+i/2].Load() >> (32 * (i % 2))))
}
