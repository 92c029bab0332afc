package analysis

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/xsell/xsell/internal/stats"
)

// Options are the analyst's choices that shape a report. The zero value of Cap and MinUnits
// switches capping and the minimum-units rule off; DefaultOptions has both on.
type Options struct {
	Alpha      float64          // two-sided significance level, 0.05 by default
	Correction stats.Correction // multiple-testing correction over every comparison in the report
	CUPED      bool             // adjust mean metrics by the pre-exposure covariate, θ pooled over arms
	Sequential bool             // always-valid confidence sequences instead of fixed-horizon intervals
	// Cap is the quantile of the pooled values at which revenue-like means are capped (values
	// above it set to it, and below 1−Cap to that), 0.999 by default; 0 switches capping off.
	Cap float64
	// MinUnits is the fewest units each arm needs for a verdict; below it a comparison says
	// "too few units to test". 0 switches the rule off.
	MinUnits int
}

// DefaultCap is the default capping quantile of revenue-like means: the 99.9th percentile, as
// GrowthBook and Statsig cap by default.
const DefaultCap = 0.999

// DefaultMinUnits is the default fewest units per arm for a verdict.
const DefaultMinUnits = 30

// DefaultOptions are the methods SPEC §6 names as defaults, with capping and the minimum-units rule of docs/statistics.md.
var DefaultOptions = Options{Alpha: 0.05, Correction: stats.CorrectionHolm, Cap: DefaultCap, MinUnits: DefaultMinUnits}

// Validate reports an option an analyst set wrongly.
func (o Options) Validate() error {
	if !(o.Alpha > 0 && o.Alpha < 0.5) {
		return fmt.Errorf("alpha must be between 0 and 0.5, got %v", o.Alpha)
	}
	if _, err := stats.ParseCorrection(string(o.Correction)); err != nil {
		return fmt.Errorf("correction must be holm, bh or none, got %q", o.Correction)
	}
	if o.Cap != 0 && !(o.Cap > 0.5 && o.Cap < 1) {
		return fmt.Errorf("cap must be a quantile between 0.5 and 1 such as 0.999, or off, got %v", o.Cap)
	}
	if o.MinUnits < 0 {
		return fmt.Errorf("minimum units must not be negative, got %d", o.MinUnits)
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
	Currency         string // ISO 4217 code of the money metrics' minor units; "" when unknown
	Caps             []Cap  // the caps applied to the data, one per capped metric
	Excluded         int64  // units seen in two variants, left out
	// Periods are a bandit's periods of constant weights; the arms then carry their units by
	// period and every comparison is made within periods (periods.go). Nil for fixed weights.
	Periods []PeriodSpec
}

// Cap is the winsorising of one metric: every unit's value was held within [Lower, Upper], the
// pooled (1−Quantile) and Quantile percentiles of all units of the report.
type Cap struct {
	Metric   string  `json:"metric"`
	Quantile float64 `json:"quantile"`
	Lower    float64 `json:"lower"`
	Upper    float64 `json:"upper"`
	Capped   int64   `json:"capped_units"` // units whose value was changed
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

	Name          string `json:"name,omitempty"`
	PrimaryMetric string `json:"primary_metric,omitempty"`
	Method        string `json:"method"` // fixed_horizon or sequential
	CUPED         bool   `json:"cuped"`
	// Comparisons is the size of the family the correction runs over: every p-value in the report.
	Comparisons int `json:"comparisons"`
	// IntervalsAdjusted is false: diff_ci and lift_ci are (1−alpha) intervals of each comparison
	// on its own, not adjusted for multiplicity; p_adjusted and the verdicts are.
	IntervalsAdjusted bool `json:"intervals_adjusted"`
	// Currency is the ISO 4217 code whose minor units the money metrics are in (JSON keeps them as numbers).
	Currency string `json:"currency,omitempty"`
	// Cap is the capping quantile of revenue-like means (0: off); Caps the bounds applied.
	Cap      float64 `json:"cap"`
	Caps     []Cap   `json:"caps,omitempty"`
	MinUnits int     `json:"min_units"` // fewest units per arm for a verdict

	Window                   *Window           `json:"window,omitempty"`
	ExcludedMultipleVariants int64             `json:"excluded_multiple_variants"`
	ExcludedUnknownVariant   int64             `json:"excluded_unknown_variant,omitempty"`
	Guardrails               []GuardrailResult `json:"guardrails,omitempty"`
	SegmentAttribute         string            `json:"segment_attribute,omitempty"`
	Segments                 []SegmentResult   `json:"segments,omitempty"`
	Cumulative               *Cumulative       `json:"cumulative,omitempty"`
	// Constrained marks the stretches of the window in which an offer budget was spent and
	// its variants served the control's experience (docs/offers.md).
	Constrained []Constraint `json:"constrained,omitempty"`
	// Source says whether the figures came from the rollups or from events (nil for analyze
	// file, which reads neither).
	Source *DataSource `json:"data_source,omitempty"`
	// Bandit, for a bandit's phase, lists its periods and how its results were computed.
	Bandit *BanditSection `json:"bandit,omitempty"`
	// Holdout, for `analyze holdout`, says which holdout was compared and what the figures
	// mean (holdout.go).
	Holdout *HoldoutSection `json:"holdout,omitempty"`
	// Warnings are sentences for the reader, in the order they were found; any part of the
	// analysis may append one.
	Warnings []string `json:"warnings,omitempty"`
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

	// Verdict is better, worse or no_difference in the metric's good direction, too_few_units,
	// or not_computed (Reason says why).
	Verdict       string `json:"verdict"`
	Reason        string `json:"reason,omitempty"`
	LiftReason    string `json:"lift_reason,omitempty"` // why lift is null
	LowerIsBetter bool   `json:"lower_is_better,omitempty"`
	// Currency, on money metrics, is the ISO 4217 code whose minor units the means, diff and
	// diff_ci are in.
	Currency string `json:"currency,omitempty"`
	// ChanceToWin and ExpectedLoss are about the lift, or about the difference (in the metric's
	// unit) when no lift is reported; BayesOn says which.
	ChanceToWin       *float64 `json:"chance_to_win,omitempty"`
	ExpectedLoss      *float64 `json:"expected_loss,omitempty"`
	BayesOn           string   `json:"bayes_on,omitempty"`
	CUPEDTheta        *float64 `json:"cuped_theta,omitempty"`
	VarianceReduction *float64 `json:"variance_reduction,omitempty"`
}

// Verdicts of a Result.
const (
	VerdictBetter       = "better"
	VerdictWorse        = "worse"
	VerdictNoDifference = "no_difference"
	VerdictTooFewUnits  = "too_few_units"
	VerdictNotComputed  = "not_computed"
)

// GuardrailResult is a non-inferiority verdict: is harm beyond the margin ruled out?
type GuardrailResult struct {
	Metric   string  `json:"metric"`
	Variant  string  `json:"variant"`
	Margin   float64 `json:"margin"`
	Relative bool    `json:"relative"`
	// Estimate and Bound are a lift when TestedOn is "lift", else a difference in the metric's unit.
	TestedOn string   `json:"tested_on,omitempty"`
	Estimate *float64 `json:"estimate"`
	Bound    *float64 `json:"bound"`
	PValue   *float64 `json:"p_value"`
	// Verdict is pass (harm beyond the margin ruled out), fail, or not_computed.
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason,omitempty"`
	Note     string `json:"note,omitempty"`
	Currency string `json:"currency,omitempty"` // on money metrics tested on the difference
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

// Cumulative is the primary metric among the shoppers first exposed up to each day, with
// always-valid confidence sequences (whatever the report's method), since a chart over days is
// looked at day after day.
type Cumulative struct {
	Metric   string            `json:"metric"`
	Currency string            `json:"currency,omitempty"` // of diff and diff_cs on a money metric
	Points   []CumulativePoint `json:"points"`
}

// CumulativePoint is one variant against control on one day; days before both arms reach the
// minimum units, or whose sequence cannot be computed, are left out.
type CumulativePoint struct {
	Day     string      `json:"day"`
	Variant string      `json:"variant"`
	Units   int64       `json:"units"`
	Diff    float64     `json:"diff"`
	DiffCS  [2]float64  `json:"diff_cs"`
	Lift    *float64    `json:"lift"`    // null while the control mean is not clearly above 0
	LiftCS  *[2]float64 `json:"lift_cs"` // the lift's confidence sequence
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
		Results: []Result{}, Currency: in.Currency, Cap: in.Options.Cap, Caps: in.Caps,
		MinUnits: in.Options.MinUnits, ExcludedMultipleVariants: in.Excluded,
	}
	if in.Options.Sequential {
		r.Method = "sequential"
	}
	if len(in.Metrics) > 0 {
		r.PrimaryMetric = in.Metrics[0].Name
	}
	r.Variants = summarise(in.Variants, in.Data.Overall)
	r.SRM = srm(in.Variants, in.Data.Overall)
	if in.Periods != nil {
		in.banditReport(r)
	}

	// Every comparison in the report, overall and per segment, is one family for the correction.
	var family []*Result
	var warnings []string
	r.Results, warnings = in.compareAll(in.Data.Overall, true)
	r.Warnings = append(r.Warnings, warnings...)
	for i := range r.Results {
		family = append(family, &r.Results[i])
	}
	for _, s := range in.Data.Segments {
		results, _ := in.compareAll(s.Arms, false)
		r.Segments = append(r.Segments, SegmentResult{Value: s.Value, Variants: summarise(in.Variants, s.Arms), Results: results})
	}
	for si := range r.Segments {
		for i := range r.Segments[si].Results {
			family = append(family, &r.Segments[si].Results[i])
		}
	}
	n, err := correct(family, in.Options)
	if err != nil {
		return nil, err
	}
	r.Comparisons = n
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

// compareAll compares every treatment with control on every metric, metric by metric; for the
// overall arms it also returns a warning for each comparison of a skewed mean.
func (in Input) compareAll(arms []Arm, overall bool) ([]Result, []string) {
	out := []Result{}
	var warnings []string
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
			res, skew := in.result(m, mi, fit, arms[in.Control], arms[vi], in.Variants[vi].Key)
			out = append(out, res)
			if overall && m.Kind == Mean {
				if w := skewWarning(res, in.Variants[in.Control].Key, skew); w != "" {
					warnings = append(warnings, w)
				}
			}
		}
	}
	return out, warnings
}

// skewWarning says when an arm is small for the skew of a mean metric, or "".
func skewWarning(r Result, control string, s stats.Skew) string {
	if !s.FewNonZero() && !s.TooSkewed() {
		return ""
	}
	msg := fmt.Sprintf("%s, %s vs %s: ", r.Metric, r.Variant, control)
	if s.FewNonZero() {
		msg += fmt.Sprintf("%s non-zero values in %s and %s in %s (fewer than %d in an arm), skewness %.3g",
			strconv.FormatFloat(s.ControlNonZero, 'f', -1, 64), control, strconv.FormatFloat(s.TreatmentNonZero, 'f', -1, 64), r.Variant, stats.MinNonZero, s.Skewness)
	} else {
		msg += fmt.Sprintf("skewness %.3g is large for arms of %d and %d units", s.Skewness, r.ControlUnits, r.TreatmentUnits)
	}
	switch {
	case r.Test == stats.TestStratified:
		msg += "; it is tested within periods with a skewness correction"
	case r.Test == stats.TestRandomization:
		msg += fmt.Sprintf("; the difference is too skewed for Welch's t (skewness %.2g), so it is tested with the randomization test with a skewness correction", s.Lambda)
	case s.TooSkewed():
		msg += fmt.Sprintf("; the difference's own skewness is %.2g, so its normal approximation is rough", s.Lambda)
	default:
		msg += "; a few large values can move this result"
	}
	return msg
}

// moments returns a metric's plain moments.
func (s Suff) moments() stats.Moments {
	if s.Moments.N == 0 && s.HasCovariate {
		return s.CUPED.Metric()
	}
	return s.Moments
}

// comparison runs the test that fits the metric's kind and the report's method. A skewed
// mean in arms of unequal size goes to the randomization test (fixed horizon, no CUPED).
func (in Input) comparison(m Metric, fit *stats.CUPEDFit, ctl, trt Suff, sequential bool) (stats.Comparison, *stats.CUPEDComparison, stats.Skew) {
	alpha := in.Options.Alpha
	seq := func(c stats.Comparison) stats.Comparison {
		if sequential {
			return stats.Sequential(c, stats.DefaultTuning)
		}
		return c
	}
	switch {
	case m.Kind == Proportion && sequential:
		return stats.SequentialProportions(ctl.Moments, trt.Moments, alpha, stats.DefaultTuning), nil, stats.Skew{}
	case m.Kind == Proportion:
		return stats.CompareProportions(ctl.Moments, trt.Moments, alpha), nil, stats.Skew{}
	case m.Kind == Ratio:
		return seq(stats.CompareRatios(ctl.Ratio, trt.Ratio, alpha)), nil, stats.Skew{}
	}
	skew := stats.SkewOf(ctl.moments(), trt.moments())
	switch {
	case fit != nil:
		cc := stats.CompareCUPED(ctl.CUPED, trt.CUPED, *fit, alpha)
		cc.Comparison = seq(cc.Comparison)
		return cc.Comparison, &cc, skew
	case skew.TooSkewed() && !sequential:
		return stats.CompareMeansRandomization(ctl.moments(), trt.moments(), alpha), nil, skew
	}
	return seq(stats.CompareMeans(ctl.moments(), trt.moments(), alpha)), nil, skew
}

// tooFew reports why two arms are too small for a verdict under the minimum-units rule, or "".
func (in Input) tooFew(ctl, trt Arm, control, variant string) string {
	min := int64(in.Options.MinUnits)
	if min == 0 || ctl.Units >= min && trt.Units >= min {
		return ""
	}
	return fmt.Sprintf("too few units to test: %s has %d and %s %d; a verdict needs at least %d in each arm",
		control, ctl.Units, variant, trt.Units, min)
}

// result compares one treatment with control on one metric.
func (in Input) result(m MetricSpec, mi int, fit *stats.CUPEDFit, ctl, trt Arm, variant string) (Result, stats.Skew) {
	c, cc, skew := in.compareArms(m.Metric, mi, fit, ctl, trt, in.Options.Sequential)
	res := Result{
		Metric: m.Name, Kind: m.Kind, Variant: variant, Test: c.Test,
		ControlUnits: ctl.Units, TreatmentUnits: trt.Units,
		ControlMean: c.ControlMean, TreatmentMean: c.TreatmentMean, Diff: c.Diff,
		LowerIsBetter: m.Direction == stats.LowerIsBetter, Verdict: VerdictNotComputed,
	}
	if m.Money {
		res.Currency = in.Currency
	}
	if why := in.tooFew(ctl, trt, in.Variants[in.Control].Key, variant); why != "" {
		res.Verdict, res.Reason = VerdictTooFewUnits, why
		return res, skew
	}
	if !c.Valid {
		res.Reason = c.Reason
		return res, skew
	}
	res.DiffCI, res.PValue = ptr(c.DiffCI), ptr(c.PValue)
	if c.Lift.Valid {
		res.Lift, res.LiftCI = ptr(c.Lift.Estimate), ptr(c.Lift.CI)
	} else {
		res.LiftReason = c.Lift.Reason
	}
	if b := stats.BayesLift(c, m.Direction); b.Valid {
		res.ChanceToWin, res.ExpectedLoss, res.BayesOn = ptr(b.ChanceToWin), ptr(b.ExpectedLoss), b.On
	}
	if cc != nil {
		res.CUPEDTheta, res.VarianceReduction = ptr(cc.Theta), ptr(cc.VarianceReduction)
	}
	return res, skew
}

// correct fills p_adjusted, significant and verdict over the whole family and returns its size;
// absent p-values take no part, so they neither count as tests nor get an adjusted value.
func correct(family []*Result, o Options) (int, error) {
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
		return 0, err
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
			r.Verdict = VerdictNoDifference
		case better:
			r.Verdict = VerdictBetter
		default:
			r.Verdict = VerdictWorse
		}
	}
	return len(ps), nil
}

// guardrails tests each guardrail metric for non-inferiority on the overall fixed-horizon comparison.
func (in Input) guardrails() []GuardrailResult {
	var out []GuardrailResult
	for mi, m := range in.Metrics {
		if m.Guardrail == nil {
			continue
		}
		ctl := in.Data.Overall[in.Control]
		for vi := range in.Variants {
			if vi == in.Control {
				continue
			}
			trt := in.Data.Overall[vi]
			g := GuardrailResult{Metric: m.Name, Variant: in.Variants[vi].Key, Margin: m.Guardrail.Value, Relative: m.Guardrail.Relative, Verdict: VerdictNotComputed}
			if why := in.tooFew(ctl, trt, in.Variants[in.Control].Key, g.Variant); why != "" {
				g.Reason = why
				out = append(out, g)
				continue
			}
			c, _, _ := in.compareArms(m.Metric, mi, nil, ctl, trt, false)
			ni := stats.NonInferiority(c, *m.Guardrail, m.Direction)
			if !ni.Valid {
				g.Reason = ni.Reason
			} else {
				g.Estimate, g.Bound, g.PValue, g.Note = ptr(ni.Estimate), ptr(ni.Bound), ptr(ni.PValue), ni.Note
				g.TestedOn = stats.OnDiff
				if ni.Relative {
					g.TestedOn = stats.OnLift
				} else if m.Money {
					g.Currency = in.Currency
				}
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

// cumulative computes the primary metric's confidence sequences among the shoppers exposed up to each day.
func (in Input) cumulative() *Cumulative {
	// A bandit's within-period comparisons have no confidence sequence to draw day by day.
	if len(in.Data.Days) == 0 || len(in.Metrics) == 0 || in.Periods != nil {
		return nil
	}
	m := in.Metrics[0]
	cum := &Cumulative{Metric: m.Name, Points: []CumulativePoint{}}
	if m.Money {
		cum.Currency = in.Currency
	}
	acc := make([]Arm, len(in.Variants))
	for _, d := range in.Data.Days {
		for i := range acc {
			acc[i].add(d.Arms[i])
		}
		for vi := range in.Variants {
			if vi == in.Control || in.tooFew(acc[in.Control], acc[vi], "", "") != "" {
				continue
			}
			c, _, _ := in.comparison(m.Metric, nil, acc[in.Control].Metrics[0], acc[vi].Metrics[0], true)
			if !c.Valid {
				continue
			}
			pt := CumulativePoint{
				Day: d.Day.Format(time.DateOnly), Variant: in.Variants[vi].Key,
				Units: acc[in.Control].Units + acc[vi].Units, Diff: c.Diff, DiffCS: c.DiffCI,
			}
			if c.Lift.Valid {
				pt.Lift, pt.LiftCS = ptr(c.Lift.Estimate), ptr(c.Lift.CI)
			}
			cum.Points = append(cum.Points, pt)
		}
	}
	return cum
}
