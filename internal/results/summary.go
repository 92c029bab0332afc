package results

import (
	"github.com/xsell/xsell/internal/analysis"
)

// Summary is what the experiments list shows of a report: its health and the primary
// metric's lift. It is stored beside the report so that the list never reads whole reports.
type Summary struct {
	// Units is the exposed shoppers the report counts, two-variant shoppers left out.
	Units int64 `json:"units"`
	// SRMMismatch says the variants did not get the traffic their weights promise.
	SRMMismatch bool `json:"srm_mismatch,omitempty"`
	// TooFewUnits says some arm has too few units for the primary metric to get a verdict.
	TooFewUnits bool `json:"too_few_units,omitempty"`
	// FailingGuardrails names each guardrail that failed, as "metric (variant)".
	FailingGuardrails []string `json:"failing_guardrails,omitempty"`
	PrimaryMetric     string   `json:"primary_metric,omitempty"`
	// Primary is each treatment's lift on the primary metric.
	Primary []Lift `json:"primary,omitempty"`
}

// Lift is one treatment against control on the primary metric.
type Lift struct {
	Variant string      `json:"variant"`
	Lift    *float64    `json:"lift"`
	LiftCI  *[2]float64 `json:"lift_ci"`
	Verdict string      `json:"verdict"`
}

// Healthy reports whether the summary raises no alarm.
func (s Summary) Healthy() bool {
	return !s.SRMMismatch && !s.TooFewUnits && len(s.FailingGuardrails) == 0
}

// Summarise extracts the list's figures from a report.
func Summarise(r *analysis.Report) Summary {
	s := Summary{SRMMismatch: r.SRM.Mismatch, PrimaryMetric: r.PrimaryMetric}
	for _, v := range r.Variants {
		s.Units += v.Units
	}
	for _, res := range r.Results {
		if res.Metric != r.PrimaryMetric {
			continue
		}
		if res.Verdict == analysis.VerdictTooFewUnits {
			s.TooFewUnits = true
		}
		s.Primary = append(s.Primary, Lift{Variant: res.Variant, Lift: res.Lift, LiftCI: res.LiftCI, Verdict: res.Verdict})
	}
	for _, g := range r.Guardrails {
		if g.Verdict == "fail" {
			s.FailingGuardrails = append(s.FailingGuardrails, g.Metric+" ("+g.Variant+")")
		}
	}
	return s
}
