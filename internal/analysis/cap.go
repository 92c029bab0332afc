package analysis

import (
	"math"
	"slices"
)

// Capping (winsorising) of revenue-like means: each unit's value is held within the pooled
// (1−q) and q quantiles of all units of the report, both arms together, so that a handful of
// very large orders cannot decide a test, while the arms are treated alike (Dixon, "Simplified
// estimation from censored normal samples", Annals of Mathematical Statistics 31, 1960; as
// GrowthBook's and Statsig's percentile capping do). The lower bound only bites where values
// run far below the bulk, as net revenue does after refunds and offer costs.

// quantile is the q-quantile of sorted values by linear interpolation between order statistics
// (Hyndman & Fan's type 7), the definition of PostgreSQL's percentile_cont, so that file and
// database reports cap alike.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// capBounds returns the pooled (1−q) and q quantiles of values.
func capBounds(values []float64, q float64) (lower, upper float64) {
	s := slices.Clone(values)
	slices.Sort(s)
	return quantile(s, 1-q), quantile(s, q)
}

// clamp holds x within [lower, upper] and reports whether it moved.
func clamp(x, lower, upper float64) (float64, bool) {
	switch {
	case x > upper:
		return upper, true
	case x < lower:
		return lower, true
	}
	return x, false
}
