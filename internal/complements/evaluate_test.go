package complements_test

import (
	"context"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/dbtest"
)

func TestEvaluateReplaysHeldOutOrders(t *testing.T) {
	db := dbtest.New(t)
	day := 24 * time.Hour
	// 90 training orders, then the 10 latest, held out.
	insertOrders(t, db, "train",
		basket{count: 30, skus: []string{"A", "B"}, ago: 10 * day},
		basket{count: 20, skus: []string{"C", "D"}, ago: 10 * day},
		basket{count: 20, skus: []string{"A"}, ago: 10 * day},
		basket{count: 20, skus: []string{"E"}, ago: 10 * day},
	)
	insertOrders(t, db, "test",
		basket{count: 4, skus: []string{"A", "B"}, ago: day},
		basket{count: 3, skus: []string{"C", "E"}, ago: day},
		basket{count: 2, skus: []string{"A", "C"}, ago: day},
		basket{count: 1, skus: []string{"F", "G"}, ago: day},
	)
	req := complements.EvalRequest{Settings: complements.DefaultSettings, Until: now, HoldOut: 0.1, K: 1,
		MinOrders: []int{3, 25}, MinLLR: []float64{10.83}}
	ev, err := complements.Evaluate(context.Background(), db, req)
	if err != nil {
		t.Fatal(err)
	}
	// Training: A in 50 orders, B 30, C 20, D 20, E 20; A–B in 30 (lift 30·90/(50·30) = 1.8),
	// C–D in 20 (lift 4.5); both far above G² 10.83. So A→B, B→A, C→D, D→C: 4 of the 5
	// products have a complement.
	if ev.TrainOrders != 90 || ev.TestOrders != 10 || ev.Catalog != 5 {
		t.Errorf("train %d, test %d, catalog %d; want 90, 10, 5", ev.TrainOrders, ev.TestOrders, ev.Catalog)
	}
	// Trials: {A,B}×4 → 8, {C,E}×3 → 6, {A,C}×2 → 4, {F,G} → 2: 20.
	if ev.Trials != 20 || len(ev.Rows) != 2 {
		t.Fatalf("trials %d, rows %+v; want 20 trials and 2 rows", ev.Trials, ev.Rows)
	}
	// Current settings: hits are A→B and B→A in {A,B}: 8 of 20. Covered trials: A, B of
	// {A,B} (8), C of {C,E} (3), A and C of {A,C} (4): 15 of 20; hits among them 8/15.
	cur := ev.Rows[0]
	if !cur.Current || cur.MinOrders != 3 || cur.Products != 4 || !near(cur.Coverage, 0.8) ||
		!near(cur.HitRate, 0.4) || !near(cur.CoveredTrials, 0.75) || !near(cur.HitRateCovered, 8.0/15) {
		t.Errorf("current settings: %+v", cur)
	}
	// At least 25 orders together: only A–B. Covered: A, B of {A,B} (8) and A of {A,C} (2):
	// 10 of 20; hits still 8: 8/20 overall, 8/10 when covered; 2 of 5 products.
	g := ev.Rows[1]
	if g.Current || g.MinOrders != 25 || g.Products != 2 || !near(g.Coverage, 0.4) ||
		!near(g.HitRate, 0.4) || !near(g.CoveredTrials, 0.5) || !near(g.HitRateCovered, 0.8) {
		t.Errorf("min orders 25: %+v", g)
	}
	// Offering the best seller (A; B, the second, to A's own page): A→B hits in {A,B} ×4,
	// B→A ×4, C→A in {A,C} ×2: 10 of 20.
	if !near(ev.Popularity, 0.5) {
		t.Errorf("popularity hit rate %v, want 0.5", ev.Popularity)
	}
}

func TestEvaluateEmptyWindow(t *testing.T) {
	db := dbtest.New(t)
	ev, err := complements.Evaluate(context.Background(), db, complements.EvalRequest{
		Settings: complements.DefaultSettings, Until: now, HoldOut: 0.1, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ev.TrainOrders != 0 || ev.Trials != 0 || len(ev.Rows) != 1 || ev.Rows[0].HitRate != 0 || ev.Rows[0].Coverage != 0 {
		t.Errorf("empty window: %+v", ev)
	}
}
