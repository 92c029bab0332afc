package events

import (
	"context"
	"fmt"
	"testing"

	"github.com/xsell/xsell/internal/dbtest"
)

// BenchmarkInsertGroup is one group commit of 800 new events shaped like the load of
// scripts/bench/events.sh (60% views, 25% acceptances, 12% orders of two lines, 3% refunds).
func BenchmarkInsertGroup(b *testing.B) {
	db := dbtest.New(b)
	evs, err := Parse(benchBatch(), testNow)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	b.ReportMetric(0, "ns/op")
	for b.Loop() {
		group := make([]*Event, 0, 800)
		for range 8 {
			for i := range evs {
				e := evs[i]
				n++
				e.ID = fmt.Sprintf("g-%d", n)
				group = append(group, &e)
			}
		}
		if _, err := insert(context.Background(), db, group); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
