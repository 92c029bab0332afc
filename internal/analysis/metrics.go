package analysis

import (
	"github.com/xsell/xsell/internal/stats"
)

// Kind is how a metric is tested: a share of units, a mean per unit, or a ratio of two sums.
type Kind string

// The kinds of metric of SPEC §6.
const (
	Proportion Kind = "proportion"
	Mean       Kind = "mean"
	Ratio      Kind = "ratio"
)

// Metric is a metric a report can test.
type Metric struct {
	Name      string
	Kind      Kind
	Direction stats.Direction
	Money     bool // values are minor units of the report's currency
	Capped    bool // values are capped at the pooled percentiles of Options.Cap (revenue-like means)
}

// StandardMetrics are the per-shopper metrics of SPEC §6, in the order a report lists them
// when the experiment names no other order. The money means are capped by default; aov is the
// capped revenue over orders.
var StandardMetrics = []Metric{
	{"cross_sell_rate", Proportion, stats.HigherIsBetter, false, false},
	{"conversion", Proportion, stats.HigherIsBetter, false, false},
	{"revenue", Mean, stats.HigherIsBetter, true, true},
	{"aov", Ratio, stats.HigherIsBetter, true, false},
	{"offer_cost", Mean, stats.LowerIsBetter, true, true},
	{"net_revenue", Mean, stats.HigherIsBetter, true, true},
	{"refund_rate", Proportion, stats.LowerIsBetter, false, false},
}

// standardMetric returns the standard metric with this name.
func standardMetric(name string) (Metric, bool) {
	for _, m := range StandardMetrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Suff is the sufficient statistics of one metric in one group of units. Which field is used
// depends on the metric's Kind: Moments for proportions and means without a covariate, CUPED
// for means with the pre-exposure covariate, RatioMoments for ratios.
type Suff struct {
	Moments stats.Moments
	CUPED   stats.CUPEDMoments
	Ratio   stats.RatioMoments
	// HasCovariate says CUPED holds the metric (and Moments is derived from it).
	HasCovariate bool
}

// add accumulates another group's statistics; sums of sufficient statistics are the statistics
// of the union, which is what lets one SQL result serve overall, segment and daily figures.
func (s *Suff) add(o Suff) {
	s.Moments.Merge(o.Moments)
	s.CUPED.N += o.CUPED.N
	s.CUPED.SumY += o.CUPED.SumY
	s.CUPED.SumYY += o.CUPED.SumYY
	s.CUPED.SumX += o.CUPED.SumX
	s.CUPED.SumXX += o.CUPED.SumXX
	s.CUPED.SumXY += o.CUPED.SumXY
	s.Ratio.N += o.Ratio.N
	s.Ratio.SumNum += o.Ratio.SumNum
	s.Ratio.SumNumSq += o.Ratio.SumNumSq
	s.Ratio.SumDen += o.Ratio.SumDen
	s.Ratio.SumDenSq += o.Ratio.SumDenSq
	s.Ratio.SumNumDen += o.Ratio.SumNumDen
	s.HasCovariate = s.HasCovariate || o.HasCovariate
}

// Arm is the statistics of one variant's units (or of a segment or day of them), one Suff per
// metric in the order of the metric list they were built for.
type Arm struct {
	Units   int64
	Metrics []Suff
	// Periods, for a bandit, splits the same units by the period of their first exposure
	// (periods.go); nil otherwise.
	Periods []Arm
}

// add accumulates another group of the same metrics.
func (a *Arm) add(o Arm) {
	a.Units += o.Units
	if len(a.Metrics) == 0 && len(o.Metrics) > 0 {
		a.Metrics = make([]Suff, len(o.Metrics))
	}
	for i := range o.Metrics {
		a.Metrics[i].add(o.Metrics[i])
	}
	if a.Periods == nil && o.Periods != nil {
		a.Periods = make([]Arm, len(o.Periods))
	}
	for i := range o.Periods {
		a.Periods[i].add(o.Periods[i])
	}
}
