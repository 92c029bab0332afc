package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// Calibration by simulation with fixed seeds. Arms are simulated as sufficient
// statistics, never as stored rows: a batch of m normal units is drawn as its sum
// (N(0, m)) and its sum of squares (sum²/m plus an independent χ²(m−1)), a batch of
// Bernoulli units as one binomial draw.

const (
	aaExperiments = 2000
	aaAlpha       = 0.05
)

// normalBatch adds m standard normal units to mo, drawn as sufficient statistics.
func normalBatch(mo *Moments, m float64, r *rand.Rand, chi distuv.ChiSquared) {
	s := r.NormFloat64() * math.Sqrt(m)
	mo.N += m
	mo.Sum += s
	mo.SumSq += s*s/m + chi.Rand()
}

func checkFPR(t *testing.T, what string, rejections int) {
	t.Helper()
	fpr := float64(rejections) / aaExperiments
	t.Logf("%s: false-positive rate %.4f over %d A/A experiments", what, fpr, aaExperiments)
	if fpr < 0.04 || fpr > 0.06 {
		t.Errorf("%s: false-positive rate %.4f outside [0.04, 0.06]", what, fpr)
	}
}

func TestCalibrationFixedHorizon(t *testing.T) {
	src := rand.NewPCG(7, 2026)
	r := rand.New(src)

	// Proportions: 2,000 A/A experiments, 2,000 units per arm at 10 %.
	bin := distuv.Binomial{N: 2000, P: 0.1, Src: src}
	rej := 0
	for range aaExperiments {
		c := CompareProportions(Moments{N: 2000, Sum: bin.Rand()}, Moments{N: 2000, Sum: bin.Rand()}, aaAlpha)
		if c.Significant() {
			rej++
		}
	}
	checkFPR(t, "two-proportion z", rej)

	// Means: normal outcomes, unequal arm sizes.
	chiC, chiT := distuv.ChiSquared{K: 149, Src: src}, distuv.ChiSquared{K: 99, Src: src}
	rej = 0
	for range aaExperiments {
		var c, tr Moments
		normalBatch(&c, 150, r, chiC)
		normalBatch(&tr, 100, r, chiT)
		if CompareMeans(c, tr, aaAlpha).Significant() {
			rej++
		}
	}
	checkFPR(t, "Welch t", rej)

	// Ratio: revenue per order, 300 units per arm, 0–3 orders of exponential amounts.
	rej = 0
	for range aaExperiments {
		var arms [2]RatioMoments
		for a := range arms {
			for range 300 {
				orders := float64(r.IntN(4))
				rev := 0.0
				for range int(orders) {
					rev += 40 * r.ExpFloat64()
				}
				arms[a].Add(rev, orders)
			}
		}
		if CompareRatios(arms[0], arms[1], aaAlpha).Significant() {
			rej++
		}
	}
	checkFPR(t, "delta-method z", rej)

	// CUPED: correlated covariate (ρ = 0.6), θ pooled over the arms.
	rej = 0
	for range aaExperiments {
		var arms [2]CUPEDMoments
		for a := range arms {
			for range 200 {
				x := r.NormFloat64()
				arms[a].Add(0.6*x+0.8*r.NormFloat64(), x)
			}
		}
		if CompareCUPED(arms[0], arms[1], FitCUPED(arms[:]...), aaAlpha).Significant() {
			rej++
		}
	}
	checkFPR(t, "CUPED Welch t", rej)
}

func TestCalibrationSequentialPeeking(t *testing.T) {
	const looks, perLook = 30, 200 // units per arm added between looks
	src := rand.NewPCG(11, 2026)
	bin := distuv.Binomial{N: perLook, P: 0.1, Src: src}
	fixedRej, seqRej := 0, 0
	for range aaExperiments {
		var c, tr Moments
		fixedHit, seqHit := false, false
		for range looks {
			c.N += perLook
			c.Sum += bin.Rand()
			tr.N += perLook
			tr.Sum += bin.Rand()
			fixed := CompareProportions(c, tr, aaAlpha)
			fixedHit = fixedHit || fixed.Significant()
			seqHit = seqHit || Sequential(fixed, DefaultTuning).Significant()
		}
		if fixedHit {
			fixedRej++
		}
		if seqHit {
			seqRej++
		}
	}
	fixed, seq := float64(fixedRej)/aaExperiments, float64(seqRej)/aaExperiments
	t.Logf("30 looks: fixed-horizon z peeked FPR %.4f, confidence sequence FPR %.4f", fixed, seq)
	if seq > aaAlpha {
		t.Errorf("confidence sequence watched at %d looks: FPR %.4f > %.2f", looks, seq, aaAlpha)
	}
	if fixed <= 2*aaAlpha {
		t.Errorf("fixed-horizon test peeked %d times: FPR %.4f, expected it well above %.2f", looks, fixed, aaAlpha)
	}
}

func TestCalibrationCUPEDVarianceReduction(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 2026))
	for _, rho := range []float64{0.3, 0.7, 0.9} {
		var arms [3]CUPEDMoments
		for a := range arms {
			for range 20000 {
				x := 100 + 30*r.NormFloat64()
				y := 50 + 10*(rho*(x-100)/30+math.Sqrt(1-rho*rho)*r.NormFloat64()) + float64(a)
				arms[a].Add(y, x)
			}
		}
		fit := FitCUPED(arms[:]...)
		got := CompareCUPED(arms[0], arms[2], fit, 0.05)
		t.Logf("ρ = %.1f: variance reduction %.4f (ρ² = %.2f), θ = %.4f", rho, got.VarianceReduction, rho*rho, fit.Theta)
		if math.Abs(got.VarianceReduction-rho*rho) > 0.02 {
			t.Errorf("ρ = %.1f: variance reduction %.4f, want ρ² = %.2f ± 0.02", rho, got.VarianceReduction, rho*rho)
		}
		if wantTheta := rho * 10 / 30; math.Abs(fit.Theta-wantTheta) > 0.02 {
			t.Errorf("ρ = %.1f: θ = %.4f, want about %.4f", rho, fit.Theta, wantTheta)
		}
	}
}
