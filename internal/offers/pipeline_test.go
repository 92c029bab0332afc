package offers_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

func ptr[T any](v T) *T { return &v }

// experiment is a running experiment: a control and n-1 arms suggesting sku-2.
func experiment(key string, n int) *experiments.Experiment {
	e := &experiments.Experiment{Definition: experiments.Definition{Key: key, Name: key}, Status: experiments.StatusRunning, Phase: 1}
	for i := range n {
		st := experiments.Strategy{Type: experiments.StrategyNone}
		if i > 0 {
			st = experiments.Strategy{Type: experiments.StrategySuggestion, Products: []string{"sku-2"}, Timing: experiments.TimingCart}
		}
		e.Variants = append(e.Variants, experiments.Variant{Key: fmt.Sprintf("v%d", i), Name: "V", Weight: 1 / float64(n), Strategy: st})
	}
	e.Normalize()
	return e
}

func snapshot(t testing.TB, c *offers.Counter, state experiments.OfferState, list ...*experiments.Experiment) *experiments.Snapshot {
	t.Helper()
	s, err := experiments.NewSnapshotWith(list, time.Now(), experiments.SnapshotOptions{State: state, Limiter: c})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ask assigns one shopper to the snapshot's experiments at a time, through the whole
// pipeline, and returns the offer of each answer by experiment.
func ask(s *experiments.Snapshot, shopper string, at time.Time, track bool, keys ...string) map[string]experiments.Assignment {
	out := s.Assign(shopper, map[string]any{}, keys, nil, nil)
	s.Limit(shopper, out, track, at)
	m := map[string]experiments.Assignment{}
	for _, a := range out {
		m[a.Experiment] = a
	}
	return m
}

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func TestACapCountsOpportunitiesInARollingWindow(t *testing.T) {
	c := offers.NewCounter(0)
	e := experiment("capped", 2)
	e.FrequencyCap = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodDay}
	s := snapshot(t, c, experiments.OfferState{}, e)
	steps := []struct {
		after time.Duration
		track bool
		want  experiments.Offer
	}{
		{0, true, experiments.OfferShow},
		{time.Hour, false, experiments.OfferShow}, // a prefetch ("track": false) is not counted
		{2 * time.Hour, true, experiments.OfferShow},
		{3 * time.Hour, true, experiments.OfferShow},
		{4 * time.Hour, true, experiments.OfferCapped}, // the fourth opportunity within 24h
		{5 * time.Hour, false, experiments.OfferCapped},
		{23 * time.Hour, true, experiments.OfferCapped}, // capped answers are not counted...
		{24 * time.Hour, true, experiments.OfferShow},   // ...so the first one leaving frees a slot
		{24*time.Hour + time.Minute, true, experiments.OfferCapped},
		{26 * time.Hour, true, experiments.OfferShow},
	}
	for i, st := range steps {
		a := ask(s, "s-1", t0.Add(st.after), st.track)["capped"]
		if a.Offer != st.want || !a.InExperiment {
			t.Fatalf("step %d (+%s): offer %s in=%v, want %s in the experiment", i, st.after, a.Offer, a.InExperiment, st.want)
		}
	}
	// Another shopper is counted apart.
	if a := ask(s, "s-2", t0.Add(4*time.Hour), true)["capped"]; a.Offer != experiments.OfferShow {
		t.Fatalf("a fresh shopper: %s", a.Offer)
	}
}

func TestTheGlobalCapCountsEveryExperiment(t *testing.T) {
	c := offers.NewCounter(0)
	a, b, x := experiment("a", 2), experiment("b", 2), experiment("x", 2)
	x.FrequencyCap = &experiments.FrequencyCap{Offers: 1, Per: experiments.PeriodWeek}
	global := &experiments.FrequencyCap{Offers: 5, Per: experiments.PeriodWeek}
	s := snapshot(t, c, experiments.OfferState{GlobalCap: global}, a, b, x)
	// Visit 1 counts a, b and x (3); visit 2: x is over its own cap (not counted), a and b
	// count (5); visit 3: everything is over the global cap.
	want := []map[string]experiments.Offer{
		{"a": "show", "b": "show", "x": "show"},
		{"a": "show", "b": "show", "x": "capped"},
		{"a": "capped", "b": "capped", "x": "capped"},
	}
	for i, w := range want {
		got := ask(s, "s-1", t0.Add(time.Duration(i)*time.Hour), true)
		for key, offer := range w {
			if got[key].Offer != offer {
				t.Fatalf("visit %d, %s: %s, want %s", i+1, key, got[key].Offer, offer)
			}
		}
	}
	// Within one request the global cap admits answers in order until it is reached.
	got := ask(s, "s-2", t0, true, "a", "b", "a", "b", "a", "b", "x")
	if got["a"].Offer != "show" || got["b"].Offer != "capped" {
		t.Fatalf("seven answers against a cap of five: %v", got)
	}
}

func TestAVariantsCapIsThatArmsTreatmentOnly(t *testing.T) {
	c := offers.NewCounter(0)
	e := experiment("arm-cap", 3)
	e.Variants[2].FrequencyCap = &experiments.FrequencyCap{Offers: 2, Per: experiments.PeriodMonth}
	s := snapshot(t, c, experiments.OfferState{}, e)
	capped := map[string]int{}
	for i := range 600 {
		id := fmt.Sprintf("s-%d", i)
		for v := range 4 {
			a := ask(s, id, t0.Add(time.Duration(v)*time.Hour), true)["arm-cap"]
			if a.Offer == experiments.OfferCapped {
				capped[*a.Variant]++
			}
		}
	}
	// Each shopper of v2 is capped at visits 3 and 4; nobody else ever.
	if capped["v0"] != 0 || capped["v1"] != 0 || capped["v2"] < 300 || capped["v2"]%2 != 0 {
		t.Fatalf("capped answers by variant: %v", capped)
	}
}

// TestCappingByOpportunitiesKeepsAnAATestFair: in an A/A experiment with a cap, shoppers are
// capped alike in both arms — the same share of answers — because the cap counts the answers
// of every arm, control included. Counting only the offers rendered (control renders none)
// would never cap the control and cap the treatment's most frequent visitors. Capped shoppers
// keep their variant, so the arms stay as randomised: no sample-ratio mismatch, and an
// outcome that depends on how often a shopper visits and how many offers they were shown
// shows no difference between the arms.
func TestCappingByOpportunitiesKeepsAnAATestFair(t *testing.T) {
	c := offers.NewCounter(0)
	e := experiment("aa", 2)
	e.Variants[1].Strategy = e.Variants[0].Strategy // A/A: the same experience in both arms
	e.FrequencyCap = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodWeek}
	s := snapshot(t, c, experiments.OfferState{}, e)
	rng := rand.New(rand.NewPCG(19, 2026))
	shown, capped := map[string]float64{}, map[string]float64{}
	outcome := map[string][]float64{}
	for i := range 20_000 {
		id := fmt.Sprintf("aa-%d", i)
		visits := 1 + i%7 // 1 to 7 visits a week, the same mix in both arms
		variant, offers := "", 0
		for v := range visits {
			a := ask(s, id, t0.Add(time.Duration(v)*time.Hour), true)["aa"]
			if !a.InExperiment || a.Variant == nil || (variant != "" && *a.Variant != variant) {
				t.Fatalf("%s, visit %d: in=%v variant %v after %q: a capped shopper must keep their variant", id, v, a.InExperiment, a.Variant, variant)
			}
			variant = *a.Variant
			if a.Offer == experiments.OfferCapped {
				capped[variant]++
			} else {
				shown[variant]++
				offers++
			}
		}
		// Frequent visitors spend more; each offer shown adds a little, with noise.
		outcome[variant] = append(outcome[variant], 10*float64(visits)+3*float64(offers)+rng.NormFloat64()*20)
	}
	if capped["v0"] == 0 || capped["v1"] == 0 {
		t.Fatalf("capped answers %v: the test shows nothing unless both arms are capped", capped)
	}
	// Capping alike: 2×2 table of arm × capped, Pearson χ² with one degree of freedom.
	chi2 := pearson2x2(shown["v0"], capped["v0"], shown["v1"], capped["v1"])
	if p := 1 - (distuv.ChiSquared{K: 1}).CDF(chi2); p < 0.001 {
		t.Fatalf("capping differs between the arms of an A/A test: shown %v capped %v (χ² %.1f, p %.2g)", shown, capped, chi2, p)
	}
	// No SRM: shoppers per arm against the 50/50 weights (χ², one degree of freedom).
	n0, n1 := float64(len(outcome["v0"])), float64(len(outcome["v1"]))
	half := (n0 + n1) / 2
	srm := (n0-half)*(n0-half)/half + (n1-half)*(n1-half)/half
	if p := 1 - (distuv.ChiSquared{K: 1}).CDF(srm); p < 0.001 {
		t.Fatalf("sample-ratio mismatch: %v and %v shoppers (χ² %.1f, p %.2g)", n0, n1, srm, p)
	}
	// No difference in the outcome: Welch's t-test.
	pDiff := welchP(outcome["v0"], outcome["v1"])
	t.Logf("shoppers %v/%v, capped answers %v of %v shown, outcome p %.3f", n0, n1, capped, shown, pDiff)
	if p := pDiff; p < 0.01 {
		t.Fatalf("an A/A test with a cap shows a difference: means %.2f and %.2f, p %.3g",
			stat.Mean(outcome["v0"], nil), stat.Mean(outcome["v1"], nil), p)
	}
}

// welchP is the two-sided p-value of Welch's t-test of the means of a and b.
func welchP(a, b []float64) float64 {
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	na, nb := float64(len(a)), float64(len(b))
	se2 := va/na + vb/nb
	df := se2 * se2 / ((va/na)*(va/na)/(na-1) + (vb/nb)*(vb/nb)/(nb-1))
	tt := math.Abs(ma-mb) / math.Sqrt(se2)
	return 2 * (1 - (distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}).CDF(tt))
}

// pearson2x2 is Pearson's χ² of the table [[a, b], [c, d]].
func pearson2x2(a, b, c, d float64) float64 {
	n := a + b + c + d
	num := n * (a*d - b*c) * (a*d - b*c)
	return num / ((a + b) * (c + d) * (a + c) * (b + d))
}

func TestForcedShoppersAndTheHoldoutAreNeverCounted(t *testing.T) {
	c := offers.NewCounter(0)
	e := experiment("fh", 2)
	e.FrequencyCap = &experiments.FrequencyCap{Offers: 1, Per: experiments.PeriodDay}
	e.Forced = map[string]string{"qa-1": "v1"}
	s := snapshot(t, c, experiments.OfferState{Holdout: experiments.Holdout{Percent: 50, Seed: "h", Generation: 1}}, e)
	for v := range 3 {
		if a := ask(s, "qa-1", t0.Add(time.Duration(v)*time.Minute), true)["fh"]; a.Offer != experiments.OfferShow || a.Reason != experiments.ReasonForced {
			t.Fatalf("QA shopper, visit %d: %s %s", v, a.Reason, a.Offer)
		}
	}
	held := 0
	for i := range 200 {
		id := fmt.Sprintf("s-%d", i)
		if !s.InHoldout(id) {
			continue
		}
		held++
		for v := range 3 {
			if a := ask(s, id, t0.Add(time.Duration(v)*time.Minute), true)["fh"]; a.Offer != experiments.OfferHoldout {
				t.Fatalf("held-out shopper %s, visit %d: %s", id, v, a.Offer)
			}
		}
	}
	if held == 0 {
		t.Fatal("nobody held out")
	}
}
