package stats

import (
	"math"
	"strings"
	"testing"
)

// splits calls f with every way of choosing k of n indices (as a membership mask).
func splits(n, k int, f func(in []bool)) {
	in := make([]bool, n)
	var rec func(start, left int)
	rec = func(start, left int) {
		if left == 0 {
			f(in)
			return
		}
		for i := start; i <= n-left; i++ {
			in[i] = true
			rec(i+1, left-1)
			in[i] = false
		}
	}
	rec(0, k)
}

func TestRandomizationCumulantsByEnumeration(t *testing.T) {
	// Every re-randomisation of ten units into arms of 6 and 4, enumerated: the mean, variance
	// and third central moment of the difference of means must be those permute computes from
	// the pooled sums alone.
	ctl := []float64{0, 0, 3, 0, 7, 1}
	trt := []float64{0, 12, 0, 2}
	for _, tr := range []struct{ shift, scale float64 }{{0, 1}, {1.5, 1}, {0, 2.5}, {-2, 0.5}} {
		var c, tm Moments
		pooled := append([]float64{}, ctl...)
		for _, x := range ctl {
			c.Add(x)
		}
		for _, y := range trt {
			tm.Add(y)
			pooled = append(pooled, (y-tr.shift)/tr.scale)
		}
		var diffs []float64
		splits(len(pooled), len(trt), func(in []bool) {
			var st, sc float64
			for i, v := range pooled {
				if in[i] {
					st += v
				} else {
					sc += v
				}
			}
			diffs = append(diffs, st/float64(len(trt))-sc/float64(len(ctl)))
		})
		var m, m2, m3 float64
		for _, d := range diffs {
			m += d
		}
		m /= float64(len(diffs))
		for _, d := range diffs {
			m2 += (d - m) * (d - m)
			m3 += (d - m) * (d - m) * (d - m)
		}
		m2 /= float64(len(diffs))
		m3 /= float64(len(diffs))
		p := permute(c, tm, tr.shift, tr.scale)
		near(t, "mean over re-randomisations", m, 0, 1, 1e-12)
		near(t, "variance over re-randomisations", p.variance, m2, 0, 1e-12)
		near(t, "third cumulant over re-randomisations", p.k3, m3, 0, 1e-10)
	}
}

func TestCornishFisherReference(t *testing.T) {
	for _, w := range loadIndependent(t).CornishFisher {
		near(t, "Cornish–Fisher lower tail", cornishFisherP(w.Z, w.Lambda), w.Lower, 0, 1e-12)
	}
	// No skewness: the normal tail.
	near(t, "Cornish–Fisher at λ = 0", cornishFisherP(-1.959963984540054, 0), 0.025, 0, 1e-12)
}

func TestSkewCheck(t *testing.T) {
	var c, tr Moments
	for i := range 4500 {
		c.Add(float64(i%3) * 10)
	}
	for i := range 500 {
		tr.Add(float64(i%3) * 10)
	}
	if s := SkewOf(c, tr); !s.Valid || math.Abs(s.Skewness) > 1e-3 || s.TooSkewed() || s.FewNonZero() {
		t.Errorf("symmetric values: %+v", s)
	}
	// One value in fifty is 1,000, the rest 0: skewness ≈ 7; with 500 against 4,500 units the
	// difference is skewed beyond Welch's reach, and the small arm has only 10 non-zero values.
	c, tr = Moments{}, Moments{}
	for i := range 4500 {
		c.Add(float64(b2i(i%50 == 0)) * 1000)
	}
	for i := range 500 {
		tr.Add(float64(b2i(i%50 == 0)) * 1000)
	}
	s := SkewOf(c, tr)
	if !s.Valid || s.Skewness < 6.5 || !s.TooSkewed() || !s.FewNonZero() || s.TreatmentNonZero != 10 {
		t.Errorf("skewed values: %+v", s)
	}
	// An arm of zeros only (offer cost in control) has an exact mean: not "few non-zero values".
	if s := SkewOf(Moments{N: 4500}, tr); s.FewNonZero() != true || s.ControlNonZero != 0 {
		t.Errorf("zeros against 10 non-zero: %+v", s)
	}
	var many Moments
	for i := range 500 {
		many.Add(float64(i%3) * 10)
	}
	if s := SkewOf(Moments{N: 4500}, many); s.FewNonZero() {
		t.Errorf("zeros against 333 non-zero values flagged: %+v", s)
	}
	// The same arms at equal sizes: the skewness of the two means cancels in their difference.
	if s := SkewOf(c, c); s.Lambda != 0 || s.TooSkewed() {
		t.Errorf("equal arms: %+v", s)
	}
	got := CompareMeansRandomization(c, tr, 0.05)
	if !got.Valid || got.Test != TestRandomization || got.Diff != 0 || got.Significant() {
		t.Errorf("identical arms: %+v", got)
	}
	if got := CompareMeansRandomization(Moments{N: 1}, tr, 0.05); got.Valid || !strings.Contains(got.Reason, "single unit") {
		t.Errorf("one unit: %+v", got)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
