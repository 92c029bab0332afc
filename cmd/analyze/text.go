package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/report"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeReportText(w io.Writer, rep *analysis.Report) error {
	b := &strings.Builder{}
	if rep.SRM.Mismatch {
		fmt.Fprintf(b, "!!! SAMPLE RATIO MISMATCH: the variants did not get the traffic their weights promise (chi2 = %.2f, p = %s < 0.001).\n", *rep.SRM.Chi2, report.P(*rep.SRM.PValue))
		fmt.Fprintf(b, "!!! Assignment or exposure logging is broken; DO NOT TRUST THE RESULTS BELOW until the cause is found.\n\n")
	}
	started := "phase started"
	if rep.Holdout != nil {
		writeHoldoutHeader(b, rep)
		started = "generation started"
		if rep.Holdout.Since != nil {
			started = "first exposures from"
		}
	} else {
		title := rep.Experiment
		if rep.Name != "" {
			title += " — " + rep.Name
		}
		fmt.Fprintf(b, "Experiment %s", title)
		if rep.Phase > 0 {
			fmt.Fprintf(b, ", phase %d", rep.Phase)
		}
		b.WriteString("\n")
	}
	if rep.Window != nil {
		fmt.Fprintf(b, "Events from first exposure to %s (%s %s)", rep.Window.End.Format("2006-01-02 15:04 MST"), started, rep.Window.Start.Format("2006-01-02 15:04 MST"))
		if rep.Window.ConversionWindow != "" {
			fmt.Fprintf(b, ", at most %s after first exposure", rep.Window.ConversionWindow)
		}
		b.WriteString("\n")
	}
	method := "fixed-horizon tests"
	if rep.Method == "sequential" {
		method = "always-valid confidence sequences (safe to peek)"
	}
	if rep.CUPED {
		method += ", CUPED on revenue in the 14 days before exposure"
	}
	fmt.Fprintf(b, "Method: %s; alpha %g; correction %s over the %d comparisons in this report\n", method, rep.Alpha, rep.Correction, rep.Comparisons)
	fmt.Fprintf(b, "Intervals: %s\n", report.IntervalsNote(rep))
	b.WriteString("Lift: treatment mean / control mean − 1, relative to control; left out where the control mean is not clearly above 0\n")
	b.WriteString(report.CapsNote(rep, false) + "\n")
	if rep.MinUnits > 0 {
		fmt.Fprintf(b, "Verdicts need at least %d units in each arm\n", rep.MinUnits)
	}
	if rep.Currency != "" {
		fmt.Fprintf(b, "Money in %s\n", rep.Currency)
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\tunits\tshare\texpected\t")
	for _, v := range rep.Variants {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t\n", v.Key, v.Units, 100*v.ObservedShare, 100*v.ExpectedWeight)
	}
	tw.Flush()
	switch {
	case rep.SRM.PValue == nil:
		fmt.Fprintf(b, "SRM check: not computed — %s\n", rep.SRM.Reason)
	case rep.SRM.Mismatch:
		fmt.Fprintf(b, "SRM check: MISMATCH, chi2 = %.2f, p = %s — results should not be trusted\n", *rep.SRM.Chi2, report.P(*rep.SRM.PValue))
	default:
		fmt.Fprintf(b, "SRM check: ok, chi2 = %.2f, p = %s\n", *rep.SRM.Chi2, report.P(*rep.SRM.PValue))
	}
	if rep.ExcludedMultipleVariants > 0 {
		fmt.Fprintf(b, "Left out: %d units seen in two variants\n", rep.ExcludedMultipleVariants)
	}
	writeBanditText(b, rep)
	for _, warn := range rep.Warnings {
		fmt.Fprintf(b, "Warning: %s\n", warn)
	}
	writeResultsText(b, rep, rep.Results)
	writeHoldoutTotals(b, rep)
	writeGuardrailsText(b, rep)
	for _, s := range rep.Segments {
		fmt.Fprintf(b, "\n=== Segment %s = %s ===\n", rep.SegmentAttribute, s.Value)
		writeResultsText(b, rep, s.Results)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeResultsText writes an aligned table per metric and a sentence per result.
func writeResultsText(b *strings.Builder, rep *analysis.Report, results []analysis.Result) {
	ci := report.Level(rep.Alpha) + " CI"
	for i := 0; i < len(results); {
		metric := results[i].Metric
		j := i
		for j < len(results) && results[j].Metric == metric {
			j++
		}
		group := results[i:j]
		i = j
		label := string(group[0].Kind)
		if metric == rep.PrimaryMetric {
			label += ", primary"
		}
		if group[0].LowerIsBetter {
			label += ", lower is better"
		}
		fmt.Fprintf(b, "\n%s (%s)\n", metric, label)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "variant\tunits\tmean\tdiff\tdiff %s\tlift\tlift %s\tp\tp adj\t\t\n", ci, ci)
		g := group[0]
		fmt.Fprintf(tw, "%s\t%d\t%s\t\t\t\t\t\t\t(control)\t\n", rep.Control, g.ControlUnits, report.AmountsOf(g, false).Value(g.ControlMean))
		for _, r := range group {
			a := report.AmountsOf(r, false)
			row := []string{r.Variant, fmt.Sprint(r.TreatmentUnits), a.Value(r.TreatmentMean), a.Diff(r.Diff),
				report.Interval(r.DiffCI, a.Diff), "—", "—", "—", "—", ""}
			if r.Lift != nil {
				row[5], row[6] = report.Pct(*r.Lift), report.Interval(r.LiftCI, report.Pct)
			}
			if r.PValue != nil {
				row[7], row[8] = report.P(*r.PValue), report.P(*r.PAdjusted)
			}
			if r.Significant {
				row[9] = "*"
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		for _, r := range group {
			fmt.Fprintln(b, "  "+report.Sentence(r, rep.Control, string(rep.Correction), false))
			if r.Lift == nil && r.LiftReason != "" && r.PValue != nil {
				fmt.Fprintln(b, "    (no lift: "+r.LiftReason+")")
			}
		}
	}
}

// writeGuardrailsText writes the non-inferiority table.
func writeGuardrailsText(b *strings.Builder, rep *analysis.Report) {
	if len(rep.Guardrails) == 0 {
		return
	}
	b.WriteString("\nGuardrails (non-inferiority: is harm beyond the margin ruled out?)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tvariant\tmargin\testimate\tbound\tp\tverdict\t")
	var notes []string
	for _, g := range rep.Guardrails {
		a := report.Amounts{Kind: report.KindOf(rep, g.Metric), Currency: g.Currency}
		margin := a.Value(g.Margin)
		if g.Relative {
			margin = report.Sig(100*g.Margin) + "% relative"
		} else if a.Kind == analysis.Proportion {
			margin = report.Sig(100*g.Margin) + "pp"
		}
		if g.Estimate == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t—\t—\t—\tnot computed: %s\t\n", g.Metric, g.Variant, margin, g.Reason)
			continue
		}
		f := a.Diff
		if g.TestedOn == "lift" {
			f = report.Pct
		}
		verdict := "PASS"
		if g.Verdict == "fail" {
			verdict = "FAIL: harm beyond the margin not ruled out"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Metric, g.Variant, margin, f(*g.Estimate), f(*g.Bound), report.P(*g.PValue), verdict)
		if g.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s, %s: %s", g.Metric, g.Variant, g.Note))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(b, n)
	}
}

func writePlanText(w io.Writer, p analysis.PlanResult) error {
	b := &strings.Builder{}
	what := fmt.Sprintf("a rate of %s%%", report.Sig(100*p.Baseline))
	mde := fmt.Sprintf("%s percentage points", report.Sig(100*p.MDEAbsolute))
	if p.Kind == analysis.Mean {
		what = fmt.Sprintf("a mean of %s (standard deviation %s", report.Sig(p.Baseline), report.Sig(p.StdDev))
		switch {
		case p.StdDevTreatment != 0:
			what += fmt.Sprintf(", %s in treatment)", report.Sig(p.StdDevTreatment))
		case p.Multiplicative:
			what += ", growing with the effect in treatment)"
		default:
			what += ")"
		}
		mde = report.Sig(p.MDEAbsolute)
	}
	if p.MDERelative != 0 && !math.IsInf(p.MDERelative, 0) {
		mde += fmt.Sprintf(" (%s relative)", report.Pct(p.MDERelative))
	}
	if p.Multiplicative {
		mde += ", multiplicative"
	}
	fmt.Fprintf(b, "To detect a change of %s from %s\n", mde, what)
	read := "a fixed-horizon test at the planned size"
	if p.Method == "sequential" {
		read = "the always-valid confidence sequence (--sequential) at the planned size"
	}
	fmt.Fprintf(b, "with power %g at alpha %g, read with %s:\n", p.Power, p.Alpha, read)
	fmt.Fprintf(b, "the report corrects (%s) over %d comparisons (%d metrics × %d treatment(s)", p.Correction, p.Comparisons, p.Metrics, p.Variants-1)
	if p.Segments > 0 {
		fmt.Fprintf(b, " × (overall + %d segments)", p.Segments)
	}
	fmt.Fprintf(b, "), so each is planned at alpha %.3g\n\n", p.AlphaPerComparison)
	fmt.Fprintf(b, "  %d units per variant, %d in total over %d variants\n", p.PerVariant, p.Total, p.Variants)
	if p.Days != nil {
		fmt.Fprintf(b, "  %d days at %g eligible shoppers a day\n", *p.Days, p.DailyTraffic)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAffinityText(w io.Writer, a *analysis.Affinity) error {
	b := &strings.Builder{}
	since := "all time"
	if a.Since != nil {
		since = "since " + a.Since.Format("2006-01-02")
	}
	fmt.Fprintf(b, "%d orders %s; pairs bought together in at least %d orders\n", a.Orders, since, a.MinOrders)
	if len(a.Pairs) == 0 {
		b.WriteString("\nNo pair of products is bought together often enough; lower --min-orders or widen --since.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("\nTop pairs by lift (lift > 1: bought together more often than by chance)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "product A\tproduct B\torders\tsupport\tconf A→B\tconf B→A\tlift\t")
	for _, p := range a.Pairs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f%%\t%.1f%%\t%.1f%%\t%.2f\t\n", p.A, p.B, p.Orders, 100*p.Support, 100*p.ConfidenceAB, 100*p.ConfidenceBA, p.Lift)
	}
	tw.Flush()
	b.WriteString("\nBest complements per product (candidates for a bundle)\n")
	for _, pc := range a.Products {
		var parts []string
		for _, c := range pc.Complements {
			parts = append(parts, fmt.Sprintf("%s (lift %.2f, %.0f%% of its orders)", c.SKU, c.Lift, 100*c.Confidence))
		}
		fmt.Fprintf(b, "  %s [%d orders]: %s\n", pc.SKU, pc.Orders, strings.Join(parts, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeListText(w io.Writer, items []analysis.ListItem) error {
	if len(items) == 0 {
		_, err := io.WriteString(w, "No experiments yet.\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "key\tstatus\tphase\tdays running\texposed\tname\t")
	for _, it := range items {
		days := "—"
		if it.DaysRunning != nil {
			days = fmt.Sprint(*it.DaysRunning)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t\n", it.Key, it.Status, it.Phase, days, it.Exposed, it.Name)
	}
	return tw.Flush()
}
