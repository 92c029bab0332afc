package experiments

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAssign20 assigns one shopper against 20 running experiments, each with targeting,
// half of them in a layer: the work of one POST /v1/assign without HTTP. All 20 share one
// targeting rule and the layered ones one layer, as scripts/bench/assign.sh sets them up, so
// the rule and the layer hash are worked out once per request.
func BenchmarkAssign20(b *testing.B) { benchmarkAssign20(b, false) }

// BenchmarkAssign20Distinct is BenchmarkAssign20 with a rule and a layer of its own for each
// experiment: nothing is shared within a request.
func BenchmarkAssign20Distinct(b *testing.B) { benchmarkAssign20(b, true) }

func benchmarkAssign20(b *testing.B, distinct bool) {
	var list []*Experiment
	for i := range 20 {
		e := experimentFor(fmt.Sprintf("exp-%02d", i), []float64{0.34, 0.33, 0.33}, 0.9)
		e.Targeting = json.RawMessage(`{"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": 2}}`)
		layer := "checkout"
		if distinct {
			e.Targeting = json.RawMessage(fmt.Sprintf(`{"country": {"$in": ["IT", "FR", "DE"]}, "device": "mobile", "visits": {"$gt": %d}}`, i-20))
			layer = fmt.Sprintf("layer-%d", i)
		}
		if i%2 == 0 {
			e.Layer = &Layer{Name: layer, Range: [2]float64{0, 0.8}}
		}
		list = append(list, e)
	}
	s, err := NewSnapshot(list, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	attrs := map[string]any{"shopper_id": "shopper-0a1b2c3d", "country": "IT", "device": "mobile", "visits": 5.0}
	out := make([]Assignment, 0, 20)
	b.ReportAllocs()
	for b.Loop() {
		out = s.Assign("shopper-0a1b2c3d", attrs, nil, out[:0], nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20, "ns/experiment")
}
