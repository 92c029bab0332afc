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
	// What ForContext reads, made by index: every SKU the model holds (as a product or a
	// complement) numbered, its JSON string encoded once, and each product's complements as
	// compact edges, so that choosing for a context touches a few cache lines and compares
	// numbers rather than strings.
	ids    map[string]int32
	skus   []string // by id
	quoted []string // by id
	edges  [][]edge // by the product's id
	// choices remembers what Choose chose for recent contexts (choose.go).
	choices *choices
}

// edge is a complement as ForContext reads it.
type edge struct {
	score, lift float64
	id          int32
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
	m.index()
	return m, nil
}

// index numbers the model's SKUs in byte order, so that ids compare as SKUs do, and builds
// what ForContext and Choose read.
func (m *Model) index() {
	m.choices = newChoices()
	seen := make(map[string]bool, len(m.by))
	for p, list := range m.by {
		seen[p] = true
		for _, c := range list {
			seen[c.SKU] = true
		}
	}
	m.skus = slices.Sorted(maps.Keys(seen))
	m.ids = make(map[string]int32, len(m.skus))
	m.quoted = make([]string, len(m.skus))
	for i, sku := range m.skus {
		m.ids[sku] = int32(i)
		m.quoted[i] = jsonString(sku)
	}
	m.edges = make([][]edge, len(m.skus))
	all := make([]edge, 0, m.Pairs)
	for p, list := range m.by {
		start := len(all)
		for _, c := range list {
			all = append(all, edge{score: c.Score, lift: c.Lift, id: m.ids[c.SKU]})
		}
		m.edges[m.ids[p]] = all[start:len(all):len(all)]
	}
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

	quoted string // SKU as a JSON string, as the model encoded it
}

// AppendSKU appends the suggestion's SKU as a JSON string.
func (s *Suggestion) AppendSKU(dst []byte) []byte {
	if s.quoted != "" {
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
// It runs on every assign request with learned strategies: a usual context's few dozen
// candidates are gathered on the stack and the best picked by selection, without a map or a
// sort (docs/benchmarks.md).
func (m *Model) ForContext(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	var small [16]int32
	return m.forIDs(m.known(context, small[:0]), max, minLift, out)
}

// known appends to ids the context's products the model knows, each once, in order (a product
// it does not know has no complements and is offered by none): what a choice depends on.
func (m *Model) known(context []string, ids []int32) []int32 {
	for _, p := range context {
		if id, ok := m.ids[p]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// forIDs is ForContext for the context's known products.
func (m *Model) forIDs(ids []int32, max int, minLift float64, out []Suggestion) []Suggestion {
	bound := 0
	for _, id := range ids {
		bound += len(m.edges[id])
	}
	var t candidates
	t.init(bound)
	for _, id := range ids {
		for _, e := range m.edges[id] {
			// What the cart holds already is not offered.
			if e.lift >= minLift && !slices.Contains(ids, e.id) {
				t.add(e.id, e.score)
			}
		}
	}
	// The best max by selection (max is small); only the chosen ones' SKUs are read.
	cand := t.list
	for i := range min(max, len(cand)) {
		best := i
		for j := i + 1; j < len(cand); j++ {
			if cand[j].better(cand[best]) {
				best = j
			}
		}
		cand[i], cand[best] = cand[best], cand[i]
		c := cand[i]
		out = append(out, Suggestion{SKU: m.skus[c.id], Score: c.score, quoted: m.quoted[c.id]})
	}
	return out
}

// candidate is a product ForContext may offer, with its score so far.
type candidate struct {
	score float64
	id    int32
}

// better orders candidates: the higher score first, then the SKU in byte order, which ids
// follow.
func (c candidate) better(d candidate) bool {
	if c.score != d.score {
		return c.score > d.score
	}
	return c.id < d.id
}

// smallCandidates is how many candidates ForContext finds by scanning a list on the stack; a
// context whose products have more complements in all (more than 3 products with the default
// 10 each) uses a map, so that a context of 100 products costs a linear, not a quadratic, time.
const smallCandidates = 32

// candidates gathers ForContext's candidates in order of arrival.
type candidates struct {
	list  []candidate
	big   map[int32]int // id → position in list, for a large context
	stack [smallCandidates]candidate
}

// init prepares for at most bound candidates.
func (t *candidates) init(bound int) {
	t.list = t.stack[:0]
	if bound > smallCandidates {
		t.big = make(map[int32]int, bound)
	}
}

// add adds score to id's candidate, making it if new.
func (t *candidates) add(id int32, score float64) {
	if t.big != nil {
		if pos, ok := t.big[id]; ok {
			t.list[pos].score += score
			return
		}
		t.big[id] = len(t.list)
	} else {
		for i := range t.list {
			if t.list[i].id == id {
				t.list[i].score += score
				return
			}
		}
	}
	t.list = append(t.list, candidate{score: score, id: id})
}

// NewModel returns a model of the given complements per product, for tests, benchmarks and
// tools that build one without the database. The lists must be best first.
func NewModel(snap Snapshot, by map[string][]Complement) *Model {
	if by == nil {
		by = map[string][]Complement{}
	}
	m := &Model{Snapshot: snap, by: by}
	m.index()
	return m
}
