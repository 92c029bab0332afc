package complements

import (
	"context"
	"encoding/json"
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

	// quoted is SKU as a JSON string, encoded once when the model loads: answers that offer
	// it copy it.
	quoted string
}

// Model is one snapshot held in memory: every product's complements, best first. It is
// immutable; a new snapshot is a new Model.
type Model struct {
	Snapshot
	by map[string][]Complement
}

// emptyModel is what a server holds before any snapshot was built.
var emptyModel = &Model{by: map[string][]Complement{}}

// Of returns the complements of sku, best first; nil for a product the model does not know.
// The slice is the model's: callers must not change it.
func (m *Model) Of(sku string) []Complement { return m.by[sku] }

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
		c.quoted = internString(intern, jsonString(c.SKU))
		all = append(all, c)
	}
	if err := rows.Err(); err != nil {
		return nil, database.Wrap(err, "loading complements snapshot %d", snap.Version)
	}
	flush()
	return m, nil
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

	quoted string // SKU as a JSON string, when the model had it encoded
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
func (m *Model) ForContext(context []string, max int, minLift float64, out []Suggestion) []Suggestion {
	base := len(out)
	for i, p := range context {
		if slices.Contains(context[:i], p) {
			continue // two lines of one product: its complements count once
		}
		for _, c := range m.by[p] {
			if c.Lift < minLift || slices.Contains(context, c.SKU) {
				continue
			}
			if i := slices.IndexFunc(out[base:], func(s Suggestion) bool { return s.SKU == c.SKU }); i >= 0 {
				out[base+i].Score += c.Score
				continue
			}
			out = append(out, Suggestion{SKU: c.SKU, Score: c.Score, quoted: c.quoted})
		}
	}
	chosen := out[base:]
	slices.SortFunc(chosen, func(a, b Suggestion) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.SKU, b.SKU)
	})
	if len(chosen) > max {
		out = out[:base+max]
	}
	return out
}

// NewModel returns a model of the given complements per product, for tests, benchmarks and
// tools that build one without the database. The lists must be best first.
func NewModel(snap Snapshot, by map[string][]Complement) *Model {
	if by == nil {
		by = map[string][]Complement{}
	}
	for _, list := range by {
		for i := range list {
			list[i].quoted = jsonString(list[i].SKU)
		}
	}
	return &Model{Snapshot: snap, by: by}
}
