package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkConsistent fails unless the comparison's interval, lift interval and p-value tell one story.
func checkConsistent(t *testing.T, what string, c Comparison) {
	t.Helper()
	if !c.Valid {
		return
	}
	excludes := func(ci [2]float64) bool { return ci[0] > 0 || ci[1] < 0 }
	// A p-value within 1e-12 of alpha may round either way.
	if math.Abs(c.PValue-c.Alpha) < 1e-12 {
		return
	}
	if excludes(c.DiffCI) != c.Significant() {
		t.Errorf("%s (%s): interval %v with p = %v", what, c.Test, c.DiffCI, c.PValue)
	}
	if !c.Lift.Valid {
		return
	}
	if excludes(c.Lift.CI) != c.Significant() {
		t.Errorf("%s (%s): lift interval %v with p = %v", what, c.Test, c.Lift.CI, c.PValue)
	}
	if c.ControlMean <= 0 || math.Signbit(c.Lift.Estimate) != math.Signbit(c.Diff) && c.Diff != 0 {
		t.Errorf("%s (%s): lift %v over control mean %v with difference %v", what, c.Test, c.Lift.Estimate, c.ControlMean, c.Diff)
	}
	if !(c.Lift.CI[0] <= c.Lift.Estimate && c.Lift.Estimate <= c.Lift.CI[1]) {
		t.Errorf("%s (%s): lift %v outside its interval %v", what, c.Test, c.Lift.Estimate, c.Lift.CI)
	}
}

func TestIntervalsAgreeWithPValues(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2026))
	// Mostly the z-test; one case in ten has rare events, which the exact test handles (and
	// whose intervals cost dozens of exact p-values each).
	for i := range 200 {
		nc, nt := float64(20+r.IntN(800)), float64(20+r.IntN(800))
		rate := math.Pow(10, -1.5*r.Float64())
		if i%10 == 0 {
			rate = 4 / (nc + nt) * r.Float64()
		}
		xc := math.Min(nc, math.Round(nc*rate*(0.5+r.Float64())))
		xt := math.Min(nt, math.Round(nt*rate*(0.5+r.Float64())))
		c := CompareProportions(ProportionMoments(nc, xc), ProportionMoments(nt, xt), 0.05)
		checkConsistent(t, "proportions", c)
		checkConsistent(t, "sequential proportions", SequentialProportions(ProportionMoments(nc, xc), ProportionMoments(nt, xt), 0.05, DefaultTuning))
		if i%10 == 0 {
			checkConsistent(t, "proportions at alpha 0.01", CompareProportions(ProportionMoments(nc, xc), ProportionMoments(nt, xt), 0.01))
		}
	}
	for range 200 {
		var c, tr Moments
		var rc, rt RatioMoments
		shift := r.NormFloat64() * 5
		effect := r.NormFloat64() * 0.3
		nc, nt := 5+r.IntN(400), 5+r.IntN(400)
		for range nc {
			x := shift + math.Exp(r.NormFloat64())*float64(b2i(r.Float64() < 0.4))
			c.Add(x)
			rc.Add(x, float64(1+r.IntN(3)))
		}
		for range nt {
			y := shift + effect + math.Exp(r.NormFloat64())*float64(b2i(r.Float64() < 0.4))
			tr.Add(y)
			rt.Add(y, float64(1+r.IntN(3)))
		}
		welch := CompareMeans(c, tr, 0.05)
		checkConsistent(t, "Welch", welch)
		checkConsistent(t, "sequential Welch", Sequential(welch, DefaultTuning))
		checkConsistent(t, "randomization", CompareMeansRandomization(c, tr, 0.05))
		checkConsistent(t, "ratio", CompareRatios(rc, rt, 0.05))
	}
}

func TestNoLiftOverANegativeControlMean(t *testing.T) {
	// Net revenue after refunds and offer costs: control −2.0 on average, treatment −1.0. The
	// difference is +1.0 (better); a lift of −50% would say the opposite.
	var c, tr Moments
	for i := range 400 {
		c.Add(-2 + float64(i%5-2))
		tr.Add(-1 + float64(i%5-2))
	}
	for _, got := range []Comparison{CompareMeans(c, tr, 0.05), Sequential(CompareMeans(c, tr, 0.05), DefaultTuning)} {
		if !got.Valid || got.Diff != 1 || got.Lift.Valid || !strings.Contains(got.Lift.Reason, "negative") {
			t.Errorf("%s: diff %v, lift %+v; want no lift because the control mean is negative", got.Test, got.Diff, got.Lift)
		}
		b := BayesLift(got, HigherIsBetter)
		if b.On != OnDiff || b.ChanceToWin < 0.99 {
			t.Errorf("%s: Bayesian figures %+v, want them on the difference, treatment almost surely better", got.Test, b)
		}
	}
	ni := NonInferiority(CompareMeans(c, tr, 0.05), Margin{Value: 0.1, Relative: true}, HigherIsBetter)
	if !ni.Valid || ni.Relative || ni.Margin != 0.2 || !ni.NonInferior || !strings.Contains(ni.Note, "not clearly above 0") {
		t.Errorf("relative margin over a negative control mean: %+v, want 10%% of |−2| = 0.2 on the difference", ni)
	}
	// A control mean barely above 0 next to its noise: no lift either.
	var small Moments
	for i := range 50 {
		small.Add(float64(i%2)*2 - 0.95)
	}
	if got := CompareMeans(small, tr, 0.05); got.Lift.Valid || !strings.Contains(got.Lift.Reason, "not clearly above 0") {
		t.Errorf("control mean %v ± its noise: lift %+v", got.ControlMean, got.Lift)
	}
}
