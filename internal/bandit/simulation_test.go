package bandit

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/stats"
)

// The simulations of issue 21 (docs/bandits.md, "Simulations"): shoppers arrive period by
// period, each arm's offer truly changes conversion and costs a share of the order, and the
// bandit reweights after every period with Decide, as the server's updater does. Fixed seeds;
// the figures in docs/bandits.md come from `go test -run Simulation -v ./internal/bandit`, and
// XSELL_CALIBRATION_SCALE=10 runs ten times the runs and seeds against the same bounds.

// scaled multiplies a number of runs or seeds by $XSELL_CALIBRATION_SCALE (1 when unset).
func scaled(n int) int {
	k, err := strconv.Atoi(os.Getenv("XSELL_CALIBRATION_SCALE"))
	if err != nil || k < 1 {
		return n
	}
	return n * k
}

// armTruth is what an arm truly does to a shopper.
type armTruth struct {
	conversion float64 // chance of ordering
	discount   float64 // share of the order given away (the offer's cost)
}

// scenario is a simulated bandit experiment.
type scenario struct {
	arms      []armTruth
	periods   int       // the burn-in and one period after each update
	perPeriod int       // shoppers per period
	trend     []float64 // conversion multiplier per period (1 when nil)
	metric    string    // net_revenue or conversion
	rules     Rules
}

// Order values are log-normal: median EUR 25.00, σ 0.6.
const (
	orderMedian = 2500
	orderSigma  = 0.6
)

// outcome is one shopper's draw, shared by every policy run on the same seed (common random
// numbers), so that two policies differ only by where they send shoppers.
type outcome struct{ u, z, pick float64 }

// run is what one simulated experiment did.
type run struct {
	weights   [][]float64       // in force in each period
	chances   [][]float64       // P(best) per arm at each update that moved the weights
	periods   [][]stats.Moments // net revenue per period and arm
	conv      [][]stats.Moments // conversion per period and arm
	net       float64           // net revenue over all shoppers
	lastShare []float64         // the arms' share of the last period's shoppers
}

// simulate runs the scenario under the bandit (adaptive) or at fixed equal weights.
func simulate(sc scenario, seed uint64, adaptive bool) run {
	k := len(sc.arms)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	decide := rand.New(rand.NewPCG(seed, 0xdec1de))
	w := make([]float64, k)
	for i := range w {
		w[i] = 1 / float64(k)
	}
	var r run
	for p := range sc.periods {
		r.weights = append(r.weights, slices.Clone(w))
		net, conv := make([]stats.Moments, k), make([]stats.Moments, k)
		trend := 1.0
		if sc.trend != nil {
			trend = sc.trend[p]
		}
		for range sc.perPeriod {
			o := outcome{rng.Float64(), rng.NormFloat64(), rng.Float64()}
			a := pick(w, o.pick)
			value, converted := 0.0, o.u < sc.arms[a].conversion*trend
			if converted {
				order := math.Round(orderMedian * math.Exp(orderSigma*o.z))
				value = order - math.Round(order*sc.arms[a].discount)
			}
			net[a].Add(value)
			conv[a].Add(b2f(converted))
			r.net += value
		}
		r.periods, r.conv = append(r.periods, net), append(r.conv, conv)
		if p == sc.periods-1 {
			r.lastShare = shares(net)
			break
		}
		if !adaptive {
			continue
		}
		data := r.periods
		if sc.metric == "conversion" {
			data = r.conv
		}
		d, err := Decide(armNames(k), estimates(data), sc.rules, decide)
		if err != nil {
			panic(err)
		}
		if d.Hold == "" {
			w = d.Weights
			chances := make([]float64, k)
			for i, a := range d.Arms {
				chances[i] = a.ChanceBest
			}
			r.chances = append(r.chances, chances)
		}
	}
	return r
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pick is the arm whose slice of [0, 1) holds u, as bucketing places a hash in the ranges.
func pick(w []float64, u float64) int {
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

func shares(arms []stats.Moments) []float64 {
	var n float64
	for _, a := range arms {
		n += a.N
	}
	out := make([]float64, len(arms))
	for i, a := range arms {
		out[i] = a.N / n
	}
	return out
}

func armNames(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = string(rune('a' + i))
	}
	return out
}

func estimates(periods [][]stats.Moments) [][]Estimate {
	out := make([][]Estimate, len(periods))
	for p, arms := range periods {
		for _, m := range arms {
			out[p] = append(out[p], FromMoments(m))
		}
	}
	return out
}

// weightedReport is analysis's report of the primary metric, net revenue, by period (as a
// bandit's report is made) or pooled (as a fixed experiment's would be).
func weightedReport(t *testing.T, r run, byPeriod bool) analysis.Result {
	t.Helper()
	metric := analysis.StandardMetrics[slices.IndexFunc(analysis.StandardMetrics, func(m analysis.Metric) bool { return m.Name == "net_revenue" })]
	k := len(r.periods[0])
	in := analysis.Input{Experiment: "sim", Phase: 1, Options: analysis.DefaultOptions,
		Metrics: []analysis.MetricSpec{{Metric: metric}}, Data: analysis.Data{Overall: make([]analysis.Arm, k)}}
	for i := range k {
		in.Variants = append(in.Variants, analysis.VariantSpec{Key: armNames(k)[i], Weight: 1 / float64(k)})
	}
	for i := range k {
		var all stats.Moments
		arm := &in.Data.Overall[i]
		for _, arms := range r.periods {
			all.Merge(arms[i])
			if byPeriod {
				arm.Periods = append(arm.Periods, analysis.Arm{Units: int64(arms[i].N), Metrics: []analysis.Suff{{Moments: arms[i]}}})
			}
		}
		arm.Units, arm.Metrics = int64(all.N), []analysis.Suff{{Moments: all}}
	}
	if byPeriod {
		for p := range r.periods {
			in.Periods = append(in.Periods, analysis.PeriodSpec{Index: p, Weights: r.weights[p]})
		}
	}
	rep, err := analysis.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	return rep.Results[0]
}

var defaultRules = Rules{TopTwo: true, LeaderShare: 0.8, MinWeight: 0.01, MinUnits: 100}

// One arm is clearly better net of its cost: the bandit moves traffic to it and earns more
// than the fixed 1/k split on the same shoppers.
func TestSimulationClearWinner(t *testing.T) {
	sc := scenario{
		arms: []armTruth{
			{conversion: 0.10},                 // control: no offer
			{conversion: 0.11, discount: 0.10}, // a 10% bundle that barely sells more: worse net
			{conversion: 0.14, discount: 0.05}, // a 5% bundle that sells 40% more: the winner
		},
		periods: 8, perPeriod: 2000, metric: "net_revenue", rules: defaultRules,
	}
	var gain float64
	seeds := scaled(5)
	for seed := range uint64(seeds) {
		b, f := simulate(sc, seed, true), simulate(sc, seed, false)
		final := b.weights[len(b.weights)-1]
		t.Logf("seed %d: final weights %.3f, last period's shares %.3f; net revenue bandit %.0f vs fixed %.0f (%+.1f%%)",
			seed, final, b.lastShare, b.net/100, f.net/100, 100*(b.net/f.net-1))
		if final[2] < 0.70 {
			t.Errorf("seed %d: the winner ends with %.3f of the traffic, want ≥ 0.70", seed, final[2])
		}
		if !(b.net > f.net) {
			t.Errorf("seed %d: the bandit's net revenue %.0f does not beat the fixed split's %.0f", seed, b.net/100, f.net/100)
		}
		gain += b.net/f.net - 1
	}
	t.Logf("mean gain over the fixed split: %+.2f%%", 100*gain/float64(seeds))
}

// A/A with a trend: conversion climbs from 60% to 140% of its level over the periods while
// the bandit chases noise. Its weights stay within [0.2, 0.8], its chance-of-best is not
// overconfident, and the period-weighted analysis keeps its false-positive rate at alpha —
// where pooling the periods does not.
func TestSimulationAA(t *testing.T) {
	runs := scaled(2000)
	sc := scenario{
		arms:    []armTruth{{conversion: 0.10, discount: 0.05}, {conversion: 0.10, discount: 0.05}},
		periods: 6, perPeriod: 700, metric: "net_revenue",
		trend: []float64{0.6, 0.8, 1.0, 1.2, 1.4, 1.6},
		rules: Rules{TopTwo: true, LeaderShare: 0.8, MinWeight: 0.01, MinUnits: 100, Draws: 2000},
	}
	var inside, updates, sure int
	var weighted, pooled int
	for seed := range uint64(runs) {
		r := simulate(sc, 1000+seed, true)
		for _, w := range r.weights[1:] {
			updates++
			if w[0] >= 0.2 && w[0] <= 0.8 {
				inside++
			}
		}
		for _, c := range r.chances {
			if c[0] > 0.95 || c[0] < 0.05 {
				sure++
			}
		}
		if weightedReport(t, r, true).Significant {
			weighted++
		}
		if weightedReport(t, r, false).Significant {
			pooled++
		}
	}
	fpr, naive := float64(weighted)/float64(runs), float64(pooled)/float64(runs)
	in, overconfident := float64(inside)/float64(updates), float64(sure)/float64(updates)
	t.Logf("%d A/A runs: weights within [0.2, 0.8] in %.4f of %d updates; P(best) beyond 0.95 either way in %.4f; FPR by period %.4f, pooled %.4f",
		runs, in, updates, overconfident, fpr, naive)
	if in < 0.95 {
		t.Errorf("weights within [0.2, 0.8] in %.4f of updates, want most (≥ 0.95)", in)
	}
	// A calibrated posterior says "95% sure" of one of two equal arms in about 10% of looks.
	if overconfident < 0.05 || overconfident > 0.15 {
		t.Errorf("P(best) beyond 0.95 either way in %.4f of updates, want about 0.10", overconfident)
	}
	if fpr < 0.035 || fpr > 0.065 {
		t.Errorf("false-positive rate of the period-weighted analysis %.4f, want within [0.035, 0.065]", fpr)
	}
	if naive <= 0.065 {
		t.Errorf("pooled false-positive rate %.4f: the scenario should show the trap the weighting avoids", naive)
	}
}

// The arm that converts best gives away too much: a bandit on net revenue picks the one that
// earns most after its cost, where a bandit on conversion would pick the other.
func TestSimulationNetRevenueNotConversion(t *testing.T) {
	sc := scenario{
		arms: []armTruth{
			{conversion: 0.10},                  // control
			{conversion: 0.15, discount: 0.40},  // converts most, gives away 40% of each order
			{conversion: 0.125, discount: 0.04}, // converts less, costs little: best net
		},
		periods: 8, perPeriod: 1500, metric: "net_revenue", rules: defaultRules,
	}
	for seed := range uint64(scaled(3)) {
		net := simulate(sc, 100+seed, true)
		sc.metric = "conversion"
		conv := simulate(sc, 100+seed, true)
		sc.metric = "net_revenue"
		wn, wc := net.weights[len(net.weights)-1], conv.weights[len(conv.weights)-1]
		t.Logf("seed %d: final weights on net revenue %.3f, on conversion %.3f", seed, wn, wc)
		if best := argmaxOf(wn); best != 2 {
			t.Errorf("seed %d: the net-revenue bandit favours arm %d (%v), want arm 2", seed, best, wn)
		}
		if best := argmaxOf(wc); best != 1 {
			t.Errorf("seed %d: the conversion bandit favours arm %d (%v); the scenario should tell the metrics apart", seed, best, wc)
		}
	}
}

func argmaxOf(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
