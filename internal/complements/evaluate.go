package complements

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// EvalRequest says how to evaluate the model offline.
type EvalRequest struct {
	// Settings are the current settings: their window and excluded SKUs frame the orders, and
	// their thresholds are the first row of the result.
	Settings Settings
	// Until ends the window (now).
	Until time.Time
	// HoldOut is the share of the window's orders, the latest, kept for testing (0.1).
	HoldOut float64
	// K is how many complements of a product are offered (3).
	K int
	// Grid lists the thresholds tried besides the current ones: every combination of these.
	// An empty list keeps the current value.
	MinOrders []int
	MinLLR    []float64
	MinLift   []float64
}

// DefaultGrid fills the grid of thresholds with a few values around the usual ones.
func (r *EvalRequest) DefaultGrid() {
	if len(r.MinOrders) == 0 {
		r.MinOrders = []int{2, 3, 5, 10}
	}
	if len(r.MinLLR) == 0 {
		r.MinLLR = []float64{0, 3.84, 10.83}
	}
}

// Validate reports a request that cannot be evaluated.
func (r *EvalRequest) Validate() error {
	if err := r.Settings.Validate(); err != nil {
		return err
	}
	switch {
	case !(r.HoldOut > 0 && r.HoldOut < 1):
		return fmt.Errorf("the held-out share must be between 0 and 1, got %v", r.HoldOut)
	case r.K < 1 || r.K > MaxComplementsCap:
		return fmt.Errorf("k must be from 1 to %d, got %d", MaxComplementsCap, r.K)
	case len(r.MinOrders)*max(len(r.MinLLR), 1)*max(len(r.MinLift), 1) > 100:
		return errors.New("the grid has more than 100 combinations of thresholds")
	}
	for _, s := range r.grid() {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("grid: %w", err)
		}
	}
	return nil
}

// grid is the current settings followed by every other combination of the grid's values.
func (r *EvalRequest) grid() []Settings {
	out := []Settings{r.Settings}
	orders, llrs, lifts := r.MinOrders, r.MinLLR, r.MinLift
	if len(orders) == 0 {
		orders = []int{r.Settings.MinOrders}
	}
	if len(llrs) == 0 {
		llrs = []float64{r.Settings.MinLLR}
	}
	if len(lifts) == 0 {
		lifts = []float64{r.Settings.MinLift}
	}
	for _, o := range orders {
		for _, l := range llrs {
			for _, f := range lifts {
				s := r.Settings
				s.MinOrders, s.MinLLR, s.MinLift = o, l, f
				if !slices.ContainsFunc(out, func(x Settings) bool { return sameThresholds(x, s) }) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func sameThresholds(a, b Settings) bool {
	return a.MinOrders == b.MinOrders && a.MinLLR == b.MinLLR && a.MinLift == b.MinLift &&
		a.MinConfidence == b.MinConfidence && a.MaxComplements == b.MaxComplements
}

// Evaluation is what replaying the held-out orders found.
type Evaluation struct {
	WindowStart time.Time `json:"window_start"`
	Split       time.Time `json:"split"` // the first held-out order was placed then
	WindowEnd   time.Time `json:"window_end"`
	TrainOrders int64     `json:"train_orders"`
	TestOrders  int64     `json:"test_orders"` // held out, with at least two products
	// Trials are the (held-out order, product in it) pairs: the product is the one on the
	// page, and the trial hits when one of its K complements is among the order's others.
	Trials  int64 `json:"trials"`
	K       int   `json:"k"`
	Catalog int   `json:"catalog"` // products bought in the training orders
	// Popularity is the hit rate of offering the K best sellers (other than the product): the
	// baseline a model has to beat to be worth serving.
	Popularity float64   `json:"popularity_hit_rate"`
	Rows       []EvalRow `json:"rows"`
	Settings   Settings  `json:"settings"`
}

// EvalRow is one setting of the thresholds and how it did.
type EvalRow struct {
	Current       bool    `json:"current"`
	MinOrders     int     `json:"min_orders"`
	MinLLR        float64 `json:"min_llr"`
	MinLift       float64 `json:"min_lift"`
	MinConfidence float64 `json:"min_confidence"`
	// Products have at least one complement; Coverage is their share of the catalog.
	Products int     `json:"products"`
	Coverage float64 `json:"coverage"`
	// CoveredTrials is the share of trials whose product had a complement to offer.
	CoveredTrials float64 `json:"covered_trials"`
	// HitRate is the share of trials that hit; HitRateCovered the share of covered ones.
	HitRate        float64 `json:"hit_rate"`
	HitRateCovered float64 `json:"hit_rate_covered"`
}

// evalBasketsSQL keeps the window's baskets with their order by time, for the split.
var evalBasketsSQL = `CREATE TEMP TABLE eval_baskets ON COMMIT DROP AS
SELECT *, row_number() OVER (ORDER BY placed_at, order_id) AS seq FROM (` +
	fill(basketsSQL, map[string]string{"from": "$1", "until": "$2", "excluded": "$3"}) + `) b`

// evalMeasuredSQL measures the pairs of the training orders (seq <= $1) as the build does.
var evalMeasuredSQL = `CREATE TEMP TABLE eval_measured ON COMMIT DROP AS WITH
baskets AS (SELECT * FROM eval_baskets WHERE seq <= $1),` +
	fill(countsCTE, map[string]string{"baskets": "baskets", "max_basket": "$2", "min_orders": "$3"}) + `
` + fill(measuredSQL, map[string]string{"pairs": "pairs"})

// evalRankedSQL ranks the measured training pairs under one setting of the thresholds.
var evalRankedSQL = `WITH` + fill(rankedCTE, map[string]string{"measured": "eval_measured",
	"min_orders": "$1", "min_confidence": "$2", "min_lift": "$3", "min_llr": "$4"}) + `
SELECT sku, complement FROM ranked WHERE rank <= $5 ORDER BY sku, rank`

// Evaluate holds out the latest orders of the window, builds the model on the others under
// each setting of the grid, and replays the held-out orders against it.
func Evaluate(ctx context.Context, db *sqlx.DB, req EvalRequest) (*Evaluation, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	s := req.Settings.normalize()
	ev := &Evaluation{WindowStart: req.Until.Add(-s.Window()).UTC(), WindowEnd: req.Until.UTC(), K: req.K, Settings: s, Rows: []EvalRow{}}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, database.Wrap(err, "evaluating complements")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('statement_timeout', '0', true)`); err != nil {
		return nil, database.Wrap(err, "evaluating complements")
	}
	if _, err := tx.ExecContext(ctx, evalBasketsSQL, ev.WindowStart, ev.WindowEnd, pq.StringArray(s.Excluded)); err != nil {
		return nil, database.Wrap(err, "evaluating complements: reading the window's orders")
	}
	var total int64
	if err := tx.GetContext(ctx, &total, `SELECT count(*) FROM eval_baskets`); err != nil {
		return nil, database.Wrap(err, "evaluating complements")
	}
	train := total - int64(math.Ceil(float64(total)*req.HoldOut))
	ev.TrainOrders = train
	if total > 0 {
		if err := tx.GetContext(ctx, &ev.Split, `SELECT placed_at FROM eval_baskets WHERE seq = $1`, train+1); err != nil {
			return nil, database.Wrap(err, "evaluating complements")
		}
	}
	minOrders := slices.Min(append(slices.Clone(req.MinOrders), s.MinOrders))
	if _, err := tx.ExecContext(ctx, evalMeasuredSQL, train, s.MaxBasket, minOrders); err != nil {
		return nil, database.Wrap(err, "evaluating complements: counting the training orders")
	}
	popular, err := evalPopular(ctx, tx, train, s.MaxBasket, req.K, &ev.Catalog)
	if err != nil {
		return nil, err
	}
	tests, err := evalTests(ctx, tx, train, s.MaxBasket)
	if err != nil {
		return nil, err
	}
	ev.TestOrders = int64(len(tests))
	for _, b := range tests {
		ev.Trials += int64(len(b))
	}
	ev.Popularity = replay(tests, func(sku string) []string { return without(popular, sku, req.K) }).hitRate
	for i, g := range req.grid() {
		row, err := evalRow(ctx, tx, g, req.K, tests)
		if err != nil {
			return nil, err
		}
		row.Current = i == 0
		if ev.Catalog > 0 {
			row.Coverage = float64(row.Products) / float64(ev.Catalog)
		}
		ev.Rows = append(ev.Rows, row)
	}
	return ev, nil
}

// evalPopular returns the K+1 best sellers of the training orders (one may be the product
// on the page) and sets catalog to the number of products bought.
func evalPopular(ctx context.Context, tx *sqlx.Tx, train int64, maxBasket, k int, catalog *int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku, count(*) OVER () FROM (
		SELECT sku, count(*) AS c FROM eval_baskets, unnest(skus) AS sku
		WHERE seq <= $1 AND size <= $2 GROUP BY sku) i
		ORDER BY c DESC, sku COLLATE "C" LIMIT $3`, train, maxBasket, k+1)
	if err != nil {
		return nil, database.Wrap(err, "evaluating complements: best sellers")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku, catalog); err != nil {
			return nil, database.Wrap(err, "evaluating complements: best sellers")
		}
		out = append(out, sku)
	}
	return out, rows.Err()
}

// evalTests returns the held-out orders of at least two products, each as its products.
func evalTests(ctx context.Context, tx *sqlx.Tx, train int64, maxBasket int) ([][]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT skus FROM eval_baskets
		WHERE seq > $1 AND size <= $2 AND cardinality(skus) >= 2 ORDER BY seq`, train, maxBasket)
	if err != nil {
		return nil, database.Wrap(err, "evaluating complements: held-out orders")
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var skus pq.StringArray
		if err := rows.Scan(&skus); err != nil {
			return nil, database.Wrap(err, "evaluating complements: held-out orders")
		}
		out = append(out, skus)
	}
	return out, rows.Err()
}

// evalRow ranks the training pairs under s and replays the held-out orders against them.
func evalRow(ctx context.Context, tx *sqlx.Tx, s Settings, k int, tests [][]string) (EvalRow, error) {
	row := EvalRow{MinOrders: s.MinOrders, MinLLR: s.MinLLR, MinLift: s.MinLift, MinConfidence: s.MinConfidence}
	rows, err := tx.QueryContext(ctx, evalRankedSQL, s.MinOrders, s.MinConfidence, s.MinLift, s.MinLLR, min(k, s.MaxComplements))
	if err != nil {
		return row, database.Wrap(err, "evaluating complements: ranking with min orders %d, G² %v, lift %v", s.MinOrders, s.MinLLR, s.MinLift)
	}
	defer rows.Close()
	top := map[string][]string{}
	for rows.Next() {
		var sku, c string
		if err := rows.Scan(&sku, &c); err != nil {
			return row, database.Wrap(err, "evaluating complements")
		}
		top[sku] = append(top[sku], c)
	}
	if err := rows.Err(); err != nil {
		return row, database.Wrap(err, "evaluating complements")
	}
	row.Products = len(top)
	r := replay(tests, func(sku string) []string { return top[sku] })
	row.HitRate, row.CoveredTrials, row.HitRateCovered = r.hitRate, r.covered, r.hitRateCovered
	return row, nil
}

// replayed is how a recommender did on the held-out orders.
type replayed struct{ hitRate, covered, hitRateCovered float64 }

// replay offers, for each product of each held-out order, what offer returns, and counts a
// hit when one of the offered products is among the order's other products.
func replay(tests [][]string, offer func(string) []string) replayed {
	var trials, covered, hits int
	for _, basket := range tests {
		for _, sku := range basket {
			trials++
			offered := offer(sku)
			if len(offered) > 0 {
				covered++
			}
			for _, o := range offered {
				if o != sku && slices.Contains(basket, o) {
					hits++
					break
				}
			}
		}
	}
	var r replayed
	if trials > 0 {
		r.hitRate, r.covered = float64(hits)/float64(trials), float64(covered)/float64(trials)
	}
	if covered > 0 {
		r.hitRateCovered = float64(hits) / float64(covered)
	}
	return r
}

// without returns the first k of list other than sku.
func without(list []string, sku string, k int) []string {
	out := make([]string, 0, k)
	for _, s := range list {
		if s != sku && len(out) < k {
			out = append(out, s)
		}
	}
	return out
}
