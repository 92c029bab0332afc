package stats

import (
	"fmt"
	"math"
	"sort"
)

// Correction names a multiple-testing correction of p-values.
type Correction string

// Supported corrections.
const (
	CorrectionHolm Correction = "holm" // Holm–Bonferroni step-down, controls the family-wise error rate
	CorrectionBH   Correction = "bh"   // Benjamini–Hochberg step-up, controls the false discovery rate
	CorrectionNone Correction = "none" // p-values unchanged
)

// ParseCorrection returns the correction named s: "holm", "bh" (also "benjamini-hochberg", "fdr_bh") or "none".
func ParseCorrection(s string) (Correction, error) {
	switch s {
	case "holm":
		return CorrectionHolm, nil
	case "bh", "benjamini-hochberg", "fdr_bh":
		return CorrectionBH, nil
	case "none":
		return CorrectionNone, nil
	}
	return "", fmt.Errorf("unknown correction %q: want holm, bh or none", s)
}

// AdjustPValues returns the adjusted p-values, in input order, of one family of tests (pass only valid p-values).
func AdjustPValues(p []float64, method Correction) ([]float64, error) {
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("p-value %d is %v, not in [0, 1]", i, v)
		}
	}
	out := make([]float64, len(p))
	m := float64(len(p))
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] < p[order[b]] })
	switch method {
	case CorrectionNone:
		copy(out, p)
	case CorrectionHolm:
		// Step-down: the k-th smallest (k from 0) is multiplied by m−k, then made monotone upwards.
		running := 0.0
		for k, i := range order {
			running = math.Max(running, math.Min(1, (m-float64(k))*p[i]))
			out[i] = running
		}
	case CorrectionBH:
		// Step-up: the k-th smallest (k from 1) is multiplied by m/k, then made monotone from the top.
		running := 1.0
		for k := len(order) - 1; k >= 0; k-- {
			i := order[k]
			running = math.Min(running, math.Min(1, m/float64(k+1)*p[i]))
			out[i] = running
		}
	default:
		return nil, fmt.Errorf("unknown correction %q: want holm, bh or none", method)
	}
	return out, nil
}
