package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// SkewLimit is the largest skewness of the difference of two means (its standardised third
// cumulant) at which Welch's normal approximation is trusted. It is Kohavi et al.'s rule for one
// mean, n > 355·γ² ("Seven rules of thumb for web site experimenters", KDD 2014, rule 7), which
// says the skewness of a mean, γ/√n, should stay below 1/√355, applied to the difference.
var SkewLimit = 1 / math.Sqrt(355)

// MinNonZero is the fewest non-zero values per arm below which a skewed mean metric is flagged.
const MinNonZero = 30

// Skew is the skewness check of a mean metric in two arms, from the pooled moments.
type Skew struct {
	Valid            bool    // false when the arms have no spread or no third moments
	Skewness         float64 // skewness γ of one unit, both arms pooled
	Lambda           float64 // standardised third cumulant of the difference of means under "no effect"
	ControlNonZero   float64 // units with a non-zero value in control
	TreatmentNonZero float64 // units with a non-zero value in treatment
}

// TooSkewed reports whether the difference is too skewed for Welch's normal approximation.
func (s Skew) TooSkewed() bool { return s.Valid && math.Abs(s.Lambda) > SkewLimit }

// FewNonZero reports whether an arm has some, but fewer than MinNonZero, non-zero values: its
// mean then rests on a handful of units. An arm of zeros only (offer cost in control) has an
// exact mean and is not flagged.
func (s Skew) FewNonZero() bool {
	few := func(k float64) bool { return k > 0 && k < MinNonZero }
	return s.Valid && (few(s.ControlNonZero) || few(s.TreatmentNonZero))
}

// permutation holds the pooled data of two arms, treatment values transformed as (y − shift)/scale.
type permutation struct {
	nc, nt       float64
	mc, mt       float64 // arm means after the transformation
	mu2, mu3     float64 // pooled central moments, divisor N
	variance, k3 float64 // variance and third cumulant of the difference of means over all re-randomisations
}

// permute pools control with the treatment transformed as (y − shift)/scale.
func permute(c, t Moments, shift, scale float64) permutation {
	// Σ((y−δ)/s)^k from the raw sums: Σ(y−δ) = S1 − nδ, Σ(y−δ)² = S2 − 2δS1 + nδ², Σ(y−δ)³ = S3 − 3δS2 + 3δ²S1 − nδ³.
	d := shift
	t1 := (t.Sum - t.N*d) / scale
	t2 := (t.SumSq - 2*d*t.Sum + t.N*d*d) / (scale * scale)
	t3 := (t.SumCu - 3*d*t.SumSq + 3*d*d*t.Sum - t.N*d*d*d) / (scale * scale * scale)
	n := c.N + t.N
	s1, s2, s3 := c.Sum+t1, c.SumSq+t2, c.SumCu+t3
	m := s1 / n
	p := permutation{nc: c.N, nt: t.N, mc: c.Sum / c.N, mt: t1 / t.N}
	p.mu2 = math.Max(0, s2/n-m*m)
	p.mu3 = s3/n - 3*m*s2/n + 2*m*m*m
	// Drawing nt of the N pooled values without replacement, the treatment sum S has
	// Var S = nt·nc/(N−1)·μ2 and κ3(S) = nt·nc·(nc−nt)/((N−1)(N−2))·μ3; the difference of means
	// is S·N/(nt·nc) minus a constant.
	f := n / (p.nt * p.nc)
	p.variance = f * f * p.nt * p.nc / (n - 1) * p.mu2
	p.k3 = f * f * f * p.nt * p.nc * (p.nc - p.nt) / ((n - 1) * (n - 2)) * p.mu3
	return p
}

// lambda is the standardised third cumulant of the difference.
func (p permutation) lambda() float64 {
	if !(p.variance > 0) {
		return 0
	}
	return p.k3 / math.Pow(p.variance, 1.5)
}

// z is the observed difference over its standard deviation across re-randomisations.
func (p permutation) z() float64 { return (p.mt - p.mc) / math.Sqrt(p.variance) }

// SkewOf returns the skewness check of a mean metric; the moments need SumCu and NonZero.
func SkewOf(control, treatment Moments) Skew {
	s := Skew{ControlNonZero: control.NonZero, TreatmentNonZero: treatment.NonZero}
	if !(control.N >= 2 && treatment.N >= 2) || !finite(control.SumCu, treatment.SumCu) {
		return s
	}
	p := permute(control, treatment, 0, 1)
	if !(p.mu2 > 0) {
		return s
	}
	s.Valid = true
	s.Skewness = p.mu3 / math.Pow(p.mu2, 1.5)
	s.Lambda = p.lambda()
	return s
}

// cornishFisherP returns the lower-tail probability of a standardised statistic z whose
// distribution has skewness lambda, by inverting the first-order Cornish–Fisher expansion
// x_p = w + λ(w² − 1)/6 with w = Φ⁻¹(p) (Cornish & Fisher, "Moments and cumulants in the
// specification of distributions", Revue de l'Institut International de Statistique 5, 1937):
// w is the root on the branch where the expansion increases, and a z beyond the expansion's
// range has no probability in that tail.
func cornishFisherP(z, lambda float64) float64 {
	if math.Abs(lambda) < 1e-12 {
		return distuv.UnitNormal.CDF(z)
	}
	// λ/6·w² + w − (z + λ/6) = 0, taking the root that tends to z as λ → 0.
	c := z + lambda/6
	disc := 1 + 2*lambda/3*c
	if disc < 0 {
		if lambda > 0 {
			return 0
		}
		return 1
	}
	w := 2 * c / (1 + math.Sqrt(disc))
	return distuv.UnitNormal.CDF(w)
}

// pValue is the two-sided p-value of the randomization statistic.
func (p permutation) pValue() float64 {
	if !(p.variance > 0) {
		return 1
	}
	lower := cornishFisherP(p.z(), p.lambda())
	return math.Min(1, 2*math.Min(lower, 1-lower))
}

// CompareMeansRandomization tests a difference of means as a randomization test of "no effect
// on any unit" with a skewness correction, for a skewed metric in arms of unequal size where
// Welch's t is biased towards one side (see SkewOf). The moments need SumCu.
//
// Under no effect every re-randomisation of the pooled units into arms of the same sizes is
// equally likely; the difference of means then has mean 0 and exactly known variance and third
// cumulant (those of a sample drawn without replacement from the pooled values). Its p-value is
// read from the first-order Cornish–Fisher expansion with that skewness (see cornishFisherP),
// which approximates the permutation test without enumerating re-randomisations (compare the
// Edgeworth approximation of permutation tests in Robinson, "Saddlepoint approximations for
// permutation tests and confidence intervals", JRSS B 44, 1982). The difference's interval is
// the set of shifts d for which treatment − d is not rejected against control, and the lift's
// the set of ratios r for which treatment/r is not rejected (a multiplicative effect); both
// exclude 0 exactly when p < alpha. DiffSE, ControlVar and TreatmentVar stay the unpooled ones,
// for Bayesian figures and confidence sequences.
func CompareMeansRandomization(control, treatment Moments, alpha float64) Comparison {
	c := newComparison(TestRandomization, alpha, control.N, control.Mean(), treatment.N, treatment.Mean())
	if r := checkArms(control.N, treatment.N, alpha, control.Sum, control.SumSq, control.SumCu,
		treatment.Sum, treatment.SumSq, treatment.SumCu); r != "" {
		return invalid(c, r)
	}
	c.control, c.treatment = control, treatment
	vc, vt := control.Variance()/control.N, treatment.Variance()/treatment.N
	if !(vc+vt > 0) {
		return invalid(c, "zero variance in both arms")
	}
	c.withVariances(vc, vt)
	p := permute(control, treatment, 0, 1)
	c.Stat = p.z()
	c.PValue = p.pValue()
	c.Valid = true
	return finish(invertShiftScale(c, math.Sqrt(p.variance), func(shift, scale float64) float64 {
		return permute(control, treatment, shift, scale).pValue()
	}))
}

// invertShiftScale fills a randomization test's intervals: the difference's is the set of shifts
// d for which treatment − d is not rejected, the lift's the set of ratios r for which
// treatment/r is not rejected; pValue is the test's p-value after that transformation and sd
// the standard deviation of the statistic under no effect.
func invertShiftScale(c Comparison, sd float64, pValue func(shift, scale float64) float64) Comparison {
	nullIn := c.PValue >= c.Alpha
	// p-values below alpha are the rejected ones: alpha − p is the continuous excess to search on.
	excess := func(shift, scale float64) float64 { return c.Alpha - pValue(shift, scale) }
	v := inverted{excess: func(d float64) float64 { return excess(d, 1) }, est: c.Diff, null: 0, nullIn: nullIn,
		lo: c.Diff - 1e3*sd, hi: c.Diff + 1e3*sd, tol: 1e-10 * sd}
	v.accept = func(d float64) bool { return v.excess(d) <= 0 }
	v.guessLo, v.guessHi = c.Diff-4*sd, c.Diff+4*sd
	c.DiffCI = v.interval()
	c.Lift = scaleLift(c, func(r float64) float64 { return excess(0, r) }, nullIn)
	return c
}

// scaleLift inverts the test of treatment/r against control over ratios r in (0, ∞), searched as
// u = r/(1+r); excess is ≤ 0 where r is accepted.
func scaleLift(c Comparison, excess func(float64) float64, nullIn bool) Lift {
	switch {
	case !(c.ControlMean > 0):
		return Lift{Reason: liftReason(c.ControlMean)}
	case !(c.TreatmentMean > 0):
		return Lift{Reason: fmt.Sprintf("treatment mean %.4g is not above 0, so the multiplicative lift of this test is not defined; read the difference", c.TreatmentMean)}
	}
	const top = 1 - 1e-12
	r := func(u float64) float64 { return u / (1 - u) }
	est := c.TreatmentMean / c.ControlMean
	v := inverted{est: est / (1 + est), null: 0.5, nullIn: nullIn, lo: 0, hi: top, tol: 1e-13}
	v.excess = func(u float64) float64 {
		if u <= 0 {
			return math.Inf(1) // a ratio of 0 is never accepted: treatment/0 is not data
		}
		return excess(r(u))
	}
	v.accept = func(u float64) bool { return v.excess(u) <= 0 }
	ci := v.interval()
	if ci[1] >= top {
		return Lift{Reason: liftReason(0.5)}
	}
	return Lift{Valid: true, Estimate: est - 1, SE: deltaLiftSE(c.ControlMean, c.ControlVar, c.TreatmentMean, c.TreatmentVar),
		CI: [2]float64{r(ci[0]) - 1, r(ci[1]) - 1}}
}
