package bandit

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/xsell/xsell/internal/stats"
)

// chanceBestByQuadrature is P(arm i is best) for independent normal arms, integrated
// numerically: ∫ φi(x) Πj≠i Φj(x) dx — a route independent of the sampling under test.
func chanceBestByQuadrature(post []Posterior, i int) float64 {
	f := func(x float64) float64 {
		p := distuv.Normal{Mu: post[i].Mean, Sigma: post[i].SD}.Prob(x)
		for j, q := range post {
			if j != i {
				p *= distuv.Normal{Mu: q.Mean, Sigma: q.SD}.CDF(x)
			}
		}
		return p
	}
	lo, hi := post[i].Mean-12*post[i].SD, post[i].Mean+12*post[i].SD
	return quad.Fixed(f, lo, hi, 2000, nil, 0)
}

func TestChancesOfBeingBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	two := []Posterior{{Mean: 10, SD: 1}, {Mean: 11, SD: 1.5}}
	pBest, _ := Chances(two, false, Draws, rng)
	// Two arms: P(second best) = Φ((μ2 − μ1)/√(σ1² + σ2²)).
	want := distuv.UnitNormal.CDF(1 / math.Sqrt(1+2.25))
	if math.Abs(pBest[1]-want) > 0.015 {
		t.Errorf("two arms: P(best) = %.4f, want %.4f ± 0.015 (sampling error of %d draws)", pBest[1], want, Draws)
	}
	three := []Posterior{{Mean: 0.10, SD: 0.01}, {Mean: 0.11, SD: 0.012}, {Mean: 0.105, SD: 0.02}}
	pBest, pOthers := Chances(three, false, Draws, rng)
	for i := range three {
		if want := chanceBestByQuadrature(three, i); math.Abs(pBest[i]-want) > 0.015 {
			t.Errorf("three arms: P(arm %d best) = %.4f, want %.4f", i, pBest[i], want)
		}
	}
	// Best among the others, leaving arm 1 out, is a two-arm race between arms 0 and 2.
	if want := chanceBestByQuadrature([]Posterior{three[0], three[2]}, 1); math.Abs(pOthers[1][2]-want) > 0.015 {
		t.Errorf("P(arm 2 best without arm 1) = %.4f, want %.4f", pOthers[1][2], want)
	}
	// Lower is better: the order reverses.
	low, _ := Chances(two, true, Draws, rng)
	if math.Abs(low[0]-want2(two)) > 0.015 {
		t.Errorf("lower is better: P(first best) = %.4f, want %.4f", low[0], want2(two))
	}
}

func want2(two []Posterior) float64 {
	return distuv.UnitNormal.CDF((two[1].Mean - two[0].Mean) / math.Hypot(two[0].SD, two[1].SD))
}

func TestTiesAreBrokenAtRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	flat := []Posterior{{Mean: 0}, {Mean: 0}, {Mean: 0}}
	pBest, _ := Chances(flat, false, 30_000, rng)
	for i, p := range pBest {
		if math.Abs(p-1.0/3) > 0.02 {
			t.Errorf("arm %d best in %.3f of draws among three equal certain arms, want 1/3", i, p)
		}
	}
}

func TestTopTwoShares(t *testing.T) {
	// A certain leader: it gets beta, the others split the rest by their chances behind it.
	pBest := []float64{0, 1, 0}
	pOthers := [][]float64{{0, 1, 0}, {0.25, 0, 0.75}, {0, 1, 0}}
	got := TopTwo(pBest, pOthers, 0.8)
	for i, want := range []float64{0.05, 0.8, 0.15} {
		if math.Abs(got[i]-want) > 1e-12 {
			t.Errorf("share of arm %d = %v, want %v", i, got[i], want)
		}
	}
	// Two arms: 1/2 + (2β − 1)(π − 1/2), whatever π.
	for _, pi := range []float64{0, 0.3, 0.5, 0.9, 1} {
		got := TopTwo([]float64{pi, 1 - pi}, [][]float64{{0, 1}, {1, 0}}, 0.8)
		if want := 0.5 + 0.6*(pi-0.5); math.Abs(got[0]-want) > 1e-12 || math.Abs(got[0]+got[1]-1) > 1e-12 {
			t.Errorf("two arms at π = %v: %v, want %v for the first", pi, got, want)
		}
	}
}

func TestFloor(t *testing.T) {
	got, err := Floor([]float64{0.9, 0.1, 0}, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// 0.05 + 0.85·w: 0.815, 0.135, 0.05.
	for i, want := range []float64{0.815, 0.135, 0.05} {
		if math.Abs(got[i]-want) > 1e-12 {
			t.Errorf("floored weight %d = %v, want %v", i, got[i], want)
		}
	}
	if _, err := Floor([]float64{0.5, 0.5}, 0.5); err == nil {
		t.Error("a floor of 1/k for each of k arms should be refused")
	}
}

// The posterior standardises arms to the same mix of periods: equal arms within each period
// are equal, however differently the traffic was split, while pooling would favour the arm
// that had more traffic in the better period.
func TestPosteriorsStandardiseOverPeriods(t *testing.T) {
	periods := [][]Estimate{
		{{N: 900, Mean: 10, VarMean: 0.1}, {N: 100, Mean: 10, VarMean: 0.9}}, // a slow period, mostly arm 0
		{{N: 100, Mean: 20, VarMean: 0.9}, {N: 900, Mean: 20, VarMean: 0.1}}, // a good one, mostly arm 1
	}
	post := Posteriors(periods)
	// ω = 1000/2000 each: both arms 0.5·10 + 0.5·20 = 15; variances 0.25·0.1 + 0.25·0.9 = 0.25.
	for a, p := range post {
		if math.Abs(p.Mean-15) > 1e-12 || math.Abs(p.SD-0.5) > 1e-12 {
			t.Errorf("arm %d: posterior %+v, want mean 15 sd 0.5", a, p)
		}
	}
	pooled := pool(periods, 2)
	if pooled[0].Mean != 11 || pooled[1].Mean != 19 {
		t.Fatalf("pooled means %v and %v should show the trap", pooled[0].Mean, pooled[1].Mean)
	}
	// A period in which an arm has a single unit takes no part.
	withThin := append(periods, []Estimate{{N: 1, Mean: 1000}, {N: 50, Mean: 20, VarMean: 1}})
	if got := Posteriors(withThin); got[0] != post[0] {
		t.Errorf("a period with one unit in an arm changed the posterior: %+v", got[0])
	}
	// No spread yet in an arm (0 conversions of 50): it borrows the period's unit variance.
	zero := Posteriors([][]Estimate{{{N: 50, Mean: 0}, {N: 50, Mean: 0.1, VarMean: 0.09 / 50}}})
	if !(zero[0].SD > 0) {
		t.Errorf("an arm without conversions is certain: %+v", zero[0])
	}
}

func TestDecideHoldsUntilEveryArmHasItsUnits(t *testing.T) {
	rules := Rules{TopTwo: true, LeaderShare: 0.8, MinWeight: 0.01, MinUnits: 100}
	var c, tr stats.Moments
	for i := range 150 {
		c.Add(float64(i % 2))
		if i < 99 {
			tr.Add(1)
		}
	}
	d, err := Decide([]string{"control", "bundle"}, [][]Estimate{{FromMoments(c), FromMoments(tr)}}, rules, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if d.Weights != nil || !strings.Contains(d.Hold, "bundle has 99 of the 100") {
		t.Fatalf("weights %v, hold %q", d.Weights, d.Hold)
	}
	tr.Add(1)
	d, err = Decide([]string{"control", "bundle"}, [][]Estimate{{FromMoments(c), FromMoments(tr)}}, rules, rand.New(rand.NewPCG(1, 1)))
	if err != nil || d.Hold != "" {
		t.Fatalf("with 100 units: %v %q", err, d.Hold)
	}
	// The clearly better arm (100% against 50%) takes the leader's share, less the floors.
	if want := 0.01 + 0.98*0.8; math.Abs(d.Weights[1]-want) > 1e-6 || math.Abs(d.Weights[0]+d.Weights[1]-1) > 1e-6 {
		t.Errorf("weights %v, want %v for bundle", d.Weights, want)
	}
}
