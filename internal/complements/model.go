package complements

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
)

// Complement is a product that goes with another, with the measures of the pair seen from
// that other product.
type Complement struct {
	SKU string `json:"sku"`
	// Score is the log-likelihood ratio G² of the pair: how strongly the orders say that the
	// two go together. It ranks a product's complements.
	Score      float64 `json:"score"`
	Lift       float64 `json:"lift"`
	Confidence float64 `json:"confidence"` // share of the product's orders that hold this SKU
	Support    float64 `json:"support"`    // share of all orders that hold both
	Orders     int64   `json:"orders"`     // orders that hold both
}

// Model is one snapshot held in memory: every product's complements, best first. It is
// immutable; a new snapshot is a new Model.
type Model struct {
	Snapshot
	by map[string][]Complement
	// index is what ForContext and Choose read (index.go).
	index
	// choices remembers what Choose chose for recent contexts (choose.go).
	choices *choices
}

// emptyModel is what a server holds before any snapshot was built.
var emptyModel = NewModel(Snapshot{}, nil)

// Of returns the complements of sku, best first; nil for a product the model does not know.
// The slice is the model's: callers must not change it.
func (m *Model) Of(sku string) []Complement { return m.by[sku] }

// Best returns, at most n of them, the products that have complements, strongest first: by
// the score of their best complement, ties by SKU.
func (m *Model) Best(n int) []string {
	skus := slices.Collect(maps.Keys(m.by))
	slices.SortFunc(skus, func(a, b string) int {
		if sa, sb := m.by[a][0].Score, m.by[b][0].Score; sa != sb {
			if sa > sb {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return skus[:min(n, len(skus))]
}

// Len is the number of products with at least one complement.
func (m *Model) Len() int { return len(m.by) }

// Built reports whether the model comes from a snapshot (false before the first build).
func (m *Model) Built() bool { return m.Version > 0 }

// LoadModel reads the snapshot of the given version into memory.
func LoadModel(ctx context.Context, db *sqlx.DB, snap *Snapshot) (*Model, error) {
	rows, err := db.QueryContext(ctx, `SELECT sku, complement, llr, lift, confidence, support, orders
		FROM complements WHERE version = $1 ORDER BY sku, rank`, snap.Version)
	if err != nil {
		return nil, database.Wrap(err, "loading complements snapshot %d", snap.Version)
	}
	defer rows.Close()
	m := &Model{Snapshot: *snap, by: make(map[string][]Complement, snap.Products)}
	// The rows come product by product: each product's list is cut from one array, and SKU
	// strings are shared between a product and its appearances as a complement.
	all := make([]Complement, 0, snap.Pairs)
	intern := make(map[string]string, snap.Catalog)
	start, current := 0, ""
	flush := func() {
		if len(all) > start {
			m.by[current] = slices.Clip(all[start:])
		}
		start = len(all)
	}
	for rows.Next() {
		var sku string
		var c Complement
		if err := rows.Scan(&sku, &c.SKU, &c.Score, &c.Lift, &c.Confidence, &c.Support, &c.Orders); err != nil {
			return nil, database.Wrap(err, "loading complements snapshot %d", snap.Version)
		}
		if sku != current {
			flush()
			current = internString(intern, sku)
		}
		c.SKU = internString(intern, c.SKU)
		all = append(all, c)
	}
	if err := rows.Err(); err != nil {
		return nil, database.Wrap(err, "loading complements snapshot %d", snap.Version)
	}
	flush()
	m.prepare()
	return m, nil
}

// prepare builds what ForContext and Choose read.
func (m *Model) prepare() {
	m.choices = newChoices()
	m.index = newIndex(m.by)
}

func internString(m map[string]string, s string) string {
	if v, ok := m[s]; ok {
		return v
	}
	s = strings.Clone(s)
	m[s] = s
	return s
}

// Suggestion is a product chosen for a shopping context, with its score: the sum of its G²
// with each product of the context it complements.
type Suggestion struct {
	SKU   string  `json:"sku"`
	Score float64 `json:"score"`

	plain  bool   // SKU needs no escape as a JSON string (the model checked)
	quoted string // SKU as a JSON string, when the model found it needs escapes
	record uint32 // where the model keeps the SKU, when the model made the suggestion
}

// AppendSKU appends the suggestion's SKU as a JSON string.
func (s *Suggestion) AppendSKU(dst []byte) []byte {
	switch {
	case s.plain:
		dst = append(dst, '"')
		dst = append(dst, s.SKU...)
		return append(dst, '"')
	case s.quoted != "":
		return append(dst, s.quoted...)
	}
	return append(dst, jsonString(s.SKU)...)
}

// jsonString is s encoded as a JSON string.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return string(b)
}

// ForContext chooses up to max products to offer with the context's products (the product on
// the page, or the cart's lines): the complements of any of them whose lift with it is at
// least minLift, scored by the sum of their G² with the context's products they complement
// (a product that goes with two lines of the cart beats one that goes with one, other things
// equal), best first, ties by SKU. A product of the context is never suggested. The result is
// appended to out.
//
// It runs on every assign request with learned strategies whose choice is not remembered
// (Choose): a usual context's few dozen candidates are gathered on the stack and the best
// picked by selection, without a map or a sort (docs/benchmarks.md).
func (m *Model) ForContext(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	var small [16]uint32
	var buf [smallCandidates]candidate
	for _, c := range m.rank(m.known(context, nil, small[:0]), max, minLift, buf[:0]) {
		out = append(out, m.suggestion(c.record, c.score))
	}
	return out
}

// known appends to records those of the context's products the model knows, each once, in
// order (a product it does not know has no complements and is offered by none): what a
// choice depends on. hashes are the products' hashes when the caller has them (nil: computed
// here).
func (m *Model) known(context []string, hashes []uint64, records []uint32) []uint32 {
	for i, p := range context {
		var h uint64
		if hashes != nil {
			h = hashes[i]
		} else {
			h = m.hash(p)
		}
		if r, ok := m.find(p, h); ok && !slices.Contains(records, r) {
			records = append(records, r)
		}
	}
	return records
}

// rank returns the best max candidates for the context's known products, best first, in
// buf's memory when it has room.
func (m *Model) rank(context []uint32, max int, minLift float64, buf []candidate) []candidate {
	if max < 1 {
		return buf[:0]
	}
	bound := 0
	for _, r := range context {
		bound += len(m.complementsOf(r))
	}
	// Candidates in order of arrival; a candidate met again is found through seen (its
	// position+1 at a slot its id hashes to, for a usual context) or big (for a large one).
	list := buf[:0]
	var seen [2 * smallCandidates]uint8
	var big map[int32]int
	if bound > smallCandidates {
		big = make(map[int32]int, bound)
	}
	for _, r := range context {
		for _, e := range m.complementsOf(r) {
			// What the cart holds already is not offered.
			if e.lift < minLift || slices.Contains(context, e.record) {
				continue
			}
			if big != nil {
				if p, ok := big[e.id]; ok {
					list[p].score += e.score
					continue
				}
				big[e.id] = len(list)
				list = append(list, candidate{score: e.score, id: e.id, record: e.record})
				continue
			}
			i := uint32(e.id) * 0x9e3779b1 >> 26 // 6 bits: len(seen) is 64
			for seen[i] != 0 && list[seen[i]-1].id != e.id {
				i = (i + 1) % uint32(len(seen))
			}
			if seen[i] != 0 {
				list[seen[i]-1].score += e.score
				continue
			}
			list = append(list, candidate{score: e.score, id: e.id, record: e.record})
			seen[i] = uint8(len(list))
		}
	}
	// The best max, in place: list[:n] is kept sorted, best first, and a candidate better
	// than its last is inserted (one comparison for most candidates, max being small).
	n := min(max, len(list))
	for i := 1; i < n; i++ {
		insert(list[:i+1], list[i])
	}
	for i := n; i < len(list); i++ {
		if c := list[i]; c.better(list[n-1]) {
			list[i] = list[n-1]
			insert(list[:n], c)
		}
	}
	return list[:n]
}

// insert puts c into top, sorted best first but for its last place, which it overwrites.
func insert(top []candidate, c candidate) {
	j := len(top) - 1
	for ; j > 0 && c.better(top[j-1]); j-- {
		top[j] = top[j-1]
	}
	top[j] = c
}

// candidate is a product ForContext may offer, with its score so far.
type candidate struct {
	score  float64
	id     int32
	record uint32
}

// better orders candidates: the higher score first, then the SKU in byte order, which ids
// follow.
func (c candidate) better(d candidate) bool {
	if c.score != d.score {
		return c.score > d.score
	}
	return c.id < d.id
}

// smallCandidates is how many candidates rank finds by scanning a list on the caller's stack;
// a context whose products have more complements in all (more than 3 products with the
// default 10 each) uses a map, so that a context of 100 products costs a linear, not a
// quadratic, time.
const smallCandidates = 32

// NewModel returns a model of the given complements per product, for tests, benchmarks and
// tools that build one without the database. The lists must be best first.
func NewModel(snap Snapshot, by map[string][]Complement) *Model {
	if by == nil {
		by = map[string][]Complement{}
	}
	m := &Model{Snapshot: snap, by: by}
	m.prepare()
	return m
}
