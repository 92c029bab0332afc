package stats

import (
	"math/rand/v2"
	"testing"
)

// reportInput is one experiment's sufficient statistics: 5 variants × the 7 metrics of SPEC §6.
type reportInput struct {
	units       []float64
	weights     []float64
	proportions [3][]Moments      // cross_sell_rate, conversion, refund_rate
	means       [3][]CUPEDMoments // revenue, offer_cost, net_revenue, with pre-period revenue
	ratio       []RatioMoments    // aov
}

func newReportInput() reportInput {
	const variants, n = 5, 10000
	r := rand.New(rand.NewPCG(1, 5))
	in := reportInput{weights: []float64{0.2, 0.2, 0.2, 0.2, 0.2}}
	for range variants {
		in.units = append(in.units, n)
	}
	for m := range in.proportions {
		for range variants {
			s := float64(900 + r.IntN(200))
			in.proportions[m] = append(in.proportions[m], Moments{N: n, Sum: s, SumSq: s})
		}
	}
	for m := range in.means {
		for range variants {
			var c CUPEDMoments
			for range 200 { // a few units suffice: only the sums matter to the benchmark
				x := 30 * r.ExpFloat64()
				c.Add(0.5*x+20*r.ExpFloat64(), x)
			}
			in.means[m] = append(in.means[m], c)
		}
	}
	for range variants {
		var rm RatioMoments
		for range 200 {
			o := float64(r.IntN(3))
			rm.Add(o*45*r.ExpFloat64(), o)
		}
		in.ratio = append(in.ratio, rm)
	}
	return in
}

// analyseReport computes every statistic of one report: SRM, 4 treatments × 7 metrics each with
// a fixed-horizon test (CUPED for the means), a confidence sequence, Bayes, non-inferiority
// on the guardrails, and Holm over all p-values.
func analyseReport(in reportInput) (int, []float64) {
	const alpha = 0.05
	srm := SRM(in.units, in.weights)
	ps := make([]float64, 0, 28)
	add := func(c Comparison, guard bool) {
		s := Sequential(c, DefaultTuning)
		_ = BayesLift(c, HigherIsBetter)
		if guard {
			_ = NonInferiority(c, Margin{Value: 0.02, Relative: true}, LowerIsBetter)
		}
		if c.Valid {
			ps = append(ps, c.PValue, s.PValue)
		}
	}
	for m, arms := range in.proportions {
		for v := 1; v < len(arms); v++ {
			add(CompareProportions(arms[0], arms[v], alpha), m == 2)
		}
	}
	for m, arms := range in.means {
		fit := FitCUPED(arms...)
		for v := 1; v < len(arms); v++ {
			add(CompareCUPED(arms[0], arms[v], fit, alpha).Comparison, m == 1)
		}
	}
	for v := 1; v < len(in.ratio); v++ {
		add(CompareRatios(in.ratio[0], in.ratio[v], alpha), false)
	}
	adj, _ := AdjustPValues(ps, CorrectionHolm)
	if !srm.Valid {
		return 0, nil
	}
	return len(ps), adj
}

func TestReportAnalysisCoversAllComparisons(t *testing.T) {
	n, adj := analyseReport(newReportInput())
	if n != 2*4*7 || len(adj) != n {
		t.Fatalf("%d p-values (fixed and sequential), want %d", n, 2*4*7)
	}
}

// BenchmarkReport: all statistics of a report with 5 variants × 7 metrics, CUPED and sequential.
func BenchmarkReport(b *testing.B) {
	in := newReportInput()
	b.ReportAllocs()
	for b.Loop() {
		analyseReport(in)
	}
}

// BenchmarkExactProportions: one comparison in the exact regime (fewer than 5 expected
// successes in an arm), p-value and both intervals, at three table sizes.
func BenchmarkExactProportions(b *testing.B) {
	for _, c := range []struct {
		name   string
		xc, nc float64
		xt, nt float64
	}{
		{"40_vs_40", 1, 40, 4, 40},
		{"500_vs_4500", 3, 500, 9, 4500},
		{"10000_vs_10000", 0, 10000, 3, 10000},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if got := CompareProportions(ProportionMoments(c.nc, c.xc), ProportionMoments(c.nt, c.xt), 0.05); got.Test != TestExact {
					b.Fatal(got.Test)
				}
			}
		})
	}
}
