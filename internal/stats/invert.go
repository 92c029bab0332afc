package stats

import "math"

// Confidence intervals by inverting a test: the interval is the set of parameter values θ the
// test does not reject. The bounds are found by bisection from the estimate outwards. The null
// value (0 for a difference, 1 for a ratio) is never bisected past on the wrong side: whether
// it is inside is decided by the comparison's own p-value, so the interval excludes the null
// exactly when p < alpha, whatever the rounding of the search.

// inverted is a test to invert: accept reports whether θ is not rejected.
type inverted struct {
	accept func(theta float64) bool
	// excess, when set, is a continuous function that is ≤ 0 exactly where accept holds (e.g.
	// |z(θ)| − q); the search then uses the Illinois variant of regula falsi (Dowell & Jarratt,
	// BIT 11, 1971), which needs a handful of evaluations where bisection needs dozens.
	excess   func(theta float64) float64
	est      float64 // the estimate, always accepted
	null     float64 // the value tested by the comparison's p-value
	nullIn   bool    // whether the comparison's p-value accepts the null
	lo, hi   float64 // the search range; a bound that reaches it is reported as lo or hi
	tol      float64 // width at which bisection stops
	maxSteps int
	// guessLo and guessHi, when set, are points expected just outside the interval: the search
	// tries them first and falls back to the whole range when they are accepted.
	guessLo, guessHi float64
}

// interval returns the lower and upper bounds of the accepted set around est.
func (v inverted) interval() [2]float64 {
	return [2]float64{v.bound(v.lo, v.guessLo), v.bound(v.hi, v.guessHi)}
}

// bound searches between est and the end of the range (lo or hi) for the edge of the accepted set.
func (v inverted) bound(end, guess float64) float64 {
	in, out := v.est, end // in is accepted; out is rejected or the end of the range
	if nullBetween(v.est, v.null, end) {
		if v.nullIn {
			in = v.null
		} else {
			out = v.null
		}
	}
	if out == end && guess != 0 && nullBetween(in, guess, end) {
		if v.accept(guess) {
			in = guess
		} else {
			out = guess
		}
	}
	if out == end && v.accept(end) {
		return end
	}
	if v.excess != nil {
		return v.illinois(in, out)
	}
	steps := v.maxSteps
	if steps == 0 {
		steps = 200
	}
	for range steps {
		if abs(in-out) <= v.tol {
			break
		}
		mid := in + (out-in)/2
		if mid == in || mid == out {
			break
		}
		if v.accept(mid) {
			in = mid
		} else {
			out = mid
		}
	}
	return in
}

// illinois narrows [in, out] (in accepted, out not) around the root of excess and returns the
// accepted end.
func (v inverted) illinois(in, out float64) float64 {
	fin, fout := v.excess(in), v.excess(out)
	if !(fin <= 0) || !(fout > 0) || math.IsInf(fout, 0) {
		fout = math.NaN() // not a usable bracket for interpolation: bisect
	}
	side := 0
	for range 200 {
		if abs(in-out) <= v.tol {
			break
		}
		next := in + (out-in)/2
		if !math.IsNaN(fout) {
			next = in - fin*(out-in)/(fout-fin)
			if !(next > math.Min(in, out) && next < math.Max(in, out)) {
				next = in + (out-in)/2
			}
		}
		if next == in || next == out {
			break
		}
		f := v.excess(next)
		if f <= 0 {
			in, fin = next, f
			if side == -1 && !math.IsNaN(fout) {
				fout /= 2
			}
			side = -1
		} else {
			out, fout = next, f
			if side == 1 {
				fin /= 2
			}
			side = 1
		}
	}
	return in
}

// nullBetween reports whether null lies strictly beyond est on the way to end.
func nullBetween(est, null, end float64) bool {
	if end < est {
		return null < est && null > end
	}
	return null > est && null < end
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
