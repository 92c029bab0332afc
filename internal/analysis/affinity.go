package analysis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
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
}

// Complement is a product that goes with another, seen from that other product.
type Complement struct {
	SKU        string  `json:"sku"`
	Orders     int64   `json:"orders"`
	Support    float64 `json:"support"`
	Confidence float64 `json:"confidence"` // P(this SKU | the product)
	Lift       float64 `json:"lift"`
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

// affinitySQL counts, over distinct (order, SKU) lines, every order, every SKU's orders and
// every pair's orders, keeping the pairs bought together often enough.
const affinitySQL = `
WITH b AS MATERIALIZED (
    SELECT DISTINCT order_id, sku FROM order_items WHERE $1::timestamptz IS NULL OR occurred_at >= $1::timestamptz
),
n AS (SELECT count(DISTINCT order_id) AS n FROM b),
s AS (SELECT sku, count(*) AS c FROM b GROUP BY sku),
p AS (
    SELECT x.sku AS a, y.sku AS b, count(*) AS ab
    FROM b x JOIN b y ON x.order_id = y.order_id AND x.sku < y.sku
    GROUP BY x.sku, y.sku HAVING count(*) >= $2
)
SELECT n.n, COALESCE(p.a, '') AS a, COALESCE(p.b, '') AS b, COALESCE(p.ab, 0) AS ab,
       COALESCE(sa.c, 0) AS ca, COALESCE(sb.c, 0) AS cb
FROM n LEFT JOIN p ON true LEFT JOIN s sa ON sa.sku = p.a LEFT JOIN s sb ON sb.sku = p.b`

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
	var since any
	if req.Since > 0 {
		t := s.now().Add(-req.Since).UTC()
		out.Since, since = &t, t
	}
	var rows []struct {
		N  int64  `db:"n"`
		A  string `db:"a"`
		B  string `db:"b"`
		AB int64  `db:"ab"`
		CA int64  `db:"ca"`
		CB int64  `db:"cb"`
	}
	if err := sqlx.SelectContext(ctx, s.db, &rows, affinitySQL, since, req.MinOrders); err != nil {
		return nil, fmt.Errorf("reading order items: %w", err)
	}
	byProduct := map[string]*ProductComplements{}
	product := func(sku string, orders int64) *ProductComplements {
		pc := byProduct[sku]
		if pc == nil {
			pc = &ProductComplements{SKU: sku, Orders: orders}
			byProduct[sku] = pc
		}
		return pc
	}
	for _, r := range rows {
		out.Orders = r.N
		if r.AB == 0 {
			continue
		}
		n := float64(r.N)
		p := Pair{A: r.A, B: r.B, Orders: r.AB, Support: float64(r.AB) / n,
			ConfidenceAB: float64(r.AB) / float64(r.CA), ConfidenceBA: float64(r.AB) / float64(r.CB),
			Lift: float64(r.AB) * n / (float64(r.CA) * float64(r.CB))}
		out.Pairs = append(out.Pairs, p)
		a, b := product(r.A, r.CA), product(r.B, r.CB)
		a.Complements = append(a.Complements, Complement{SKU: r.B, Orders: r.AB, Support: p.Support, Confidence: p.ConfidenceAB, Lift: p.Lift})
		b.Complements = append(b.Complements, Complement{SKU: r.A, Orders: r.AB, Support: p.Support, Confidence: p.ConfidenceBA, Lift: p.Lift})
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
