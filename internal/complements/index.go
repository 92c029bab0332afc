package complements

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
)

// index is what choosing for a context reads, on every assign request with a learned
// strategy. A request's other work evicts the model from the CPU's caches between two
// choices, so its cost is the cache lines it reads more than the instructions it runs
// (docs/benchmarks.md); the index is laid out for few lines:
//
//   - every SKU the model holds (as a product or a complement) has a record in one string,
//     with its id (SKUs numbered in byte order, so that ids compare as SKUs do), where its
//     complements start and end, and its text: finding a SKU's complements, or writing a
//     chosen SKU, reads one record;
//   - a SKU is found by an open-addressing table of integers (its hash's upper half and its
//     record), checked against the record;
//   - every product's complements are edges in one array, best first, each with its
//     complement's id and record.
type index struct {
	seed    maphash.Seed
	records string   // the records, each at a multiple of 4
	edges   []edge   // every product's complements, best first, product after product
	table   []uint64 // SKU → record: a SKU hash's upper half | record+1, at the hash's slot; 0 is empty
	// escaped holds, by record, the JSON strings of the SKUs that JSON writes with escapes
	// (nil when none does, as for usual SKUs).
	escaped map[uint32]string
}

// A record is, in little-endian 32-bit words, the SKU's id, where its edges start and end,
// the length of its text; then the text, padded to a multiple of 4 bytes.
const (
	recID, recFirst, recEnd, recLen = 0, 4, 8, 12
	recText                         = 16
)

// edge is a complement as choosing reads it.
type edge struct {
	score, lift float64
	id          int32
	record      uint32
}

// newIndex numbers the SKUs of by and lays out their complements.
func newIndex(by map[string][]Complement) index {
	seen := make(map[string]bool, len(by))
	pairs := 0
	for p, list := range by {
		seen[p] = true
		pairs += len(list)
		for _, c := range list {
			seen[c.SKU] = true
		}
	}
	skus := slices.Sorted(maps.Keys(seen))
	x := index{seed: maphash.MakeSeed(), edges: make([]edge, 0, pairs)}
	// Records first, to know where each is; edges next.
	at := make([]uint32, len(skus))
	size := 0
	for id, sku := range skus {
		at[id] = uint32(size)
		size += recText + (len(sku)+3)/4*4
	}
	rec := make([]byte, size)
	slots := 2
	for slots < 2*len(skus) {
		slots <<= 1
	}
	x.table = make([]uint64, slots)
	for id, sku := range skus {
		r := rec[at[id]:]
		binary.LittleEndian.PutUint32(r[recID:], uint32(id))
		binary.LittleEndian.PutUint32(r[recFirst:], uint32(len(x.edges)))
		for _, c := range by[sku] {
			to, _ := slices.BinarySearch(skus, c.SKU)
			x.edges = append(x.edges, edge{score: c.Score, lift: c.Lift, id: int32(to), record: at[to]})
		}
		binary.LittleEndian.PutUint32(r[recEnd:], uint32(len(x.edges)))
		binary.LittleEndian.PutUint32(r[recLen:], uint32(len(sku)))
		copy(r[recText:], sku)
		if q := jsonString(sku); len(q) != len(sku)+2 {
			if x.escaped == nil {
				x.escaped = map[uint32]string{}
			}
			x.escaped[at[id]] = q
		}
		x.put(maphash.String(x.seed, sku), at[id])
	}
	x.records = string(rec)
	return x
}

// put adds a record to the table, which has room (it is kept at most half full).
func (x *index) put(h uint64, record uint32) {
	mask := uint64(len(x.table) - 1)
	i := h & mask
	for x.table[i] != 0 {
		i = (i + 1) & mask
	}
	x.table[i] = h>>32<<32 | uint64(record+1)
}

// hash is the hash of a SKU that the table and remembered choices use.
func (x *index) hash(sku string) uint64 { return maphash.String(x.seed, sku) }

// find returns the record of sku, whose hash is h; false for a SKU the model does not know.
func (x *index) find(sku string, h uint64) (uint32, bool) {
	mask := uint64(len(x.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := x.table[i]
		if e == 0 {
			return 0, false
		}
		if e>>32 == h>>32 {
			if r := uint32(e) - 1; x.sku(r) == sku {
				return r, true
			}
		}
	}
}

// word is the 32-bit word of the records at i.
func (x *index) word(i uint32) uint32 {
	s := x.records[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// sku is the SKU of a record.
func (x *index) sku(r uint32) string {
	return x.records[r+recText : r+recText+x.word(r+recLen)]
}

// complementsOf are the edges of a record's product, best first.
func (x *index) complementsOf(r uint32) []edge {
	return x.edges[x.word(r+recFirst):x.word(r+recEnd)]
}

// suggestion is the suggestion of a record's SKU with score.
func (x *index) suggestion(r uint32, score float64) Suggestion {
	s := Suggestion{SKU: x.sku(r), Score: score, plain: true, record: r}
	if x.escaped != nil {
		if q, ok := x.escaped[r]; ok {
			s.quoted, s.plain = q, false
		}
	}
	return s
}
