package targeting

import (
	"encoding/json"
	"fmt"
	"slices"
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

// BenchmarkInList looks an attribute up in the list of $in: through the set's map, and by
// scanning the strings (slices.Contains), the way a short list might be searched. Both take
// the attribute as decoded JSON (an any). The string is absent, the scan's worst case.
func BenchmarkInList(b *testing.B) {
	for _, n := range []int{3, 8, 16} {
		strs := make([]string, n)
		list := make([]any, n)
		for i := range strs {
			strs[i] = fmt.Sprintf("SKU-%04d", i)
			list[i] = strs[i]
		}
		var c compiler
		set := c.set(list, "")
		var missing any = "SKU-none"
		var found bool
		b.Run(fmt.Sprintf("n=%d/map", n), func(b *testing.B) {
			for b.Loop() {
				found = set.has(missing) || found
			}
		})
		b.Run(fmt.Sprintf("n=%d/scan", n), func(b *testing.B) {
			for b.Loop() {
				if x, ok := missing.(string); ok {
					found = slices.Contains(strs, x) || found
				}
			}
		})
		if found {
			b.Fatal("a missing string was found")
		}
	}
}

// BenchmarkFieldLookup tests one attribute of a shopper's usual size, found by its key
// directly and through lookupPath, as every attribute was before single keys got a path of
// their own.
func BenchmarkFieldLookup(b *testing.B) {
	_, attrs := benchConditionSetup(b)
	inner := eqString("mobile")
	for _, c := range []struct {
		name  string
		field *fieldCond
	}{
		{"key", &fieldCond{key: "device", inner: inner}},
		{"path", &fieldCond{path: []string{"device"}, inner: inner}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.field.matches(attrs)
			}
		})
	}
}
