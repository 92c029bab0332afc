package main

import (
	"encoding/csv"
	"io"
	"strconv"

	"github.com/xsell/xsell/internal/analysis"
)

// num writes a float for CSV with full precision; an absent value is an empty cell.
func num(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func ciCells(ci *[2]float64) []string {
	if ci == nil {
		return []string{"", ""}
	}
	return []string{num(&ci[0]), num(&ci[1])}
}

func writeReportCSV(w io.Writer, rep *analysis.Report) error {
	cw := csv.NewWriter(w)
	// Numbers stay numbers for a spreadsheet: money columns are minor units of the currency
	// column, proportions fractions; the intervals are unadjusted, p_adjusted is not.
	cw.Write([]string{"segment", "metric", "kind", "currency", "variant", "control_units", "treatment_units", "control_mean", "treatment_mean",
		"diff", "diff_ci_low", "diff_ci_high", "lift", "lift_ci_low", "lift_ci_high", "p_value", "p_adjusted", "significant", "test", "verdict", "reason", "lift_reason"})
	write := func(segment string, rs []analysis.Result) {
		for _, r := range rs {
			row := []string{segment, r.Metric, string(r.Kind), r.Currency, r.Variant, strconv.FormatInt(r.ControlUnits, 10), strconv.FormatInt(r.TreatmentUnits, 10),
				num(&r.ControlMean), num(&r.TreatmentMean), num(&r.Diff)}
			row = append(row, ciCells(r.DiffCI)...)
			row = append(row, num(r.Lift))
			row = append(row, ciCells(r.LiftCI)...)
			row = append(row, num(r.PValue), num(r.PAdjusted), strconv.FormatBool(r.Significant), r.Test, r.Verdict, r.Reason, r.LiftReason)
			cw.Write(row)
		}
	}
	write("", rep.Results)
	for _, s := range rep.Segments {
		write(rep.SegmentAttribute+"="+s.Value, s.Results)
	}
	cw.Flush()
	return cw.Error()
}

func writeAffinityCSV(w io.Writer, a *analysis.Affinity) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"a", "b", "orders", "support", "confidence_ab", "confidence_ba", "lift"})
	for _, p := range a.Pairs {
		cw.Write([]string{p.A, p.B, strconv.FormatInt(p.Orders, 10), num(&p.Support), num(&p.ConfidenceAB), num(&p.ConfidenceBA), num(&p.Lift)})
	}
	cw.Flush()
	return cw.Error()
}

func writeListCSV(w io.Writer, items []analysis.ListItem) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"key", "name", "status", "phase", "days_running", "exposed"})
	for _, it := range items {
		days := ""
		if it.DaysRunning != nil {
			days = strconv.Itoa(*it.DaysRunning)
		}
		cw.Write([]string{it.Key, it.Name, it.Status, strconv.Itoa(it.Phase), days, strconv.FormatInt(it.Exposed, 10)})
	}
	cw.Flush()
	return cw.Error()
}
