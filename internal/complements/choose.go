package complements

import (
	"encoding/binary"
	"math"
	"strconv"
	"sync/atomic"

	"github.com/xsell/xsell/internal/hashmix"
)

// rememberedList bounds a remembered list: a longer one is chosen afresh on every request
// (max_products is at most 20).
const rememberedList = 20

// Remembered choices live in two tables of slots: one of narrow slots, three cache lines
// each, for lists of up to narrowList products (max_products's default is 3), and one of
// wide slots, four lines, for longer ones, made when first needed. A slot is words of
// numbers only, so that the table holds no pointer and the garbage collector never scans it
// (a table of pointers to remembered lists cost a scan of every one at every collection:
// docs/benchmarks.md):
//
//	word 0     a sequence lock: seq<<16 | len(list)<<8 | max; seq is odd while a writer
//	           fills the slot
//	word 1     the key: a 64-bit hash of the context's SKUs, max and min_lift
//	word 2     the length of the list's JSON (0: not kept) and where its scores start
//	JSON       narrow slots: the list as JSON (ChooseJSON), when it fits
//	records    the list's SKUs, as their records in the index, two a word
//	scores     the list's scores
//
// An answer needs only the list's JSON, which a narrow slot keeps in its first two lines:
// a remembered answer reads those and nothing of the model. The key is hashed from the
// context's strings rather than their records, so that a remembered choice costs no look-up
// of the context in the model; two contexts taken for one need their 64-bit keys to collide,
// from hashes seeded per model, out of an attacker's reach.
const (
	narrowList  = 4
	narrowJSON  = 15                                         // words
	narrowWords = 3 + narrowJSON + narrowList/2 + narrowList // 24: three cache lines
	narrowSlots = 16384
	wideWords   = 3 + rememberedList/2 + rememberedList // 33
	wideSlots   = 4096
)

// choices remembers recent choices for contexts: product pages and carts repeat across
// shoppers, and a choice depends only on the model, the context and the strategy's bounds. A
// slot holds the last choice that hashed to it; a collision replaces it, and a writer that
// finds the slot being written skips remembering.
type choices struct {
	// narrow and wide are the tables; a large allocation starts on a page, so that a narrow
	// slot fills whole cache lines.
	narrow   []atomic.Uint64
	wide     atomic.Pointer[[]atomic.Uint64]
	computed atomic.Int64 // choices computed rather than remembered, for tests
}

func newChoices() *choices {
	return &choices{narrow: make([]atomic.Uint64, narrowSlots*narrowWords)}
}

// slot is where a choice is remembered.
type slot struct {
	w    []atomic.Uint64
	json int // words of JSON it keeps (0 for a wide slot)
	size int // products it keeps
}

func (s slot) records() int { return 3 + s.json }
func (s slot) scores() int  { return 3 + s.json + s.size/2 }

// slot returns the slot of key for lists of max products.
func (c *choices) slot(key uint64, max int) slot {
	if max <= narrowList {
		i := key & (narrowSlots - 1)
		return slot{w: c.narrow[i*narrowWords : (i+1)*narrowWords], json: narrowJSON, size: narrowList}
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
	return slot{w: (*wide)[i*wideWords : (i+1)*wideWords], size: rememberedList}
}

// Context is the products choices are made for (the product on the page, or the cart's lines),
// hashed once under a model: every choice of a request (one per max_products and min_lift of
// its learned strategies) and the request's own digest (Key) reuse the hashes, rather than
// hashing the SKUs again for each. Reset fills it; its memory is reused.
type Context struct {
	Products []string
	model    *Model
	hashes   [maxHashed]uint64 // the first products' hashes, for looking them up
	sum      uint64            // every product's hash, mixed in order
}

// Reset sets the context to products, hashed under m (which may be nil: no choice then).
func (c *Context) Reset(m *Model, products []string) {
	c.Products, c.model, c.sum = products, m, 0
	if m == nil {
		return
	}
	sum := hashmix.Mix(uint64(len(products)))
	for i, p := range products {
		h := m.hash(p)
		if i < maxHashed {
			c.hashes[i] = h
		}
		sum = hashmix.Mix(sum ^ h)
	}
	c.sum = sum
}

// Key is a 64-bit digest of the context's products, in order, under its model: two contexts
// of the same products have the same key, and others the same key only by a collision of
// hashes seeded per model, out of an attacker's reach.
func (c *Context) Key() uint64 { return c.sum }

// known are the hashes of the context's products, unless it is too long to have kept them.
func (c *Context) known() []uint64 {
	if len(c.Products) > maxHashed {
		return nil
	}
	return c.hashes[:len(c.Products)]
}

// key is the key of a choice for the context, max and minLift.
func (c *Context) key(max int, minLift float64) uint64 {
	return hashmix.Mix(c.sum ^ hashmix.Mix(math.Float64bits(minLift)^uint64(max)<<56))
}

// maxHashed is the largest context whose products' hashes Context keeps for looking them up
// (a product page or a cart of usual size; a larger one's are computed again).
const maxHashed = 16

// Choose is ForContext remembered: the same context, max and minLift on the same model get
// the same list, computed once. The list is appended to out.
func (m *Model) Choose(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	var c Context
	c.Reset(m, context)
	return c.Choose(max, minLift, out)
}

// Choose is Model.Choose for the context, on the model it was hashed under.
func (c *Context) Choose(max int, minLift float64, out []Suggestion) []Suggestion {
	m := c.model
	if m == nil || len(c.Products) == 0 {
		return out
	}
	if max < 1 || max > rememberedList {
		m.choices.computed.Add(1)
		return m.ForContext(c.Products, max, minLift, out)
	}
	key := c.key(max, minLift)
	s := m.choices.slot(key, max)
	if got, ok := m.recall(s, key, max, out); ok {
		return got
	}
	start := len(out)
	out = m.compute(c, max, minLift, out)
	remember(s, key, max, out[start:], nil, 0)
	return out
}

// ChooseJSON appends to dst the JSON of what Choose chooses for the context: its SKUs as the
// elements of an array, then its scores as the elements of another, which start at scores. A
// remembered choice is read as JSON, without its list; a choice computed here is appended to
// out too, and listed reports it (otherwise Choose gives the list again).
func (c *Context) ChooseJSON(max int, minLift float64, dst []byte, out []Suggestion) (json []byte, scores int, list []Suggestion, listed bool) {
	start := len(out)
	m := c.model
	if m == nil || len(c.Products) == 0 || max < 1 || max > rememberedList {
		out = c.Choose(max, minLift, out)
		dst, scores = AppendJSON(dst, out[start:])
		return dst, scores, out, true
	}
	key := c.key(max, minLift)
	s := m.choices.slot(key, max)
	if json, scores, ok := recallJSON(s, key, max, dst); ok {
		return json, scores, out, false
	}
	var remembered bool
	if out, remembered = m.recall(s, key, max, out); !remembered {
		out = m.compute(c, max, minLift, out)
	}
	from := len(dst)
	dst, scores = AppendJSON(dst, out[start:])
	if !remembered || s.json > 0 && len(dst)-from <= 8*s.json {
		remember(s, key, max, out[start:], dst[from:], scores-from)
	}
	return dst, scores, out, true
}

// compute appends the choice for the context.
func (m *Model) compute(c *Context, max int, minLift float64, out []Suggestion) []Suggestion {
	m.choices.computed.Add(1)
	var small [16]uint32
	var buf [smallCandidates]candidate
	for _, cand := range m.rank(m.known(c.Products, c.known(), small[:0]), max, minLift, buf[:0]) {
		out = append(out, m.suggestion(cand.record, cand.score))
	}
	return out
}

// AppendJSON appends the list's SKUs as the elements of a JSON array, then its scores as the
// elements of another, which start at scores.
func AppendJSON(dst []byte, list []Suggestion) (json []byte, scores int) {
	for i := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = list[i].AppendSKU(dst)
	}
	scores = len(dst)
	for i := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendScore(dst, list[i].Score)
	}
	return dst, scores
}

// recall appends the choice the slot holds for this key, if it holds it whole.
func (m *Model) recall(s slot, key uint64, max int, out []Suggestion) ([]Suggestion, bool) {
	head := s.w[0].Load()
	if head&(1<<16) != 0 || s.w[1].Load() != key || int(head&0xff) != max {
		return out, false
	}
	n := int(head >> 8 & 0xff)
	if n > s.size {
		return out, false
	}
	var records [rememberedList]uint32
	var scores [rememberedList]float64
	for i := range n {
		records[i] = uint32(s.w[s.records()+i/2].Load() >> (32 * (i % 2)))
		scores[i] = math.Float64frombits(s.w[s.scores()+i].Load())
	}
	if s.w[0].Load() != head {
		return out, false // rewritten meanwhile
	}
	for i := range n {
		out = append(out, m.suggestion(records[i], scores[i]))
	}
	return out, true
}

// recallJSON appends the JSON of the choice the slot holds for this key, if it holds it
// whole.
func recallJSON(s slot, key uint64, max int, dst []byte) ([]byte, int, bool) {
	head := s.w[0].Load()
	if head&(1<<16) != 0 || s.w[1].Load() != key || int(head&0xff) != max {
		return dst, 0, false
	}
	lens := s.w[2].Load()
	size, scores := int(lens&0xffff), int(lens>>16&0xffff)
	if size == 0 && head>>8&0xff != 0 || size > 8*s.json || scores > size {
		return dst, 0, false // not kept as JSON
	}
	from := len(dst)
	for i := 0; i < size; i += 8 {
		dst = binary.LittleEndian.AppendUint64(dst, s.w[3+i/8].Load())
	}
	dst = dst[:from+size]
	if s.w[0].Load() != head {
		return dst[:from], 0, false // rewritten meanwhile
	}
	return dst, from + scores, true
}

// remember stores a choice in the slot, with its JSON when the slot has room for it (json
// is nil for none; its scores start at scores), unless another writer is filling the slot.
func remember(s slot, key uint64, max int, list []Suggestion, json []byte, scores int) {
	head := s.w[0].Load()
	if head&(1<<16) != 0 || !s.w[0].CompareAndSwap(head, head+1<<16) {
		return
	}
	s.w[1].Store(key)
	if len(json) > 8*s.json || (json == nil && len(list) > 0) {
		json, scores = nil, 0
	}
	s.w[2].Store(uint64(len(json)) | uint64(scores)<<16)
	for i := 0; i < len(json); i += 8 {
		var word [8]byte
		copy(word[:], json[i:])
		s.w[3+i/8].Store(binary.LittleEndian.Uint64(word[:]))
	}
	for i := 0; i < len(list); i += 2 {
		w := uint64(list[i].record)
		if i+1 < len(list) {
			w |= uint64(list[i+1].record) << 32
		}
		s.w[s.records()+i/2].Store(w)
	}
	for i := range list {
		s.w[s.scores()+i].Store(math.Float64bits(list[i].Score))
	}
	seq := head>>16 + 2
	s.w[0].Store(seq<<16 | uint64(len(list))<<8 | uint64(max))
}

// AppendScore appends a score (≥ 0) rounded to three decimals, as the shortest decimal:
// 51.783, 40, 0.5. strconv's shortest formatting of a float was a tenth of a learned
// answer's time; a score is a finite, non-negative sum of G² values.
func AppendScore(dst []byte, score float64) []byte {
	if !(score >= 0 && score < 1e15) {
		return strconv.AppendFloat(dst, score, 'g', -1, 64)
	}
	milli := int64(math.Round(score * 1000))
	dst = strconv.AppendInt(dst, milli/1000, 10)
	frac := milli % 1000
	if frac == 0 {
		return dst
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}
