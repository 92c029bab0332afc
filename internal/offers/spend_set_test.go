package offers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

// TestSpenderChargesABatchAsOneByOne: the spender's batches charged with a few statements leave
// the spends and budgets that charging every order event one by one leaves — orders of
// experiments without a discount bound, in two variants and without one, an order read twice
// in a batch and one charged by an earlier batch, a refund read before its order, refunds of
// orders charged earlier, a refund of an order of its own batch, an experiment whose budget the
// orders run past, and an order of an experiment that does not exist. (The batches with the
// last three, and the first, which charges the bounded experiment, go one by one on both
// sides; the other two take the batch path.)
func TestSpenderChargesABatchAsOneByOne(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	type ev struct {
		id, typ, shopper, experiment, order string
		amount, discount                    int64
	}
	order := func(n int, shopper, experiment, orderID string, discount int64) ev {
		return ev{fmt.Sprintf("e%03d", n), "order_completed", shopper, experiment, orderID, 2000 + int64(n), discount}
	}
	refund := func(n int, shopper, orderID string, amount int64) ev {
		return ev{fmt.Sprintf("e%03d", n), "order_refunded", shopper, "", orderID, amount, 0}
	}
	// Loads, each drained before the next: the spender's batches are 200 events.
	var first, second, third []ev
	first = append(first, order(1, "s1", "free", "o-early", 300), refund(2, "s2", "o-late", 900),
		order(3, "s3", "capped", "o-capped-early", 400))
	for i := range 30 {
		second = append(second, order(10+i, fmt.Sprintf("s%d", i%7), "free", fmt.Sprintf("o%d", i), int64(100+i)))
	}
	second = append(second, order(50, "s2", "free", "o-late", 250),
		order(52, "s4", "free", "o-twice", 120), order(53, "s4", "free", "o-twice", 130),
		refund(54, "s1", "o-early", 1000), refund(55, "s3", "o-capped-early", 2000))
	again := []ev{order(56, "s1", "free", "o-early", 300), order(57, "s6", "free", "o-x", 90)}
	third = append(third, order(60, "s5", "free", "o-own", 200), refund(61, "s5", "o-own", 700),
		order(62, "s6", "free", "o-more", 150))
	var fourth, fifth []ev
	for i := range 5 {
		fourth = append(fourth, order(70+i, fmt.Sprintf("s%d", i), "capped", fmt.Sprintf("o-c%d", i), 300))
	}
	fifth = append(fifth, order(80, "s1", "free", "o-f1", 100), order(81, "s1", "ghost", "o-ghost", 100),
		order(82, "s2", "free", "o-f2", 100))

	setup := func(t *testing.T) *sqlx.DB {
		db := dbtest.New(t)
		started(t, db, "free", nil)
		started(t, db, "capped", func(d *experiments.Definition) {
			d.Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 1000, Currency: "EUR"}}
		})
		for i := range 7 {
			variant := []string{"control", "bundle", "points"}[i%3]
			for _, exp := range []string{"free", "capped"} {
				if _, err := db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
					VALUES ($1, 1, $2, $3, '{}', $4, false)`, exp, fmt.Sprintf("s%d", i), variant, at.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
		}
		return db
	}
	load := func(t *testing.T, db *sqlx.DB, evs []ev) {
		t.Helper()
		for _, e := range evs {
			var exp, discount any
			if e.experiment != "" {
				exp = e.experiment
			}
			if e.typ == "order_completed" {
				discount = e.discount
			}
			if _, err := db.Exec(`INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'EUR')`, e.id, e.typ, e.shopper, at, exp, e.order, e.amount, discount); err != nil {
				t.Fatal(err)
			}
		}
	}
	together, oneByOne := setup(t), setup(t)
	setSpender := offers.NewSpender(together, offers.NewBudgets(together, nil), database.NewQuarantine(nil, nil), time.Hour, nil)
	eachSpender := offers.NewSpenderOneByOne(oneByOne, offers.NewBudgets(oneByOne, nil), database.NewQuarantine(nil, nil), time.Hour, nil)
	ctx := context.Background()
	for _, evs := range [][]ev{first, second, again, third, fourth, fifth} {
		for _, s := range []struct {
			db *sqlx.DB
			sp *offers.Spender
		}{{together, setSpender}, {oneByOne, eachSpender}} {
			load(t, s.db, evs)
			if n, err := s.sp.ChargeOrders(ctx); err != nil || n != len(evs) {
				t.Fatalf("charged %d of %d events: %v", n, len(evs), err)
			}
		}
	}
	gotBudgets := sameCharges(t, together, oneByOne)
	// What an operator reads, worked out by hand: the free experiment's own budget holds the
	// 30 orders' 100+…+129 = 3,435; o-late's 250 less what its refund of 900 of 2,050 gives
	// back (floor(250 × 900 / 2050) = 109); o-early's 300 less floor(300 × 1000 / 2001) = 149
	// (its refund; read again later, it is a duplicate); o-twice's first 120; o-x's 90;
	// o-own's 200 less floor(200 × 700 / 2060) = 67; o-more's 150; o-f1's and o-f2's 100 each.
	want := int64(3435 + 250 - 109 + 300 - 149 + 120 + 90 + 200 - 67 + 150 + 200)
	for _, b := range gotBudgets {
		if b.Experiment == "free" && b.Variant == "" && b.Spent != want {
			t.Errorf("budget free spent %d, want %d", b.Spent, want)
		}
	}
}
