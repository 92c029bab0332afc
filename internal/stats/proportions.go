package stats

import "math"

// ExactBelow is the smallest expected count (successes or failures, in either arm, under the
// pooled rate) at which two proportions are compared with the asymptotic z-test; below it the
// exact unconditional test is used (the classic "expected count below 5" rule).
const ExactBelow = 5

// MaxExactUnits is the most units (both arms) the exact test is run on: its cost grows with
// the table and its intervals need dozens of exact p-values (docs/benchmarks.md). Above it,
// fewer than 5 expected events means a rate below 1 in 4,000, where the score test and its
// interval are used instead (docs/statistics.md).
const MaxExactUnits = 20000

// CompareProportions compares two proportions (Sum is the number of successes) with the two-proportion z-test, or with the exact unconditional test when an expected count is below ExactBelow.
//
// Asymptotic: the pooled z-test for the p-value and, for its interval, the score interval of
// the difference (Mee, "Confidence bounds for the difference between two probabilities",
// Biometrics 40, 1984: the Miettinen–Nurminen interval without their N/(N−1) factor), which
// inverts the score test whose value at 0 is the pooled z, so the interval excludes 0 exactly
// when p < alpha. The lift's interval inverts the score test of the ratio (Miettinen &
// Nurminen, "Comparative analysis of two rates", Statistics in Medicine 4, 1985, again without
// N/(N−1)), which at ratio 1 is the same pooled z. The Wald interval of the SPEC is dropped: it
// can exclude 0 next to a p-value of 0.48 (0/100 against 5/1000).
//
// Exact: see exactProportions.
func CompareProportions(control, treatment Moments, alpha float64) Comparison {
	c, t, why := proportionsBase(control, treatment, alpha)
	if why != "" {
		return invalid(c, why)
	}
	if t.minExpected() < ExactBelow && t.nc+t.nt <= MaxExactUnits {
		if !t.integral() {
			return invalid(c, "an exact test needs whole numbers of units and successes")
		}
		return finish(exactProportions(c, t))
	}
	c.Stat = c.Diff / t.sePooled()
	c.PValue = twoSidedNormalP(c.Stat)
	c.Valid = true
	q := zQuantile(alpha)
	nullIn := c.PValue >= alpha
	c.DiffCI = t.scoreInterval(q, nullIn)
	c.Lift = ratioLift(t, c, func(r float64) float64 { return math.Abs(t.scoreRatio(r)) - q }, nil, nullIn, 1e-13)
	return finish(c)
}

// SequentialProportions is Sequential(CompareProportions(control, treatment, alpha), tuning)
// without computing the fixed-horizon intervals and p-value it would discard, which for small
// counts are exact and costly.
func SequentialProportions(control, treatment Moments, alpha, tuning float64) Comparison {
	c, _, why := proportionsBase(control, treatment, alpha)
	if why != "" {
		return Sequential(invalid(c, why), tuning)
	}
	c.Valid = true
	return Sequential(c, tuning)
}

// proportionsBase checks two arms of a proportion and fills what every test of them shares:
// means, difference and the unpooled (Wald) variances.
func proportionsBase(control, treatment Moments, alpha float64) (Comparison, table, string) {
	c := newComparison(TestZ, alpha, control.N, control.Mean(), treatment.N, treatment.Mean())
	t := table{xc: control.Sum, nc: control.N, xt: treatment.Sum, nt: treatment.N}
	if r := checkArms(control.N, treatment.N, alpha, control.Sum, treatment.Sum); r != "" {
		return c, t, r
	}
	switch {
	case control.Sum < 0 || control.Sum > control.N:
		return c, t, "control successes outside [0, N]"
	case treatment.Sum < 0 || treatment.Sum > treatment.N:
		return c, t, "treatment successes outside [0, N]"
	case !(t.sePooled() > 0):
		return c, t, "no variation: every unit in both arms has the same outcome"
	}
	pc, pt := c.ControlMean, c.TreatmentMean
	c.withVariances(pc*(1-pc)/t.nc, pt*(1-pt)/t.nt)
	return c, t, ""
}

// table is a 2×2 table: successes and units of control and treatment.
type table struct{ xc, nc, xt, nt float64 }

// sePooled is the standard error of the difference under the pooled rate, the z-test's.
func (t table) sePooled() float64 {
	pool := (t.xc + t.xt) / (t.nc + t.nt)
	return math.Sqrt(pool * (1 - pool) * (1/t.nc + 1/t.nt))
}

// minExpected is the smallest expected count of successes or failures in either arm under the pooled rate.
func (t table) minExpected() float64 {
	p := (t.xc + t.xt) / (t.nc + t.nt)
	return math.Min(t.nc, t.nt) * math.Min(p, 1-p)
}

// integral reports whether every count is a whole number.
func (t table) integral() bool {
	for _, v := range []float64{t.xc, t.nc, t.xt, t.nt} {
		if v != math.Trunc(v) {
			return false
		}
	}
	return true
}

// scoreInterval is the score interval of the difference at the normal quantile q.
func (t table) scoreInterval(q float64, nullIn bool) [2]float64 {
	v := t.diffSearch(nullIn, 1e-13)
	v.excess = func(d float64) float64 { return math.Abs(t.scoreDiff(d)) - q }
	v.accept = func(d float64) bool { return v.excess(d) <= 0 }
	return v.interval()
}

// diffSearch is the search of an interval of the difference pt − pc over (−1, 1).
func (t table) diffSearch(nullIn bool, tol float64) inverted {
	const edge = 1e-12
	return inverted{est: t.xt/t.nt - t.xc/t.nc, null: 0, nullIn: nullIn, lo: -1 + edge, hi: 1 - edge, tol: tol}
}

// ratioLift inverts a test of the ratio pt/pc = r over r in [0, ∞) into the lift's interval;
// the search runs over u = r/(1+r) in [0, 1), and an interval that reaches r = 10¹² is
// unbounded. The test is given either as a continuous excess (≤ 0 where accepted) or as accept.
func ratioLift(t table, c Comparison, excess func(float64) float64, accept func(float64) bool, nullIn bool, tol float64) Lift {
	if t.xc == 0 {
		return Lift{Reason: liftReason(0)}
	}
	const top = 1 - 1e-12
	r := func(u float64) float64 { return u / (1 - u) }
	est := (t.xt / t.nt) / (t.xc / t.nc)
	v := inverted{est: est / (1 + est), null: 0.5, nullIn: nullIn, lo: 0, hi: top, tol: tol}
	if excess != nil {
		v.excess = func(u float64) float64 { return excess(r(u)) }
		v.accept = func(u float64) bool { return v.excess(u) <= 0 }
	} else {
		v.accept = func(u float64) bool { return accept(r(u)) }
	}
	ci := v.interval()
	if ci[1] >= top {
		return Lift{Reason: liftReason(0.5)}
	}
	return Lift{Valid: true, Estimate: est - 1, SE: deltaLiftSE(c.ControlMean, c.ControlVar, c.TreatmentMean, c.TreatmentVar),
		CI: [2]float64{r(ci[0]) - 1, r(ci[1]) - 1}}
}

// restrictedDiff returns the maximum-likelihood rates (pc, pt) under pt − pc = d, in the closed
// form of Farrington & Manning, "Test statistics and sample size formulae for comparative
// binomial trials with null hypothesis of non-zero risk difference or non-unity relative risk",
// Statistics in Medicine 9 (1990), with the treatment as their sample 1.
func (t table) restrictedDiff(d float64) (pc, pt float64) {
	p1, p2 := t.xt/t.nt, t.xc/t.nc
	theta := t.nc / t.nt
	a := 1 + theta
	b := -(1 + theta + p1 + theta*p2 + d*(theta+2))
	c := d*d + d*(2*p1+theta+1) + p1 + theta*p2
	e := -p1 * d * (1 + d)
	v := b*b*b/(27*a*a*a) - b*c/(6*a*a) + e/(2*a)
	u := math.Sqrt(math.Max(0, b*b/(9*a*a)-c/(3*a)))
	if v < 0 {
		u = -u
	}
	cosArg := 1.0
	if u != 0 {
		cosArg = math.Max(-1, math.Min(1, v/(u*u*u)))
	}
	w := (math.Pi + math.Acos(cosArg)) / 3
	pt = 2*u*math.Cos(w) - b/(3*a)
	pt = math.Max(math.Max(0, d), math.Min(math.Min(1, 1+d), pt))
	return pt - d, pt
}

// scoreDiff is the score statistic of pt − pc = d: the observed difference minus d over its
// standard error at the restricted rates; at d = 0 it is the pooled z.
func (t table) scoreDiff(d float64) float64 {
	pc, pt := t.restrictedDiff(d)
	return ratioOfDiff(t.xt/t.nt-t.xc/t.nc-d, pt*(1-pt)/t.nt+pc*(1-pc)/t.nc)
}

// restrictedRatio returns the maximum-likelihood rates (pc, pt) under pt = r·pc: the smaller root of
// r·N·pc² − (r·nt + xt + nc + r·xc)·pc + (xt + xc) = 0 (Miettinen & Nurminen 1985).
func (t table) restrictedRatio(r float64) (pc, pt float64) {
	a := r * (t.nc + t.nt)
	b := r*t.nt + t.xt + t.nc + r*t.xc
	c := t.xt + t.xc
	disc := math.Max(0, b*b-4*a*c)
	pc = 2 * c / (b + math.Sqrt(disc))
	pc = math.Max(0, math.Min(pc, math.Min(1, 1/r)))
	return pc, r * pc
}

// scoreRatio is the score statistic of pt = r·pc; at r = 1 it is the pooled z.
func (t table) scoreRatio(r float64) float64 {
	pc, pt := t.restrictedRatio(r)
	return ratioOfDiff(t.xt/t.nt-r*t.xc/t.nc, pt*(1-pt)/t.nt+r*r*pc*(1-pc)/t.nc)
}

// ratioOfDiff is num/√variance, with 0/0 read as 0 and x/0 as ±∞.
func ratioOfDiff(num, variance float64) float64 {
	switch {
	case variance > 0:
		return num / math.Sqrt(variance)
	case num > 0:
		return math.Inf(1)
	case num < 0:
		return math.Inf(-1)
	}
	return 0
}
