package stats

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// assertFinite fails if any float64 reachable in v (fields, arrays, slices, nested structs) is NaN or ±Inf.
func assertFinite(t *testing.T, what string, v any) {
	t.Helper()
	var walk func(path string, r reflect.Value)
	walk = func(path string, r reflect.Value) {
		switch r.Kind() {
		case reflect.Float64:
			if f := r.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				t.Errorf("%s%s = %v", what, path, f)
			}
		case reflect.Struct:
			for i := 0; i < r.NumField(); i++ {
				walk(path+"."+r.Type().Field(i).Name, r.Field(i))
			}
		case reflect.Array, reflect.Slice:
			for i := 0; i < r.Len(); i++ {
				walk(path+"[]", r.Index(i))
			}
		}
	}
	walk("", reflect.ValueOf(v))
}

func TestComparisonsAbsentWithReason(t *testing.T) {
	prop := func(s, n float64) Moments { return Moments{N: n, Sum: s, SumSq: s} }
	mean := func(vals ...float64) Moments {
		var m Moments
		for _, v := range vals {
			m.Add(v)
		}
		return m
	}
	cases := []struct {
		name   string
		got    Comparison
		reason string
	}{
		{"proportions, empty control", CompareProportions(prop(0, 0), prop(5, 100), 0.05), "control arm has no units"},
		{"proportions, empty treatment", CompareProportions(prop(5, 100), prop(0, 0), 0.05), "treatment arm has no units"},
		{"proportions, one unit", CompareProportions(prop(1, 1), prop(5, 100), 0.05), "single unit"},
		{"proportions, zero conversions anywhere", CompareProportions(prop(0, 1000), prop(0, 900), 0.05), "same outcome"},
		{"proportions, all conversions everywhere", CompareProportions(prop(1000, 1000), prop(900, 900), 0.05), "same outcome"},
		{"proportions, more successes than units", CompareProportions(prop(11, 10), prop(5, 100), 0.05), "outside [0, N]"},
		{"proportions, alpha 0", CompareProportions(prop(10, 100), prop(5, 100), 0), "alpha"},
		{"proportions, NaN", CompareProportions(prop(math.NaN(), 100), prop(5, 100), 0.05), "NaN"},
		{"means, empty arm", CompareMeans(Moments{}, mean(1, 2, 3), 0.05), "control arm has no units"},
		{"means, one unit", CompareMeans(mean(1, 2, 3), mean(4), 0.05), "single unit"},
		{"means, zero variance, equal", CompareMeans(mean(5, 5, 5), mean(5, 5), 0.05), "zero variance"},
		{"means, zero variance, different", CompareMeans(mean(5, 5, 5), mean(7, 7), 0.05), "zero variance"},
		{"means, infinite sum", CompareMeans(Moments{N: 3, Sum: math.Inf(1), SumSq: 1}, mean(7, 8), 0.05), "NaN or infinity"},
		{"ratio, no orders in control", CompareRatios(RatioMoments{N: 10}, RatioMoments{N: 10, SumNum: 50, SumNumSq: 400, SumDen: 5, SumDenSq: 5, SumNumDen: 50}, 0.05), "denominator sum is 0"},
		{"ratio, empty treatment", CompareRatios(RatioMoments{N: 10, SumNum: 50, SumNumSq: 400, SumDen: 5, SumDenSq: 5, SumNumDen: 50}, RatioMoments{}, 0.05), "treatment arm has no units"},
		{"sequential of an absent comparison", Sequential(CompareMeans(mean(5, 5), mean(5, 5), 0.05), DefaultTuning), "zero variance"},
		{"sequential, tuning 0", Sequential(CompareMeans(mean(1, 2, 3), mean(2, 3, 4), 0.05), 0), "tuning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertFinite(t, "comparison", c.got)
			if c.got.Valid || c.got.Significant() {
				t.Errorf("valid/significant: %+v", c.got)
			}
			if !strings.Contains(c.got.Reason, c.reason) {
				t.Errorf("reason %q, want it to mention %q", c.got.Reason, c.reason)
			}
			if c.got.Lift.Valid || c.got.Lift.Reason == "" {
				t.Errorf("lift of an absent comparison: %+v", c.got.Lift)
			}
			if c.got.PValue != 0 || c.got.DiffCI != [2]float64{} {
				t.Errorf("absent comparison carries statistics: %+v", c.got)
			}
		})
	}
}

func TestAbsentComparisonKeepsDescriptives(t *testing.T) {
	got := CompareMeans(Moments{N: 3, Sum: 15, SumSq: 75}, Moments{N: 2, Sum: 14, SumSq: 98}, 0.05)
	if got.Valid || got.ControlMean != 5 || got.TreatmentMean != 7 || got.Diff != 2 || got.ControlN != 3 || got.TreatmentN != 2 {
		t.Errorf("got %+v, want means 5 and 7, diff 2, kept although the test is absent", got)
	}
	empty := CompareProportions(Moments{}, Moments{N: 100, Sum: 10}, 0.05)
	if empty.Diff != 0 || empty.TreatmentMean != 0.1 {
		t.Errorf("empty control: diff %v, treatment mean %v; want no diff and mean 0.1", empty.Diff, empty.TreatmentMean)
	}
}

func TestLiftAbsentWhenControlMeanZero(t *testing.T) {
	got := CompareProportions(Moments{N: 500}, Moments{N: 500, Sum: 7}, 0.05)
	if !got.Valid || got.PValue >= 0.05 {
		t.Fatalf("test should be valid and significant (0/500 vs 7/500): %+v", got)
	}
	if got.Lift.Valid || !strings.Contains(got.Lift.Reason, "control mean is 0") {
		t.Errorf("lift = %+v, want absent because control mean is 0", got.Lift)
	}
	// Without a lift the Bayesian figures are about the difference, which is positive here.
	b := BayesLift(got, HigherIsBetter)
	if !b.Valid || b.On != OnDiff || b.ChanceToWin < 0.99 {
		t.Errorf("Bayes without a lift: %+v, want it on the difference with a chance to win near 1", b)
	}
	ni := NonInferiority(got, Margin{Value: 0.1, Relative: true}, HigherIsBetter)
	if ni.Valid || !strings.Contains(ni.Reason, "control mean is 0") {
		t.Errorf("relative non-inferiority over a control mean of 0: %+v", ni)
	}
	assertFinite(t, "comparison", got)
}

func TestExtremeButValidInputsAreFinite(t *testing.T) {
	cases := map[string]Comparison{
		"all conversions in one arm":  CompareProportions(Moments{N: 500, Sum: 500}, Moments{N: 500, Sum: 480}, 0.05),
		"zero conversions in one arm": CompareProportions(Moments{N: 500, Sum: 12}, Moments{N: 480}, 0.05),
		"opposite certainties":        CompareProportions(Moments{N: 100}, Moments{N: 100, Sum: 100}, 0.05),
		"10^9 units, proportions":     CompareProportions(Moments{N: 1e9, Sum: 1e8}, Moments{N: 1e9, Sum: 1.0003e8}, 0.05),
		"10^9 units, sequential":      Sequential(CompareProportions(Moments{N: 1e9, Sum: 1e8}, Moments{N: 1e9, Sum: 1.0003e8}, 0.05), DefaultTuning),
		"huge effect, sequential":     Sequential(CompareProportions(Moments{N: 1e6, Sum: 1e5}, Moments{N: 1e6, Sum: 5e5}, 0.05), 100),
		"one arm constant":            CompareMeans(Moments{N: 10, Sum: 50, SumSq: 250}, Moments{N: 12, Sum: 66, SumSq: 386}, 0.05),
		"tiny control mean":           CompareMeans(Moments{N: 4, Sum: 1e-300, SumSq: 4}, Moments{N: 4, Sum: 4, SumSq: 8}, 0.05),
	}
	for name, c := range cases {
		assertFinite(t, name, c)
		if !c.Valid {
			t.Errorf("%s: %s", name, c.Reason)
		}
	}
	// The score interval of 0/100 against 100/100 is [0.9623, 1]. Worked by hand: under
	// pt − pc = d the likelihood pt¹⁰⁰(1−pc)¹⁰⁰ peaks at pc = (1−d)/2, pt = (1+d)/2, so the score
	// statistic is (1−d)/√((1−d²)/200) = √(200(1−d)/(1+d)); it equals 1.96 at
	// d = (1 − 1.96²/200)/(1 + 1.96²/200) = 0.96231. A Wald interval would be the point [1, 1].
	if c := cases["opposite certainties"]; c.PValue > 1e-20 || math.Abs(c.DiffCI[0]-0.9623) > 1e-4 || c.DiffCI[1] < 1-1e-9 {
		t.Errorf("0/100 vs 100/100: p %v, CI %v; want p ≈ 0 and the score interval [0.9623, 1]", c.PValue, c.DiffCI)
	}
	if c := cases["huge effect, sequential"]; c.PValue != 0 {
		t.Errorf("always-valid p of a 40-point effect on 10^6 units = %v, want it to underflow to 0, not NaN", c.PValue)
	}
	if l := cases["tiny control mean"].Lift; l.Valid {
		t.Errorf("lift over a control mean of 2.5e-301 = %+v, want absent", l)
	}
}

func TestSRMEdges(t *testing.T) {
	for name, c := range map[string]struct {
		obs, w []float64
		reason string
	}{
		"one variant":     {[]float64{10}, []float64{1}, "at least 2"},
		"length mismatch": {[]float64{10, 10}, []float64{1}, "differ in length"},
		"zero weight":     {[]float64{10, 10}, []float64{1, 0}, "positive"},
		"no units":        {[]float64{0, 0}, []float64{1, 1}, "no units"},
		"negative count":  {[]float64{-1, 10}, []float64{1, 1}, "not negative"},
	} {
		got := SRM(c.obs, c.w)
		assertFinite(t, name, got)
		if got.Valid || got.Mismatch || !strings.Contains(got.Reason, c.reason) {
			t.Errorf("%s: %+v, want absent mentioning %q", name, got, c.reason)
		}
	}
	if got := SRM([]float64{0, 100}, []float64{1, 1}); !got.Valid || !got.Mismatch || got.PValue > 1e-20 {
		t.Errorf("an empty arm with 100 in the other must be a mismatch: %+v", got)
	}
}

func TestAdjustEdges(t *testing.T) {
	if _, err := AdjustPValues([]float64{0.1, 1.2}, CorrectionHolm); err == nil {
		t.Error("p-value 1.2 accepted")
	}
	if _, err := AdjustPValues([]float64{math.NaN()}, CorrectionBH); err == nil {
		t.Error("NaN p-value accepted")
	}
	if _, err := AdjustPValues([]float64{0.1}, "bonferroni"); err == nil {
		t.Error("unknown correction accepted")
	}
	if got, err := AdjustPValues(nil, CorrectionHolm); err != nil || len(got) != 0 {
		t.Errorf("empty family: %v, %v", got, err)
	}
	for in, want := range map[string]Correction{"holm": CorrectionHolm, "bh": CorrectionBH, "benjamini-hochberg": CorrectionBH, "none": CorrectionNone} {
		if got, err := ParseCorrection(in); err != nil || got != want {
			t.Errorf("ParseCorrection(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCorrection("sidak"); err == nil {
		t.Error("ParseCorrection accepted sidak")
	}
}

func TestBayesDegenerate(t *testing.T) {
	for _, c := range []struct {
		mean       float64
		dir        Direction
		chance     float64
		loss, risk float64
	}{
		{0.1, HigherIsBetter, 1, 0, 0.1},
		{-0.1, HigherIsBetter, 0, 0.1, 0},
		{0, HigherIsBetter, 0.5, 0, 0},
		{-0.1, LowerIsBetter, 1, 0, 0.1},
	} {
		got := BayesNormal(c.mean, 0, c.dir)
		if !got.Valid || got.ChanceToWin != c.chance || got.ExpectedLoss != c.loss || got.RiskControl != c.risk {
			t.Errorf("BayesNormal(%v, 0, %v) = %+v", c.mean, c.dir, got)
		}
	}
	if got := BayesNormal(0.1, -1, HigherIsBetter); got.Valid || got.Reason == "" {
		t.Errorf("negative sd accepted: %+v", got)
	}
	if got := BayesNormal(math.NaN(), 1, HigherIsBetter); got.Valid {
		t.Errorf("NaN mean accepted: %+v", got)
	}
}

func TestNonInferiorityEdges(t *testing.T) {
	ok := CompareMeans(Moments{N: 3, Sum: 6, SumSq: 14}, Moments{N: 3, Sum: 9, SumSq: 29}, 0.05)
	for name, got := range map[string]NonInferiorityResult{
		"zero margin":       NonInferiority(ok, Margin{}, HigherIsBetter),
		"negative margin":   NonInferiority(ok, Margin{Value: -1}, HigherIsBetter),
		"absent comparison": NonInferiority(CompareMeans(Moments{}, Moments{}, 0.05), Margin{Value: 1}, HigherIsBetter),
		"sequential":        NonInferiority(Sequential(ok, DefaultTuning), Margin{Value: 1}, HigherIsBetter),
	} {
		assertFinite(t, name, got)
		if got.Valid || got.NonInferior || got.Reason == "" {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

func TestCUPEDWithConstantCovariateIsPlainWelch(t *testing.T) {
	var c, tr CUPEDMoments
	for i, y := range []float64{3, 5, 4, 8, 6, 1} {
		c.Add(y, 7)
		tr.Add(y+float64(i%3), 7)
	}
	fit := FitCUPED(c, tr)
	if fit.Theta != 0 || fit.CovariateMean != 7 {
		t.Fatalf("fit with a constant covariate = %+v, want θ 0 and mean 7", fit)
	}
	got := CompareCUPED(c, tr, fit, 0.05)
	plain := CompareMeans(c.Metric(), tr.Metric(), 0.05)
	if got.VarianceReduction != 0 || got.PValue != plain.PValue || got.DiffCI != plain.DiffCI {
		t.Errorf("CUPED with θ = 0: %+v, want the unadjusted Welch result %+v", got, plain)
	}
	if empty := FitCUPED(); empty != (CUPEDFit{}) {
		t.Errorf("fit of no arms = %+v", empty)
	}
	if got := CompareCUPED(CUPEDMoments{}, tr, fit, 0.05); got.Valid || got.Reason == "" {
		t.Errorf("CUPED with an empty arm: %+v", got)
	}
}

func TestPlanningErrors(t *testing.T) {
	good := PlanInput{Baseline: 0.1, StdDev: 1, MDE: 0.02, Alpha: 0.05, Power: 0.8, Variants: 2}
	bad := map[string]PlanInput{}
	for name, f := range map[string]func(*PlanInput){
		"alpha 1":          func(p *PlanInput) { p.Alpha = 1 },
		"power 0":          func(p *PlanInput) { p.Power = 0 },
		"one variant":      func(p *PlanInput) { p.Variants = 1 },
		"MDE 0":            func(p *PlanInput) { p.MDE = 0 },
		"relative, base 0": func(p *PlanInput) { p.RelativeMDE, p.Baseline = true, 0 },
		"NaN baseline":     func(p *PlanInput) { p.Baseline = math.NaN() },
	} {
		in := good
		f(&in)
		bad[name] = in
	}
	for name, in := range bad {
		if _, err := SampleSizeProportion(in); err == nil {
			t.Errorf("proportion, %s: no error", name)
		}
		if _, err := SampleSizeMean(in); err == nil {
			t.Errorf("mean, %s: no error", name)
		}
	}
	if _, err := SampleSizeProportion(PlanInput{Baseline: 0.9, MDE: 0.1, Alpha: 0.05, Power: 0.8, Variants: 2}); err == nil {
		t.Error("a rise from 90% to 100% was planned")
	}
	if _, err := SampleSizeMean(PlanInput{Baseline: 1, MDE: 0.1, Alpha: 0.05, Power: 0.8, Variants: 2}); err == nil {
		t.Error("means planned without a standard deviation")
	}
	if _, err := MDEProportion(MDEInput{Baseline: 0.5, PerVariant: 3, Alpha: 0.05, Power: 0.8, Variants: 2}); err == nil {
		t.Error("an MDE was found with 3 units per arm")
	}
	if _, err := MDEMean(MDEInput{StdDev: 1, Alpha: 0.05, Power: 0.8, Variants: 2}); err == nil {
		t.Error("an MDE was found with 0 units")
	}
}

func TestPlanRoundTrip(t *testing.T) {
	// The MDE reachable with the planned sample is the MDE planned for (up to rounding n up).
	plan, err := SampleSizeProportion(PlanInput{Baseline: 0.05, MDE: 0.1, RelativeMDE: true, Alpha: 0.05, Power: 0.8, Variants: 4})
	if err != nil {
		t.Fatal(err)
	}
	mde, err := MDEProportion(MDEInput{Baseline: 0.05, PerVariant: plan.PerVariantExact, Alpha: 0.05, Power: 0.8, Variants: 4})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mde.Relative-0.1) > 1e-9 || math.Abs(mde.Absolute-0.005) > 1e-10 {
		t.Errorf("round trip MDE = %+v, want 0.005 (10%%)", mde)
	}
}

func TestDaysNeeded(t *testing.T) {
	for _, c := range []struct {
		per      int64
		variants int
		daily    float64
		want     int
	}{
		{3842, 2, 1000, 8}, // 7684 units at 1000 a day: 7.684 → 8 days
		{1000, 5, 500, 10}, // exactly 10 days
		{0, 2, 100, 0},
		{1, 2, 1e6, 1},
	} {
		got, err := DaysNeeded(c.per, c.variants, c.daily)
		if err != nil || got != c.want {
			t.Errorf("DaysNeeded(%d, %d, %v) = %d, %v; want %d", c.per, c.variants, c.daily, got, err, c.want)
		}
	}
	if _, err := DaysNeeded(100, 2, 0); err == nil {
		t.Error("no traffic accepted")
	}
}
