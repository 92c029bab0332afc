package analysis

import (
	"errors"

	"github.com/xsell/xsell/internal/stats"
)

// PlanRequest is the question of `analyze plan`: how many units per variant to detect an MDE.
type PlanRequest struct {
	Baseline     float64 // control rate, or control mean when StdDev is set
	MDE          float64 // absolute, or relative to Baseline when Relative
	Relative     bool
	StdDev       float64 // per-unit standard deviation; set for a mean metric, 0 for a rate
	Variants     int     // arms including control
	Alpha        float64
	Power        float64
	DailyTraffic float64 // eligible units a day; 0: no days estimate
}

// PlanResult is the answer of `analyze plan`.
type PlanResult struct {
	Kind               Kind    `json:"kind"`
	Baseline           float64 `json:"baseline"`
	StdDev             float64 `json:"std_dev,omitempty"`
	MDEAbsolute        float64 `json:"mde_absolute"`
	MDERelative        float64 `json:"mde_relative,omitempty"`
	Variants           int     `json:"variants"`
	Alpha              float64 `json:"alpha"`
	AlphaPerComparison float64 `json:"alpha_per_comparison"`
	Power              float64 `json:"power"`
	PerVariant         int64   `json:"per_variant"`
	Total              int64   `json:"total"`
	DailyTraffic       float64 `json:"daily_traffic,omitempty"`
	Days               *int    `json:"days,omitempty"`
}

// Plan sizes an experiment: a two-proportion z-test for a rate, a test of means when StdDev
// is given, with alpha split over the treatments (Bonferroni, a safe bound for Holm).
func Plan(req PlanRequest) (PlanResult, error) {
	in := stats.PlanInput{Baseline: req.Baseline, StdDev: req.StdDev, MDE: req.MDE, RelativeMDE: req.Relative,
		Alpha: req.Alpha, Power: req.Power, Variants: req.Variants}
	kind := Proportion
	plan, err := stats.Plan{}, error(nil)
	if req.StdDev != 0 {
		kind = Mean
		plan, err = stats.SampleSizeMean(in)
	} else {
		plan, err = stats.SampleSizeProportion(in)
	}
	if err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{
		Kind: kind, Baseline: req.Baseline, StdDev: req.StdDev, MDEAbsolute: plan.AbsoluteMDE,
		Variants: req.Variants, Alpha: req.Alpha, AlphaPerComparison: plan.AlphaPerComparison,
		Power: req.Power, PerVariant: plan.PerVariant, Total: plan.Total,
	}
	if req.Baseline != 0 {
		res.MDERelative = plan.AbsoluteMDE / req.Baseline
	}
	if req.DailyTraffic < 0 {
		return PlanResult{}, errors.New("daily traffic must be positive")
	}
	if req.DailyTraffic > 0 {
		days, err := stats.DaysNeeded(plan.PerVariant, req.Variants, req.DailyTraffic)
		if err != nil {
			return PlanResult{}, err
		}
		res.DailyTraffic, res.Days = req.DailyTraffic, &days
	}
	return res, nil
}
