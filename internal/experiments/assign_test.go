package experiments

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/xsell/xsell/internal/targeting"
)

func ptr[T any](v T) *T { return &v }

// experimentFor builds a running experiment with the given weights and coverage.
func experimentFor(key string, weights []float64, coverage float64) *Experiment {
	e := &Experiment{Definition: Definition{Key: key, Name: key, Coverage: ptr(coverage)}, Status: StatusRunning, Phase: 1}
	for i, w := range weights {
		st := Strategy{Type: StrategyNone}
		if i > 0 {
			st = Strategy{Type: StrategySuggestion, Products: []string{"sku-" + fmt.Sprint(i)}, Timing: TimingCart}
		}
		e.Variants = append(e.Variants, Variant{Key: fmt.Sprintf("v%d", i), Name: "V", Weight: w, Strategy: st})
	}
	e.Normalize()
	return e
}

func snapshotOf(t testing.TB, list ...*Experiment) *Snapshot {
	t.Helper()
	s, err := NewSnapshot(list, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assignOne(s *Snapshot, shopper string, attrs map[string]any, key string) Assignment {
	if attrs == nil {
		attrs = map[string]any{}
	}
	return s.Assign(shopper, attrs, []string{key}, nil, nil)[0]
}

func TestSplitMatchesWeights(t *testing.T) {
	weights := []float64{0.2, 0.3, 0.5}
	s := snapshotOf(t, experimentFor("split", weights, 1))
	counts := make([]float64, 3)
	const n = 100_000
	for i := range n {
		a := assignOne(s, fmt.Sprintf("shopper-%d", i), nil, "split")
		if !a.InExperiment {
			t.Fatalf("shopper %d not assigned at full coverage: %+v", i, a)
		}
		counts[(*a.Variant)[1]-'0']++
	}
	chi2 := 0.0
	for i, w := range weights {
		exp := w * n
		chi2 += (counts[i] - exp) * (counts[i] - exp) / exp
	}
	p := 1 - distuv.ChiSquared{K: 2}.CDF(chi2)
	if p <= 0.001 {
		t.Fatalf("split %v of %d over weights %v: chi2 = %.2f, p = %.5f", counts, n, weights, chi2, p)
	}
}

func TestRaisingCoverageMovesNobody(t *testing.T) {
	before := snapshotOf(t, experimentFor("cov", []float64{0.5, 0.5}, 0.4))
	after := snapshotOf(t, experimentFor("cov", []float64{0.5, 0.5}, 0.9))
	in, joined := 0, 0
	for i := range 20_000 {
		id := fmt.Sprintf("s%d", i)
		a, b := assignOne(before, id, nil, "cov"), assignOne(after, id, nil, "cov")
		if a.InExperiment {
			in++
			if !b.InExperiment || *a.Variant != *b.Variant {
				t.Fatalf("shopper %s moved from %s when coverage rose", id, *a.Variant)
			}
		} else if b.InExperiment {
			joined++
		}
	}
	// About 40% were in, and about 50% more of everyone joined.
	if in < 7_600 || in > 8_400 || joined < 9_500 || joined > 10_500 {
		t.Fatalf("in %d, joined %d of 20000: coverage not applied as 0.4 → 0.9", in, joined)
	}
}

func TestDisjointLayersNeverShareAShopper(t *testing.T) {
	a := experimentFor("layer-a", []float64{0.5, 0.5}, 1)
	a.Layer = &Layer{Name: "checkout", Range: [2]float64{0, 0.5}}
	b := experimentFor("layer-b", []float64{0.5, 0.5}, 1)
	b.Layer = &Layer{Name: "checkout", Range: [2]float64{0.5, 1}}
	s := snapshotOf(t, a, b)
	inA, inB := 0, 0
	for i := range 20_000 {
		out := s.Assign(fmt.Sprintf("s%d", i), map[string]any{}, nil, nil, nil)
		if out[0].InExperiment && out[1].InExperiment {
			t.Fatalf("shopper s%d is in both layered experiments", i)
		}
		for _, x := range out {
			if !x.InExperiment && x.Reason != ReasonNotInLayer {
				t.Fatalf("reason %s, want not_in_layer", x.Reason)
			}
		}
		if out[0].InExperiment {
			inA++
		}
		if out[1].InExperiment {
			inB++
		}
	}
	if inA < 9_000 || inB < 9_000 {
		t.Fatalf("layer halves hold %d and %d of 20000 shoppers", inA, inB)
	}
}

func TestReasonsAndTheirOrder(t *testing.T) {
	base := func(key string) *Experiment {
		e := experimentFor(key, []float64{0.5, 0.5}, 1)
		e.Targeting = json.RawMessage(`{"country": "IT"}`)
		e.Forced = map[string]string{"qa-1": "v1"}
		return e
	}
	paused := base("paused")
	paused.Status = StatusPaused
	draft := base("draft")
	draft.Status = StatusDraft
	tiny := base("tiny")
	tiny.Coverage = ptr(0.0001)
	tiny.Normalize()
	s := snapshotOf(t, base("live"), paused, draft, tiny)
	it := map[string]any{"country": "IT"}
	cases := []struct {
		shopper, key string
		attrs        map[string]any
		reason       Reason
		in           bool
	}{
		{"s-1", "nope", it, ReasonUnknownExperiment, false},
		{"qa-1", "paused", it, ReasonNotRunning, false}, // not running beats forced
		{"s-1", "draft", it, ReasonNotRunning, false},
		{"qa-1", "live", map[string]any{"country": "US"}, ReasonForced, true}, // forced beats targeting
		{"s-1", "live", map[string]any{"country": "US"}, ReasonNotTargeted, false},
		{"s-1", "live", it, ReasonAssigned, true},
		{"s-1", "tiny", it, ReasonNotInCoverage, false},
	}
	for _, tc := range cases {
		a := assignOne(s, tc.shopper, tc.attrs, tc.key)
		if a.Reason != tc.reason || a.InExperiment != tc.in || (a.Variant != nil) != tc.in {
			t.Errorf("%s in %s: %+v, want reason %s in=%v", tc.shopper, tc.key, a, tc.reason, tc.in)
		}
	}
	if a := assignOne(s, "qa-1", it, "live"); *a.Variant != "v1" {
		t.Errorf("forced shopper got %s, want v1", *a.Variant)
	}
}

func TestExposuresRecordedOnlyForRandomisedAnswers(t *testing.T) {
	e := experimentFor("rec", []float64{0.5, 0.5}, 1)
	e.Forced = map[string]string{"qa-1": "v0"}
	s := snapshotOf(t, e)
	var got []Exposure
	rec := func(x Exposure) { got = append(got, x) }
	s.Assign("qa-1", map[string]any{}, nil, nil, rec)
	s.Assign("s-7", map[string]any{"device": "mobile"}, nil, nil, rec)
	if len(got) != 1 || got[0].ShopperID != "s-7" || got[0].Phase != 1 || got[0].Attributes["device"] != "mobile" {
		t.Fatalf("exposures = %+v, want one for s-7 only", got)
	}
}

func TestHashAttributeOtherThanShopperID(t *testing.T) {
	e := experimentFor("by-device", []float64{0.5, 0.5}, 1)
	e.HashAttribute = "device_id"
	s := snapshotOf(t, e)
	if a := assignOne(s, "s-1", nil, "by-device"); a.InExperiment || a.Reason != ReasonNotTargeted {
		t.Fatalf("no device_id: %+v", a)
	}
	a := assignOne(s, "s-1", map[string]any{"device_id": "d-42"}, "by-device")
	b := assignOne(s, "s-2", map[string]any{"device_id": "d-42"}, "by-device")
	if !a.InExperiment || *a.Variant != *b.Variant {
		t.Fatalf("same device, different variants: %+v %+v", a, b)
	}
	// The device, not the shopper, decides: different devices spread over both variants.
	seen := map[string]bool{}
	for i := range 50 {
		x := assignOne(s, "s-1", map[string]any{"device_id": fmt.Sprintf("d-%d", i)}, "by-device")
		seen[*x.Variant] = true
	}
	if len(seen) != 2 {
		t.Fatalf("50 devices of one shopper all got %v", seen)
	}
	// A number is hashed as JavaScript prints it (1e21 as "1e+21"), so that the SDK and xsell
	// place a shopper alike; twenty such pairs agree on the variant only if the number is
	// hashed as that text.
	for e := 21; e < 41; e++ {
		text := fmt.Sprintf("1e+%d", e)
		n, _ := strconv.ParseFloat(text, 64)
		a := assignOne(s, "s-1", map[string]any{"device_id": n}, "by-device")
		b := assignOne(s, "s-1", map[string]any{"device_id": text}, "by-device")
		if !a.InExperiment || *a.Variant != *b.Variant {
			t.Fatalf("device %v got %s, device %q got %s; want the same variant", n, *a.Variant, text, *b.Variant)
		}
	}
	for _, falsy := range []any{0.0, false, ""} {
		if a := assignOne(s, "s-1", map[string]any{"device_id": falsy}, "by-device"); a.Reason != ReasonNotTargeted {
			t.Errorf("device_id %#v: %+v; want not_targeted", falsy, a)
		}
	}
}

// TestRulesAndLayersSharedWithinARequest: experiments with the same targeting or layer share
// what a request works out, and only those — a different rule, or the same layer name hashed
// on another attribute, is worked out on its own.
func TestRulesAndLayersSharedWithinARequest(t *testing.T) {
	it, fr, it2 := experimentFor("it", []float64{0.5, 0.5}, 1), experimentFor("fr", []float64{0.5, 0.5}, 1), experimentFor("it-again", []float64{0.5, 0.5}, 1)
	it.Targeting = json.RawMessage(`{"country": "IT"}`)
	fr.Targeting = json.RawMessage(`{"country": "FR"}`)
	it2.Targeting = json.RawMessage(`{"country": "IT"}`)
	byShopper, byDevice := experimentFor("by-shopper", []float64{0.5, 0.5}, 1), experimentFor("by-device", []float64{0.5, 0.5}, 1)
	byShopper.Layer = &Layer{Name: "l", Range: [2]float64{0, 0.5}}
	byDevice.Layer = &Layer{Name: "l", Range: [2]float64{0, 0.5}}
	byDevice.HashAttribute = "device_id"
	s := snapshotOf(t, it, fr, it2, byShopper, byDevice)
	for _, country := range []string{"IT", "FR"} {
		for i := range 200 {
			shopper, device := fmt.Sprintf("s-%d", i), fmt.Sprintf("d-%d", i*7919)
			out := s.Assign(shopper, map[string]any{"country": country, "device_id": device}, nil, nil, nil)
			reasons := map[string]Reason{}
			for _, a := range out {
				reasons[a.Experiment] = a.Reason
			}
			wantIT, wantFR := ReasonAssigned, ReasonNotTargeted
			if country == "FR" {
				wantIT, wantFR = ReasonNotTargeted, ReasonAssigned
			}
			if reasons["it"] != wantIT || reasons["it-again"] != wantIT || reasons["fr"] != wantFR {
				t.Fatalf("%s from %s: %v", shopper, country, reasons)
			}
			// GrowthBook's namespace check, on each experiment's own hash attribute.
			for key, id := range map[string]string{"by-shopper": shopper, "by-device": device} {
				want := ReasonNotInLayer
				if targeting.InNamespace(id, "l", 0, 0.5) {
					want = ReasonAssigned
				}
				if reasons[key] != want {
					t.Fatalf("%s (%s): %s, want %s", key, id, reasons[key], want)
				}
			}
		}
	}
}
