package experiments

// GetEqualWeights returns n equal weights summing to 1, or an empty slice when n <= 0.
func GetEqualWeights(n int) []float64 {
	if n <= 0 {
		return []float64{}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
	}
	return w
}

// GetBucketRanges returns the [start, end) range of each variation for the
// given coverage and weights, as GrowthBook's getBucketRanges does.
func GetBucketRanges(numVariations int, coverage float64, weights []float64) [][2]float64 {
	if coverage < 0 {
		coverage = 0
	} else if coverage > 1 {
		coverage = 1
	}
	if len(weights) != numVariations {
		weights = GetEqualWeights(numVariations)
	}
	// Summed left to right like JavaScript's reduce, so the 0.99..1.01
	// tolerance decides exactly as the SDK does.
	total := 0.0
	for _, w := range weights {
		total += w
	}
	if total < 0.99 || total > 1.01 {
		weights = GetEqualWeights(numVariations)
	}
	ranges := make([][2]float64, len(weights))
	cumulative := 0.0
	for i, w := range weights {
		start := cumulative
		cumulative += w
		// Each range starts where the full weight would start, so raising
		// coverage only extends ranges and never moves an assigned shopper.
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

// InNamespace reports whether hashValue falls in the [start, end) slice of
// the named namespace (a layer, in xsell's words).
func InNamespace(hashValue, name string, start, end float64) bool {
	n := namespaceHash(hashValue, name)
	return n >= start && n < end
}

// namespaceHash is where a value falls in a namespace, in [0, 1): hash version 1 of
// value+"__"+name, computed without concatenating.
func namespaceHash(hashValue, name string) float64 {
	h := fnv1a32(fnv1a32(fnv1a32(fnvOffset32, hashValue), "__"), name)
	return float64(h%1000) / 1000
}
