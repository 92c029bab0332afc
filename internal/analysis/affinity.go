package analysis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/xsell/xsell/internal/complements"
)

// AffinityRequest is what `analyze affinity` asks for.
type AffinityRequest struct {
	Since     time.Duration // only orders placed this long before now; 0: all orders
	MinOrders int           // a pair must be bought together in at least this many orders
	Top       int           // pairs listed, and complements listed per product
}

// Pair is two products bought together, with the association-rule measures of the pair.
type Pair struct {
	A            string  `json:"a"`
	B            string  `json:"b"`
	Orders       int64   `json:"orders"`        // orders holding both
	Support      float64 `json:"support"`       // Orders / all orders
	ConfidenceAB float64 `json:"confidence_ab"` // P(B in order | A in order)
	ConfidenceBA float64 `json:"confidence_ba"` // P(A in order | B in order)
	Lift         float64 `json:"lift"`          // support / (P(A)·P(B)); above 1: bought together more than by chance
	LLR          float64 `json:"llr"`           // Dunning's G²: the evidence that they go together (0 when lift ≤ 1)
}

// Complement is a product that goes with another, seen from that other product.
type Complement struct {
	SKU        string  `json:"sku"`
	Orders     int64   `json:"orders"`
	Support    float64 `json:"support"`
	Confidence float64 `json:"confidence"` // P(this SKU | the product)
	Lift       float64 `json:"lift"`
	LLR        float64 `json:"llr"` // Dunning's G² of the pair
}

// ProductComplements is a product's best complements, the candidates for a bundle with it.
type ProductComplements struct {
	SKU         string       `json:"sku"`
	Orders      int64        `json:"orders"`
	Complements []Complement `json:"complements"`
}

// Affinity is the result of `analyze affinity`.
type Affinity struct {
	Since     *time.Time           `json:"since,omitempty"`
	Orders    int64                `json:"orders"`
	MinOrders int                  `json:"min_orders"`
	Pairs     []Pair               `json:"pairs"`
	Products  []ProductComplements `json:"products"`
}

// Affinity mines order lines for products bought together.
func (s *Source) Affinity(ctx context.Context, req AffinityRequest) (*Affinity, error) {
	if req.MinOrders < 1 {
		return nil, errors.New("min-orders must be at least 1")
	}
	if req.Top < 1 {
		return nil, errors.New("top must be at least 1")
	}
	if req.Since < 0 {
		return nil, errors.New("since must be a positive duration")
	}
	out := &Affinity{MinOrders: req.MinOrders, Pairs: []Pair{}, Products: []ProductComplements{}}
	// The pair counts and measures are the complements model's, over every order of the window.
	q := complements.PairQuery{MinOrders: req.MinOrders}
	if req.Since > 0 {
		t := s.now().Add(-req.Since).UTC()
		out.Since, q.From = &t, t
	}
	table, err := complements.Pairs(ctx, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("reading order items: %w", err)
	}
	out.Orders = table.Orders
	byProduct := map[string]*ProductComplements{}
	product := func(sku string, orders int64) *ProductComplements {
		pc := byProduct[sku]
		if pc == nil {
			pc = &ProductComplements{SKU: sku, Orders: orders}
			byProduct[sku] = pc
		}
		return pc
	}
	for _, r := range table.Pairs {
		p := Pair{A: r.A, B: r.B, Orders: r.Orders, Support: r.Support,
			ConfidenceAB: r.ConfidenceAB, ConfidenceBA: r.ConfidenceBA, Lift: r.Lift, LLR: r.LLR}
		out.Pairs = append(out.Pairs, p)
		a, b := product(r.A, r.OrdersA), product(r.B, r.OrdersB)
		a.Complements = append(a.Complements, Complement{SKU: r.B, Orders: r.Orders, Support: p.Support, Confidence: p.ConfidenceAB, Lift: p.Lift, LLR: p.LLR})
		b.Complements = append(b.Complements, Complement{SKU: r.A, Orders: r.Orders, Support: p.Support, Confidence: p.ConfidenceBA, Lift: p.Lift, LLR: p.LLR})
	}
	// Highest lift first: the pairs most specific to each other; ties by more evidence.
	sort.Slice(out.Pairs, func(i, j int) bool {
		x, y := out.Pairs[i], out.Pairs[j]
		if x.Lift != y.Lift {
			return x.Lift > y.Lift
		}
		if x.Orders != y.Orders {
			return x.Orders > y.Orders
		}
		return x.A+"\x00"+x.B < y.A+"\x00"+y.B
	})
	if len(out.Pairs) > req.Top {
		out.Pairs = out.Pairs[:req.Top]
	}
	for _, k := range sortedKeys(byProduct) {
		pc := byProduct[k]
		sort.Slice(pc.Complements, func(i, j int) bool {
			x, y := pc.Complements[i], pc.Complements[j]
			if x.Lift != y.Lift {
				return x.Lift > y.Lift
			}
			if x.Confidence != y.Confidence {
				return x.Confidence > y.Confidence
			}
			return x.SKU < y.SKU
		})
		if len(pc.Complements) > req.Top {
			pc.Complements = pc.Complements[:req.Top]
		}
		out.Products = append(out.Products, *pc)
	}
	// The best-selling products first: their bundles reach the most shoppers.
	sort.SliceStable(out.Products, func(i, j int) bool { return out.Products[i].Orders > out.Products[j].Orders })
	return out, nil
}
