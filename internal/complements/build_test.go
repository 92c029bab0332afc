package complements_test

import (
	"context"
	"slices"
	"testing"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/dbtest"
)

// The expected G² values below are Dunning's G² = 2 Σ O·ln(O/E) over the four cells of each
// pair's 2×2 table, E = row total × column total / n — the textbook form, not the entropy
// form the SQL uses — computed with Python's math.log:
//
//	python3 -c 'from math import log
//	def g2(*k):
//	    n=sum(k); r=(k[0]+k[1],k[2]+k[3]); c=(k[0]+k[2],k[1]+k[3])
//	    return 2*sum(o*log(o*n/(r[i//2]*c[i%2])) for i,o in enumerate(k) if o)
//	print(g2(8,5,1,12), g2(4,2,1,19), g2(3,10,1,12), g2(1,1,1,23), g2(7,5,1,12))'
//
// Table cells: (both, the first without the second, the second without the first, neither).

func TestModelFiguresMatchHandComputed(t *testing.T) {
	db := dbtest.New(t)
	fixture(t, db)
	setSettings(t, db, func(s *complements.Settings) { s.MinLLR = 5 })
	m := build(t, db)

	// 26 orders in the window (the 100-day-old one is out); no order is over 50 products.
	if m.Orders != 26 || m.SkippedOrders != 0 {
		t.Errorf("orders = %d, skipped %d; want 26, 0", m.Orders, m.SkippedOrders)
	}
	// Catalog: A B C G K D E F H = 9 products bought in the window (nothing is excluded).
	// With at least 3 orders together, lift > 1 and G² ≥ 5: A–B (G² 9.17) and C–G (9.88);
	// A–K (3 orders) has G² 1.23. So A, B, C, G have one complement each: 4 products, 4 rows.
	if m.Catalog != 9 || m.Products != 4 || m.Pairs != 4 {
		t.Errorf("catalog %d, products %d, pairs %d; want 9, 4, 4", m.Catalog, m.Products, m.Pairs)
	}
	want := map[string]complements.Complement{
		// A–B: 8 orders of 26; A in 13, B in 9. Table (8, 5, 1, 12).
		// support 8/26; confidence A→B 8/13, B→A 8/9; lift 8·26/(13·9) = 208/117 = 16/9.
		"A": {SKU: "B", Orders: 8, Support: 8.0 / 26, Confidence: 8.0 / 13, Lift: 16.0 / 9, Score: 9.167560685284247},
		"B": {SKU: "A", Orders: 8, Support: 8.0 / 26, Confidence: 8.0 / 9, Lift: 16.0 / 9, Score: 9.167560685284247},
		// C–G: 4 orders; C in 6, G in 5. Table (4, 2, 1, 19).
		// confidence C→G 4/6, G→C 4/5; lift 4·26/(6·5) = 104/30 = 52/15.
		"C": {SKU: "G", Orders: 4, Support: 4.0 / 26, Confidence: 4.0 / 6, Lift: 52.0 / 15, Score: 9.877918715019643},
		"G": {SKU: "C", Orders: 4, Support: 4.0 / 26, Confidence: 4.0 / 5, Lift: 52.0 / 15, Score: 9.877918715019643},
	}
	for sku, w := range want {
		got := m.Of(sku)
		if len(got) != 1 {
			t.Errorf("%s: complements %v, want [%s]", sku, skus(got), w.SKU)
			continue
		}
		g := got[0]
		if g.SKU != w.SKU || g.Orders != w.Orders || !near(g.Support, w.Support) || !near(g.Confidence, w.Confidence) ||
			!near(g.Lift, w.Lift) || !near(g.Score, w.Score) {
			t.Errorf("%s: got %+v\nwant %+v", sku, g, w)
		}
	}
	for _, sku := range []string{"K", "D", "E", "F", "H", "no-such-sku"} {
		if got := m.Of(sku); got != nil {
			t.Errorf("%s: complements %v, want none", sku, skus(got))
		}
	}
}

func TestModelRanksByEvidenceNotLift(t *testing.T) {
	db := dbtest.New(t)
	fixture(t, db)
	// Every pair bought together at least once, more often than by chance, with any G².
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR = 1, 0 })
	m := build(t, db)

	// A's partners, ranked by G²: B (G² 9.17, lift 16/9), F (1 order of A's 13, F's only one:
	// table (1, 12, 0, 13), lift 26/13 = 2, G² = 2·(ln 2 + 12·ln(24/25) + 13·ln(26/25))
	// = 2·(0.693147 − 0.489864 + 0.509869) = 1.426305), K (table (3, 10, 1, 12): G² 1.23,
	// lift 3·26/(13·4) = 1.5). C (1 order with A) is bought with A less often than by chance
	// (lift 1·26/(13·6) = 1/3): never a complement, though its G² (3.72) is not small.
	if got := skus(m.Of("A")); !slices.Equal(got, []string{"B", "F", "K"}) {
		t.Errorf("A's complements %v, want [B F K]", got)
	}
	// D–E: 1 order of 26, each in 2: lift 26/4 = 6.5, the largest of the shop, yet G² of
	// table (1, 1, 1, 23) is 3.015: weaker evidence than A–B's. With G² ≥ 5 it goes.
	if got := m.Of("D"); len(got) != 1 || got[0].SKU != "E" || !near(got[0].Lift, 6.5) || !near(got[0].Score, 3.0154087519756088) {
		t.Errorf("D's complements %+v, want E with lift 6.5 and G² 3.0154", got)
	}
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR = 1, 5 })
	if got := build(t, db).Of("D"); got != nil {
		t.Errorf("with G² ≥ 5, D's complements %v, want none", skus(got))
	}
}

func TestModelThresholdsAndLimits(t *testing.T) {
	db := dbtest.New(t)
	fixture(t, db)

	// At most one complement per product: A keeps B, its best.
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR, s.MaxComplements = 1, 0, 1 })
	if got := skus(build(t, db).Of("A")); !slices.Equal(got, []string{"B"}) {
		t.Errorf("max 1: A's complements %v, want [B]", got)
	}
	// Excluded products are neither offered nor given complements: without B and F, A keeps K.
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR, s.Excluded = 1, 0, []string{"F", "B"} })
	m := build(t, db)
	if got := skus(m.Of("A")); !slices.Equal(got, []string{"K"}) {
		t.Errorf("B and F excluded: A's complements %v, want [K]", got)
	}
	if got := m.Of("B"); got != nil {
		t.Errorf("B excluded: its complements %v, want none", skus(got))
	}
	// Confidence: A→K is 3/13 = 0.23, K→A 3/4; at 0.5 only K→A stays of the two.
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR, s.MinConfidence = 3, 0, 0.5 })
	m = build(t, db)
	if a, k := skus(m.Of("A")), skus(m.Of("K")); !slices.Equal(a, []string{"B"}) || !slices.Equal(k, []string{"A"}) {
		t.Errorf("confidence ≥ 0.5: A's %v, K's %v; want [B] and [A]", a, k)
	}
	// Lift: A–B is 1.78, C–G 3.47; at 2 only C–G stays.
	setSettings(t, db, func(s *complements.Settings) { s.MinOrders, s.MinLLR, s.MinLift = 3, 0, 2 })
	m = build(t, db)
	if m.Of("A") != nil || len(m.Of("C")) != 1 {
		t.Errorf("lift ≥ 2: A's %v, C's %v; want none and [G]", skus(m.Of("A")), skus(m.Of("C")))
	}
}

func TestModelLeavesOutLargeBaskets(t *testing.T) {
	db := dbtest.New(t)
	fixture(t, db)
	// At most 2 products an order: {A,B,C} is left out. 25 orders; A in 12, B in 8, together
	// in 7. Table (7, 5, 1, 12): lift 7·25/(12·8) = 175/96; G² 7.991910795736754.
	setSettings(t, db, func(s *complements.Settings) { s.MinLLR, s.MaxBasket = 5, 2 })
	m := build(t, db)
	if m.Orders != 25 || m.SkippedOrders != 1 {
		t.Errorf("orders %d, skipped %d; want 25, 1", m.Orders, m.SkippedOrders)
	}
	got := m.Of("A")
	if len(got) != 1 || got[0].Orders != 7 || !near(got[0].Lift, 175.0/96) || !near(got[0].Score, 7.991910795736754) {
		t.Errorf("A's complements %+v, want B in 7 orders, lift 175/96, G² 7.9919", got)
	}
}

func TestModelOfEmptyWindowAndOfOneProduct(t *testing.T) {
	db := dbtest.New(t)
	// Only an order from before the window.
	insertOrders(t, db, "old", basket{count: 3, skus: []string{"A", "B"}, ago: 200 * 24 * 3600e9})
	m := build(t, db)
	if !m.Built() || m.Orders != 0 || m.Catalog != 0 || m.Products != 0 || m.Len() != 0 || m.Coverage() != 0 {
		t.Errorf("empty window: %+v, want a built snapshot of nothing", m.Snapshot)
	}
	// A shop that sells one product: it is in the catalog, with nothing to go with.
	insertOrders(t, db, "one", basket{count: 50, skus: []string{"A"}})
	m = build(t, db)
	if m.Orders != 50 || m.Catalog != 1 || m.Products != 0 || m.Of("A") != nil {
		t.Errorf("one product: %+v, complements of A %v; want 50 orders, a catalog of 1, none", m.Snapshot, skus(m.Of("A")))
	}
}

func TestPairsAreTheModelsCounts(t *testing.T) {
	db := dbtest.New(t)
	fixture(t, db)
	table, err := complements.Pairs(context.Background(), db, complements.PairQuery{From: now.AddDate(0, 0, -90), MinOrders: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Pairs in at least 3 orders: A–B (8), A–K (3), C–G (4), each once, A < B.
	if table.Orders != 26 || len(table.Pairs) != 3 {
		t.Fatalf("orders %d, pairs %+v; want 26 and 3 pairs", table.Orders, table.Pairs)
	}
	byName := map[string]complements.Pair{}
	for _, p := range table.Pairs {
		byName[p.A+p.B] = p
	}
	ab, ak := byName["AB"], byName["AK"]
	if ab.Orders != 8 || ab.OrdersA != 13 || ab.OrdersB != 9 || !near(ab.ConfidenceAB, 8.0/13) || !near(ab.ConfidenceBA, 8.0/9) ||
		!near(ab.Lift, 16.0/9) || !near(ab.LLR, 9.167560685284247) {
		t.Errorf("A–B: %+v", ab)
	}
	// A–K: table (3, 10, 1, 12), lift 3·26/(13·4) = 1.5, G² 1.2285657391937108.
	if ak.Orders != 3 || !near(ak.Lift, 1.5) || !near(ak.LLR, 1.2285657391937108) {
		t.Errorf("A–K: %+v", ak)
	}
	// An empty window has no pairs, and says how many orders it had.
	table, err = complements.Pairs(context.Background(), db, complements.PairQuery{From: now.Add(3600e9), MinOrders: 1})
	if err != nil || table.Orders != 0 || len(table.Pairs) != 0 {
		t.Errorf("empty window: %+v, %v", table, err)
	}
}
