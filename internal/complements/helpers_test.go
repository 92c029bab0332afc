package complements_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/complements"
)

// now is the fixed time at which the tests build; orders are placed before it.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// basket is count orders holding the same products, placed ago before now.
type basket struct {
	count int
	skus  []string
	ago   time.Duration
}

// insertOrders writes the lines of the baskets' orders, as the events committer stores the
// lines of order_completed events; prefix keeps the order ids of two calls apart.
func insertOrders(t *testing.T, db *sqlx.DB, prefix string, baskets ...basket) {
	t.Helper()
	n := 0
	for _, b := range baskets {
		ago := b.ago
		if ago == 0 {
			ago = 24 * time.Hour
		}
		for range b.count {
			n++
			order := fmt.Sprintf("%s-%d", prefix, n)
			at := now.Add(-ago).Add(time.Duration(n) * time.Second)
			for line, sku := range b.skus {
				_, err := db.Exec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
					VALUES ($1, $2, $3, $1, $4, $5, 1, 100)`, order, line, at, "shopper-"+order, sku)
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// fixture is the shop of the hand-computed tests: 26 orders in the window, one before it.
//
//	{A,B}×7 {A,B,C}×1 {A,K}×3 {A}×1 {B}×1 {C,G}×4 {C}×1 {G}×1 {K}×1 {D,E}×1 {D}×1 {E}×1
//	{A,F}×1 {H}×2, and {A,B}×1 placed 100 days ago (outside the 90-day window)
//
// Orders holding each product: A 13, B 9, C 6, G 5, K 4, D 2, E 2, F 1, H 2; pairs: AB 8,
// AK 3, CG 4, AC 1, BC 1, DE 1, AF 1. The catalog is A B C G K D E F H: 9 products.
func fixture(t *testing.T, db *sqlx.DB) {
	t.Helper()
	insertOrders(t, db, "o",
		basket{count: 7, skus: []string{"A", "B"}},
		basket{count: 1, skus: []string{"A", "B", "C"}},
		basket{count: 3, skus: []string{"A", "K"}},
		basket{count: 1, skus: []string{"A"}},
		basket{count: 1, skus: []string{"B"}},
		basket{count: 4, skus: []string{"C", "G"}},
		basket{count: 1, skus: []string{"C"}},
		basket{count: 1, skus: []string{"G"}},
		basket{count: 1, skus: []string{"K"}},
		basket{count: 1, skus: []string{"D", "E"}},
		basket{count: 1, skus: []string{"D"}},
		basket{count: 1, skus: []string{"E"}},
		basket{count: 1, skus: []string{"A", "F"}},
		basket{count: 2, skus: []string{"H"}},
		basket{count: 1, skus: []string{"A", "B"}, ago: 100 * 24 * time.Hour},
	)
}

// setSettings changes the stored settings from the defaults.
func setSettings(t *testing.T, db *sqlx.DB, change func(*complements.Settings)) {
	t.Helper()
	s := complements.DefaultSettings
	change(&s)
	if _, err := complements.SaveSettings(context.Background(), db, s, 0, now); err != nil {
		t.Fatal(err)
	}
}

// build builds a snapshot now and loads it.
func build(t *testing.T, db *sqlx.DB) *complements.Model {
	t.Helper()
	ctx := context.Background()
	snap, err := complements.NewBuilder(db, clock).Build(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := complements.LoadModel(ctx, db, snap)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// near reports whether got is want to 12 significant digits.
func near(got, want float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	scale := want
	if scale < 0 {
		scale = -scale
	}
	return d <= 1e-12*max(scale, 1)
}

// skus lists the SKUs of complements, in order.
func skus(cs []complements.Complement) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.SKU)
	}
	return out
}
