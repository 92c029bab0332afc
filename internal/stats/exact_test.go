package stats

import (
	"math"
	"testing"
)

// Published values of the z-pooled exact unconditional test (Barnard's test with the score
// statistic): R package Barnard, barnard.test(n1, n2, n3, n4, dp = 1e-6, pooled = TRUE), as
// recorded in scipy's test suite (scipy/stats/tests/test_hypotests.py, TestBarnardExact.
// test_precise). The table [[a, b], [c, d]] holds two samples in its columns: a successes out
// of a + c, and b out of b + d.
var barnardPublished = []struct {
	table   [2][2]float64
	stat, p float64
}{
	{[2][2]float64{{43, 40}, {10, 39}}, 3.555406779643, 0.000362832367},
	{[2][2]float64{{100, 2}, {1000, 5}}, -1.776382925679, 0.135126970878},
	{[2][2]float64{{2, 7}, {8, 2}}, -2.518474945157, 0.019210815430},
	{[2][2]float64{{5, 1}, {10, 10}}, 1.449486150679, 0.156277546306},
	{[2][2]float64{{5, 15}, {20, 20}}, -1.851640199545, 0.066363501421},
	{[2][2]float64{{5, 16}, {20, 25}}, -1.609639949352, 0.116984852192},
	{[2][2]float64{{10, 5}, {10, 1}}, -1.449486150679, 0.177536588915},
	{[2][2]float64{{5, 0}, {1, 4}}, 2.581988897472, 0.013671875000},
	{[2][2]float64{{0, 1}, {3, 2}}, -1.095445115010, 0.509667991877},
	{[2][2]float64{{0, 2}, {6, 4}}, -1.549193338483, 0.197019618792},
}

func TestExactUnconditionalPublished(t *testing.T) {
	for _, c := range barnardPublished {
		// The first column is the treatment, so the statistic has the published sign.
		tb := table{xt: c.table[0][0], nt: c.table[0][0] + c.table[1][0], xc: c.table[0][1], nc: c.table[0][1] + c.table[1][1]}
		near(t, "z-pooled statistic", tb.scoreDiff(0), c.stat, 0, 1e-10)
		near(t, "exact p", tb.exactP(table.scoreDiff, lineDiff, 0), c.p, 0, 1e-8)
	}
}

func TestExactUnconditionalIndependent(t *testing.T) {
	// Non-zero null values (what the intervals invert): testdata/independent.py enumerates every
	// table and scans the nuisance rate on an even grid of 4,000 points.
	ind := loadIndependent(t)
	if len(ind.Exact) == 0 {
		t.Fatal("no exact cases")
	}
	for _, w := range ind.Exact {
		tb := table{xc: w.XC, nc: w.NC, xt: w.XT, nt: w.NT}
		var got float64
		if w.Kind == "diff" {
			got = tb.exactP(table.scoreDiff, lineDiff, w.Theta)
		} else {
			got = tb.exactP(table.scoreRatio, lineRatio, w.Theta)
		}
		// The grid of the reference resolves the nuisance maximum to about 1e-7.
		near(t, w.Kind+" exact p", got, w.PValue, 0, 1e-6)
	}
}

func TestSmallCountsUseTheExactTest(t *testing.T) {
	p := ProportionMoments
	// The cases: 0/2 vs 2/2 was "beats control" with the z-test (p = 0.046); Fisher's
	// exact p is 0.33 and the exact unconditional one 0.125 (worked by hand: only the tables 0/2
	// vs 2/2 and 2/2 vs 0/2 are as extreme, with probability 2·π²(1−π)² ≤ 1/8 at π = ½).
	c := CompareProportions(p(2, 0), p(2, 2), 0.05)
	if c.Test != TestExact || math.Abs(c.PValue-0.125) > 1e-9 || c.Significant() {
		t.Errorf("0/2 vs 2/2: %s p = %v, want the exact test with p = 0.125", c.Test, c.PValue)
	}
	// 0/100 vs 5/1000 printed a Wald interval that excluded 0 next to p = 0.48.
	c = CompareProportions(p(100, 0), p(1000, 5), 0.05)
	if c.Test != TestExact || c.Significant() || c.DiffCI[0] > 0 || c.DiffCI[1] < 0 {
		t.Errorf("0/100 vs 5/1000: %s p = %v, CI %v; want an exact test whose interval holds 0", c.Test, c.PValue, c.DiffCI)
	}
	// Enough expected successes: the z-test.
	if c := CompareProportions(p(1000, 100), p(1000, 120), 0.05); c.Test != TestZ {
		t.Errorf("100/1000 vs 120/1000 used %s", c.Test)
	}
}

func TestExactIntervalsInvertTheTest(t *testing.T) {
	for _, tb := range []table{{1, 12, 5, 13}, {0, 20, 4, 25}, {1, 30, 6, 28}, {0, 100, 5, 1000}, {2, 60, 0, 55}} {
		c := CompareProportions(ProportionMoments(tb.nc, tb.xc), ProportionMoments(tb.nt, tb.xt), 0.05)
		if c.Test != TestExact {
			t.Fatalf("%v: %s", tb, c.Test)
		}
		excludes := c.DiffCI[0] > 0 || c.DiffCI[1] < 0
		if excludes != c.Significant() {
			t.Errorf("%v: interval %v with p = %v", tb, c.DiffCI, c.PValue)
		}
		// Each bound is accepted and a point just beyond it (by the search's tolerance, 10⁻⁵ of the
		// interval's width) is not, unless it is the range's end.
		for i, b := range c.DiffCI {
			step := 2e-5 * (c.DiffCI[1] - c.DiffCI[0]) * float64(2*i-1)
			if tb.exactP(table.scoreDiff, lineDiff, b) < 0.05 {
				t.Errorf("%v: bound %v is rejected", tb, b)
			}
			if out := b + step; math.Abs(out) < 1 && tb.exactP(table.scoreDiff, lineDiff, out) >= 0.05 {
				t.Errorf("%v: %v, just beyond bound %v, is accepted", tb, out, b)
			}
		}
		if c.Lift.Valid && (c.Lift.CI[0] > 0 || c.Lift.CI[1] < 0) != c.Significant() {
			t.Errorf("%v: lift interval %v with p = %v", tb, c.Lift.CI, c.PValue)
		}
	}
}
