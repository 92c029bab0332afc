package loyalty_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

// TestSetBasedCreditingEqualsEventByEvent replays one random stream of orders, duplicate
// orders, refunds (before and after their order, partial and beyond the amount), bonus
// orders of shoppers whose exposures are merged or still staged (or in two variants), merges
// of the staged exposures, redemptions and clock moves on two databases: one credits each
// batch with the set-based statements, the other event by event (the path of a batch with
// poison). The books must balance on both, and every order row, earn, lot and redemption,
// and what each transaction had reversed, must be the same.
func TestSetBasedCreditingEqualsEventByEvent(t *testing.T) {
	const variants = `[{"key":"control","strategy":{"type":"none"}},
		{"key":"bonus","strategy":{"type":"loyalty_points","products":["sku-b"],"bonus_points":50}},
		{"key":"mult","strategy":{"type":"loyalty_points","products":["sku-m"],"points_multiplier":2.5}}]`
	rng := rand.New(rand.NewPCG(7, 22))
	exposed := map[string]map[string]string{"pts": {}, "pts2": {}}
	var ops []func(t *testing.T, f *fixture)
	// Some exposures are merged when the stream begins, some still staged, and more are
	// staged (a few in a second variant) and merged as it goes.
	stage := func(shopper string) {
		x, v := []string{"pts", "pts2"}[rng.IntN(2)], []string{"control", "bonus", "mult"}[rng.IntN(3)]
		ops = append(ops, func(t *testing.T, f *fixture) { f.stage(t, x, shopper, v) })
	}
	for i := range 12 {
		for _, x := range []string{"pts", "pts2"} {
			if v := rng.IntN(4); v < 3 {
				exposed[x][fmt.Sprintf("s-%d", i)] = []string{"control", "bonus", "mult"}[v]
			}
		}
	}
	for range 6 {
		stage(fmt.Sprintf("s-%d", 12+rng.IntN(4)))
	}
	orders := 0
	for i := range 900 {
		shopper := fmt.Sprintf("s-%d", rng.IntN(16))
		switch p := rng.IntN(105); {
		case p >= 103:
			ops = append(ops, func(t *testing.T, f *fixture) { f.merge(t) })
		case p >= 100:
			stage(shopper)
		case p < 50:
			id := fmt.Sprintf("o-%d", orders)
			if orders > 0 && rng.IntN(12) == 0 {
				id = fmt.Sprintf("o-%d", rng.IntN(orders)) // a duplicate order id
			} else {
				orders++
			}
			amount := rng.Int64N(20000)
			discount := rng.Int64N(amount/2 + 2)
			currency := []string{"EUR", "EUR", "EUR", "JPY"}[rng.IntN(4)]
			skus := []string{"sku-a"}
			for _, s := range []string{"sku-b", "sku-m"} {
				if rng.IntN(2) == 0 {
					skus = append(skus, s)
				}
			}
			late := time.Duration(rng.IntN(48)-40) * time.Hour // some orders dated after now
			ops = append(ops, func(t *testing.T, f *fixture) {
				f.order(t, fmt.Sprintf("e-%d", i), shopper, id, amount, discount, currency, f.clock.Now().Add(late), skus...)
			})
		case p < 72:
			id := fmt.Sprintf("o-%d", rng.IntN(orders+4)) // some refunds come before their order
			amount := rng.Int64N(9000)
			ops = append(ops, func(t *testing.T, f *fixture) {
				f.refund(t, fmt.Sprintf("e-%d", i), shopper, id, amount, f.clock.Now())
			})
		case p < 85:
			points := 1 + rng.Int64N(120)
			ops = append(ops, func(t *testing.T, f *fixture) {
				_, err := f.svc.Redeem(f.ctx, shopper, loyalty.RedeemRequest{Points: points, IdempotencyKey: fmt.Sprintf("r-%d", i)})
				if err != nil && apperr.CodeOf(err) != apperr.InsufficientPoints {
					t.Fatalf("redeem: %v", err)
				}
			})
		case p < 95:
			ops = append(ops, func(t *testing.T, f *fixture) {
				if _, err := f.svc.CreditOrders(f.ctx); err != nil {
					t.Fatal(err)
				}
			})
		default:
			step := time.Duration(1+rng.IntN(30)) * time.Hour
			ops = append(ops, func(t *testing.T, f *fixture) { f.clock.Advance(step) })
		}
	}

	run := func(eventByEvent bool) *fixture {
		f := newFixture(t)
		if eventByEvent {
			loyalty.CreditEventByEvent(f.svc)
		}
		f.setProgram(t, 3, 1, 5, 0) // lots live five days; the clock moves up to 30 hours a step
		f.experiment(t, "pts", "running", variants, exposed["pts"])
		f.experiment(t, "pts2", "running", variants, exposed["pts2"])
		for _, op := range ops {
			op(t, f)
		}
		if _, err := f.svc.CreditOrders(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.checkBooks(t)
		return f
	}
	set, each := run(false), run(true)
	for _, q := range []struct{ what, query string }{
		{"order rows", `SELECT order_id, shopper_id, currency, paid, refunded, event_seq, credited_at
			FROM loyalty_orders ORDER BY order_id`},
		{"earns, redemptions and their lots", `SELECT e.shopper_id, e.kind, e.points, e.source, e.reason,
			e.order_id, e.experiment, e.variant, e.created_at, l.points AS lot, l.remaining, l.debt,
			l.earned_at, l.available_at, l.expires_at
			FROM loyalty_entries e LEFT JOIN loyalty_lots l ON l.entry_id = e.id
			WHERE e.kind <> 'reverse' ORDER BY e.shopper_id, e.created_at, e.order_id, e.experiment NULLS FIRST, e.kind, e.points`},
		{"what each transaction had reversed", `SELECT o.shopper_id, o.order_id, o.experiment, o.kind,
			sum(r.points) AS points, sum(abs(r.points) + r.shortfall) AS undone
			FROM loyalty_entries r JOIN loyalty_entries o ON o.id = r.reverses
			GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`},
	} {
		a, b := rows(t, set, q.query), rows(t, each, q.query)
		if len(a) < 10 {
			t.Errorf("%s: only %d rows; the stream exercises too little", q.what, len(a))
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differ between set-based crediting and event by event:\n%v\n%v", q.what, a, b)
		}
	}
	// s-12 to s-15 begin with staged exposures only.
	if n := set.count(t, `SELECT count(*) FROM loyalty_entries WHERE experiment IS NOT NULL
		AND shopper_id IN ('s-12', 's-13', 's-14', 's-15')`); n < 10 {
		t.Errorf("only %d bonus entries of shoppers first exposed in staged rows; the stream exercises too little", n)
	}
	if n := set.count(t, `SELECT count(*) FROM loyalty_entries WHERE experiment IS NOT NULL`); n < 10 {
		t.Errorf("only %d bonus entries; the stream exercises too little", n)
	}
}

// rows reads every row of a query as strings, for comparing two databases.
func rows(t *testing.T, f *fixture, query string) [][]string {
	t.Helper()
	rs, err := f.db.QueryxContext(f.ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	var out [][]string
	for rs.Next() {
		vals, err := rs.SliceScan()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case time.Time:
				v = x.UTC()
			case []byte:
				v = string(x)
			}
			row[i] = fmt.Sprintf("%v", v)
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
