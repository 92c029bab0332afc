package analysis

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/xsell/xsell/internal/stats"
)

// Options are the analyst's choices that shape a report.
type Options struct {
	Alpha      float64          // two-sided significance level, 0.05 by default
	Correction stats.Correction // multiple-testing correction over every comparison in the report
	CUPED      bool             // adjust mean metrics by the pre-exposure covariate, θ pooled over arms
	Sequential bool             // always-valid confidence sequences instead of fixed-horizon intervals
}

// DefaultOptions are the methods SPEC §6 names as defaults.
var DefaultOptions = Options{Alpha: 0.05, Correction: stats.CorrectionHolm}

// Validate reports an option an analyst set wrongly.
func (o Options) Validate() error {
	if !(o.Alpha > 0 && o.Alpha < 0.5) {
		return fmt.Errorf("alpha must be between 0 and 0.5, got %v", o.Alpha)
	}
	if _, err := stats.ParseCorrection(string(o.Correction)); err != nil {
		return fmt.Errorf("correction must be holm, bh or none, got %q", o.Correction)
	}
	return nil
}

// VariantSpec is one arm of the analysed phase with the share of traffic it was meant to get.
type VariantSpec struct {
	Key    string
	Weight float64
}

// MetricSpec is a metric in a report, with its non-inferiority margin when it is a guardrail.
type MetricSpec struct {
	Metric
	Guardrail *stats.Margin
}

// Data is the sufficient statistics of a report: one Arm per variant, in the order of
// Input.Variants, overall, per segment and per day of first exposure.
type Data struct {
	Overall  []Arm
	Segments []SegmentData
	Days     []DayData
}

// SegmentData is the arms of the units whose segment attribute has one value.
type SegmentData struct {
	Value string
	Arms  []Arm
}

// DayData is the arms of the units first exposed on one (UTC) day.
type DayData struct {
	Day  time.Time
	Arms []Arm
}

// Input is everything a report is computed from.
type Input struct {
	Experiment       string
	Name             string
	Phase            int
	Control          int // index of the control in Variants
	Variants         []VariantSpec
	Metrics          []MetricSpec // the first is the primary metric
	SegmentAttribute string
	Data             Data
	Options          Options
}

// Report is the machine-readable report of SPEC §6; the keys the SPEC shows come first, the
// rest are extras an analyst or a chart needs.
type Report struct {
	Experiment string           `json:"experiment"`
	Phase      int              `json:"phase"`
	Alpha      float64          `json:"alpha"`
	Correction stats.Correction `json:"correction"`
	Control    string           `json:"control"`
	Variants   []VariantSummary `json:"variants"`
	SRM        SRM              `json:"srm"`
	Results    []Result         `json:"results"`

	Name                     string            `json:"name,omitempty"`
	PrimaryMetric            string            `json:"primary_metric,omitempty"`
	Method                   string            `json:"method"` // fixed_horizon or sequential
	CUPED                    bool              `json:"cuped"`
	Window                   *Window           `json:"window,omitempty"`
	ExcludedMultipleVariants int64             `json:"excluded_multiple_variants"`
	ExcludedUnknownVariant   int64             `json:"excluded_unknown_variant,omitempty"`
	Guardrails               []GuardrailResult `json:"guardrails,omitempty"`
	SegmentAttribute         string            `json:"segment_attribute,omitempty"`
	Segments                 []SegmentResult   `json:"segments,omitempty"`
	Cumulative               *Cumulative       `json:"cumulative,omitempty"`
	Warnings                 []string          `json:"warnings,omitempty"`
}

// VariantSummary is the exposed units of one variant against the share it should have had.
type VariantSummary struct {
	Key            string  `json:"key"`
	Units          int64   `json:"units"`
	ExpectedWeight float64 `json:"expected_weight"`
	ObservedShare  float64 `json:"observed_share"`
}

// SRM is the sample-ratio-mismatch check; absent numbers are null with a reason.
type SRM struct {
	Chi2     *float64 `json:"chi2"`
	PValue   *float64 `json:"p_value"`
	Mismatch bool     `json:"mismatch"`
	DF       float64  `json:"df,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// Result is one treatment compared with control on one metric. A number that could not be
// computed is null, never NaN, and Reason says why.
type Result struct {
	Metric         string      `json:"metric"`
	Kind           Kind        `json:"kind"`
	Variant        string      `json:"variant"`
	ControlUnits   int64       `json:"control_units"`
	TreatmentUnits int64       `json:"treatment_units"`
	ControlMean    float64     `json:"control_mean"`
	TreatmentMean  float64     `json:"treatment_mean"`
	Diff           float64     `json:"diff"`
	DiffCI         *[2]float64 `json:"diff_ci"`
	Lift           *float64    `json:"lift"`
	LiftCI         *[2]float64 `json:"lift_ci"`
	PValue         *float64    `json:"p_value"`
	PAdjusted      *float64    `json:"p_adjusted"`
	Significant    bool        `json:"significant"`
	Test           string      `json:"test"`

	// Verdict is better, worse or no_difference in the metric's good direction, or not_computed.
	Verdict           string   `json:"verdict"`
	Reason            string   `json:"reason,omitempty"`
	LowerIsBetter     bool     `json:"lower_is_better,omitempty"`
	ChanceToWin       *float64 `json:"chance_to_win,omitempty"`
	ExpectedLoss      *float64 `json:"expected_loss,omitempty"`
	CUPEDTheta        *float64 `json:"cuped_theta,omitempty"`
	VarianceReduction *float64 `json:"variance_reduction,omitempty"`
}

// GuardrailResult is a non-inferiority verdict: is harm beyond the margin ruled out?
type GuardrailResult struct {
	Metric   string   `json:"metric"`
	Variant  string   `json:"variant"`
	Margin   float64  `json:"margin"`
	Relative bool     `json:"relative"`
	Estimate *float64 `json:"estimate"`
	Bound    *float64 `json:"bound"`
	PValue   *float64 `json:"p_value"`
	// Verdict is pass (harm beyond the margin ruled out), fail, or not_computed.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// SegmentResult is the results among the units with one value of the segment attribute.
type SegmentResult struct {
	Value    string           `json:"value"`
	Variants []VariantSummary `json:"variants"`
	Results  []Result         `json:"results"`
}

// Window is the time span whose events a report counts.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ConversionWindow, when set, stops counting a shopper's events this long after first exposure.
	ConversionWindow string `json:"conversion_window,omitempty"`
}

// Cumulative is the lift of the primary metric among the shoppers first exposed up to each day.
type Cumulative struct {
	Metric string            `json:"metric"`
	Points []CumulativePoint `json:"points"`
}

// CumulativePoint is one variant's lift over control on one day; days without a lift are left out.
type CumulativePoint struct {
	Day     string     `json:"day"`
	Variant string     `json:"variant"`
	Units   int64      `json:"units"`
	Lift    float64    `json:"lift"`
	LiftCI  [2]float64 `json:"lift_ci"`
}

// ptr returns a pointer to a copy of v, for the optional numbers of a report.
func ptr[T any](v T) *T { return &v }

// Build computes the report: SRM, every treatment against control on every metric overall and
// per segment, the multiple-testing correction over all of those, guardrails and the
// cumulative lift of the primary metric.
func Build(in Input) (*Report, error) {
	if err := in.Options.Validate(); err != nil {
		return nil, err
	}
	if len(in.Variants) < 2 {
		return nil, errors.New("a report needs at least two variants")
	}
	if in.Control < 0 || in.Control >= len(in.Variants) {
		return nil, errors.New("control variant out of range")
	}
	if len(in.Data.Overall) != len(in.Variants) {
		return nil, errors.New("data holds a different number of variants than the experiment")
	}
	r := &Report{
		Experiment: in.Experiment, Name: in.Name, Phase: in.Phase, Alpha: in.Options.Alpha,
		Correction: in.Options.Correction, Control: in.Variants[in.Control].Key,
		Method: "fixed_horizon", CUPED: in.Options.CUPED, SegmentAttribute: in.SegmentAttribute,
		Results: []Result{},
	}
	if in.Options.Sequential {
		r.Method = "sequential"
	}
	if len(in.Metrics) > 0 {
		r.PrimaryMetric = in.Metrics[0].Name
	}
	r.Variants = summarise(in.Variants, in.Data.Overall)
	r.SRM = srm(in.Variants, in.Data.Overall)

	// Every comparison in the report, overall and per segment, is one family for the correction.
	var family []*Result
	r.Results = in.compareAll(in.Data.Overall)
	for i := range r.Results {
		family = append(family, &r.Results[i])
	}
	for _, s := range in.Data.Segments {
		r.Segments = append(r.Segments, SegmentResult{Value: s.Value, Variants: summarise(in.Variants, s.Arms), Results: in.compareAll(s.Arms)})
	}
	for si := range r.Segments {
		for i := range r.Segments[si].Results {
			family = append(family, &r.Segments[si].Results[i])
		}
	}
	if err := correct(family, in.Options); err != nil {
		return nil, err
	}
	r.Guardrails = in.guardrails()
	r.Cumulative = in.cumulative()
	return r, nil
}

// summarise lists each variant's units and share.
func summarise(vs []VariantSpec, arms []Arm) []VariantSummary {
	var total int64
	for _, a := range arms {
		total += a.Units
	}
	out := make([]VariantSummary, len(vs))
	for i, v := range vs {
		out[i] = VariantSummary{Key: v.Key, Units: arms[i].Units, ExpectedWeight: v.Weight}
		if total > 0 {
			out[i].ObservedShare = float64(arms[i].Units) / float64(total)
		}
	}
	return out
}

// srm tests the exposed counts against the weights.
func srm(vs []VariantSpec, arms []Arm) SRM {
	obs := make([]float64, len(vs))
	w := make([]float64, len(vs))
	for i := range vs {
		obs[i], w[i] = float64(arms[i].Units), vs[i].Weight
	}
	s := stats.SRM(obs, w)
	if !s.Valid {
		return SRM{Reason: s.Reason}
	}
	return SRM{Chi2: ptr(s.Chi2), PValue: ptr(s.PValue), Mismatch: s.Mismatch, DF: s.DF}
}

// compareAll compares every treatment with control on every metric, metric by metric.
func (in Input) compareAll(arms []Arm) []Result {
	out := []Result{}
	for mi, m := range in.Metrics {
		var fit *stats.CUPEDFit
		if m.Kind == Mean && in.Options.CUPED && arms[in.Control].Metrics[mi].HasCovariate {
			all := make([]stats.CUPEDMoments, len(arms))
			for i := range arms {
				all[i] = arms[i].Metrics[mi].CUPED
			}
			fit = ptr(stats.FitCUPED(all...))
		}
		for vi := range in.Variants {
			if vi == in.Control {
				continue
			}
			out = append(out, in.result(m, mi, fit, arms[in.Control], arms[vi], in.Variants[vi].Key))
		}
	}
	return out
}

// moments returns a metric's plain moments whichever field holds them.
func (s Suff) moments() stats.Moments {
	if s.HasCovariate {
		return s.CUPED.Metric()
	}
	return s.Moments
}

// fixedComparison runs the fixed-horizon test that fits the metric's kind.
func fixedComparison(m Metric, fit *stats.CUPEDFit, ctl, trt Suff, alpha float64) (stats.Comparison, *stats.CUPEDComparison) {
	switch {
	case m.Kind == Proportion:
		return stats.CompareProportions(ctl.Moments, trt.Moments, alpha), nil
	case m.Kind == Ratio:
		return stats.CompareRatios(ctl.Ratio, trt.Ratio, alpha), nil
	case fit != nil:
		cc := stats.CompareCUPED(ctl.CUPED, trt.CUPED, *fit, alpha)
		return cc.Comparison, &cc
	default:
		return stats.CompareMeans(ctl.moments(), trt.moments(), alpha), nil
	}
}

// result compares one treatment with control on one metric.
func (in Input) result(m MetricSpec, mi int, fit *stats.CUPEDFit, ctl, trt Arm, variant string) Result {
	fixed, cc := fixedComparison(m.Metric, fit, ctl.Metrics[mi], trt.Metrics[mi], in.Options.Alpha)
	c := fixed
	if in.Options.Sequential {
		c = stats.Sequential(fixed, stats.DefaultTuning)
	}
	res := Result{
		Metric: m.Name, Kind: m.Kind, Variant: variant, Test: c.Test,
		ControlUnits: ctl.Units, TreatmentUnits: trt.Units,
		ControlMean: c.ControlMean, TreatmentMean: c.TreatmentMean, Diff: c.Diff,
		LowerIsBetter: m.Direction == stats.LowerIsBetter, Verdict: "not_computed",
	}
	if !c.Valid {
		res.Reason = c.Reason
		return res
	}
	res.DiffCI, res.PValue = ptr(c.DiffCI), ptr(c.PValue)
	if c.Lift.Valid {
		res.Lift, res.LiftCI = ptr(c.Lift.Estimate), ptr(c.Lift.CI)
	} else {
		res.Reason = c.Lift.Reason
	}
	if b := stats.BayesLift(fixed, m.Direction); b.Valid {
		res.ChanceToWin, res.ExpectedLoss = ptr(b.ChanceToWin), ptr(b.ExpectedLoss)
	}
	if cc != nil {
		res.CUPEDTheta, res.VarianceReduction = ptr(cc.Theta), ptr(cc.VarianceReduction)
	}
	return res
}

// correct fills p_adjusted, significant and verdict over the whole family; absent p-values
// take no part, so they neither count as tests nor get an adjusted value.
func correct(family []*Result, o Options) error {
	var ps []float64
	var idx []int
	for i, r := range family {
		if r.PValue != nil {
			ps = append(ps, *r.PValue)
			idx = append(idx, i)
		}
	}
	adj, err := stats.AdjustPValues(ps, o.Correction)
	if err != nil {
		return err
	}
	for k, i := range idx {
		r := family[i]
		r.PAdjusted = ptr(adj[k])
		r.Significant = adj[k] < o.Alpha
		better := r.Diff > 0
		if r.LowerIsBetter {
			better = r.Diff < 0
		}
		switch {
		case !r.Significant:
			r.Verdict = "no_difference"
		case better:
			r.Verdict = "better"
		default:
			r.Verdict = "worse"
		}
	}
	return nil
}

// guardrails tests each guardrail metric for non-inferiority on the overall fixed-horizon comparison.
func (in Input) guardrails() []GuardrailResult {
	var out []GuardrailResult
	for mi, m := range in.Metrics {
		if m.Guardrail == nil {
			continue
		}
		for vi := range in.Variants {
			if vi == in.Control {
				continue
			}
			c, _ := fixedComparison(m.Metric, nil, in.Data.Overall[in.Control].Metrics[mi], in.Data.Overall[vi].Metrics[mi], in.Options.Alpha)
			ni := stats.NonInferiority(c, *m.Guardrail, m.Direction)
			g := GuardrailResult{Metric: m.Name, Variant: in.Variants[vi].Key, Margin: m.Guardrail.Value, Relative: m.Guardrail.Relative, Verdict: "not_computed"}
			if !ni.Valid {
				g.Reason = ni.Reason
			} else {
				g.Estimate, g.Bound, g.PValue = ptr(ni.Estimate), ptr(ni.Bound), ptr(ni.PValue)
				g.Verdict = "fail"
				if ni.NonInferior {
					g.Verdict = "pass"
				}
			}
			out = append(out, g)
		}
	}
	return out
}

// cumulative computes the primary metric's lift among the shoppers exposed up to each day.
func (in Input) cumulative() *Cumulative {
	if len(in.Data.Days) == 0 || len(in.Metrics) == 0 {
		return nil
	}
	m := in.Metrics[0]
	cum := &Cumulative{Metric: m.Name, Points: []CumulativePoint{}}
	acc := make([]Arm, len(in.Variants))
	for _, d := range in.Data.Days {
		for i := range acc {
			acc[i].add(d.Arms[i])
		}
		for vi := range in.Variants {
			if vi == in.Control {
				continue
			}
			c, _ := fixedComparison(m.Metric, nil, acc[in.Control].Metrics[0], acc[vi].Metrics[0], in.Options.Alpha)
			if in.Options.Sequential {
				c = stats.Sequential(c, stats.DefaultTuning)
			}
			if !c.Valid || !c.Lift.Valid || math.IsNaN(c.Lift.Estimate) {
				continue
			}
			cum.Points = append(cum.Points, CumulativePoint{
				Day: d.Day.Format(time.DateOnly), Variant: in.Variants[vi].Key,
				Units: acc[in.Control].Units + acc[vi].Units, Lift: c.Lift.Estimate, LiftCI: c.Lift.CI,
			})
		}
	}
	return cum
}
