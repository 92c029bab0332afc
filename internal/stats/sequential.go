package stats

import "math"

// DefaultTuning is the total sample size (both arms) at which a confidence sequence is tightest by default, as in GrowthBook.
const DefaultTuning = 5000

// Asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
// "Time-uniform central limit theory and asymptotic confidence sequences", Annals of
// Statistics 2024 (arXiv:2103.06476v7). With n the number of observations, σ̂² the
// per-observation variance estimate and ρ > 0 a mixing parameter, the mean is covered
// at every n simultaneously with probability ≥ 1 − α (asymptotically) by
//
//	μ̂ₙ ± σ̂ √( 2(nρ²+1)/(n²ρ²) · ln(√(nρ²+1)/α) )                      (Thm 2.2)
//
// and ρ² = (−2 ln α + ln(−2 ln α + 1)) / n* makes the width smallest at n = n*
// (eq. 161 in v7). For a difference of two arms we take n = n_c + n_t and
// σ̂² = SE(diff)²·n, as GrowthBook and Eppo do. The matching always-valid p-value is
// the reciprocal of the Gaussian-mixture e-value (eq. 155 in v7):
//
//	E = exp(ρ² S² / (2(nρ²+1))) / √(nρ²+1),  S = n·diff/σ̂, so S² = n·diff²/SE²,
//
// so p ≤ α exactly when 0 lies outside the sequence.
//
// The lift's sequence is Fieller's construction on the same boundary: the ratio r is in it while
// the sequence of the contrast μt − r·μc (per-observation variance n·(vt + r²·vc)) holds 0. For
// the true r that contrast is 0, so this set covers r at every look as long as that one
// sequence does — with the same guarantee as the difference's, and at r = 1 it is the
// difference's own sequence: the lift's sequence excludes 0 exactly when the difference's does.
// It is bounded only while the control mean's own sequence excludes 0.

// seqRho2 returns ρ² for level alpha and tuning sample size n*.
func seqRho2(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return (l + math.Log(l+1)) / tuning
}

// seqMultiplier returns the half-width of the confidence sequence after n observations in units
// of the estimate's standard error: with σ̂² = n·SE², σ̂·√(2(nρ²+1)/(n²ρ²)·ln(√(nρ²+1)/α)) = SE·√(2(nρ²+1)/(nρ²)·ln(√(nρ²+1)/α)).
func seqMultiplier(n, alpha, rho2 float64) float64 {
	a := n*rho2 + 1
	return math.Sqrt(2 * a / (n * rho2) * math.Log(math.Sqrt(a)/alpha))
}

// Sequential turns a fixed-horizon comparison into an always-valid one: DiffCI and Lift.CI become confidence sequences and PValue the matching always-valid p-value, so the result may be looked at any number of times.
func Sequential(c Comparison, tuning float64) Comparison {
	s := c
	s.Test, s.DF = TestSequential, 0
	switch {
	case !c.Valid:
		return invalid(s, c.Reason)
	case !(tuning > 0) || math.IsInf(tuning, 0):
		return invalid(s, "sequential tuning sample size must be positive")
	case c.Test == TestSequential:
		return invalid(s, "comparison is already sequential")
	case !(c.DiffSE > 0):
		return invalid(s, "no variation within either arm, so a confidence sequence has no width")
	}
	n := c.ControlN + c.TreatmentN
	rho2 := seqRho2(c.Alpha, tuning)
	m := seqMultiplier(n, c.Alpha, rho2)
	h := m * c.DiffSE
	s.DiffCI = [2]float64{c.Diff - h, c.Diff + h}
	s.Stat = c.Diff / c.DiffSE
	// With S² = n·Stat² (standardised sum), log E = ρ²S²/(2(nρ²+1)) − ½ln(nρ²+1); computed in logs to avoid overflow.
	a := n*rho2 + 1
	logE := rho2*n*s.Stat*s.Stat/(2*a) - 0.5*math.Log(a)
	s.PValue = math.Min(1, math.Exp(-logE))
	s.Lift = fiellerLift(c.ControlMean, c.ControlVar, c.TreatmentMean, c.TreatmentVar, m)
	return finish(s)
}
