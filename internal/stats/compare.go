package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Test names carried in Comparison.Test.
const (
	TestZ             = "z"                   // two-proportion z-test (pooled), score interval
	TestExact         = "exact_unconditional" // exact unconditional test of two proportions (z-pooled ordering)
	TestWelchT        = "welch_t"             // Welch's t-test
	TestRandomization = "randomization_skew"  // randomization test with a skewness correction, for skewed means in unequal arms
	TestDeltaZ        = "delta_z"             // z-test of a ratio metric, delta-method variances
	TestCUPEDWelchT   = "cuped_welch_t"       // Welch's t-test on CUPED-adjusted values
	TestSequential    = "sequential"          // asymptotic always-valid confidence sequence
)

// Comparison is the result of comparing one treatment arm with the control arm on one metric.
//
// PValue, DiffCI and Lift.CI come from one method: DiffCI is the set of differences the test
// does not reject, so it excludes 0 exactly when PValue < Alpha, and Lift.CI excludes 0 exactly
// then too (see the Test* constants and docs/statistics.md for each method).
type Comparison struct {
	Test   string  // one of the Test* names
	Valid  bool    // false: the test could not be computed and only the N, mean and Diff fields hold values
	Reason string  // why Valid is false; empty otherwise
	Alpha  float64 // significance level; intervals are at 1 − Alpha

	ControlN      float64 // units in control
	TreatmentN    float64 // units in treatment
	ControlMean   float64 // control mean (ratio for ratio metrics, adjusted mean for CUPED)
	TreatmentMean float64 // treatment mean (ratio for ratio metrics, adjusted mean for CUPED)
	ControlVar    float64 // variance of the control mean (its squared standard error)
	TreatmentVar  float64 // variance of the treatment mean

	Diff   float64    // TreatmentMean − ControlMean
	DiffSE float64    // unpooled standard error of Diff, √(ControlVar + TreatmentVar)
	DiffCI [2]float64 // (1−Alpha) interval of Diff from the test's own method
	Stat   float64    // the test's statistic (z, t, or the standardised randomization statistic)
	DF     float64    // degrees of freedom of a t statistic; 0 for normal-based tests
	PValue float64    // two-sided p-value of Diff = 0

	Lift Lift // relative difference Diff / ControlMean

	control, treatment Moments // kept for tests that are inverted again (non-inferiority)
}

// Lift is the relative difference TreatmentMean / ControlMean − 1, reported only where the control mean is clearly positive.
type Lift struct {
	Valid    bool       // false when the lift means nothing: control mean not clearly above 0
	Reason   string     // why Valid is false; empty otherwise
	Estimate float64    // TreatmentMean / ControlMean − 1
	SE       float64    // delta-method standard error of Estimate, for the normal approximation of Bayesian figures
	CI       [2]float64 // (1−Alpha) interval from the comparison's own test (a confidence sequence after Sequential)
}

// Significant reports whether the comparison is valid and its p-value is below its alpha.
func (c Comparison) Significant() bool {
	return c.Valid && c.PValue < c.Alpha
}

// summary is one arm reduced to size, mean and the variance of one unit.
type summary struct{ n, mean, variance float64 }

// checkArms returns why two arms cannot be compared, or "".
func checkArms(nc, nt, alpha float64, vals ...float64) string {
	switch {
	case !finite(append(vals, nc, nt, alpha)...):
		return "input contains NaN or infinity"
	case !(alpha > 0 && alpha < 1):
		return "alpha must be strictly between 0 and 1"
	case nc <= 0:
		return "control arm has no units"
	case nt <= 0:
		return "treatment arm has no units"
	case nc < 2:
		return "control arm has a single unit; at least 2 are needed"
	case nt < 2:
		return "treatment arm has a single unit; at least 2 are needed"
	}
	return ""
}

// newComparison starts a comparison; Diff is set only when both arms have units.
func newComparison(test string, alpha, nc, mc, nt, mt float64) Comparison {
	c := Comparison{Test: test, Alpha: alpha, ControlN: nc, TreatmentN: nt, ControlMean: mc, TreatmentMean: mt}
	if nc > 0 && nt > 0 {
		c.Diff = mt - mc
	}
	return c
}

// invalid returns c marked absent for the given reason, keeping N, means and Diff when they are finite.
func invalid(c Comparison, reason string) Comparison {
	keep := Comparison{Test: c.Test, Alpha: c.Alpha, Reason: reason,
		ControlN: c.ControlN, TreatmentN: c.TreatmentN}
	if finite(c.ControlN, c.TreatmentN, c.ControlMean, c.TreatmentMean, c.Diff) {
		keep.ControlMean, keep.TreatmentMean, keep.Diff = c.ControlMean, c.TreatmentMean, c.Diff
	} else {
		keep.ControlN, keep.TreatmentN = 0, 0
	}
	keep.Lift = Lift{Reason: "the comparison is not valid: " + reason}
	return keep
}

// zQuantile is the upper 1−alpha/2 quantile of the standard normal.
func zQuantile(alpha float64) float64 {
	return distuv.UnitNormal.Quantile(1 - alpha/2)
}

// twoSidedNormalP is the two-sided p-value of a z statistic.
func twoSidedNormalP(z float64) float64 {
	return math.Min(1, 2*normalSurvival(math.Abs(z)))
}

// finish checks that a computed comparison holds only finite numbers.
func finish(c Comparison) Comparison {
	if !finite(c.ControlMean, c.TreatmentMean, c.ControlVar, c.TreatmentVar, c.Diff, c.DiffSE, c.DiffCI[0], c.DiffCI[1], c.Stat, c.DF, c.PValue) {
		return invalid(c, "numeric overflow: inputs are out of range")
	}
	if c.Lift.Valid && !finite(c.Lift.Estimate, c.Lift.SE, c.Lift.CI[0], c.Lift.CI[1]) {
		c.Lift = Lift{Reason: "control mean is too close to 0 for a relative lift"}
	}
	return c
}

// withVariances records the variances of the two means and the unpooled standard error of their difference.
func (c *Comparison) withVariances(vc, vt float64) {
	c.ControlVar, c.TreatmentVar = vc, vt
	c.DiffSE = math.Sqrt(vc + vt)
}

// CompareMeans runs Welch's t-test (sample variances, Welch–Satterthwaite degrees of freedom) on the difference of means; the lift's interval is Fieller's with the same t quantile.
//
// Welch, "The generalization of Student's problem when several different population variances
// are involved", Biometrika 34 (1947). For skewed metrics in arms of unequal size see SkewOf
// and CompareMeansRandomization.
func CompareMeans(control, treatment Moments, alpha float64) Comparison {
	c := newComparison(TestWelchT, alpha, control.N, control.Mean(), treatment.N, treatment.Mean())
	if r := checkArms(control.N, treatment.N, alpha, control.Sum, control.SumSq, treatment.Sum, treatment.SumSq); r != "" {
		return invalid(c, r)
	}
	c.control, c.treatment = control, treatment
	return welch(c, summary{control.N, c.ControlMean, control.Variance()},
		summary{treatment.N, c.TreatmentMean, treatment.Variance()})
}

// welch fills c with Welch's t-test of two summaries.
func welch(c Comparison, ctl, trt summary) Comparison {
	vmc, vmt := ctl.variance/ctl.n, trt.variance/trt.n
	c.ControlMean, c.TreatmentMean, c.Diff = ctl.mean, trt.mean, trt.mean-ctl.mean
	if !(vmc+vmt > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.withVariances(vmc, vmt)
	c.DF = welchDF(vmc, ctl.n, vmt, trt.n)
	c.Stat = c.Diff / c.DiffSE
	c.PValue = math.Min(1, 2*tSurvival(math.Abs(c.Stat), c.DF))
	q := tQuantile(1-c.Alpha/2, c.DF)
	c.DiffCI = [2]float64{c.Diff - q*c.DiffSE, c.Diff + q*c.DiffSE}
	c.Valid = true
	c.Lift = fiellerLift(ctl.mean, vmc, trt.mean, vmt, q)
	return finish(c)
}

// welchDF is the Welch–Satterthwaite degrees of freedom of a difference of two means whose variances are vc and vt.
func welchDF(vc, nc, vt, nt float64) float64 {
	s := vc + vt
	return s * s / (vc*vc/(nc-1) + vt*vt/(nt-1))
}

// ratioArm returns an arm's ratio and the delta-method variance of that ratio, or a reason it has none.
func ratioArm(m RatioMoments, arm string) (ratio, variance float64, reason string) {
	if m.SumDen == 0 {
		return 0, 0, arm + " arm's denominator sum is 0, so its ratio is undefined"
	}
	ratio = m.SumNum / m.SumDen
	meanDen := m.SumDen / m.N
	sxx := centredCov(m.N, m.SumNum, m.SumNum, m.SumNumSq)
	syy := centredCov(m.N, m.SumDen, m.SumDen, m.SumDenSq)
	sxy := centredCov(m.N, m.SumNum, m.SumDen, m.SumNumDen)
	// Var(x̄/ȳ) ≈ (sxx − 2R·sxy + R²·syy) / (n·ȳ²), first-order Taylor expansion.
	variance = math.Max(0, (sxx-2*ratio*sxy+ratio*ratio*syy)/(m.N*meanDen*meanDen))
	return ratio, variance, ""
}

// CompareRatios compares a ratio metric (Σ numerator / Σ denominator per arm) with delta-method variances per arm and a z-test of the difference; the lift's interval is Fieller's with the same z quantile.
func CompareRatios(control, treatment RatioMoments, alpha float64) Comparison {
	c := Comparison{Test: TestDeltaZ, Alpha: alpha, ControlN: control.N, TreatmentN: treatment.N}
	if r := checkArms(control.N, treatment.N, alpha,
		control.SumNum, control.SumNumSq, control.SumDen, control.SumDenSq, control.SumNumDen,
		treatment.SumNum, treatment.SumNumSq, treatment.SumDen, treatment.SumDenSq, treatment.SumNumDen); r != "" {
		return invalid(c, r)
	}
	rc, vmc, why := ratioArm(control, "control")
	if why != "" {
		return invalid(c, why)
	}
	c.ControlMean = rc
	rt, vmt, why := ratioArm(treatment, "treatment")
	if why != "" {
		return invalid(c, why)
	}
	c = newComparison(TestDeltaZ, alpha, control.N, rc, treatment.N, rt)
	if !(vmc+vmt > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.withVariances(vmc, vmt)
	c.Stat = c.Diff / c.DiffSE
	c.PValue = twoSidedNormalP(c.Stat)
	q := zQuantile(alpha)
	c.DiffCI = [2]float64{c.Diff - q*c.DiffSE, c.Diff + q*c.DiffSE}
	c.Valid = true
	c.Lift = fiellerLift(rc, vmc, rt, vmt, q)
	return finish(c)
}
