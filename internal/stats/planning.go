package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// PlanInput describes the experiment to size.
//
// Variants counts all arms including control. The report corrects its p-values over
// Comparisons tests (every metric against control in every treatment, and per segment), so
// alpha is split by Bonferroni: each comparison is planned two-sided at Alpha/Comparisons. The
// report's Holm (or Benjamini–Hochberg) correction tests the smallest p-value at exactly that
// level and the others at easier ones, so the plan is what the primary comparison gets when the
// other metrics do not move, and a safe bound otherwise.
type PlanInput struct {
	Baseline    float64 // control conversion rate (proportions) or control mean (means)
	StdDev      float64 // per-unit standard deviation in control; means only
	MDE         float64 // minimum detectable effect, positive: absolute, or relative to Baseline when RelativeMDE
	RelativeMDE bool
	Alpha       float64 // two-sided significance level of the whole report
	Power       float64 // probability of detecting an effect of size MDE
	Variants    int     // arms including control, at least 2
	// Comparisons is the number of p-values the report corrects over; 0 means Variants−1 (one
	// metric, no segments), 1 a report without correction.
	Comparisons int
	// StdDevTreatment is the per-unit standard deviation in treatment (means); 0 means the same
	// as control, or StdDev·(1+relative effect) when Multiplicative.
	StdDevTreatment float64
	// Multiplicative says the effect scales every treatment value (a share more per basket), so
	// its spread grows with it, rather than adding a constant.
	Multiplicative bool
	// Sequential plans for the always-valid confidence sequence read at the planned size, with
	// this tuning (DefaultTuning when 0), instead of a fixed-horizon test.
	Sequential bool
	Tuning     float64
}

// Plan is a sample size per variant.
type Plan struct {
	PerVariant         int64   // units in every arm, control included (PerVariantExact rounded up)
	PerVariantExact    float64 // the formula's unrounded value
	Total              int64   // PerVariant × Variants
	AbsoluteMDE        float64 // the effect planned for, in the metric's unit
	AlphaPerComparison float64 // Alpha / (Variants − 1)
}

// MDEInput describes an experiment whose sample is given.
type MDEInput struct {
	Baseline   float64 // control conversion rate (proportions) or control mean (means)
	StdDev     float64 // per-unit standard deviation; means only
	PerVariant float64 // units in each arm
	Alpha      float64 // two-sided, for the whole report (split by Bonferroni as in PlanInput)
	Power      float64
	Variants   int // arms including control, at least 2
}

// MDE is the smallest effect detectable with the given power.
type MDE struct {
	Absolute      float64 // in the metric's unit, upwards
	Relative      float64 // Absolute / Baseline; 0 when RelativeValid is false
	RelativeValid bool    // false when the baseline is 0
}

// quantiles returns z_{1−α'/2} with α' = alpha/(variants−1), z_power and α'.
func quantiles(alpha, power float64, variants int) (za, zb, a float64, err error) {
	return quantilesOver(alpha, power, variants, 0)
}

// quantilesOver returns z_{1−α'/2} with α' = alpha/comparisons (variants−1 when 0), z_power and α'.
func quantilesOver(alpha, power float64, variants, comparisons int) (za, zb, a float64, err error) {
	switch {
	case !(alpha > 0 && alpha < 1):
		return 0, 0, 0, errors.New("alpha must be strictly between 0 and 1")
	case !(power > 0 && power < 1):
		return 0, 0, 0, errors.New("power must be strictly between 0 and 1")
	case variants < 2:
		return 0, 0, 0, errors.New("at least 2 variants (control and one treatment) are needed")
	case comparisons < 0:
		return 0, 0, 0, errors.New("the number of comparisons must not be negative")
	}
	if comparisons == 0 {
		comparisons = variants - 1
	}
	a = alpha / float64(comparisons)
	return distuv.UnitNormal.Quantile(1 - a/2), distuv.UnitNormal.Quantile(power), a, nil
}

// design returns what every sample-size formula starts from: z_{1−α'/2}, z_power, the
// per-comparison α' and the effect in the metric's unit.
func (in PlanInput) design() (za, zb, a, d float64, err error) {
	if za, zb, a, err = quantilesOver(in.Alpha, in.Power, in.Variants, in.Comparisons); err != nil {
		return 0, 0, 0, 0, err
	}
	d, err = in.absoluteMDE()
	return za, zb, a, d, err
}

// absoluteMDE converts the planned effect to the metric's unit.
func (in PlanInput) absoluteMDE() (float64, error) {
	if !finite(in.Baseline, in.MDE, in.StdDev) {
		return 0, errors.New("inputs must be finite numbers")
	}
	if !(in.MDE > 0) {
		return 0, errors.New("MDE must be positive")
	}
	if in.RelativeMDE {
		if in.Baseline == 0 {
			return 0, errors.New("a relative MDE needs a non-zero baseline")
		}
		return in.MDE * math.Abs(in.Baseline), nil
	}
	return in.MDE, nil
}

// propN is the units per arm to detect p1 → p2 with a pooled-variance z-test
// (Fleiss, Levin & Paik, Statistical Methods for Rates and Proportions, 3rd ed., eq. 4.14, without continuity correction).
func propN(p1, p2, za, zb float64) float64 {
	pbar := (p1 + p2) / 2
	d := p2 - p1
	s := za*math.Sqrt(2*pbar*(1-pbar)) + zb*math.Sqrt(p1*(1-p1)+p2*(1-p2))
	return s * s / (d * d)
}

// newPlan rounds an exact size into a Plan.
func newPlan(exact float64, variants int, mde, a float64) (Plan, error) {
	if !finite(exact) || exact > 1e15 {
		return Plan{}, errors.New("required sample size is out of range")
	}
	per := int64(math.Ceil(exact))
	return Plan{PerVariant: per, PerVariantExact: exact, Total: per * int64(variants), AbsoluteMDE: mde, AlphaPerComparison: a}, nil
}

// SampleSizeProportion returns the units per variant for a two-proportion z-test to detect a rise of MDE from the baseline rate.
func SampleSizeProportion(in PlanInput) (Plan, error) {
	za, zb, a, d, err := in.design()
	if err != nil {
		return Plan{}, err
	}
	if !(in.Baseline > 0 && in.Baseline < 1) {
		return Plan{}, errors.New("baseline rate must be strictly between 0 and 1")
	}
	p1, p2 := in.Baseline, in.Baseline+d
	if p2 >= 1 {
		return Plan{}, fmt.Errorf("baseline %v plus MDE %v reaches 100%%", in.Baseline, d)
	}
	if in.Sequential {
		// The sequence reads the unpooled standard error √((p1q1 + p2q2)/n).
		n, err := sequentialN(d, p1*(1-p1)+p2*(1-p2), a, zb, in.Tuning)
		if err != nil {
			return Plan{}, err
		}
		return newPlan(n, in.Variants, d, a)
	}
	return newPlan(propN(p1, p2, za, zb), in.Variants, d, a)
}

// SampleSizeMean returns the units per variant for a test of means (normal approximation, the
// arms' own variances) to detect a change of MDE.
func SampleSizeMean(in PlanInput) (Plan, error) {
	// n = (σc² + σt²)(z_{1−α'/2} + z_power)² / δ²; with equal spreads the familiar 2σ²(…)²/δ².
	za, zb, a, d, err := in.design()
	if err != nil {
		return Plan{}, err
	}
	if !(in.StdDev > 0) || in.StdDevTreatment < 0 || math.IsInf(in.StdDevTreatment, 0) {
		return Plan{}, errors.New("standard deviation must be positive")
	}
	st := in.StdDevTreatment
	if st == 0 {
		st = in.StdDev
		if in.Multiplicative {
			// Every treatment value is (1 + d/|baseline|) times a control-like one.
			st = in.StdDev * (1 + d/math.Abs(in.Baseline))
		}
	}
	if in.Multiplicative && in.Baseline == 0 {
		return Plan{}, errors.New("a multiplicative effect needs a non-zero baseline")
	}
	v := in.StdDev*in.StdDev + st*st
	if in.Sequential {
		n, err := sequentialN(d, v, a, zb, in.Tuning)
		if err != nil {
			return Plan{}, err
		}
		return newPlan(n, in.Variants, d, a)
	}
	s := (za + zb) / d
	return newPlan(v*s*s, in.Variants, d, a)
}

// sequentialN is the units per arm at which the confidence sequence of a difference d, whose
// standard error is √(v/n), excludes 0 with probability z_power: the half-width is
// m(2n)·√(v/n) (seqMultiplier over both arms' units), so the condition is
// d/√(v/n) = m(2n) + z_power, found by doubling then bisection on n.
func sequentialN(d, v, alpha, zb, tuning float64) (float64, error) {
	if tuning == 0 {
		tuning = DefaultTuning
	}
	if !(tuning > 0) || math.IsInf(tuning, 0) {
		return 0, errors.New("sequential tuning must be positive")
	}
	rho2 := seqRho2(alpha, tuning)
	gap := func(n float64) float64 { return d*math.Sqrt(n/v) - seqMultiplier(2*n, alpha, rho2) - zb }
	lo, hi := 1.0, 2.0
	for gap(hi) < 0 {
		lo, hi = hi, 2*hi
		if hi > 1e15 {
			return 0, errors.New("required sample size is out of range")
		}
	}
	for range 200 {
		mid := (lo + hi) / 2
		if gap(mid) < 0 {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-9*hi {
			break
		}
	}
	return hi, nil
}

// newMDE fills the relative form of an absolute MDE.
func newMDE(abs, baseline float64) MDE {
	m := MDE{Absolute: abs}
	if baseline != 0 {
		m.Relative, m.RelativeValid = abs/math.Abs(baseline), true
	}
	return m
}

// MDEMean returns the smallest change of the mean detectable with the given units per variant.
func MDEMean(in MDEInput) (MDE, error) {
	// δ = (z_{1−α'/2} + z_power)·σ·√(2/n), the inverse of SampleSizeMean.
	za, zb, _, err := quantiles(in.Alpha, in.Power, in.Variants)
	if err != nil {
		return MDE{}, err
	}
	if !finite(in.Baseline, in.StdDev, in.PerVariant) || !(in.StdDev > 0) || !(in.PerVariant > 0) {
		return MDE{}, errors.New("standard deviation and units per variant must be positive numbers")
	}
	return newMDE((za+zb)*in.StdDev*math.Sqrt(2/in.PerVariant), in.Baseline), nil
}

// MDEProportion returns the smallest rise of the rate detectable with the given units per variant (the inverse of SampleSizeProportion).
func MDEProportion(in MDEInput) (MDE, error) {
	za, zb, _, err := quantiles(in.Alpha, in.Power, in.Variants)
	if err != nil {
		return MDE{}, err
	}
	p := in.Baseline
	if !finite(p, in.PerVariant) || !(p > 0 && p < 1) || !(in.PerVariant > 0) {
		return MDE{}, errors.New("baseline rate must be strictly between 0 and 1 and units per variant positive")
	}
	// The size needed falls as the effect grows; bisect the effect in (0, 1−p).
	lo, hi := 0.0, 1-p
	if propN(p, p+hi*(1-1e-12), za, zb) > in.PerVariant {
		return MDE{}, errors.New("no rise of the rate is detectable with this sample")
	}
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if propN(p, p+mid, za, zb) > in.PerVariant {
			lo = mid
		} else {
			hi = mid
		}
	}
	return newMDE(hi, p), nil
}

// DaysNeeded returns the whole days until every variant has perVariant units, at dailyUnits eligible units a day split evenly over the variants.
func DaysNeeded(perVariant int64, variants int, dailyUnits float64) (int, error) {
	if perVariant < 0 || variants < 1 || !(dailyUnits > 0) || math.IsInf(dailyUnits, 0) {
		return 0, errors.New("units, variants and daily traffic must be positive")
	}
	d := math.Ceil(float64(perVariant) * float64(variants) / dailyUnits)
	if d > math.MaxInt32 {
		return 0, errors.New("more days than can be counted")
	}
	return int(d), nil
}
