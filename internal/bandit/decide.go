package bandit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/xsell/xsell/internal/experiments"
)

// Rules are an allocation's rules for turning the posteriors into weights.
type Rules struct {
	TopTwo        bool    // top-two Thompson sampling; false: plain Thompson sampling
	LeaderShare   float64 // top-two's β
	MinWeight     float64 // every arm's floor
	MinUnits      int     // fewest units every arm needs for an update
	LowerIsBetter bool    // the metric improves downwards (offer_cost, refund_rate)
	Draws         int     // posterior samples (Draws when 0)
}

// RulesOf reads the rules of a (normalised, valid) bandit allocation.
func RulesOf(a *experiments.Allocation, lowerIsBetter bool) Rules {
	r := Rules{TopTwo: a.Sampling == experiments.SamplingTopTwo, MinWeight: *a.MinWeight, MinUnits: a.MinUnits,
		LowerIsBetter: lowerIsBetter, Draws: Draws}
	if a.LeaderShare != nil {
		r.LeaderShare = *a.LeaderShare
	}
	return r
}

// ArmSummary is one arm's posterior and weight, as stored with an update and shown in history.
type ArmSummary struct {
	Variant string  `json:"variant"`
	Units   float64 `json:"units"`
	// Mean and SD are the posterior of the arm's metric (period-standardised), CI its 95%
	// credible interval.
	Mean float64    `json:"mean"`
	SD   float64    `json:"sd"`
	CI   [2]float64 `json:"ci"`
	// ChanceBest is the posterior chance that the arm is the best; Weight its share after the update.
	ChanceBest float64 `json:"chance_best"`
	Weight     float64 `json:"weight"`
}

// Decision is the outcome of one update: new weights, or a reason to hold the current ones.
type Decision struct {
	Weights []float64
	Arms    []ArmSummary
	// Hold says why the weights stay as they are; empty when Weights are new.
	Hold string
}

// Decide computes an update from each arm's estimates per period (periods[p][arm]): nothing
// moves until every arm has r.MinUnits units (the minimum data rule); then each arm's weight
// is its top-two (or plain) Thompson share, with the floor.
func Decide(variants []string, periods [][]Estimate, r Rules, rng *rand.Rand) (Decision, error) {
	k := len(variants)
	units := make([]float64, k)
	for _, p := range periods {
		if len(p) != k {
			return Decision{}, fmt.Errorf("a period holds %d arms, the experiment %d", len(p), k)
		}
		for a, e := range p {
			units[a] += e.N
		}
	}
	post := Posteriors(periods)
	if post == nil {
		post = make([]Posterior, k)
	}
	d := Decision{Arms: make([]ArmSummary, k)}
	for a := range d.Arms {
		d.Arms[a] = ArmSummary{Variant: variants[a], Units: units[a], Mean: post[a].Mean, SD: post[a].SD,
			CI: [2]float64{post[a].Mean - 1.959964*post[a].SD, post[a].Mean + 1.959964*post[a].SD}}
	}
	for a, n := range units {
		if n < float64(r.MinUnits) {
			d.Hold = fmt.Sprintf("not enough data: %s has %.0f of the %d exposed shoppers every arm needs before the weights move", variants[a], n, r.MinUnits)
			return d, nil
		}
	}
	draws := r.Draws
	if draws <= 0 {
		draws = Draws
	}
	pBest, pOthers := Chances(post, r.LowerIsBetter, draws, rng)
	w := pBest
	if r.TopTwo {
		w = TopTwo(pBest, pOthers, r.LeaderShare)
	}
	w, err := Floor(w, r.MinWeight)
	if err != nil {
		return Decision{}, err
	}
	for a := range d.Arms {
		d.Arms[a].ChanceBest, d.Arms[a].Weight = pBest[a], round(w[a])
	}
	d.Weights = make([]float64, k)
	for a := range w {
		d.Weights[a] = d.Arms[a].Weight
	}
	return d, nil
}

// round keeps six decimals of a weight: the stored weights are what assignment and SRM use, and
// a hundred-thousandth of traffic is below anything either can see.
func round(w float64) float64 { return math.Round(w*1e6) / 1e6 }
