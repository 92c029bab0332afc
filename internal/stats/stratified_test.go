package stats

import (
	"math"
	"testing"
)

// stratifiedRef holds testdata/stratified.json (testdata/stratified.py: every value from the
// raw units by enumeration, the textbook CMH formulas, or root finding on the units).
type stratifiedRef struct {
	Enumerated struct {
		Strata   []unitStratum `json:"strata"`
		Diff     float64       `json:"diff"`
		Variance float64       `json:"variance"`
		K3       float64       `json:"k3"`
	} `json:"enumerated"`
	CMH struct {
		Strata []struct {
			ControlN           float64 `json:"control_n"`
			ControlSuccesses   float64 `json:"control_successes"`
			TreatmentN         float64 `json:"treatment_n"`
			TreatmentSuccesses float64 `json:"treatment_successes"`
		} `json:"strata"`
		Chi2           float64 `json:"cmh_chi2"`
		RiskDifference float64 `json:"mh_risk_difference"`
	} `json:"cmh"`
	Large []struct {
		Strata        []unitStratum `json:"strata"`
		Alpha         float64       `json:"alpha"`
		ControlMean   float64       `json:"control_mean"`
		TreatmentMean float64       `json:"treatment_mean"`
		Diff          float64       `json:"diff"`
		PValue        float64       `json:"p_value"`
		DiffCI        [2]float64    `json:"diff_ci"`
		Lift          float64       `json:"lift"`
		LiftCI        [2]float64    `json:"lift_ci"`
	} `json:"large"`
}

type unitStratum struct {
	Control   []float64 `json:"control"`
	Treatment []float64 `json:"treatment"`
}

func strataOf(units []unitStratum) []Stratum {
	out := make([]Stratum, len(units))
	for i, u := range units {
		for _, x := range u.Control {
			out[i].Control.Add(x)
		}
		for _, x := range u.Treatment {
			out[i].Treatment.Add(x)
		}
	}
	return out
}

// The variance and third cumulant summed over strata are those of the combined statistic over
// every within-stratum re-randomisation, enumerated (1,500 of them).
func TestStratifiedCumulantsByEnumeration(t *testing.T) {
	var ref stratifiedRef
	readTestdata(t, "stratified.json", &ref)
	strata := strataOf(ref.Enumerated.Strata)
	sizes := make([][2]float64, len(strata))
	for i, s := range strata {
		sizes[i] = [2]float64{s.Control.N, s.Treatment.N}
	}
	got := combine(strata, stratumShares(sizes), 0, 1)
	near(t, "diff", got.diff, ref.Enumerated.Diff, 1, 1e-12)
	near(t, "variance", got.variance, ref.Enumerated.Variance, 1, 1e-12)
	near(t, "third cumulant", got.k3, ref.Enumerated.K3, 1, 1e-12)
}

// For proportions the statistic is the Cochran–Mantel–Haenszel statistic and the estimate the
// Mantel–Haenszel risk difference.
func TestStratifiedProportionsAreCMH(t *testing.T) {
	var ref stratifiedRef
	readTestdata(t, "stratified.json", &ref)
	var strata []Stratum
	for _, s := range ref.CMH.Strata {
		strata = append(strata, Stratum{ProportionMoments(s.ControlN, s.ControlSuccesses), ProportionMoments(s.TreatmentN, s.TreatmentSuccesses)})
	}
	c := CompareStratified(strata, 0.05)
	if !c.Valid {
		t.Fatal(c.Reason)
	}
	near(t, "z²", c.Stat*c.Stat, ref.CMH.Chi2, 1, 1e-10)
	near(t, "diff", c.Diff, ref.CMH.RiskDifference, 1, 1e-12)
}

func TestStratifiedAgainstIndependentReference(t *testing.T) {
	var ref stratifiedRef
	readTestdata(t, "stratified.json", &ref)
	for i, r := range ref.Large {
		c := CompareStratified(strataOf(r.Strata), r.Alpha)
		if !c.Valid {
			t.Fatalf("case %d: %s", i, c.Reason)
		}
		near(t, "control mean", c.ControlMean, r.ControlMean, 1, 1e-12)
		near(t, "treatment mean", c.TreatmentMean, r.TreatmentMean, 1, 1e-12)
		near(t, "diff", c.Diff, r.Diff, 1, 1e-12)
		near(t, "p-value", c.PValue, r.PValue, 1, 1e-9)
		nearCI(t, "diff CI", c.DiffCI, r.DiffCI, 1e-7)
		if !c.Lift.Valid {
			t.Fatalf("case %d: no lift: %s", i, c.Lift.Reason)
		}
		near(t, "lift", c.Lift.Estimate, r.Lift, 1, 1e-12)
		nearCI(t, "lift CI", c.Lift.CI, r.LiftCI, 1e-7)
		if (c.PValue < r.Alpha) == (c.DiffCI[0] <= 0 && c.DiffCI[1] >= 0) {
			t.Errorf("case %d: p %.4g and interval %v disagree", i, c.PValue, c.DiffCI)
		}
	}
}

// Simpson's paradox: the treatment is better within each period, but most of its units came
// in the period where everyone converts less. Pooled, it looks worse; stratified, better.
func TestStratifiedSurvivesShiftingWeights(t *testing.T) {
	strata := []Stratum{
		{Control: ProportionMoments(9000, 1800), Treatment: ProportionMoments(1000, 230)}, // 20% vs 23%
		{Control: ProportionMoments(1000, 50), Treatment: ProportionMoments(9000, 630)},   // 5% vs 7%
	}
	var pooledC, pooledT Moments
	for _, s := range strata {
		pooledC.Merge(s.Control)
		pooledT.Merge(s.Treatment)
	}
	pooled := CompareProportions(pooledC, pooledT, 0.05)
	if !(pooled.Diff < 0 && pooled.Significant()) {
		t.Fatalf("the pooled comparison should fall into the trap: diff %.4f p %.3g", pooled.Diff, pooled.PValue)
	}
	c := CompareStratified(strata, 0.05)
	if !(c.Diff > 0 && c.Significant()) {
		t.Fatalf("stratified diff %.4f p %.3g, want a significant gain", c.Diff, c.PValue)
	}
	// Each period gains 3 and 2 points; the Mantel–Haenszel weights are 900 and 900.
	near(t, "diff", c.Diff, 0.025, 1, 1e-12)
}

func TestStratifiedEdges(t *testing.T) {
	empty := CompareStratified([]Stratum{{Control: ProportionMoments(10, 1)}, {Treatment: ProportionMoments(10, 2)}}, 0.05)
	if empty.Valid || empty.Reason != "no period has units in both arms" {
		t.Errorf("arms never together: valid %v, reason %q", empty.Valid, empty.Reason)
	}
	flat := CompareStratified([]Stratum{{Control: ProportionMoments(10, 0), Treatment: ProportionMoments(10, 0)}}, 0.05)
	if flat.Valid {
		t.Error("all zeros should not be testable")
	}
	// A period with one unit in each arm counts with its variance and without a third cumulant.
	one := CompareStratified([]Stratum{
		{Control: ProportionMoments(1, 1), Treatment: ProportionMoments(1, 0)},
		{Control: ProportionMoments(50, 10), Treatment: ProportionMoments(50, 20)},
	}, 0.05)
	if !one.Valid || math.IsNaN(one.PValue) {
		t.Errorf("with a 1+1 period: valid %v p %v (%s)", one.Valid, one.PValue, one.Reason)
	}
}

func TestStratifiedRatios(t *testing.T) {
	// One stratum: the stratified ratio test is the plain one.
	var c, tr RatioMoments
	for i := range 40 {
		c.Add(float64(10+i%7), float64(1+i%3))
		tr.Add(float64(12+i%5), float64(1+i%2))
	}
	one := CompareStratifiedRatios([]RatioStratum{{c, tr}}, 0.05)
	plain := CompareRatios(c, tr, 0.05)
	near(t, "diff", one.Diff, plain.Diff, 1, 1e-12)
	near(t, "p-value", one.PValue, plain.PValue, 1, 1e-12)
	near(t, "lift CI low", one.Lift.CI[0], plain.Lift.CI[0], 1, 1e-12)
	// Two equal strata: the same estimate, half the variance.
	two := CompareStratifiedRatios([]RatioStratum{{c, tr}, {c, tr}}, 0.05)
	near(t, "diff of two", two.Diff, plain.Diff, 1, 1e-12)
	near(t, "variance of two", two.DiffSE*two.DiffSE, plain.DiffSE*plain.DiffSE/2, 1, 1e-12)
}
