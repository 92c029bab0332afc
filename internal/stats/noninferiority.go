package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Margin is the largest harm a guardrail tolerates: absolute in the metric's unit, or relative to the control mean (0.02 = 2 %).
type Margin struct {
	Value    float64 // positive
	Relative bool    // Value is a fraction of the control mean
}

// NonInferiorityResult is the one-sided test that the treatment is not worse than control by more than the margin.
type NonInferiorityResult struct {
	Valid       bool    // false when the test cannot be computed; see Reason
	Reason      string  // why Valid is false; empty otherwise
	Relative    bool    // Estimate and Bound are a lift (relative margin), else a difference
	Margin      float64 // the margin tested, in the unit of Estimate
	Estimate    float64 // the diff (absolute margin) or the lift (relative margin)
	Bound       float64 // one-sided (1−alpha) confidence bound of Estimate on the harmful side
	Stat        float64 // z or t statistic against the margin
	PValue      float64 // one-sided p-value of "worse by the margin or more"
	NonInferior bool    // PValue < alpha: harm beyond the margin is ruled out
	Note        string  // how a relative margin was applied when the control mean is not clearly positive
}

// NonInferiority tests, one-sided at the comparison's alpha, whether the treatment is worse than control by at least the margin in the metric's bad direction.
//
// For a higher-is-better metric and an absolute margin m the null hypothesis is Diff ≤ −m (for
// lower-is-better, Diff ≥ m), tested with the comparison's own distribution (Student's t with
// the Welch degrees of freedom, or normal) and its unpooled DiffSE, since the null is not a zero
// difference. A relative margin m is the null μt ≤ (1−m)·μc (lower-is-better: μt ≥ (1+m)·μc),
// tested as the contrast μt − (1−m)·μc with standard error √(vt + (1−m)²·vc): Fieller's
// construction, so the bound on the lift is Fieller's one-sided bound and it clears −m exactly
// when p < alpha. When the control mean is not clearly above 0 a relative margin has no
// meaning; it is then applied as an absolute margin of m·|control mean| on the difference, and
// Note says so.
func NonInferiority(c Comparison, m Margin, dir Direction) NonInferiorityResult {
	switch {
	case !c.Valid:
		return NonInferiorityResult{Reason: c.Reason}
	case c.Test == TestSequential:
		return NonInferiorityResult{Reason: "non-inferiority needs a fixed-horizon comparison"}
	case !(m.Value > 0) || math.IsInf(m.Value, 0):
		return NonInferiorityResult{Reason: "margin must be a positive number"}
	case !(c.DiffSE > 0):
		return NonInferiorityResult{Reason: "zero standard error"}
	}
	survival, quantile := normalSurvival, distuv.UnitNormal.Quantile
	if c.DF > 0 {
		survival = func(x float64) float64 { return tSurvival(x, c.DF) }
		quantile = func(p float64) float64 { return tQuantile(p, c.DF) }
	}
	q := quantile(1 - c.Alpha)
	if m.Relative {
		if r, ok := relativeNonInferiority(c, m.Value, dir, q, survival); ok {
			return r
		}
		abs := m.Value * math.Abs(c.ControlMean)
		r := absoluteNonInferiority(c, abs, dir, q, survival)
		if r.Valid {
			r.Note = fmt.Sprintf("control mean %.4g is not clearly above 0, so the relative margin %g is applied as %.4g on the difference",
				c.ControlMean, m.Value, abs)
		}
		if abs == 0 {
			return NonInferiorityResult{Reason: "control mean is 0, so a relative margin is 0"}
		}
		return r
	}
	return absoluteNonInferiority(c, m.Value, dir, q, survival)
}

// absoluteNonInferiority tests the difference against an absolute margin.
func absoluteNonInferiority(c Comparison, margin float64, dir Direction, q float64, survival func(float64) float64) NonInferiorityResult {
	r := NonInferiorityResult{Valid: true, Estimate: c.Diff, Margin: margin}
	if dir == LowerIsBetter {
		r.Stat = (c.Diff - margin) / c.DiffSE
		r.PValue = survival(-r.Stat)
		r.Bound = c.Diff + q*c.DiffSE
	} else {
		r.Stat = (c.Diff + margin) / c.DiffSE
		r.PValue = survival(r.Stat)
		r.Bound = c.Diff - q*c.DiffSE
	}
	return checked(r, c.Alpha)
}

// relativeNonInferiority tests the contrast of a relative margin; ok is false when the control mean is not clearly positive.
func relativeNonInferiority(c Comparison, margin float64, dir Direction, q float64, survival func(float64) float64) (NonInferiorityResult, bool) {
	lower := dir != LowerIsBetter
	bound, ok := fiellerBound(c.ControlMean, c.ControlVar, c.TreatmentMean, c.TreatmentVar, q, lower)
	if !ok {
		return NonInferiorityResult{}, false
	}
	k := 1 - margin
	if !lower {
		k = 1 + margin
	}
	se := math.Sqrt(c.TreatmentVar + k*k*c.ControlVar)
	if !(se > 0) {
		return NonInferiorityResult{}, false
	}
	r := NonInferiorityResult{Valid: true, Relative: true, Margin: margin, Estimate: c.TreatmentMean/c.ControlMean - 1, Bound: bound}
	r.Stat = (c.TreatmentMean - k*c.ControlMean) / se
	if lower {
		r.PValue = survival(r.Stat)
	} else {
		r.PValue = survival(-r.Stat)
	}
	return checked(r, c.Alpha), true
}

// checked sets the verdict and refuses numbers that overflowed.
func checked(r NonInferiorityResult, alpha float64) NonInferiorityResult {
	r.NonInferior = r.PValue < alpha
	if !finite(r.Stat, r.PValue, r.Bound) {
		return NonInferiorityResult{Reason: "numeric overflow: inputs are out of range"}
	}
	return r
}
