package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/xsell/xsell/internal/stats"
)

// binomialTwoSided is the two-sided exact binomial test of k successes in n trials at rate ½:
// the probability of a split at least as uneven, summed over the table of Binomial(n, ½).
func binomialTwoSided(k, n int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	far := math.Abs(float64(k) - float64(n)/2)
	p := 0.0
	for i := 0; i <= n; i++ {
		if math.Abs(float64(i)-float64(n)/2) >= far-1e-9 {
			p += math.Exp(lg(n) - lg(i) - lg(n-i) - float64(n)*math.Ln2)
		}
	}
	return math.Min(1, p)
}

// TestCalibrationSkewedRevenueSmallArm is the scenario: A/A revenue with 95% zeros and
// log-normal baskets (σ = 1.5 on the log scale), 4,500 control units against 500 in treatment,
// run through the report as `analyze file` runs it (pooled 99.9th-percentile capping, the skew
// check, the test it picks, Holm). The false-positive rate must lie in [0.035, 0.065], and the
// false alarms must fall on both sides alike: each side's rate within [0.0125, 0.0375] (α/2
// give or take half) and the split not uneven by a two-sided exact binomial test at level 0.01.
// Welch's t on the same data, capped and uncapped, is recorded alongside.
func TestCalibrationSkewedRevenueSmallArm(t *testing.T) {
	t.Parallel()
	const runs, nc, nt, alpha = 2000, 4500, 500, 0.05
	r := rand.New(rand.NewPCG(41, 2026))
	opts := DefaultOptions
	var low, high, welchRaw, welchCapped, randomization int
	for range runs {
		f := &unitsFile{name: "aa.csv", columns: []string{"revenue"}, values: [][]float64{make([]float64, 0, nc+nt)}}
		var raw [2]stats.Moments
		for i := range nc + nt {
			v := "control"
			if i >= nc {
				v = "treat"
			}
			x := 0.0
			if r.Float64() < 0.05 {
				x = math.Round(3000 * math.Exp(1.5*r.NormFloat64()))
			}
			f.values[0] = append(f.values[0], x)
			f.variant = append(f.variant, v)
			raw[b2i(i >= nc)].Add(x)
		}
		in, err := f.input(FileOptions{Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		res := rep.Results[0]
		randomization += b2i(res.Test == stats.TestRandomization)
		if res.Significant {
			if res.Diff < 0 {
				low++
			} else {
				high++
			}
		}
		welchRaw += b2i(stats.CompareMeans(raw[0], raw[1], alpha).Significant())
		welchCapped += b2i(stats.CompareMeans(in.Data.Overall[0].Metrics[0].Moments, in.Data.Overall[1].Metrics[0].Moments, alpha).Significant())
	}
	fpr := float64(low+high) / runs
	split := binomialTwoSided(low, low+high)
	t.Logf("%d A/A runs: false-positive rate %.4f (treatment lower %.4f, higher %.4f; binomial p of the split %.3f), randomization test in %d runs; Welch's t uncapped %.4f, capped %.4f",
		runs, fpr, float64(low)/runs, float64(high)/runs, split, randomization, float64(welchRaw)/runs, float64(welchCapped)/runs)
	if fpr < 0.035 || fpr > 0.065 {
		t.Errorf("false-positive rate %.4f outside [0.035, 0.065]", fpr)
	}
	for side, n := range map[string]int{"lower": low, "higher": high} {
		if rate := float64(n) / runs; rate < 0.0125 || rate > 0.0375 {
			t.Errorf("false alarms with treatment %s: rate %.4f outside [0.0125, 0.0375]", side, rate)
		}
	}
	if split < 0.01 {
		t.Errorf("false alarms split %d lower / %d higher: binomial p %.4f < 0.01", low, high, split)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
