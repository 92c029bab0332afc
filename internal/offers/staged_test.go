package offers_test

import (
	"context"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

// TestOrdersAreChargedToTheVariantOfAStagedExposure: the exposure recorder merges staged
// exposures in the background, so an order may be charged before its shopper's exposure is
// merged. The spender reads the staged ones too: the order is charged to the variant's
// budget, and a shopper staged in two variants is charged to none.
func TestOrdersAreChargedToTheVariantOfAStagedExposure(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "staged", func(d *experiments.Definition) {
		d.Variants[1].Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 1000, Currency: "EUR"}}
	})
	for _, x := range [][2]string{{"s-staged", "bundle"}, {"s-split", "bundle"}, {"s-split", "points"}} {
		if _, err := db.Exec(`INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
			VALUES ($1, now(), '{}', '{staged}', '{1}', ARRAY[$2])`, x[0], x[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, shopper := range []string{"s-staged", "s-split"} {
		if _, err := db.Exec(`INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
			VALUES ($1, 'order_completed', $2, now(), 'staged', $1, 3000, 300, 'EUR')`, "o-"+shopper, shopper); err != nil {
			t.Fatal(err)
		}
	}
	b := offers.NewBudgets(db, nil)
	spender := offers.NewSpender(db, b, database.NewQuarantine(nil, nil), time.Hour, nil)
	if n, err := spender.ChargeOrders(context.Background()); err != nil || n != 2 {
		t.Fatalf("charged %d orders: %v", n, err)
	}
	spent := int64(-1)
	for _, st := range status(t, db, b, "staged") {
		if st.Variant == "bundle" && st.Kind == experiments.BudgetDiscount {
			spent = st.Spent
		}
	}
	if spent != 300 {
		t.Errorf("the bundle's budget spent %d, want 300: the staged shopper's order only", spent)
	}
}
