package analysis

import (
	"errors"
	"fmt"

	"github.com/xsell/xsell/internal/stats"
)

// PlanRequest is the question of `analyze plan`: how many units per variant to detect an MDE
// with the power promised, in the report that will be read.
type PlanRequest struct {
	Baseline     float64 // control rate, or control mean when StdDev is set
	MDE          float64 // absolute, or relative to Baseline when Relative
	Relative     bool
	StdDev       float64 // per-unit standard deviation in control; set for a mean metric, 0 for a rate
	Variants     int     // arms including control
	Alpha        float64
	Power        float64
	DailyTraffic float64 // eligible units a day; 0: no days estimate

	// Metrics is how many metrics the report tests (0: the seven standard metrics of
	// `analyze report`; for `analyze file`, the metric columns and ratios), Segments how many
	// values the segment attribute has (0: no segments). With Correction they give the number
	// of p-values the report corrects over.
	Metrics    int
	Segments   int
	Correction stats.Correction
	// StdDevTreatment is the treatment's per-unit standard deviation when it differs (0: as
	// control, or grown with the effect when Multiplicative).
	StdDevTreatment float64
	Multiplicative  bool // the effect scales each value (e.g. +5% per basket) rather than adding to it
	Sequential      bool // the report will be read with --sequential
}

// PlanResult is the answer of `analyze plan`.
type PlanResult struct {
	Kind               Kind    `json:"kind"`
	Baseline           float64 `json:"baseline"`
	StdDev             float64 `json:"std_dev,omitempty"`
	StdDevTreatment    float64 `json:"std_dev_treatment,omitempty"`
	Multiplicative     bool    `json:"multiplicative,omitempty"`
	MDEAbsolute        float64 `json:"mde_absolute"`
	MDERelative        float64 `json:"mde_relative,omitempty"`
	Variants           int     `json:"variants"`
	Metrics            int     `json:"metrics"`
	Segments           int     `json:"segments,omitempty"`
	Correction         string  `json:"correction"`
	Comparisons        int     `json:"comparisons"` // p-values the report corrects over
	Alpha              float64 `json:"alpha"`
	AlphaPerComparison float64 `json:"alpha_per_comparison"`
	Power              float64 `json:"power"`
	Method             string  `json:"method"` // fixed_horizon or sequential
	PerVariant         int64   `json:"per_variant"`
	Total              int64   `json:"total"`
	DailyTraffic       float64 `json:"daily_traffic,omitempty"`
	Days               *int    `json:"days,omitempty"`
}

// Comparisons is the number of p-values a report with these metrics, variants and segments
// corrects over: every metric for every treatment, overall and in each segment; 1 without a
// correction.
func (req PlanRequest) Comparisons() int {
	if req.Correction == stats.CorrectionNone {
		return 1
	}
	return req.metrics() * (req.Variants - 1) * (1 + req.Segments)
}

func (req PlanRequest) metrics() int {
	if req.Metrics == 0 {
		return len(StandardMetrics)
	}
	return req.Metrics
}

// Plan sizes an experiment for the report that will read it: a two-proportion z-test for a
// rate, a test of means when StdDev is given, at alpha split over every comparison the report
// corrects over, or the confidence sequence when Sequential.
func Plan(req PlanRequest) (PlanResult, error) {
	if req.Correction == "" {
		req.Correction = stats.CorrectionHolm
	}
	if _, err := stats.ParseCorrection(string(req.Correction)); err != nil {
		return PlanResult{}, err
	}
	if req.Metrics < 0 || req.Segments < 0 || req.Variants < 2 {
		return PlanResult{}, fmt.Errorf("metrics and segments must not be negative and variants at least 2, got %d, %d and %d", req.Metrics, req.Segments, req.Variants)
	}
	in := stats.PlanInput{Baseline: req.Baseline, StdDev: req.StdDev, MDE: req.MDE, RelativeMDE: req.Relative,
		Alpha: req.Alpha, Power: req.Power, Variants: req.Variants, Comparisons: req.Comparisons(),
		StdDevTreatment: req.StdDevTreatment, Multiplicative: req.Multiplicative, Sequential: req.Sequential}
	kind := Proportion
	var plan stats.Plan
	var err error
	if req.StdDev != 0 {
		kind = Mean
		plan, err = stats.SampleSizeMean(in)
	} else {
		if req.StdDevTreatment != 0 || req.Multiplicative {
			return PlanResult{}, errors.New("a rate's spread follows from the rate: --stddev-treatment and --multiplicative are for means (with --stddev)")
		}
		plan, err = stats.SampleSizeProportion(in)
	}
	if err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{
		Kind: kind, Baseline: req.Baseline, StdDev: req.StdDev, StdDevTreatment: req.StdDevTreatment,
		Multiplicative: req.Multiplicative, MDEAbsolute: plan.AbsoluteMDE, Variants: req.Variants,
		Metrics: req.metrics(), Segments: req.Segments, Correction: string(req.Correction), Comparisons: in.Comparisons,
		Alpha: req.Alpha, AlphaPerComparison: plan.AlphaPerComparison, Power: req.Power, Method: "fixed_horizon",
		PerVariant: plan.PerVariant, Total: plan.Total,
	}
	if req.Sequential {
		res.Method = "sequential"
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
