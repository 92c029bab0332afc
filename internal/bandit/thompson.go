package bandit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/xsell/xsell/internal/stats"
)

// Estimate is one arm's metric among the shoppers first exposed in one period: their number,
// the mean and the variance of that mean (its squared standard error).
type Estimate struct {
	N       float64 `json:"units"`
	Mean    float64 `json:"mean"`
	VarMean float64 `json:"var_mean"`
}

// FromMoments is the estimate of a mean or a proportion from its moments.
func FromMoments(m stats.Moments) Estimate {
	if m.N <= 0 {
		return Estimate{}
	}
	return Estimate{N: m.N, Mean: m.Mean(), VarMean: m.Variance() / m.N}
}

// FromRatio is the estimate of a ratio metric (delta-method variance); no units when the
// denominator sum is 0.
func FromRatio(m stats.RatioMoments) Estimate {
	r, v, ok := m.Estimate()
	if !ok {
		return Estimate{}
	}
	return Estimate{N: m.N, Mean: r, VarMean: v}
}

// Posterior is the normal posterior of one arm's metric.
type Posterior struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// minPeriodUnits is the fewest units an arm needs in a period for the period to weigh in the
// posterior: a mean of one unit has no variance estimate.
const minPeriodUnits = 2

// Posteriors returns each arm's posterior from its estimates per period (periods[p][arm]),
// standardised over the periods as GrowthBook's bandit does: arm a's mean is Σ ωp·x̄ap with ωp the
// period's share of all units, so that every arm is judged on the same mix of periods and a
// trend of the metric over time cannot favour the arm that had more traffic when times were
// good. Its variance is Σ ωp²·Var(x̄ap). The prior is flat. A period in which some arm has fewer
// than 2 units takes no part; if no period qualifies, each arm's periods are pooled. An arm-period
// with no spread (no conversions yet) borrows the period's average unit variance, so that 0 of 50
// is not taken for a certain 0.
func Posteriors(periods [][]Estimate) []Posterior {
	if len(periods) == 0 {
		return nil
	}
	k := len(periods[0])
	var kept [][]Estimate
	for _, p := range periods {
		if !slices.ContainsFunc(p, func(e Estimate) bool { return e.N < minPeriodUnits }) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		kept = [][]Estimate{pool(periods, k)}
	}
	var total float64
	for _, p := range kept {
		for _, e := range p {
			total += e.N
		}
	}
	out := make([]Posterior, k)
	variance := make([]float64, k)
	for _, p := range kept {
		var units float64
		for _, e := range p {
			units += e.N
		}
		w := units / total
		fill := averageUnitVariance(p)
		for a, e := range p {
			v := e.VarMean
			if !(v > 0) && e.N > 0 {
				v = fill / e.N
			}
			out[a].Mean += w * e.Mean
			variance[a] += w * w * v
		}
	}
	for a := range out {
		out[a].SD = math.Sqrt(variance[a])
	}
	return out
}

// pool merges each arm's periods into one estimate (inverse-variance weights would favour
// lucky periods; units weight them as they came).
func pool(periods [][]Estimate, k int) []Estimate {
	out := make([]Estimate, k)
	for a := range k {
		var n, sum, sumVar float64
		for _, p := range periods {
			e := p[a]
			n += e.N
			sum += e.N * e.Mean
			sumVar += e.N * e.N * e.VarMean
		}
		if n > 0 {
			out[a] = Estimate{N: n, Mean: sum / n, VarMean: sumVar / (n * n)}
		}
	}
	return out
}

// averageUnitVariance is the unit variance of a period's arms, averaged over their units.
func averageUnitVariance(p []Estimate) float64 {
	var n, s float64
	for _, e := range p {
		n += e.N
		s += e.N * e.N * e.VarMean // units × (unit variance = VarMean × N)
	}
	if n == 0 {
		return 0
	}
	return s / n
}

// Draws is how many joint posterior samples estimate the chances of being best (GrowthBook's
// number): the chances are then within about ±0.01.
const Draws = 10_000

// Chances returns, from draws joint samples of the posteriors, each arm's chance of being best
// (pBest) and, for each arm j, each arm's chance of being best among the others (pOthers[j]),
// which is where top-two sampling finds its challenger. Ties (posteriors without spread) are
// broken at random. lowerIsBetter makes the smallest value best.
func Chances(post []Posterior, lowerIsBetter bool, draws int, rng *rand.Rand) (pBest []float64, pOthers [][]float64) {
	k := len(post)
	pBest = make([]float64, k)
	pOthers = make([][]float64, k)
	for j := range pOthers {
		pOthers[j] = make([]float64, k)
	}
	sample := make([]float64, k)
	for range draws {
		for a, p := range post {
			sample[a] = p.Mean + p.SD*rng.NormFloat64()
			if lowerIsBetter {
				sample[a] = -sample[a]
			}
		}
		first, second := topTwo(sample, rng)
		pBest[first]++
		for j := range k {
			if j == first {
				pOthers[j][second]++
			} else {
				pOthers[j][first]++
			}
		}
	}
	for a := range k {
		pBest[a] /= float64(draws)
		for j := range k {
			pOthers[j][a] /= float64(draws)
		}
	}
	return pBest, pOthers
}

// topTwo returns the indexes of the largest and second largest values, ties broken at random.
func topTwo(x []float64, rng *rand.Rand) (first, second int) {
	first = argmax(x, -1, rng)
	return first, argmax(x, first, rng)
}

// argmax returns the index of the largest value other than skip's, ties broken uniformly at
// random (reservoir sampling over the tied indexes); -1 when there is none.
func argmax(x []float64, skip int, rng *rand.Rand) int {
	best, ties := -1, 0
	for i, v := range x {
		switch {
		case i == skip:
		case best < 0 || v > x[best]:
			best, ties = i, 1
		case v == x[best]:
			ties++
			if rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// TopTwo returns top-two Thompson sampling's allocation (Russo, "Simple Bayesian algorithms for
// best arm identification", Operations Research 68, 2020): a shopper gets, with probability
// beta, the leader — the best arm of a posterior sample — and otherwise the challenger, the
// best of the other arms in an independent posterior sample. Arm i's share is therefore
// beta·P(i best) + (1 − beta)·Σj≠i P(j best)·P(i best among all but j). A clear winner gets
// beta of the traffic and the rest keeps learning about the runners-up; with two arms the
// shares are 1/2 + (2·beta − 1)·(P(best) − 1/2).
func TopTwo(pBest []float64, pOthers [][]float64, beta float64) []float64 {
	w := make([]float64, len(pBest))
	for i := range w {
		w[i] = beta * pBest[i]
		for j := range pBest {
			if j != i {
				w[i] += (1 - beta) * pBest[j] * pOthers[j][i]
			}
		}
	}
	return w
}

// Floor gives every arm at least minWeight, adding it under the others' shares rather than
// clipping: w'i = minWeight + (1 − k·minWeight)·wi/Σw, which keeps the order and spacing of
// the arms above the floor (as GrowthBook's bandit does).
func Floor(w []float64, minWeight float64) ([]float64, error) {
	k := float64(len(w))
	if !(minWeight >= 0 && minWeight*k < 1) {
		return nil, fmt.Errorf("a floor of %v for %d arms leaves nothing to allocate", minWeight, len(w))
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	out := make([]float64, len(w))
	for i, x := range w {
		share := 1 / k
		if sum > 0 {
			share = x / sum
		}
		out[i] = minWeight + (1-k*minWeight)*share
	}
	return out, nil
}
