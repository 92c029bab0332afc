package stats

import "math"

// Moments are the sufficient statistics of a per-unit metric in one arm; for a proportion Sum is the number of successes.
//
// SumCu and NonZero feed the skewness check of mean metrics (SkewOf); comparisons that do not
// need them ignore them, so they may be left 0 where no skewness check is wanted.
type Moments struct {
	N       float64 // units
	Sum     float64 // Σ value (successes for a proportion)
	SumSq   float64 // Σ value²
	SumCu   float64 // Σ value³
	NonZero float64 // units whose value is not 0
}

// Add records one unit's value.
func (m *Moments) Add(x float64) {
	m.N++
	m.Sum += x
	m.SumSq += x * x
	m.SumCu += x * x * x
	if x != 0 {
		m.NonZero++
	}
}

// Merge adds another group's moments, the moments of the union of the two groups.
func (m *Moments) Merge(o Moments) {
	m.N += o.N
	m.Sum += o.Sum
	m.SumSq += o.SumSq
	m.SumCu += o.SumCu
	m.NonZero += o.NonZero
}

// ProportionMoments returns the moments of n units of which successes are 1 and the rest 0.
func ProportionMoments(n, successes float64) Moments {
	return Moments{N: n, Sum: successes, SumSq: successes, SumCu: successes, NonZero: successes}
}

// Mean returns the arm's mean, or 0 for an empty arm.
func (m Moments) Mean() float64 {
	if m.N <= 0 {
		return 0
	}
	return m.Sum / m.N
}

// Variance returns the sample variance (denominator N−1), or 0 with fewer than two units.
func (m Moments) Variance() float64 {
	if m.N < 2 {
		return 0
	}
	// Rounding can make a zero variance slightly negative.
	return math.Max(0, (m.SumSq-m.Sum*(m.Sum/m.N))/(m.N-1))
}

// RatioMoments are the sufficient statistics of a ratio metric (Σ numerator / Σ denominator, e.g. revenue per order) in one arm, one numerator and denominator value per unit.
type RatioMoments struct {
	N         float64 // units
	SumNum    float64 // Σ numerator (e.g. revenue)
	SumNumSq  float64 // Σ numerator²
	SumDen    float64 // Σ denominator (e.g. orders)
	SumDenSq  float64 // Σ denominator²
	SumNumDen float64 // Σ numerator·denominator
}

// Add records one unit's numerator and denominator.
func (m *RatioMoments) Add(num, den float64) {
	m.N++
	m.SumNum += num
	m.SumNumSq += num * num
	m.SumDen += den
	m.SumDenSq += den * den
	m.SumNumDen += num * den
}

// CUPEDMoments are the sufficient statistics of a metric Y and its pre-exposure covariate X in one arm.
type CUPEDMoments struct {
	N     float64 // units
	SumY  float64 // Σ metric
	SumYY float64 // Σ metric²
	SumX  float64 // Σ covariate (e.g. revenue in the 14 days before exposure)
	SumXX float64 // Σ covariate²
	SumXY float64 // Σ metric·covariate
}

// Add records one unit's metric y and covariate x.
func (m *CUPEDMoments) Add(y, x float64) {
	m.N++
	m.SumY += y
	m.SumYY += y * y
	m.SumX += x
	m.SumXX += x * x
	m.SumXY += x * y
}

// Metric returns the moments of Y alone, for the unadjusted test.
func (m CUPEDMoments) Metric() Moments {
	return Moments{N: m.N, Sum: m.SumY, SumSq: m.SumYY}
}

// centredCov returns the sample covariance (denominator n−1) from raw sums.
func centredCov(n, sa, sb, sab float64) float64 {
	if n < 2 {
		return 0
	}
	return (sab - sa*(sb/n)) / (n - 1)
}

// finite reports whether every value is a finite number.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
