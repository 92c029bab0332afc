package loyalty_test

import (
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

// order writes an order_completed event with its lines straight into the events tables, as
// internal/events would.
func (f *fixture) order(t *testing.T, eventID, shopper, orderID string, amount, discount int64, currency string, at time.Time, skus ...string) {
	t.Helper()
	if _, err := f.db.ExecContext(f.ctx, `INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		VALUES ($1, 'order_completed', $2, $3, $4, $5, $6, $7)`, eventID, shopper, at, orderID, amount, discount, currency); err != nil {
		t.Fatal(err)
	}
	for i, sku := range skus {
		if _, err := f.db.ExecContext(f.ctx, `INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
			VALUES ($1, $2, $3, $4, $5, $6, 1, 1000)`, eventID, i, at, orderID, shopper, sku); err != nil {
			t.Fatal(err)
		}
	}
}

// refund writes an order_refunded event.
func (f *fixture) refund(t *testing.T, eventID, shopper, orderID string, amount int64, at time.Time) {
	t.Helper()
	if _, err := f.db.ExecContext(f.ctx, `INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, currency)
		VALUES ($1, 'order_refunded', $2, $3, $4, $5, 'EUR')`, eventID, shopper, at, orderID, amount); err != nil {
		t.Fatal(err)
	}
}

// experiment writes a running (or other status) experiment in phase 1 with the given
// variants JSON, and exposes each shopper to a variant.
func (f *fixture) experiment(t *testing.T, key, status, variants string, exposed map[string]string) {
	t.Helper()
	if _, err := f.db.ExecContext(f.ctx, `INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ($1, $1, $2, 1, $1, 'shopper_id', 1, $3)`, key, status, variants); err != nil {
		t.Fatal(err)
	}
	for shopper, variant := range exposed {
		if _, err := f.db.ExecContext(f.ctx, `INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
			VALUES ($1, 1, $2, $3, $4)`, key, shopper, variant, t0); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) credit(t *testing.T, want int) {
	t.Helper()
	n, err := f.svc.CreditOrders(f.ctx)
	if err != nil || n != want {
		t.Fatalf("CreditOrders = %d, %v; want %d events", n, err, want)
	}
}

// orderEntries lists (kind, points, experiment, variant) of an order's entries in order.
type orderEntry struct {
	Kind       string  `db:"kind"`
	Points     int64   `db:"points"`
	Experiment *string `db:"experiment"`
	Variant    *string `db:"variant"`
}

func (f *fixture) orderEntries(t *testing.T, orderID string) []orderEntry {
	t.Helper()
	var out []orderEntry
	if err := f.db.SelectContext(f.ctx, &out, `SELECT kind, points, experiment, variant FROM loyalty_entries
		WHERE order_id = $1 ORDER BY id`, orderID); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOrdersEarnTheBaseRateOncePerOrder(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 2, 1, 365, 0)
	f.order(t, "ev-1", "s-1", "o-1", 12_550, 550, "EUR", t0) // 120.00 EUR paid at 2 points: 240
	f.order(t, "ev-2", "s-1", "o-1", 99_900, 0, "EUR", t0)   // the same order id again: nothing
	f.order(t, "ev-3", "s-2", "o-2", 1_234, 0, "JPY", t0)    // no minor unit: 2,468
	f.order(t, "ev-4", "s-2", "o-3", 12_345, 0, "KWD", t0)   // 12.345 KWD: floor(24.69) = 24
	f.order(t, "ev-5", "s-2", "o-4", 1_250, 0, "USD", t0)    // 12.50 USD: 25
	f.order(t, "ev-6", "s-2", "o-5", 500, 600, "USD", t0)    // discount above the amount: nothing
	if _, err := f.db.ExecContext(f.ctx, `INSERT INTO events (id, type, shopper_id, occurred_at) VALUES ('ev-7', 'offer_viewed', 's-1', $1)`, t0); err != nil {
		t.Fatal(err)
	}
	f.credit(t, 6)
	f.credit(t, 0)
	if a := f.account(t, "s-1"); a.Balance != 240 {
		t.Fatalf("s-1 balance = %d, want 240", a.Balance)
	}
	if a := f.account(t, "s-2"); a.Balance != 2468+24+25 {
		t.Fatalf("s-2 balance = %d, want 2517", a.Balance)
	}
	// Order points expire like any lot: 365 days after they became available.
	if a := f.account(t, "s-1"); a.NextExpiry == nil || !a.NextExpiry.At.Equal(t0.AddDate(0, 0, 365)) {
		t.Fatalf("next expiry = %+v, want %v", a.NextExpiry, t0.AddDate(0, 0, 365))
	}
	f.checkBooks(t)
}

func TestPendingOrderPointsBecomeSpendable(t *testing.T) {
	f := newFixture(t)
	f.setProgram(t, 1, 1, 30, 14)
	f.order(t, "ev-1", "s-1", "o-1", 10_000, 0, "EUR", t0)
	f.credit(t, 1)
	if a := f.account(t, "s-1"); a.Balance != 0 || a.Pending != 100 {
		t.Fatalf("right after the order: %+v, want balance 0, pending 100", a)
	}
	f.clock.Set(t0.Add(14*24*time.Hour - time.Microsecond))
	_, err := f.svc.Redeem(f.ctx, "s-1", loyalty.RedeemRequest{Points: 1, IdempotencyKey: "early"})
	wantCode(t, err, apperr.InsufficientPoints)

	f.clock.Set(t0.Add(14 * 24 * time.Hour))
	a := f.account(t, "s-1")
	if a.Balance != 100 || a.Pending != 0 {
		t.Fatalf("when the return window closes: %+v, want balance 100, pending 0", a)
	}
	// Expiry counts from when the points became spendable.
	if want := t0.Add(44 * 24 * time.Hour); a.NextExpiry == nil || !a.NextExpiry.At.Equal(want) || a.NextExpiry.Points != 100 {
		t.Fatalf("next expiry = %+v, want 100 points at %v", a.NextExpiry, want)
	}
	if r := f.redeem(t, "s-1", 100, "now"); r.Balance != 0 {
		t.Fatalf("balance after redeeming = %d", r.Balance)
	}
}

const pointsVariants = `[
	{"key": "control", "name": "Control", "weight": 0.5, "strategy": {"type": "none"}},
	{"key": "points50", "name": "50 points", "weight": 0.5,
	 "strategy": {"type": "loyalty_points", "products": ["sku-cond"], "bonus_points": 50, "timing": "cart"}}]`

const doubleVariants = `[
	{"key": "control", "name": "Control", "weight": 0.5, "strategy": {"type": "none"}},
	{"key": "x1_5", "name": "1.5x points", "weight": 0.5,
	 "strategy": {"type": "loyalty_points", "products": ["sku-cable"], "points_multiplier": 1.5, "timing": "checkout"}}]`

const bundleVariants = `[
	{"key": "control", "name": "Control", "weight": 0.5, "strategy": {"type": "none"}},
	{"key": "bundle10", "name": "10% bundle", "weight": 0.5,
	 "strategy": {"type": "bundle", "products": ["sku-cond"], "discount_percent": 10, "timing": "cart"}}]`

func TestOrderBonusOfALoyaltyPointsVariant(t *testing.T) {
	f := newFixture(t)
	f.experiment(t, "points-exp", "running", pointsVariants, map[string]string{"s-1": "points50", "s-2": "points50", "s-3": "control"})
	f.experiment(t, "bundle-exp", "running", bundleVariants, map[string]string{"s-1": "bundle10", "s-4": "bundle10"})
	f.experiment(t, "double-exp", "running", doubleVariants, map[string]string{"s-5": "x1_5"})
	f.experiment(t, "paused-exp", "paused", pointsVariants, map[string]string{"s-6": "points50"})

	f.order(t, "ev-1", "s-1", "o-1", 10_000, 0, "EUR", t0, "sku-shampoo", "sku-cond") // bonus
	f.order(t, "ev-2", "s-2", "o-2", 10_000, 0, "EUR", t0, "sku-shampoo")             // no product: no bonus
	f.order(t, "ev-3", "s-3", "o-3", 10_000, 0, "EUR", t0, "sku-cond")                // control: no bonus
	f.order(t, "ev-4", "s-4", "o-4", 10_000, 0, "EUR", t0, "sku-cond")                // bundle: no bonus
	f.order(t, "ev-5", "s-5", "o-5", 10_000, 0, "EUR", t0, "sku-cable")               // 1.5x of 100: 50
	f.order(t, "ev-6", "s-6", "o-6", 10_000, 0, "EUR", t0, "sku-cond")                // paused: no bonus
	f.credit(t, 6)

	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	want := map[string][]string{
		"o-1": {"earn 100 - -", "earn 50 points-exp points50"},
		"o-2": {"earn 100 - -"},
		"o-3": {"earn 100 - -"},
		"o-4": {"earn 100 - -"},
		"o-5": {"earn 100 - -", "earn 50 double-exp x1_5"},
		"o-6": {"earn 100 - -"},
	}
	for order, w := range want {
		var got []string
		for _, e := range f.orderEntries(t, order) {
			got = append(got, e.Kind+" "+itoa(e.Points)+" "+str(e.Experiment)+" "+str(e.Variant))
		}
		if len(got) != len(w) {
			t.Errorf("%s: entries %q, want %q", order, got, w)
			continue
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s: entries %q, want %q", order, got, w)
			}
		}
	}
	if n := f.count(t, `SELECT count(*) FROM loyalty_entries WHERE experiment = 'bundle-exp'`); n != 0 {
		t.Fatalf("%d entries name the bundle experiment", n)
	}
	if a := f.account(t, "s-1"); a.Balance != 150 {
		t.Fatalf("s-1 balance = %d, want 150", a.Balance)
	}
}

func TestRefundAfterThePointsWereSpent(t *testing.T) {
	f := newFixture(t)
	f.experiment(t, "points-exp", "running", pointsVariants, map[string]string{"s-1": "points50"})
	f.order(t, "ev-1", "s-1", "o-1", 10_000, 0, "EUR", t0, "sku-cond") // 100 base + 50 bonus
	f.credit(t, 1)
	// Same expiry, so the older lot goes first: all 100 of the base lot, 20 of the bonus lot.
	f.redeem(t, "s-1", 120, "spend")

	f.refund(t, "rf-1", "s-1", "o-1", 5_000, t0) // half: 50 of the base, 25 of the bonus owed back
	f.credit(t, 1)
	// The base lot holds nothing (50 shortfall); the bonus lot gives 25 of its 30.
	a := f.account(t, "s-1")
	if a.Balance != 5 {
		t.Fatalf("balance after a half refund = %d, want 5", a.Balance)
	}
	// What could not be taken back is shortfall, not a negative balance.
	if got := f.count(t, `SELECT sum(shortfall) FROM loyalty_entries WHERE kind = 'reverse'`); got != 50 {
		t.Fatalf("shortfall = %d, want 50", got)
	}

	f.refund(t, "rf-2", "s-1", "o-1", 5_000, t0)  // the other half
	f.refund(t, "rf-3", "s-1", "o-1", 10_000, t0) // more than was paid: nothing beyond the order's points
	f.credit(t, 2)
	if got := f.count(t, `SELECT sum(abs(points) + shortfall) FROM loyalty_entries WHERE kind = 'reverse'`); got != 150 {
		t.Fatalf("refunds undid %d points, want all 150 and no more", got)
	}
	if n := f.count(t, `SELECT count(*) FROM loyalty_entries WHERE kind = 'reverse' AND experiment = 'points-exp'`); n != 2 {
		t.Fatalf("%d reversals name the experiment, want 2 (its bonus, in two refunds)", n)
	}
	if a := f.account(t, "s-1"); a.Balance != 0 || a.LifetimeEarned != 0 {
		t.Fatalf("account = %+v, want balance 0 and nothing earned", a)
	}
	f.checkBooks(t)
}

func TestPartialRefundsTakeBackTheirShare(t *testing.T) {
	f := newFixture(t)
	f.order(t, "ev-1", "s-1", "o-1", 10_300, 300, "EUR", t0) // 100.00 paid: 100 points
	f.credit(t, 1)
	f.refund(t, "rf-1", "s-1", "o-1", 3_333, t0) // 33.33%: floor(33.33) = 33 back
	f.credit(t, 1)
	if a := f.account(t, "s-1"); a.Balance != 67 {
		t.Fatalf("after a third = %d, want 67", a.Balance)
	}
	f.refund(t, "rf-2", "s-1", "o-1", 3_333, t0) // 66.66% in all: 66 back in all
	f.credit(t, 1)
	if a := f.account(t, "s-1"); a.Balance != 34 {
		t.Fatalf("after two thirds = %d, want 34", a.Balance)
	}
	// A refund that arrives before its order is applied when the order comes.
	f.refund(t, "rf-3", "s-2", "o-2", 2_500, t0)
	f.order(t, "ev-2", "s-2", "o-2", 10_000, 0, "EUR", t0)
	f.credit(t, 2)
	if a := f.account(t, "s-2"); a.Balance != 75 {
		t.Fatalf("refund before order: balance %d, want 75", a.Balance)
	}
	f.checkBooks(t)
}

func itoa(n int64) string {
	return fmtInt(n)
}

func TestCreditOrdersTwiceAtOnce(t *testing.T) {
	f := newFixture(t)
	for i := range 30 {
		f.order(t, "ev-"+itoa(int64(i)), "s-"+itoa(int64(i%4)), "o-"+itoa(int64(i)), 1_000, 0, "EUR", t0)
	}
	counts := make(chan int, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			n, err := f.svc.CreditOrders(f.ctx)
			counts <- n
			errs <- err
		}()
	}
	total := 0
	for range 2 {
		total += <-counts
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if total != 30 {
		t.Fatalf("two runs handled %d events, want 30", total)
	}
	if got := f.count(t, `SELECT sum(points) FROM loyalty_entries`); got != 300 {
		t.Fatalf("credited %d points, want 300 (30 orders of 10)", got)
	}
}
