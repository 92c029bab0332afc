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
func BenchmarkAssign20(b *testing.B) { benchmarkAssign20(b, assign20(b, false), false) }

// BenchmarkAssign20NoMemo is BenchmarkAssign20 with the per-request memo switched off: the
// simple alternative, in which every experiment evaluates its rule and hashes its layer.
func BenchmarkAssign20NoMemo(b *testing.B) {
	s := assign20(b, false)
	for _, c := range s.byKey {
		c.condSlot, c.layerSlot = -1, -1
	}
	benchmarkAssign20(b, s, false)
}

// BenchmarkAssign20Distinct is BenchmarkAssign20 with a rule and a layer of its own for each
// experiment: nothing is shared within a request.
func BenchmarkAssign20Distinct(b *testing.B) { benchmarkAssign20(b, assign20(b, true), false) }

// BenchmarkAssign20Encoded is BenchmarkAssign20 followed by encoding the 20 answers, as the
// handler does, by copying the JSON prepared when the cache loaded.
func BenchmarkAssign20Encoded(b *testing.B) { benchmarkAssign20(b, assign20(b, false), true) }

// BenchmarkAssign20Marshalled encodes the answers with json.Marshal instead: the simple
// alternative to preparing them.
func BenchmarkAssign20Marshalled(b *testing.B) {
	s := assign20(b, false)
	for _, c := range s.byKey {
		for _, answers := range [][]Assignment{c.assigned, c.forcedIn} {
			for i := range answers {
				answers[i].raw = nil
			}
		}
		c.notTargeted.raw, c.notInCoverage.raw, c.notInLayer.raw, c.off.raw = nil, nil, nil, nil
	}
	benchmarkAssign20(b, s, true)
}

func assign20(b *testing.B, distinct bool) *Snapshot {
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
	return s
}

func benchmarkAssign20(b *testing.B, s *Snapshot, encode bool) {
	attrs := map[string]any{"shopper_id": "shopper-0a1b2c3d", "country": "IT", "device": "mobile", "visits": 5.0}
	out := make([]Assignment, 0, 20)
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		out = s.Assign("shopper-0a1b2c3d", attrs, nil, out[:0], nil)
		if encode {
			buf = buf[:0]
			for i := range out {
				buf = out[i].AppendJSON(buf)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20, "ns/experiment")
}
