package offers_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

// assign20 is the 20 experiments of internal/experiments' BenchmarkAssign20 (targeting,
// coverage 0.9, three variants, half in a layer), each with cap when not nil, over counter c.
func assign20(b *testing.B, c *offers.Counter, cap *experiments.FrequencyCap) *experiments.Snapshot {
	var list []*experiments.Experiment
	for i := range 20 {
		e := experiment(fmt.Sprintf("exp-%02d", i), 3)
		cov := 0.9
		e.Coverage = &cov
		e.Targeting = json.RawMessage(`{"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": 2}}`)
		if i%2 == 0 {
			e.Layer = &experiments.Layer{Name: "checkout", Range: [2]float64{0, 0.8}}
		}
		e.FrequencyCap = cap
		list = append(list, e)
	}
	return snapshot(b, c, experiments.OfferState{}, list...)
}

// benchmarkAssign20 assigns shoppers from a pool, one request a second of simulated time,
// through the whole pipeline: Assign, then Limit, as the handler runs them. With a pool of
// 100,000 a shopper returns about every 28 hours (most requests of a run are a shopper's
// first or second: the counter grows); with 1,000, every 17 minutes (after their third
// request every answer is capped: the counter is read, not grown).
func benchmarkAssign20(b *testing.B, cap *experiments.FrequencyCap, pool int) {
	c := offers.NewCounter(1 << 30)
	s := assign20(b, c, cap)
	ids := make([]string, pool)
	for i := range ids {
		ids[i] = fmt.Sprintf("shopper-%08x", i*2654435761)
	}
	attrs := map[string]any{"country": "IT", "device": "mobile", "visits": 5.0}
	out := make([]experiments.Assignment, 0, 20)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	capped := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i%pool]
		attrs["shopper_id"] = id
		out = s.Assign(id, attrs, nil, out[:0], nil)
		s.Limit(id, out, true, at.Add(time.Duration(i)*time.Second))
		for _, a := range out {
			if a.Offer == experiments.OfferCapped {
				capped++
			}
		}
		i++
		if i%1000 == 0 {
			c.DropPending() // the feed takes what was counted every flush (500 ms)
		}
	}
	b.ReportMetric(float64(capped)/float64(i), "capped/op")
}

// BenchmarkAssign20Uncapped is the pipeline with no cap anywhere: Limit finds nothing to do.
func BenchmarkAssign20Uncapped(b *testing.B) { benchmarkAssign20(b, nil, 100_000) }

// BenchmarkAssign20Capped caps all 20 experiments at 3 offers a week: each request counts or
// caps its shopper's answers in the counter.
func BenchmarkAssign20Capped(b *testing.B) { benchmarkAssign20(b, weekly3, 100_000) }

// BenchmarkAssign20ReturningUncapped is BenchmarkAssign20Uncapped with 1,000 returning
// shoppers.
func BenchmarkAssign20ReturningUncapped(b *testing.B) { benchmarkAssign20(b, nil, 1000) }

// BenchmarkAssign20ReturningCapped is BenchmarkAssign20Capped with 1,000 returning shoppers,
// each over the caps after their third request, as in internal/httpapi's
// BenchmarkAssignHandlerCapped.
func BenchmarkAssign20ReturningCapped(b *testing.B) { benchmarkAssign20(b, weekly3, 1000) }

// weekly3 is the cap of the capped benchmarks: 3 offers a week.
var weekly3 = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodWeek}

// BenchmarkCounterMemory measures the counter's memory per shopper holding k opportunities
// (k/3 experiments capped at 3 a week, each at its cap): it reports bytes per shopper, what
// docs/offers.md multiplies to a million shoppers.
func BenchmarkCounterMemory(b *testing.B) {
	for _, exps := range []int{1, 20} {
		b.Run(fmt.Sprintf("experiments=%d", exps), func(b *testing.B) {
			var list []*experiments.Experiment
			for i := range exps {
				e := experiment(fmt.Sprintf("m-%02d", i), 2)
				e.Variants[0].Weight, e.Variants[1].Weight = 0, 1 // everyone in the arm that counts
				e.FrequencyCap = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodWeek}
				list = append(list, e)
			}
			const shoppers = 100_000
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				c := offers.NewCounter(1 << 30)
				s := snapshot(b, c, experiments.OfferState{}, list...)
				at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
				out := make([]experiments.Assignment, 0, exps)
				for i := range shoppers {
					id := fmt.Sprintf("shopper-%08x", i)
					for v := range 3 {
						out = s.Assign(id, map[string]any{}, nil, out[:0], nil)
						s.Limit(id, out, true, at.Add(time.Duration(v)*time.Hour))
					}
					if i%1000 == 999 {
						c.DropPending() // the feed takes what was counted every flush
					}
				}
				c.DropPending() // what the feed would have written: not the counter's own memory (its
				// buffers are sized by a flush's worth, here a thousand shoppers' requests)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/shoppers, "B/shopper")
				runtime.KeepAlive(c)
				runtime.KeepAlive(s)
			}
		})
	}
}
