package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Direction says which way a metric is better.
type Direction int

// Directions of a metric.
const (
	HigherIsBetter Direction = iota // e.g. conversion, revenue
	LowerIsBetter                   // e.g. refund_rate, offer_cost
)

// Effects a Bayesian result can be about.
const (
	OnLift = "lift" // relative to the control mean
	OnDiff = "diff" // in the metric's own unit
)

// Bayesian is the chance to beat control and the expected losses under a normal posterior of the effect.
type Bayesian struct {
	Valid        bool    // false when there is no effect estimate; see Reason
	Reason       string  // why Valid is false; empty otherwise
	On           string  // OnLift or OnDiff: the effect ExpectedLoss and RiskControl are measured in
	ChanceToWin  float64 // P(treatment better than control)
	ExpectedLoss float64 // E[max(0, −effect)] in the better direction: what shipping treatment risks
	RiskControl  float64 // E[max(0, effect)] in the better direction: what keeping control risks
}

// BayesNormal returns the chance to win and expected losses when the effect (e.g. the lift) has a normal posterior with this mean and standard deviation.
func BayesNormal(mean, sd float64, dir Direction) Bayesian {
	// With a flat prior the posterior of the effect is N(mean, sd²), GrowthBook's
	// Gaussian approximation. With m the mean in the better direction and z = m/sd:
	// chance to win Φ(z), expected loss E[max(0,−δ)] = sd·φ(z) − m·Φ(−z), and
	// risk of control E[max(0,δ)] = sd·φ(z) + m·Φ(z) (moments of a normal
	// truncated at 0). sd = 0 gives the point-mass limits.
	if !finite(mean, sd) || sd < 0 {
		return Bayesian{Reason: "effect mean and standard deviation must be finite, standard deviation not negative"}
	}
	if dir == LowerIsBetter {
		mean = -mean
	}
	if sd == 0 {
		b := Bayesian{Valid: true, ChanceToWin: 0.5, ExpectedLoss: math.Max(0, -mean), RiskControl: math.Max(0, mean)}
		if mean > 0 {
			b.ChanceToWin = 1
		} else if mean < 0 {
			b.ChanceToWin = 0
		}
		return b
	}
	z := mean / sd
	n := distuv.UnitNormal
	pdf := n.Prob(z)
	return Bayesian{
		Valid:        true,
		ChanceToWin:  n.CDF(z),
		ExpectedLoss: math.Max(0, sd*pdf-mean*n.CDF(-z)),
		RiskControl:  math.Max(0, sd*pdf+mean*n.CDF(z)),
	}
}

// BayesLift returns BayesNormal for the comparison's relative lift and its delta-method
// standard error, or for the difference and its standard error when no lift is reported (the
// control mean is not clearly above 0), so that the figures never take the sign of a lift over a
// negative or vanishing control mean.
func BayesLift(c Comparison, dir Direction) Bayesian {
	if !c.Valid {
		return Bayesian{Reason: c.Reason}
	}
	if !c.Lift.Valid {
		b := BayesNormal(c.Diff, c.DiffSE, dir)
		b.On = OnDiff
		return b
	}
	b := BayesNormal(c.Lift.Estimate, c.Lift.SE, dir)
	b.On = OnLift
	return b
}
