package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Margin is the largest harm a guardrail tolerates: absolute in the metric's unit, or relative to the control mean (0.02 = 2 %).
type Margin struct {
	Value    float64 // positive
	Relative bool    // Value is a fraction of the control mean, tested on the lift
}

// NonInferiorityResult is the one-sided test that the treatment is not worse than control by more than the margin.
type NonInferiorityResult struct {
	Valid       bool    // false when the test cannot be computed; see Reason
	Reason      string  // why Valid is false; empty otherwise
	Estimate    float64 // the diff (absolute margin) or the lift (relative margin)
	Bound       float64 // one-sided (1−alpha) confidence bound of Estimate on the harmful side
	Stat        float64 // z or t statistic against the margin
	PValue      float64 // one-sided p-value of "worse by the margin or more"
	NonInferior bool    // PValue < alpha: harm beyond the margin is ruled out
}

// NonInferiority tests, one-sided at the comparison's alpha, whether the treatment is worse than control by at least the margin in the metric's bad direction.
func NonInferiority(c Comparison, m Margin, dir Direction) NonInferiorityResult {
	// For a higher-is-better metric and margin m the null hypothesis is effect ≤ −m
	// (for lower-is-better, effect ≥ m). An absolute margin tests Diff with the
	// comparison's own distribution (Student's t with the Welch degrees of freedom, or
	// normal) and its DiffSE (the unpooled standard error for proportions, since the
	// null is not a zero difference); a relative margin tests the lift with its
	// delta-method standard error, normally, as the lift's interval is normal.
	switch {
	case !c.Valid:
		return NonInferiorityResult{Reason: c.Reason}
	case c.Test == TestSequential:
		return NonInferiorityResult{Reason: "non-inferiority needs a fixed-horizon comparison"}
	case !(m.Value > 0) || math.IsInf(m.Value, 0):
		return NonInferiorityResult{Reason: "margin must be a positive number"}
	case m.Relative && !c.Lift.Valid:
		return NonInferiorityResult{Reason: c.Lift.Reason}
	}
	est, se := c.Diff, c.DiffSE
	survival, quantile := normalSurvival, distuv.UnitNormal.Quantile
	if !m.Relative && c.DF > 0 {
		survival = func(x float64) float64 { return tSurvival(x, c.DF) }
		quantile = func(p float64) float64 { return tQuantile(p, c.DF) }
	}
	if m.Relative {
		est, se = c.Lift.Estimate, c.Lift.SE
	}
	if !(se > 0) {
		return NonInferiorityResult{Reason: "zero standard error"}
	}
	r := NonInferiorityResult{Valid: true, Estimate: est}
	q := quantile(1 - c.Alpha)
	if dir == LowerIsBetter {
		r.Stat = (est - m.Value) / se
		r.PValue = survival(-r.Stat)
		r.Bound = est + q*se
	} else {
		r.Stat = (est + m.Value) / se
		r.PValue = survival(r.Stat)
		r.Bound = est - q*se
	}
	r.NonInferior = r.PValue < c.Alpha
	if !finite(r.Stat, r.PValue, r.Bound) {
		return NonInferiorityResult{Reason: "numeric overflow: inputs are out of range"}
	}
	return r
}
