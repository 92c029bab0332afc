package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// TestStratified names the stratified randomization test of CompareStratified in Comparison.Test.
const TestStratified = "stratified_randomization"

// TestStratifiedDeltaZ names the stratified delta-method z-test of CompareStratifiedRatios.
const TestStratifiedDeltaZ = "stratified_delta_z"

// Stratum is one group of units within which the arms were randomised with fixed weights (a
// bandit's period): the control's and the treatment's moments.
type Stratum struct {
	Control, Treatment Moments
}

// mhWeight is the Mantel–Haenszel weight of a stratum with nc and nt units: nc·nt/(nc+nt), 0
// when an arm is empty. It depends on the sizes only, never on the values, so a stratum's
// weight cannot move with its own luck.
func mhWeight(nc, nt float64) float64 {
	if !(nc > 0 && nt > 0) {
		return 0
	}
	return nc * nt / (nc + nt)
}

// stratumShares returns each stratum's share w/W of the Mantel–Haenszel weights, or nil when no
// stratum has units in both arms.
func stratumShares(sizes [][2]float64) []float64 {
	shares := make([]float64, len(sizes))
	var total float64
	for i, s := range sizes {
		shares[i] = mhWeight(s[0], s[1])
		total += shares[i]
	}
	if !(total > 0) {
		return nil
	}
	for i := range shares {
		shares[i] /= total
	}
	return shares
}

// stratified is the combination of the strata's randomization distributions under one
// transformation of the treatment values.
type stratified struct {
	diff, variance, k3 float64
}

// combine sums the strata's differences, variances and third cumulants with their shares, the
// treatment values transformed as (y − shift)/scale.
func combine(strata []Stratum, shares []float64, shift, scale float64) stratified {
	var s stratified
	for i, st := range strata {
		w := shares[i]
		if w == 0 {
			continue
		}
		p := permute(st.Control, st.Treatment, shift, scale)
		s.diff += w * (p.mt - p.mc)
		if p.nc+p.nt > 1 {
			s.variance += w * w * p.variance
		}
		if p.nc+p.nt > 2 {
			s.k3 += w * w * w * p.k3
		}
	}
	return s
}

// pValue is the two-sided p-value of the combined statistic, read through the Cornish–Fisher
// expansion with its skewness.
func (s stratified) pValue() float64 {
	if !(s.variance > 0) {
		return 1
	}
	lower := cornishFisherP(s.diff/math.Sqrt(s.variance), s.k3/math.Pow(s.variance, 1.5))
	return math.Min(1, 2*math.Min(lower, 1-lower))
}

// CompareStratified compares a treatment with control across strata in each of which the two
// were randomised with fixed weights, such as the periods of a bandit whose weights change
// between periods: each stratum's arms are compared within it, and the differences combined
// with Mantel–Haenszel weights, so that neither a shift of the weights between strata nor a
// trend of the metric over time can make an arm look better than it is (Simpson's paradox).
//
// The estimate is Σ w·(m̄t − m̄c) / Σ w with w = nc·nt/(nc+nt) per stratum, the Mantel–Haenszel
// risk difference for proportions (Greenland & Robins, "Estimation of a common effect parameter
// from sparse follow-up data", Biometrics 41, 1985). The test is the stratified randomization
// test of "no effect on any unit": re-randomising within each stratum, Σ w·(m̄t − m̄c) is the sum
// of each stratum's treatment total minus its expectation, which is Mantel's extension of the
// Mantel–Haenszel statistic to a measured response ("Chi-square tests with one degree of
// freedom; extensions of the Mantel–Haenszel procedure", JASA 58, 1963); for proportions its
// square is the Cochran–Mantel–Haenszel statistic without continuity correction. Its variance
// and third cumulant are the sums of the strata's exact ones (see CompareMeansRandomization),
// and the p-value is read through the first-order Cornish–Fisher expansion with that skewness.
// The difference's interval is the set of shifts of every treatment unit that the test does not
// reject, the lift's the set of ratios; both exclude 0 exactly when p < alpha.
//
// ControlMean and TreatmentMean are the arms' means standardised to the same strata shares (so
// Diff is their difference); ControlVar and TreatmentVar are their unpooled variances, for
// Bayesian figures and non-inferiority. Strata without units in both arms take no part. The
// moments need SumCu.
func CompareStratified(strata []Stratum, alpha float64) Comparison {
	sizes := make([][2]float64, len(strata))
	var all Stratum
	for i, s := range strata {
		sizes[i] = [2]float64{s.Control.N, s.Treatment.N}
		all.Control.Merge(s.Control)
		all.Treatment.Merge(s.Treatment)
	}
	c := Comparison{Test: TestStratified, Alpha: alpha, ControlN: all.Control.N, TreatmentN: all.Treatment.N}
	if r := checkArms(all.Control.N, all.Treatment.N, alpha, all.Control.Sum, all.Control.SumSq, all.Control.SumCu,
		all.Treatment.Sum, all.Treatment.SumSq, all.Treatment.SumCu); r != "" {
		return invalid(c, r)
	}
	shares := stratumShares(sizes)
	if shares == nil {
		return invalid(c, "no period has units in both arms")
	}
	var vc, vt float64
	for i, s := range strata {
		w := shares[i]
		if w == 0 {
			continue
		}
		c.ControlMean += w * s.Control.Mean()
		c.TreatmentMean += w * s.Treatment.Mean()
		vc += w * w * s.Control.Variance() / s.Control.N
		vt += w * w * s.Treatment.Variance() / s.Treatment.N
	}
	c.Diff = c.TreatmentMean - c.ControlMean
	null := combine(strata, shares, 0, 1)
	if !(null.variance > 0) {
		return invalid(c, "zero variance in every period")
	}
	c.withVariances(vc, vt)
	c.Stat = null.diff / math.Sqrt(null.variance)
	c.PValue = null.pValue()
	c.Valid = true
	return finish(invertShiftScale(c, math.Sqrt(null.variance), func(shift, scale float64) float64 {
		return combine(strata, shares, shift, scale).pValue()
	}))
}

// RatioStratum is one stratum of a ratio metric: the control's and the treatment's moments.
type RatioStratum struct {
	Control, Treatment RatioMoments
}

// CompareStratifiedRatios compares a ratio metric across strata as CompareStratified does a
// mean: each stratum's ratios (delta-method variances, as CompareRatios) are compared within
// it and the differences combined with Mantel–Haenszel weights of the units; a z-test of the
// combined difference, whose variance is the weighted sum of the strata's, and Fieller's
// interval of the ratio of the standardised ratios. Strata in which an arm has no units, or a
// denominator sum of 0, take no part.
func CompareStratifiedRatios(strata []RatioStratum, alpha float64) Comparison {
	sizes := make([][2]float64, len(strata))
	type arm struct{ ratio, variance float64 }
	arms := make([][2]arm, len(strata))
	var nc, nt float64
	for i, s := range strata {
		nc += s.Control.N
		nt += s.Treatment.N
		rc, vrc, whyC := ratioArm(s.Control, "control")
		rt, vrt, whyT := ratioArm(s.Treatment, "treatment")
		if whyC == "" && whyT == "" && s.Control.N >= 2 && s.Treatment.N >= 2 {
			sizes[i] = [2]float64{s.Control.N, s.Treatment.N}
			arms[i] = [2]arm{{rc, vrc}, {rt, vrt}}
		}
	}
	c := Comparison{Test: TestStratifiedDeltaZ, Alpha: alpha, ControlN: nc, TreatmentN: nt}
	if r := checkArms(nc, nt, alpha); r != "" {
		return invalid(c, r)
	}
	shares := stratumShares(sizes)
	if shares == nil {
		return invalid(c, "no period has a ratio in both arms")
	}
	var vc, vt float64
	for i, w := range shares {
		c.ControlMean += w * arms[i][0].ratio
		c.TreatmentMean += w * arms[i][1].ratio
		vc += w * w * arms[i][0].variance
		vt += w * w * arms[i][1].variance
	}
	c.Diff = c.TreatmentMean - c.ControlMean
	if !(vc+vt > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.withVariances(vc, vt)
	c.Stat = c.Diff / c.DiffSE
	c.PValue = twoSidedNormalP(c.Stat)
	q := zQuantile(alpha)
	c.DiffCI = [2]float64{c.Diff - q*c.DiffSE, c.Diff + q*c.DiffSE}
	c.Valid = true
	c.Lift = fiellerLift(c.ControlMean, vc, c.TreatmentMean, vt, q)
	return finish(c)
}

// Estimate returns the arm's ratio Σ numerator / Σ denominator with the delta-method variance of
// that ratio (as CompareRatios uses); ok is false when the denominator sum is 0.
func (m RatioMoments) Estimate() (ratio, variance float64, ok bool) {
	ratio, variance, why := ratioArm(m, "")
	return ratio, variance, why == ""
}

// CombineSRM combines goodness-of-fit tests of independent groups of units, such as a bandit's
// periods each tested against its own weights: the χ² statistics and their degrees of freedom
// add up. Invalid tests take no part; with none valid the result says so.
func CombineSRM(checks []SRMResult) SRMResult {
	var chi2, df float64
	for _, c := range checks {
		if c.Valid {
			chi2 += c.Chi2
			df += c.DF
		}
	}
	if df == 0 {
		return SRMResult{Reason: "no period has units to check"}
	}
	p := math.Min(1, math.Max(0, distuv.ChiSquared{K: df}.Survival(chi2)))
	return SRMResult{Valid: true, Chi2: chi2, DF: df, PValue: p, Mismatch: p < SRMThreshold}
}
