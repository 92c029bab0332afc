package analysis

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/stats"
)

// A bandit's weights change within a phase (internal/bandit). Pooling its shoppers over the
// periods of constant weights would compare arms that drew their traffic from different times:
// with a trend over time (weekends, a campaign, novelty wearing off), the arm that got more
// traffic when everyone spent more looks better than it is, and SPEC §6's SRM against one set
// of weights would always fail. So a bandit's report compares the arms within each period and
// combines the periods (stats.CompareStratified: Mantel–Haenszel weights, Mantel's
// randomization test), and checks each period's counts against that period's weights.

// PeriodSpec is one period of a bandit's phase: from Start (the phase's start, or the update
// that set its weights) to End, with Weights in the order of the phase's variants.
type PeriodSpec struct {
	Index      int
	Start, End time.Time
	Weights    []float64
}

// BanditSection is what a bandit's report adds: its periods, each with its own SRM check, and
// how to read the results.
type BanditSection struct {
	// Metric is what the bandit optimised.
	Metric    string         `json:"metric,omitempty"`
	Estimator string         `json:"estimator"`
	Note      string         `json:"note"`
	Periods   []PeriodResult `json:"periods"`
}

// PeriodResult is one period's weights, exposed units and SRM check.
type PeriodResult struct {
	Period  int                `json:"period"`
	Start   time.Time          `json:"start"`
	End     time.Time          `json:"end"`
	Weights map[string]float64 `json:"weights"`
	Units   map[string]int64   `json:"units"`
	SRM     SRM                `json:"srm"`
}

// BanditEstimator names the method of a bandit's results.
const BanditEstimator = "within-period comparisons combined with Mantel–Haenszel weights (stratified randomization test)"

// BanditNote is what a bandit's report says about its estimates.
const BanditNote = "This experiment is a bandit: its weights changed between periods, so each comparison is made " +
	"within every period of constant weights and the periods are combined. The estimates are for deciding which " +
	"arm to keep, not unbiased effect sizes: the bandit sent more traffic to arms while they looked good, which " +
	"leaves their estimates (and the others') biased in ways this correction does not remove."

// periods returns the periods of a bandit's phase, or nil when the phase has fixed weights: a
// phase is a bandit's when it has periods after the burn-in, or is the current phase of a
// bandit experiment.
func (s *Source) periods(ctx context.Context, e *experiments.Experiment, phase int, start, end time.Time, variants []experiments.Variant) ([]PeriodSpec, error) {
	ps, err := experiments.Periods(ctx, s.db, e.Key, phase, start, variants)
	if err != nil {
		return nil, err
	}
	if len(ps) == 1 && !(e.Allocation.IsBandit() && phase == e.Phase) {
		return nil, nil
	}
	if len(ps) > 1 && ps[1].Start.Before(start) {
		// Traffic back-dated before the phase started (a simulation, a back-fill): the burn-in
		// began with its first exposure.
		var first sql.NullTime
		if err := s.db.GetContext(ctx, &first, `SELECT min(first_seen) FROM exposures WHERE experiment_key = $1 AND phase = $2`, e.Key, phase); err != nil {
			return nil, fmt.Errorf("reading the first exposure of %s: %w", e.Key, err)
		}
		if first.Valid && first.Time.Before(ps[0].Start) {
			ps[0].Start = first.Time
		}
	}
	out := make([]PeriodSpec, 0, len(ps))
	for i, p := range ps {
		if p.Start.After(end) {
			break // an update after the end of the window has no shoppers in it
		}
		spec := PeriodSpec{Index: p.Index, Start: p.Start.UTC(), End: end.UTC(), Weights: p.Weights}
		if i+1 < len(ps) && ps[i+1].Start.Before(end) {
			spec.End = ps[i+1].Start.UTC()
		}
		out = append(out, spec)
	}
	return out, nil
}

// periodStarts are the starts of the periods after the first, for the aggregate's $9; the
// position of a first exposure among them is its period.
func periodStarts(ps []PeriodSpec) pq.StringArray {
	out := pq.StringArray{}
	for _, p := range ps[min(1, len(ps)):] {
		out = append(out, p.Start.Format(time.RFC3339Nano))
	}
	return out
}

// inPeriod files a group of units under its period, for a bandit's report.
func (in Input) inPeriod(a Arm, period int) Arm {
	if in.Periods == nil {
		return a
	}
	period = min(max(period, 0), len(in.Periods)-1)
	a.Periods = make([]Arm, len(in.Periods))
	a.Periods[period] = Arm{Units: a.Units, Metrics: a.Metrics}
	return a
}

// compareArms is comparison for two arms: within periods, combined, for a bandit.
func (in Input) compareArms(m Metric, mi int, fit *stats.CUPEDFit, ctl, trt Arm, sequential bool) (stats.Comparison, *stats.CUPEDComparison, stats.Skew) {
	if in.Periods == nil {
		return in.comparison(m, fit, ctl.Metrics[mi], trt.Metrics[mi], sequential)
	}
	alpha := in.Options.Alpha
	if m.Kind == Ratio {
		strata := make([]stats.RatioStratum, len(in.Periods))
		for p := range strata {
			strata[p] = stats.RatioStratum{Control: periodArm(ctl, p, mi).Ratio, Treatment: periodArm(trt, p, mi).Ratio}
		}
		return stats.CompareStratifiedRatios(strata, alpha), nil, stats.Skew{}
	}
	strata := make([]stats.Stratum, len(in.Periods))
	for p := range strata {
		strata[p] = stats.Stratum{Control: periodArm(ctl, p, mi).moments(), Treatment: periodArm(trt, p, mi).moments()}
	}
	var skew stats.Skew
	if m.Kind == Mean {
		skew = stats.SkewOf(ctl.Metrics[mi].moments(), trt.Metrics[mi].moments())
	}
	return stats.CompareStratified(strata, alpha), nil, skew
}

// periodArm is an arm's statistics of metric mi in period p (none when it had no units then).
func periodArm(a Arm, p, mi int) Suff {
	if p >= len(a.Periods) || a.Periods[p].Metrics == nil {
		return Suff{}
	}
	return a.Periods[p].Metrics[mi]
}

// banditReport fills what a bandit's report says differently: each period's SRM, combined as
// the overall check; the expected shares as the periods' weights averaged over their units;
// the periods; and the note on reading the estimates.
func (in Input) banditReport(r *Report) {
	sec := &BanditSection{Estimator: BanditEstimator, Note: BanditNote, Periods: []PeriodResult{}}
	var checks []stats.SRMResult
	expected := make([]float64, len(in.Variants))
	var total float64
	for p, spec := range in.Periods {
		pr := PeriodResult{Period: spec.Index, Start: spec.Start, End: spec.End, Weights: map[string]float64{}, Units: map[string]int64{}}
		var obs, w []float64
		var units float64
		for i, v := range in.Variants {
			n := in.Data.Overall[i].periodUnits(p)
			pr.Weights[v.Key], pr.Units[v.Key] = spec.Weights[i], n
			units += float64(n)
			// An arm the period gave no weight cannot take part in the goodness of fit.
			if spec.Weights[i] > 0 {
				obs, w = append(obs, float64(n)), append(w, spec.Weights[i])
			}
		}
		for i := range in.Variants {
			expected[i] += units * spec.Weights[i]
		}
		total += units
		check := stats.SRM(obs, w)
		pr.SRM = srmOf(check)
		if check.Valid {
			checks = append(checks, check)
		}
		sec.Periods = append(sec.Periods, pr)
	}
	if total > 0 {
		for i := range r.Variants {
			r.Variants[i].ExpectedWeight = expected[i] / total
		}
	}
	r.SRM = srmOf(stats.CombineSRM(checks))
	r.Bandit = sec
	r.Warnings = append(r.Warnings, BanditNote)
	if in.Options.CUPED || in.Options.Sequential {
		r.Warnings = append(r.Warnings, "CUPED and sequential intervals are not available for a bandit's within-period comparisons; the results are fixed-horizon tests without CUPED")
		r.Method, r.CUPED = "fixed_horizon", false
	}
}

// periodUnits is the arm's units first exposed in period p.
func (a Arm) periodUnits(p int) int64 {
	if p >= len(a.Periods) {
		return 0
	}
	return a.Periods[p].Units
}

// srmOf shapes a goodness-of-fit result for the report.
func srmOf(s stats.SRMResult) SRM {
	if !s.Valid {
		return SRM{Reason: s.Reason}
	}
	return SRM{Chi2: ptr(s.Chi2), PValue: ptr(s.PValue), Mismatch: s.Mismatch, DF: s.DF}
}

// PeriodData is one metric's statistics per period and variant of an experiment's current
// phase, capped as a report caps them: what a bandit decides on.
type PeriodData struct {
	Variants []string
	Metric   Metric
	// Arms holds the statistics by period, then variant in the phase's order.
	Arms [][]Suff
}

// ByPeriod aggregates an experiment's current phase as its report does and returns the
// statistics of one standard metric by period and variant. It runs the report's aggregate: the
// source's pool needs a statement timeout that lets a report finish (the server's analysis pool).
func (s *Source) ByPeriod(ctx context.Context, key, metric string) (*PeriodData, error) {
	p, err := s.Prepare(ctx, ReportRequest{Experiment: key, Options: DefaultOptions})
	if err != nil {
		return nil, err
	}
	mi := slices.IndexFunc(p.input.Metrics, func(m MetricSpec) bool { return m.Name == metric })
	if mi < 0 {
		return nil, fmt.Errorf("%q is not a metric of experiment %q", metric, key)
	}
	var rows []aggRow
	if err := sqlx.SelectContext(ctx, s.db, &rows, p.SQL, p.Args...); err != nil {
		return nil, fmt.Errorf("aggregating %q by period: %w", key, err)
	}
	n := max(len(p.input.Periods), 1)
	out := &PeriodData{Metric: p.input.Metrics[mi].Metric, Arms: make([][]Suff, n)}
	idx := map[string]int{}
	for i, v := range p.input.Variants {
		out.Variants = append(out.Variants, v.Key)
		idx[v.Key] = i
	}
	for i := range out.Arms {
		out.Arms[i] = make([]Suff, len(out.Variants))
	}
	for _, r := range rows {
		vi, ok := idx[r.Variant]
		if r.Excluded || !ok {
			continue
		}
		period := min(max(r.Period, 0), n-1)
		out.Arms[period][vi].add(r.suff(metric))
	}
	return out, nil
}
