package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// SRMThreshold is the p-value below which a sample ratio mismatch is reported.
const SRMThreshold = 0.001

// SRMResult is the Pearson chi-square goodness-of-fit test of the exposed units per variant against the expected weights.
type SRMResult struct {
	Valid    bool    // false when the test cannot be computed; see Reason
	Reason   string  // why Valid is false; empty otherwise
	Chi2     float64 // Pearson's statistic Σ (observed − expected)² / expected
	DF       float64 // number of variants − 1
	PValue   float64 // P(χ²_DF ≥ Chi2)
	Mismatch bool    // PValue < SRMThreshold
}

// SRM tests whether the observed unit counts per variant match the expected weights (any positive scale).
func SRM(observed, weights []float64) SRMResult {
	if len(observed) != len(weights) {
		return SRMResult{Reason: "observed counts and weights differ in length"}
	}
	if len(observed) < 2 {
		return SRMResult{Reason: "at least 2 variants are needed"}
	}
	var total, wsum float64
	for i := range observed {
		if !finite(observed[i], weights[i]) || observed[i] < 0 {
			return SRMResult{Reason: "observed counts must be finite and not negative"}
		}
		if !(weights[i] > 0) {
			return SRMResult{Reason: "every weight must be positive"}
		}
		total += observed[i]
		wsum += weights[i]
	}
	if total == 0 {
		return SRMResult{Reason: "no units observed"}
	}
	var chi2 float64
	for i := range observed {
		e := total * weights[i] / wsum
		d := observed[i] - e
		chi2 += d * d / e
	}
	df := float64(len(observed) - 1)
	p := distuv.ChiSquared{K: df}.Survival(chi2)
	if !finite(chi2, p) {
		return SRMResult{Reason: "numeric overflow: counts are out of range"}
	}
	p = math.Min(1, math.Max(0, p))
	return SRMResult{Valid: true, Chi2: chi2, DF: df, PValue: p, Mismatch: p < SRMThreshold}
}
