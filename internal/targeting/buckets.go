package targeting

// EqualWeights returns n equal weights summing to 1, or an empty slice when n <= 0
// (GrowthBook's getEqualWeights).
func EqualWeights(n int) []float64 {
	if n <= 0 {
		return []float64{}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
	}
	return w
}

// BucketRanges returns the [start, end) range of each variation for the given coverage and
// weights, as GrowthBook's getBucketRanges does: coverage is clamped to [0, 1], and weights of
// the wrong count or not summing to 1 ± 0.01 are replaced by equal ones.
func BucketRanges(numVariations int, coverage float64, weights []float64) [][2]float64 {
	coverage = min(max(coverage, 0), 1)
	if len(weights) != numVariations {
		weights = EqualWeights(numVariations)
	}
	// Summed left to right like JavaScript's reduce, so that the tolerance decides exactly as
	// the SDK does.
	total := 0.0
	for _, w := range weights {
		total += w
	}
	if total < 0.99 || total > 1.01 {
		weights = EqualWeights(numVariations)
	}
	ranges := make([][2]float64, len(weights))
	cumulative := 0.0
	for i, w := range weights {
		start := cumulative
		cumulative += w
		// Each range starts where the full weight would start, so raising coverage only
		// extends ranges and never moves an assigned shopper.
		ranges[i] = [2]float64{start, start + coverage*w}
	}
	return ranges
}

// ChooseVariation returns the index of the range holding n, or -1 when none does.
func ChooseVariation(n float64, ranges [][2]float64) int {
	for i, r := range ranges {
		if n >= r[0] && n < r[1] {
			return i
		}
	}
	return -1
}
