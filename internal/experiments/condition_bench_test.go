package experiments

import (
	"encoding/json"
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
	cond, err := ParseCondition(json.RawMessage(benchTargeting))
	if err != nil {
		b.Fatal(err)
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(benchAttrs), &attrs); err != nil {
		b.Fatal(err)
	}
	if !cond.Eval(attrs, nil) {
		b.Fatal("benchmark shopper is not targeted")
	}
	return cond, attrs
}

func BenchmarkConditionEval(b *testing.B) {
	cond, attrs := benchConditionSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		cond.Eval(attrs, nil)
	}
}

// BenchmarkExperimentEval is the evaluator's share of assigning one shopper
// to one experiment: targeting, layer, hash and variant choice (ranges are
// computed once per experiment, not per request).
func BenchmarkExperimentEval(b *testing.B) {
	cond, attrs := benchConditionSetup(b)
	ranges := GetBucketRanges(3, 0.8, []float64{0.2, 0.3, 0.5})
	const id = "shopper-0a1b2c3d4e5f"
	b.ReportAllocs()
	for b.Loop() {
		if !cond.Eval(attrs, nil) || !InNamespace(id, "checkout-offers", 0, 0.6) {
			continue
		}
		n, _ := Hash("exp-bundle-timing", id, 2)
		ChooseVariation(n, ranges)
	}
}

func BenchmarkParseCondition(b *testing.B) {
	raw := json.RawMessage(benchTargeting)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCondition(raw); err != nil {
			b.Fatal(err)
		}
	}
}
