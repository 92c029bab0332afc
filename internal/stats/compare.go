package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Test names carried in Comparison.Test.
const (
	TestZ           = "z"             // two-proportion z-test
	TestWelchT      = "welch_t"       // Welch's t-test
	TestDeltaZ      = "delta_z"       // z-test of a ratio metric, delta-method variances
	TestCUPEDWelchT = "cuped_welch_t" // Welch's t-test on CUPED-adjusted values
	TestSequential  = "sequential"    // asymptotic always-valid confidence sequence
)

// Comparison is the result of comparing one treatment arm with the control arm on one metric.
type Comparison struct {
	Test   string  // one of the Test* names
	Valid  bool    // false: the test could not be computed and only the N, mean and Diff fields hold values
	Reason string  // why Valid is false; empty otherwise
	Alpha  float64 // significance level; intervals are at 1 − Alpha

	ControlN      float64 // units in control
	TreatmentN    float64 // units in treatment
	ControlMean   float64 // control mean (ratio for ratio metrics, adjusted mean for CUPED)
	TreatmentMean float64 // treatment mean (ratio for ratio metrics, adjusted mean for CUPED)

	Diff   float64    // TreatmentMean − ControlMean
	DiffSE float64    // standard error of Diff behind DiffCI
	DiffCI [2]float64 // (1−Alpha) interval of Diff
	Stat   float64    // z or t statistic of the test of Diff = 0
	DF     float64    // degrees of freedom of a t statistic; 0 for normal-based tests
	PValue float64    // two-sided p-value of Diff = 0

	Lift Lift // relative difference Diff / ControlMean
}

// Lift is the relative difference Diff / ControlMean with its delta-method standard error and normal interval.
type Lift struct {
	Valid    bool       // false when the lift is undefined, e.g. control mean 0
	Reason   string     // why Valid is false; empty otherwise
	Estimate float64    // TreatmentMean / ControlMean − 1
	SE       float64    // delta-method standard error of Estimate
	CI       [2]float64 // (1−Alpha) normal interval (a confidence sequence after Sequential)
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

// computeLift returns the lift mt/mc − 1 with the delta-method variance of a ratio of independent means
// whose own variances are vmc and vmt.
func computeLift(mc, vmc, mt, vmt, alpha float64) Lift {
	if mc == 0 {
		return Lift{Reason: "control mean is 0, so a relative lift is undefined"}
	}
	est := mt/mc - 1
	r := mt / mc
	se := math.Sqrt((vmt + r*r*vmc) / (mc * mc))
	h := zQuantile(alpha) * se
	l := Lift{Valid: true, Estimate: est, SE: se, CI: [2]float64{est - h, est + h}}
	if !finite(est, se, l.CI[0], l.CI[1]) {
		return Lift{Reason: "control mean is too close to 0 for a relative lift"}
	}
	return l
}

// finish checks that a computed comparison holds only finite numbers.
func finish(c Comparison) Comparison {
	if !finite(c.ControlMean, c.TreatmentMean, c.Diff, c.DiffSE, c.DiffCI[0], c.DiffCI[1], c.Stat, c.DF, c.PValue) {
		return invalid(c, "numeric overflow: inputs are out of range")
	}
	return c
}

// CompareProportions runs the two-proportion z-test (pooled variance for the p-value, unpooled Wald interval for the difference); Sum is the number of successes.
func CompareProportions(control, treatment Moments, alpha float64) Comparison {
	c := newComparison(TestZ, alpha, control.N, control.Mean(), treatment.N, treatment.Mean())
	if r := checkArms(control.N, treatment.N, alpha, control.Sum, treatment.Sum); r != "" {
		return invalid(c, r)
	}
	switch {
	case control.Sum < 0 || control.Sum > control.N:
		return invalid(c, "control successes outside [0, N]")
	case treatment.Sum < 0 || treatment.Sum > treatment.N:
		return invalid(c, "treatment successes outside [0, N]")
	}
	pc, pt := c.ControlMean, c.TreatmentMean
	pool := (control.Sum + treatment.Sum) / (control.N + treatment.N)
	sePool := math.Sqrt(pool * (1 - pool) * (1/control.N + 1/treatment.N))
	if !(sePool > 0) {
		return invalid(c, "no variation: every unit in both arms has the same outcome")
	}
	c.Stat = c.Diff / sePool
	c.PValue = twoSidedNormalP(c.Stat)
	vmc, vmt := pc*(1-pc)/control.N, pt*(1-pt)/treatment.N
	c.DiffSE = math.Sqrt(vmc + vmt)
	h := zQuantile(alpha) * c.DiffSE
	c.DiffCI = [2]float64{c.Diff - h, c.Diff + h}
	c.Valid = true
	c.Lift = computeLift(pc, vmc, pt, vmt, alpha)
	return finish(c)
}

// CompareMeans runs Welch's t-test (sample variances, Welch–Satterthwaite degrees of freedom) on the difference of means.
func CompareMeans(control, treatment Moments, alpha float64) Comparison {
	c := newComparison(TestWelchT, alpha, control.N, control.Mean(), treatment.N, treatment.Mean())
	if r := checkArms(control.N, treatment.N, alpha, control.Sum, control.SumSq, treatment.Sum, treatment.SumSq); r != "" {
		return invalid(c, r)
	}
	return welch(c, summary{control.N, c.ControlMean, control.Variance()},
		summary{treatment.N, c.TreatmentMean, treatment.Variance()})
}

// welch fills c with Welch's t-test of two summaries.
func welch(c Comparison, ctl, trt summary) Comparison {
	vmc, vmt := ctl.variance/ctl.n, trt.variance/trt.n
	se2 := vmc + vmt
	c.ControlMean, c.TreatmentMean, c.Diff = ctl.mean, trt.mean, trt.mean-ctl.mean
	if !(se2 > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.DiffSE = math.Sqrt(se2)
	c.DF = se2 * se2 / (vmc*vmc/(ctl.n-1) + vmt*vmt/(trt.n-1))
	c.Stat = c.Diff / c.DiffSE
	c.PValue = math.Min(1, 2*tSurvival(math.Abs(c.Stat), c.DF))
	h := tQuantile(1-c.Alpha/2, c.DF) * c.DiffSE
	c.DiffCI = [2]float64{c.Diff - h, c.Diff + h}
	c.Valid = true
	c.Lift = computeLift(ctl.mean, vmc, trt.mean, vmt, c.Alpha)
	return finish(c)
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

// CompareRatios compares a ratio metric (Σ numerator / Σ denominator per arm) with delta-method variances per arm and a z-test of the difference.
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
	se2 := vmc + vmt
	if !(se2 > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.DiffSE = math.Sqrt(se2)
	c.Stat = c.Diff / c.DiffSE
	c.PValue = twoSidedNormalP(c.Stat)
	h := zQuantile(alpha) * c.DiffSE
	c.DiffCI = [2]float64{c.Diff - h, c.Diff + h}
	c.Valid = true
	c.Lift = computeLift(rc, vmc, rt, vmt, alpha)
	return finish(c)
}
