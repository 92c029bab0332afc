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

// seqRho2 returns ρ² for level alpha and tuning sample size n*.
func seqRho2(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return (l + math.Log(l+1)) / tuning
}

// seqHalfWidth returns the half-width of the confidence sequence for an estimate with standard error se after n observations.
func seqHalfWidth(se, n, alpha, rho2 float64) float64 {
	s2 := se * se * n
	a := n*rho2 + 1
	return math.Sqrt(s2 * 2 * a / (n * n * rho2) * math.Log(math.Sqrt(a)/alpha))
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
	}
	n := c.ControlN + c.TreatmentN
	rho2 := seqRho2(c.Alpha, tuning)
	h := seqHalfWidth(c.DiffSE, n, c.Alpha, rho2)
	s.DiffCI = [2]float64{c.Diff - h, c.Diff + h}
	s.Stat = c.Diff / c.DiffSE
	// With S² = n·Stat² (standardised sum), log E = ρ²S²/(2(nρ²+1)) − ½ln(nρ²+1); computed in logs to avoid overflow.
	a := n*rho2 + 1
	logE := rho2*n*s.Stat*s.Stat/(2*a) - 0.5*math.Log(a)
	s.PValue = math.Min(1, math.Exp(-logE))
	if c.Lift.Valid {
		lh := seqHalfWidth(c.Lift.SE, n, c.Alpha, rho2)
		s.Lift.CI = [2]float64{c.Lift.Estimate - lh, c.Lift.Estimate + lh}
	}
	return finish(s)
}
