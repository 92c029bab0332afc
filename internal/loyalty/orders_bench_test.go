package loyalty_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/offers"
)

// BenchmarkCreditOrders credits order events as the server's job does, one batch (CreditBatch) per op: orders of
// two lines from distinct shoppers, half of them exposed to a running loyalty_points variant
// whose product one of the lines holds. "set" is the job's path; "event_by_event" the path of
// a batch with poison, for comparison in the same run. Bonuses are charged to the offers'
// budgets, as the server wires it (the experiment has none, as most have).
func BenchmarkCreditOrders(b *testing.B) {
	b.Run("set", func(b *testing.B) { benchmarkCreditOrders(b, false) })
	b.Run("event_by_event", func(b *testing.B) { benchmarkCreditOrders(b, true) })
}

// benchBatchSQL writes one batch of the job: orders o-($1+1) … o-($1+$2) of as many new
// shoppers, at $3, each of two lines; %s, a statement over o(g, id, shopper), exposes half of
// them.
const benchBatchSQL = `WITH o AS (SELECT g, 'o-' || g AS id, 's-' || g AS shopper
		FROM generate_series($1::int + 1, $1::int + $2::int) g),
	ev AS (INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		SELECT id, 'order_completed', shopper, $3, id, 5000, 0, 'EUR' FROM o ORDER BY g),
	items AS (INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
		SELECT id, l, $3, id, shopper, 'sku-' || (l + 1), 1, 2000 + 1000 * l FROM o, generate_series(0, 1) l)
	%s`

func benchmarkCreditOrders(b *testing.B, eventByEvent bool) {
	db := dbtest.New(b)
	ctx := context.Background()
	svc := loyalty.New(db, loyalty.Options{Clock: func() time.Time { return t0.Add(time.Hour) }, Budgets: offers.NewBudgets(db, nil)})
	if eventByEvent {
		loyalty.CreditEventByEvent(svc)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ('pts', 'pts', 'running', 1, 'pts', 'shopper_id', 1,
		'[{"key":"control","strategy":{"type":"none"}},{"key":"points","strategy":{"type":"loyalty_points","products":["sku-2"],"bonus_points":100}}]')`); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := db.ExecContext(ctx, fmt.Sprintf(benchBatchSQL, `INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
			SELECT 'pts', 1, shopper, 'points', $3 FROM o WHERE g % 2 = 0`), n, loyalty.CreditBatch, t0); err != nil {
			b.Fatal(err)
		}
		n += loyalty.CreditBatch
		b.StartTimer()
		if got, err := svc.CreditOrders(ctx); err != nil || got != loyalty.CreditBatch {
			b.Fatalf("credited %d, %v", got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/order")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "orders/s")
}
