package complements

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// PairQuery selects the orders whose pairs Pairs counts.
type PairQuery struct {
	From, Until time.Time // orders placed in [From, Until); zero From: since the first
	MinOrders   int       // pairs bought together fewer times are left out (at least 1)
	MaxBasket   int       // orders of more distinct products are left out; 0: none is
	Excluded    []string  // SKUs left out of every pair
}

// Pair is two products bought together (A < B), with the association measures of the pair.
type Pair struct {
	A            string  `json:"a"`
	B            string  `json:"b"`
	Orders       int64   `json:"orders"`   // orders holding both
	OrdersA      int64   `json:"orders_a"` // orders holding A
	OrdersB      int64   `json:"orders_b"` // orders holding B
	Support      float64 `json:"support"`  // Orders / all orders
	ConfidenceAB float64 `json:"confidence_ab"`
	ConfidenceBA float64 `json:"confidence_ba"`
	Lift         float64 `json:"lift"` // above 1: bought together more often than by chance
	LLR          float64 `json:"llr"`  // Dunning's G²; 0 when the pair is no more frequent than chance
}

// PairTable is every pair of the selected orders bought together often enough.
type PairTable struct {
	Orders        int64  `json:"orders"`         // orders counted
	SkippedOrders int64  `json:"skipped_orders"` // orders over MaxBasket, left out
	Pairs         []Pair `json:"pairs"`          // in no particular order
}

// pairsSQL counts and measures the pairs of the selected orders as the build does; a window
// without pairs still gives one row, with the totals.
var pairsSQL = `WITH
baskets AS MATERIALIZED (` + fill(basketsSQL, map[string]string{"from": "$1", "until": "$2", "excluded": "$5"}) + `),` +
	fill(countsCTE, map[string]string{"baskets": "baskets", "max_basket": "$3", "min_orders": "$4"}) + `,
measured AS (` + fill(measuredSQL, map[string]string{"pairs": "pairs"}) + `)
SELECT t.n, t.skipped, m.a, m.b, m.ab, m.ca, m.cb, m.support, m.confidence_ab, m.confidence_ba, m.lift, m.llr
FROM totals t LEFT JOIN measured m ON true`

// pairRow is a row of pairsSQL; the pair's columns are NULL in the totals' row of a window
// without pairs.
type pairRow struct {
	N       int64           `db:"n"`
	Skipped int64           `db:"skipped"`
	A       sql.NullString  `db:"a"`
	B       sql.NullString  `db:"b"`
	AB      sql.NullInt64   `db:"ab"`
	CA      sql.NullInt64   `db:"ca"`
	CB      sql.NullInt64   `db:"cb"`
	Support sql.NullFloat64 `db:"support"`
	ConfAB  sql.NullFloat64 `db:"confidence_ab"`
	ConfBA  sql.NullFloat64 `db:"confidence_ba"`
	Lift    sql.NullFloat64 `db:"lift"`
	LLR     sql.NullFloat64 `db:"llr"`
}

// Pairs counts the pairs of products bought together in the selected orders and measures
// each: the pair statistics of `analyze affinity`, from the counts the model is built on.
func Pairs(ctx context.Context, db sqlx.QueryerContext, q PairQuery) (*PairTable, error) {
	if q.MinOrders < 1 {
		return nil, fmt.Errorf("counting pairs: min orders must be at least 1, got %d", q.MinOrders)
	}
	maxBasket := q.MaxBasket
	if maxBasket <= 0 {
		maxBasket = math.MaxInt32
	}
	until := q.Until
	if until.IsZero() {
		until = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	from := q.From
	if from.IsZero() {
		from = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	excluded := q.Excluded
	if excluded == nil {
		excluded = []string{}
	}
	rows, err := db.QueryxContext(ctx, pairsSQL, from, until, maxBasket, q.MinOrders, pq.StringArray(excluded))
	if err != nil {
		return nil, database.Wrap(err, "counting pairs of products bought together")
	}
	defer rows.Close()
	t := &PairTable{Pairs: []Pair{}}
	for rows.Next() {
		var p pairRow
		if err := rows.StructScan(&p); err != nil {
			return nil, database.Wrap(err, "counting pairs of products bought together")
		}
		t.Orders, t.SkippedOrders = p.N, p.Skipped
		if p.A.Valid { // else the totals' row of a window without pairs
			t.Pairs = append(t.Pairs, Pair{A: p.A.String, B: p.B.String, Orders: p.AB.Int64, OrdersA: p.CA.Int64, OrdersB: p.CB.Int64,
				Support: p.Support.Float64, ConfidenceAB: p.ConfAB.Float64, ConfidenceBA: p.ConfBA.Float64,
				Lift: p.Lift.Float64, LLR: p.LLR.Float64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, database.Wrap(err, "counting pairs of products bought together")
	}
	return t, nil
}
