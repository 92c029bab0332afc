package stats

import (
	"math"
	"sort"
)

// exactProportions fills c with the exact unconditional test of two proportions.
//
// The p-value of a null value θ0 (a difference d0 or a ratio r0) is the largest probability,
// over every pair of rates on the null line (pt = pc + d0, or pt = r0·pc), of a table whose
// score statistic at θ0 is at least as far from 0 as the observed one (Barnard's unconditional
// approach; the score ordering is the one of Chan & Zhang, "Test-based exact confidence
// intervals for the difference of two binomial proportions", Biometrics 55, 1999, inverted as
// one two-sided test as in Agresti & Min, "On small-sample confidence intervals for parameters
// in discrete distributions", Biometrics 57, 2001). At θ0 = 0 the statistic is the pooled z, so
// the p-value is the Suissa–Shuster z-pooled exact test (J. R. Statist. Soc. A 148, 1985) and
// matches R's Barnard package (barnard.test, pooled = TRUE). Fisher's test is conditional on the
// margins and Boschloo's orders tables by Fisher's p, which exists only at θ0 = 0: neither can
// be inverted into an interval of the difference, which is why this test is used instead; both
// are far more conservative at the sizes where it applies (Lydersen, Fagerland & Laake,
// "Recommended tests for association in 2×2 tables", Statistics in Medicine 28, 2009).
//
// The intervals are the sets of d0 and r0 the test does not reject at alpha, so they exclude 0
// exactly when p < alpha.
func exactProportions(c Comparison, t table) Comparison {
	c.Test = TestExact
	c.Stat = t.scoreDiff(0)
	c.PValue = t.exactP(table.scoreDiff, lineDiff, 0)
	c.Valid = true
	nullIn := c.PValue >= c.Alpha
	// The asymptotic score interval is close to the exact one; starting the search from it
	// saves most bisection steps, each of which computes an exact p-value.
	score := t.scoreInterval(zQuantile(c.Alpha), true)
	v := t.diffSearch(nullIn, math.Max(1e-12, 1e-5*(score[1]-score[0])))
	v.accept = func(d float64) bool { return t.exactAccepts(table.scoreDiff, lineDiff, d, c.Alpha) }
	v.guessLo, v.guessHi = score[0]-(v.est-score[0]), score[1]+(score[1]-v.est)
	c.DiffCI = v.interval()
	c.Lift = ratioLift(t, c, nil, func(r float64) bool { return t.exactAccepts(table.scoreRatio, lineRatio, r, c.Alpha) }, nullIn, 1e-7)
	return c
}

// nullLine is the set of rate pairs of a null value θ0: the treatment rate for a control rate,
// and the range of control rates whose treatment rate is in [0, 1].
type nullLine struct {
	pt      func(theta, pc float64) float64
	pcRange func(theta float64) (lo, hi float64)
}

var (
	lineDiff = nullLine{
		pt:      func(d, pc float64) float64 { return pc + d },
		pcRange: func(d float64) (float64, float64) { return math.Max(0, -d), math.Min(1, 1-d) },
	}
	lineRatio = nullLine{
		pt:      func(r, pc float64) float64 { return r * pc },
		pcRange: func(r float64) (float64, float64) { return 0, math.Min(1, 1/r) },
	}
)

// scoreStat is a score statistic of a table at a null value.
type scoreStat func(t table, theta float64) float64

// exactP is the two-sided exact unconditional p-value of θ0 with the score statistic stat.
func (t table) exactP(stat scoreStat, line nullLine, theta float64) float64 {
	return t.exactPAtLeast(stat, line, theta, math.Inf(1))
}

// exactAccepts reports whether the exact p-value of θ0 is at least alpha; it stops at the first
// pair of rates whose tail probability reaches alpha.
func (t table) exactAccepts(stat scoreStat, line nullLine, theta, alpha float64) bool {
	return t.exactPAtLeast(stat, line, theta, alpha) >= alpha
}

// exactPAtLeast is exactP, except that it may return any value ≥ stop as soon as it finds one.
func (t table) exactPAtLeast(stat scoreStat, line nullLine, theta, stop float64) float64 {
	nc, nt := int(t.nc), int(t.nt)
	obs := math.Abs(stat(t, theta))
	if obs == 0 || math.IsNaN(obs) {
		return 1
	}
	// Tables whose statistic ties with the observed one count as "as extreme"; the tolerance
	// absorbs the rounding of two formulas for the same value.
	cut := obs * (1 - 1e-9)
	low, high := region(func(x, y int) float64 {
		return stat(table{xc: float64(x), nc: t.nc, xt: float64(y), nt: t.nt}, theta)
	}, nc, nt, cut)
	lo, hi := line.pcRange(theta)
	var buf probBuffers
	prob := func(pc float64) float64 { return buf.regionProb(low, high, nc, nt, pc, line.pt(theta, pc)) }
	return math.Min(1, supremum(prob, lo, hi, max(nc, nt), stop))
}

// region returns, for every control count x, the largest treatment count low[x] whose statistic
// is ≤ −cut and the smallest high[x] whose statistic is ≥ cut (−1 and nt+1 when there is none).
// The score statistic rises with the treatment count and falls with the control count, so both
// boundaries move up with x and one sweep over the table finds them.
func region(z func(x, y int) float64, nc, nt int, cut float64) (low, high []int) {
	low, high = make([]int, nc+1), make([]int, nc+1)
	a, b := -1, 0
	for x := 0; x <= nc; x++ {
		for a+1 <= nt && z(x, a+1) <= -cut {
			a++
		}
		for b <= nt && z(x, b) < cut {
			b++
		}
		low[x], high[x] = a, b
	}
	return low, high
}

// probBuffers are the arrays regionProb fills, kept across the calls of one p-value.
type probBuffers struct{ fx, fy, below, above []float64 }

// regionProb is the probability of the rejection region when control and treatment successes are binomial with rates pc and pt.
func (b *probBuffers) regionProb(low, high []int, nc, nt int, pc, pt float64) float64 {
	var xs, ys int
	xs, b.fx = binomialWindow(nc, pc, b.fx)
	ys, b.fy = binomialWindow(nt, pt, b.fy)
	// below[k] = P(Y ≤ ys+k−1) and above[k] = P(Y ≥ ys+k), each summed from its own end so
	// that a tail is never 1 minus something close to 1.
	m := len(b.fy)
	b.below = resize(b.below, m+1)
	b.above = resize(b.above, m+1)
	b.below[0], b.above[m] = 0, 0
	for k, f := range b.fy {
		b.below[k+1] = b.below[k] + f
	}
	for k := m - 1; k >= 0; k-- {
		b.above[k] = b.above[k+1] + b.fy[k]
	}
	var p float64
	for k, f := range b.fx {
		x := xs + k
		p += f * (b.below[clampIndex(low[x]-ys+1, m)] + b.above[clampIndex(high[x]-ys, m)])
	}
	return p
}

// resize returns s with length n, reusing its array when it is large enough.
func resize(s []float64, n int) []float64 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float64, n)
}

func clampIndex(i, n int) int { return max(0, min(n, i)) }

// binomialWindow returns the first count and the probabilities of Binomial(n, p) over the counts
// that hold all but a negligible share of its mass (7.5 standard deviations and six counts
// either side of the mode: what lies outside is below 10⁻¹³), computed from the mode outwards so that nothing underflows early.
func binomialWindow(n int, p float64, buf []float64) (first int, pmf []float64) {
	switch {
	case p <= 0:
		return 0, append(buf[:0], 1)
	case p >= 1:
		return n, append(buf[:0], 1)
	}
	mode := int(math.Floor(float64(n+1) * p))
	mode = min(max(mode, 0), n)
	w := int(7.5*math.Sqrt(float64(n)*p*(1-p))) + 6
	lo, hi := max(0, mode-w), min(n, mode+w)
	pmf = resize(buf, hi-lo+1)
	lg := func(k int) float64 { v, _ := math.Lgamma(float64(k) + 1); return v }
	pmf[mode-lo] = math.Exp(lg(n) - lg(mode) - lg(n-mode) + float64(mode)*math.Log(p) + float64(n-mode)*math.Log1p(-p))
	odds := p / (1 - p)
	for k := mode; k < hi; k++ {
		pmf[k+1-lo] = pmf[k-lo] * float64(n-k) / float64(k+1) * odds
	}
	for k := mode; k > lo; k-- {
		pmf[k-1-lo] = pmf[k-lo] * float64(k) / float64(n-k+1) / odds
	}
	return lo, pmf
}

// supremum returns the largest value of f(pc) for control rates pc in [lo, hi]. The tail
// probability of a rejection region changes on the scale of the standard error of the larger
// arm's rate, so f is evaluated on a grid even in arcsine-root scale, where that standard error
// is the same everywhere (half of it per step, at most 1,000 steps), and the three best grid
// points are refined by golden-section search between their neighbours.
//
// It returns early, with a value ≥ stop, as soon as it evaluates one.
func supremum(f func(float64) float64, lo, hi float64, nMax int, stop float64) float64 {
	if !(hi > lo) {
		return f(lo)
	}
	alo, ahi := math.Asin(math.Sqrt(lo)), math.Asin(math.Sqrt(hi))
	steps := int(math.Ceil((ahi - alo) / (0.5 / math.Sqrt(float64(nMax)))))
	steps = min(max(steps, 64), 1000)
	grid := make([]float64, steps+1)
	vals := make([]float64, steps+1)
	order := make([]int, steps+1)
	for k := range grid {
		s := math.Sin(alo + (ahi-alo)*float64(k)/float64(steps))
		grid[k] = math.Max(lo, math.Min(hi, s*s))
		vals[k], order[k] = f(grid[k]), k
		if vals[k] >= stop {
			return vals[k]
		}
	}
	sort.Slice(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	best := vals[order[0]]
	for _, i := range order[:3] {
		a, b := grid[max(0, i-1)], grid[min(steps, i+1)]
		best = math.Max(best, goldenMax(f, a, b))
	}
	return best
}

// goldenMax is the largest value golden-section search finds for f on [a, b].
func goldenMax(f func(float64) float64, a, b float64) float64 {
	const g = 0.6180339887498949
	c, d := b-g*(b-a), a+g*(b-a)
	fc, fd := f(c), f(d)
	for range 25 {
		if fc > fd {
			b, d, fd = d, c, fc
			c = b - g*(b-a)
			fc = f(c)
		} else {
			a, c, fc = c, d, fd
			d = a + g*(b-a)
			fd = f(d)
		}
	}
	return math.Max(fc, fd)
}
