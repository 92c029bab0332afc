package targeting

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchTargeting is a realistic cross-sell targeting rule: market, device,
// basket size and a loyalty segment.
const benchTargeting = `{
	"country": {"$in": ["IT", "FR", "DE", "ES"]},
	"device": "mobile",
	"cart_total": {"$gt": 50},
	"$or": [{"loyalty.tier": {"$in": ["gold", "platinum"]}}, {"first_order": true}]
}`

const benchAttrs = `{"country": "IT", "device": "mobile", "cart_total": 87.5,
	"loyalty": {"tier": "gold", "points": 1200}, "first_order": false}`

func benchConditionSetup(b *testing.B) (*Condition, map[string]any) {
	b.Helper()
	cond, err := Parse(json.RawMessage(benchTargeting))
	if err != nil {
		b.Fatal(err)
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(benchAttrs), &attrs); err != nil {
		b.Fatal(err)
	}
	if !cond.Eval(attrs) {
		b.Fatal("benchmark shopper is not targeted")
	}
	return cond, attrs
}

func BenchmarkConditionEval(b *testing.B) {
	cond, attrs := benchConditionSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		cond.Eval(attrs)
	}
}

// BenchmarkExperimentEval is this package's share of assigning one shopper to one experiment:
// targeting, layer, hash and variant choice (the seed and ranges are prepared once per
// experiment, as the assignment cache does).
func BenchmarkExperimentEval(b *testing.B) {
	cond, attrs := benchConditionSetup(b)
	ranges := BucketRanges(3, 0.8, []float64{0.2, 0.3, 0.5})
	const id = "shopper-0a1b2c3d4e5f"
	seed := NewSeed("exp-bundle-timing")
	b.ReportAllocs()
	for b.Loop() {
		if !cond.Eval(attrs) || !InNamespace(id, "checkout-offers", 0, 0.6) {
			continue
		}
		ChooseVariation(seed.Hash(id), ranges)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := json.RawMessage(benchTargeting)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInList looks a string up in the list of $in both ways valueSet can: scanning the
// strings, and through a map. The string is absent, the scan's worst case. linearScanMax is
// where the scan stops paying; docs/benchmarks.md has the figures.
func BenchmarkInList(b *testing.B) {
	for _, n := range []int{3, 8, 16, 1000} {
		strs := make([]string, n)
		for i := range strs {
			strs[i] = fmt.Sprintf("SKU-%04d", i)
		}
		var missing any = "SKU-none"
		scan := &valueSet{strs: strs}
		lookup := &valueSet{strs: strs, index: map[string]struct{}{}}
		for _, s := range strs {
			lookup.index[s] = struct{}{}
		}
		for _, c := range []struct {
			name string
			set  *valueSet
		}{{"scan", scan}, {"map", lookup}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				for b.Loop() {
					c.set.has(missing)
				}
			})
		}
	}
}
