package loyalty_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/loyalty"
)

// BenchmarkCreditOrdersStaged is BenchmarkCreditOrders's "set" with the exposures of the
// batch's shoppers still staged in exposure_log rather than merged, behind a backlog of other
// shoppers' staged rows (one row of 10 exposures each), as after a burst of new shoppers the
// merge has not caught up with: what reading the staged exposures costs crediting.
func BenchmarkCreditOrdersStaged(b *testing.B) {
	for _, backlog := range []int{0, 20_000, 100_000} {
		b.Run(fmt.Sprintf("backlog_%d", backlog), func(b *testing.B) { benchmarkCreditOrdersStaged(b, backlog) })
	}
}

func benchmarkCreditOrdersStaged(b *testing.B, backlog int) {
	db := dbtest.New(b)
	ctx := context.Background()
	svc := loyalty.New(db, loyalty.Options{Clock: func() time.Time { return t0.Add(time.Hour) }})
	if _, err := db.ExecContext(ctx, `INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ('pts', 'pts', 'running', 1, 'pts', 'shopper_id', 1,
		'[{"key":"control","strategy":{"type":"none"}},{"key":"points","strategy":{"type":"loyalty_points","products":["sku-2"],"bonus_points":100}}]')`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
		SELECT 'backlog-' || g, $2, '{"country": "IT"}', array_fill('x'::text, ARRAY[10]), array_fill(1, ARRAY[10]),
			array_fill('v'::text, ARRAY[10])
		FROM generate_series(1, $1::int) g`, backlog, t0); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE exposure_log`); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := db.ExecContext(ctx, fmt.Sprintf(benchBatchSQL, `INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
			SELECT shopper, $3, '{}', '{pts}', '{1}', '{points}' FROM o WHERE g % 2 = 0`), n, loyalty.CreditBatch, t0); err != nil {
			b.Fatal(err)
		}
		n += loyalty.CreditBatch
		b.StartTimer()
		if got, err := svc.CreditOrders(ctx); err != nil || got != loyalty.CreditBatch {
			b.Fatalf("credited %d, %v", got, err)
		}
	}
	b.StopTimer()
	if bonuses := dbtest.Count(b, db, `SELECT count(*) FROM loyalty_entries WHERE experiment = 'pts'`); bonuses != n/2 {
		b.Fatalf("%d bonuses for %d orders, half of them exposed", bonuses, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/order")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "orders/s")
}
