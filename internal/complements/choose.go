package complements

import (
	"math"
	"sync/atomic"
)

// choiceSlots is the number of contexts whose choice a model remembers (a power of two).
const choiceSlots = 16384

// Bounds of a remembered choice: a context of more products the model knows, or a longer
// list, is chosen afresh on every request (max_products is at most 20).
const (
	rememberedContext = 8
	rememberedList    = 20
)

// The words of a slot of choices. A slot is a sequence lock (seq, odd while a writer fills
// it) over the key — the hash, min_lift's bits, max and the context's ids — and the list, as
// ids and scores: numbers only, so that the table holds no pointer and the garbage collector
// never scans it (a table of pointers to remembered lists cost a scan of every one at every
// collection: docs/benchmarks.md).
const (
	wSeq      = 0
	wHash     = 1
	wLift     = 2
	wSizes    = 3 // max | len(context ids)<<8 | len(list)<<16
	wIDs      = 4
	wList     = wIDs + rememberedContext/2 // two ids a word
	wScores   = wList + rememberedList/2
	slotWords = wScores + rememberedList
)

// choices remembers recent choices for contexts: product pages and carts repeat across
// shoppers, and a choice depends only on the model, the context's known products in order
// and the strategy's bounds. A slot holds the last choice that hashed to it; a collision
// replaces it, and a writer that finds the slot being written skips remembering.
type choices struct {
	words    []atomic.Uint64 // choiceSlots slots of slotWords
	computed atomic.Int64    // choices computed rather than remembered, for tests
}

func newChoices() *choices {
	return &choices{words: make([]atomic.Uint64, choiceSlots*slotWords)}
}

// Choose is ForContext remembered: the same context, max and minLift on the same model get
// the same list, computed once. The list is appended to out.
func (m *Model) Choose(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	var small [16]int32
	ids := m.known(context, small[:0])
	if len(ids) == 0 {
		return out
	}
	if len(ids) > rememberedContext || max < 1 || max > rememberedList {
		m.choices.computed.Add(1)
		return m.forIDs(ids, max, minLift, out)
	}
	h := choiceHash(ids, max, minLift)
	slot := m.choices.words[(h&(choiceSlots-1))*slotWords:][:slotWords]
	if got, ok := m.recall(slot, h, ids, max, minLift, out); ok {
		return got
	}
	m.choices.computed.Add(1)
	start := len(out)
	out = m.forIDs(ids, max, minLift, out)
	remember(slot, h, ids, max, minLift, out[start:], m.ids)
	return out
}

// choiceHash mixes a choice's key into 64 bits.
func choiceHash(ids []int32, max int, minLift float64) uint64 {
	h := uint64(max)*0x9e3779b97f4a7c15 ^ math.Float64bits(minLift)
	for _, id := range ids {
		h = (h ^ uint64(uint32(id))) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h
}

// recall appends the choice the slot holds for this key, if it holds it whole.
func (m *Model) recall(slot []atomic.Uint64, h uint64, ids []int32, max int, minLift float64, out []Suggestion) ([]Suggestion, bool) {
	seq := slot[wSeq].Load()
	if seq&1 != 0 || slot[wHash].Load() != h || slot[wLift].Load() != math.Float64bits(minLift) {
		return out, false
	}
	sizes := slot[wSizes].Load()
	if int(sizes&0xff) != max || int(sizes>>8&0xff) != len(ids) {
		return out, false
	}
	for i, id := range ids {
		if halfWord(slot, wIDs, i) != id {
			return out, false
		}
	}
	n := int(sizes >> 16 & 0xff)
	if n > rememberedList {
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
func remember(slot []atomic.Uint64, h uint64, ids []int32, max int, minLift float64, list []Suggestion, byID map[string]int32) {
	seq := slot[wSeq].Load()
	if seq&1 != 0 || !slot[wSeq].CompareAndSwap(seq, seq+1) {
		return
	}
	slot[wHash].Store(h)
	slot[wLift].Store(math.Float64bits(minLift))
	slot[wSizes].Store(uint64(max) | uint64(len(ids))<<8 | uint64(len(list))<<16)
	for i := 0; i < len(ids); i += 2 {
		slot[wIDs+i/2].Store(pair(ids, i))
	}
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
