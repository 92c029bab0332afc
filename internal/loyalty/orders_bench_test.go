package loyalty_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/loyalty"
)

// BenchmarkCreditOrders credits order events as the server's job does, 200 per op: orders of
// two lines from distinct shoppers, half of them exposed to a running loyalty_points variant
// whose product one of the lines holds.
func BenchmarkCreditOrders(b *testing.B) {
	db := dbtest.New(b)
	ctx := context.Background()
	svc := loyalty.New(db, loyalty.Options{Clock: func() time.Time { return t0.Add(time.Hour) }})
	if _, err := db.ExecContext(ctx, `INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ('pts', 'pts', 'running', 1, 'pts', 'shopper_id', 1,
		'[{"key":"control","strategy":{"type":"none"}},{"key":"points","strategy":{"type":"loyalty_points","products":["sku-2"],"bonus_points":100}}]')`); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		for range 200 {
			n++
			shopper, id := fmt.Sprintf("s-%d", n), fmt.Sprintf("o-%d", n)
			if _, err := db.ExecContext(ctx, `INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
				VALUES ($1, 'order_completed', $2, $3, $1, 5000, 0, 'EUR')`, id, shopper, t0); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
				VALUES ($1, 0, $3, $1, $2, 'sku-1', 1, 2000), ($1, 1, $3, $1, $2, 'sku-2', 1, 3000)`, id, shopper, t0); err != nil {
				b.Fatal(err)
			}
			if n%2 == 0 {
				if _, err := db.ExecContext(ctx, `INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
					VALUES ('pts', 1, $1, 'points', $2)`, shopper, t0); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		if got, err := svc.CreditOrders(ctx); err != nil || got != 200 {
			b.Fatalf("credited %d, %v", got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/order")
}
