package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/xsell/xsell/internal/analysis"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// correctionName is how a sentence names the correction.
func correctionName(c string) string {
	switch c {
	case "holm":
		return "after Holm"
	case "bh":
		return "after Benjamini-Hochberg"
	}
	return "uncorrected"
}

// fmtP writes a p-value the way a reader compares it with alpha.
func fmtP(p float64) string {
	switch {
	case p < 0.0001:
		return "< 0.0001"
	case p < 0.001:
		return fmt.Sprintf("%.4f", p)
	}
	return fmt.Sprintf("%.3f", p)
}

// fmtPct writes a fraction as a signed percentage.
func fmtPct(x float64) string {
	return signed(fmt.Sprintf("%.1f%%", 100*x))
}

// signed puts an explicit + on positive numbers and a true minus sign on negative ones.
func signed(s string) string {
	if strings.HasPrefix(s, "-") {
		return "−" + s[1:]
	}
	return "+" + s
}

// fmtValue writes a metric value in its unit: proportions as percentages, the rest as numbers
// (money is in minor units).
func fmtValue(kind analysis.Kind, x float64) string {
	if kind == analysis.Proportion {
		return fmt.Sprintf("%.2f%%", 100*x)
	}
	return fmt.Sprintf("%.2f", x)
}

// fmtDiff writes a difference: percentage points for proportions.
func fmtDiff(kind analysis.Kind, x float64) string {
	if kind == analysis.Proportion {
		return signed(fmt.Sprintf("%.2fpp", 100*x))
	}
	return signed(fmt.Sprintf("%.2f", x))
}

func fmtInterval(ci *[2]float64, f func(float64) string) string {
	if ci == nil {
		return "—"
	}
	return "[" + f(ci[0]) + ", " + f(ci[1]) + "]"
}

// Sentence is the one-line reading of a result.
func sentence(r analysis.Result, control, correction string) string {
	if r.PValue == nil {
		return fmt.Sprintf("%s vs %s on %s: not computed — %s", r.Variant, control, r.Metric, r.Reason)
	}
	effect := fmtDiff(r.Kind, r.Diff) + " " + fmtInterval(r.DiffCI, func(x float64) string { return fmtDiff(r.Kind, x) })
	if r.Lift != nil {
		effect = fmtPct(*r.Lift) + " " + fmtInterval(r.LiftCI, fmtPct)
	}
	p := "p = " + fmtP(*r.PAdjusted) + " " + correctionName(correction)
	if strings.HasPrefix(fmtP(*r.PAdjusted), "<") {
		p = "p " + fmtP(*r.PAdjusted) + " " + correctionName(correction)
	}
	switch r.Verdict {
	case "better":
		return fmt.Sprintf("%s beats %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	case "worse":
		return fmt.Sprintf("%s loses to %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	}
	return fmt.Sprintf("%s vs %s on %s: no significant difference, %s, %s", r.Variant, control, r.Metric, effect, p)
}

func writeReportText(w io.Writer, rep *analysis.Report) error {
	b := &strings.Builder{}
	if rep.SRM.Mismatch {
		fmt.Fprintf(b, "!!! SAMPLE RATIO MISMATCH: the variants did not get the traffic their weights promise (chi2 = %.2f, p = %s < 0.001).\n", *rep.SRM.Chi2, fmtP(*rep.SRM.PValue))
		fmt.Fprintf(b, "!!! Assignment or exposure logging is broken; DO NOT TRUST THE RESULTS BELOW until the cause is found.\n\n")
	}
	title := rep.Experiment
	if rep.Name != "" {
		title += " — " + rep.Name
	}
	fmt.Fprintf(b, "Experiment %s", title)
	if rep.Phase > 0 {
		fmt.Fprintf(b, ", phase %d", rep.Phase)
	}
	b.WriteString("\n")
	if rep.Window != nil {
		fmt.Fprintf(b, "Events from first exposure to %s (phase started %s)", rep.Window.End.Format("2006-01-02 15:04 MST"), rep.Window.Start.Format("2006-01-02 15:04 MST"))
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
	fmt.Fprintf(b, "Method: %s; alpha %g; correction %s over every comparison in this report\n\n", method, rep.Alpha, rep.Correction)

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
		fmt.Fprintf(b, "SRM check: MISMATCH, chi2 = %.2f, p = %s — results should not be trusted\n", *rep.SRM.Chi2, fmtP(*rep.SRM.PValue))
	default:
		fmt.Fprintf(b, "SRM check: ok, chi2 = %.2f, p = %s\n", *rep.SRM.Chi2, fmtP(*rep.SRM.PValue))
	}
	if rep.ExcludedMultipleVariants > 0 {
		fmt.Fprintf(b, "Left out: %d shoppers seen in two variants\n", rep.ExcludedMultipleVariants)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(b, "Warning: %s\n", warn)
	}
	writeResultsText(b, rep, rep.Results, rep.Variants)
	if len(rep.Guardrails) > 0 {
		b.WriteString("\nGuardrails (non-inferiority: is harm beyond the margin ruled out?)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "metric\tvariant\tmargin\testimate\tbound\tp\tverdict\t")
		for _, g := range rep.Guardrails {
			margin := fmt.Sprintf("%g", g.Margin)
			if g.Relative {
				margin = fmt.Sprintf("%g%% relative", 100*g.Margin)
			}
			if g.Estimate == nil {
				fmt.Fprintf(tw, "%s\t%s\t%s\t—\t—\t—\tnot computed: %s\t\n", g.Metric, g.Variant, margin, g.Reason)
				continue
			}
			f := func(x float64) string { return signed(fmt.Sprintf("%.4g", x)) }
			if g.Relative {
				f = fmtPct
			}
			verdict := "PASS"
			if g.Verdict == "fail" {
				verdict = "FAIL: harm beyond the margin not ruled out"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Metric, g.Variant, margin, f(*g.Estimate), f(*g.Bound), fmtP(*g.PValue), verdict)
		}
		tw.Flush()
	}
	for _, s := range rep.Segments {
		fmt.Fprintf(b, "\n=== Segment %s = %s ===\n", rep.SegmentAttribute, s.Value)
		writeResultsText(b, rep, s.Results, s.Variants)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeResultsText writes an aligned table per metric and a sentence per result.
func writeResultsText(b *strings.Builder, rep *analysis.Report, results []analysis.Result, variants []analysis.VariantSummary) {
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
		fmt.Fprintln(tw, "variant\tunits\tmean\tdiff\tdiff CI\tlift\tlift CI\tp\tp adj\t\t")
		g := group[0]
		fmt.Fprintf(tw, "%s\t%d\t%s\t\t\t\t\t\t\t(control)\t\n", rep.Control, g.ControlUnits, fmtValue(g.Kind, g.ControlMean))
		for _, r := range group {
			row := []string{r.Variant, fmt.Sprint(r.TreatmentUnits), fmtValue(r.Kind, r.TreatmentMean), fmtDiff(r.Kind, r.Diff),
				fmtInterval(r.DiffCI, func(x float64) string { return fmtDiff(r.Kind, x) }), "—", "—", "—", "—", ""}
			if r.Lift != nil {
				row[5], row[6] = fmtPct(*r.Lift), fmtInterval(r.LiftCI, fmtPct)
			}
			if r.PValue != nil {
				row[7], row[8] = fmtP(*r.PValue), fmtP(*r.PAdjusted)
			}
			if r.Significant {
				row[9] = "*"
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		for _, r := range group {
			fmt.Fprintln(b, "  "+sentence(r, rep.Control, string(rep.Correction)))
		}
	}
}

func writePlanText(w io.Writer, p analysis.PlanResult) error {
	b := &strings.Builder{}
	what := fmt.Sprintf("a rate of %.4g%%", 100*p.Baseline)
	mde := fmt.Sprintf("%.4g percentage points", 100*p.MDEAbsolute)
	if p.Kind == analysis.Mean {
		what = fmt.Sprintf("a mean of %g (standard deviation %g)", p.Baseline, p.StdDev)
		mde = fmt.Sprintf("%g", p.MDEAbsolute)
	}
	if p.MDERelative != 0 && !math.IsInf(p.MDERelative, 0) {
		mde += fmt.Sprintf(" (%s relative)", fmtPct(p.MDERelative))
	}
	fmt.Fprintf(b, "To detect a change of %s from %s\n", mde, what)
	fmt.Fprintf(b, "with power %g at alpha %g (two-sided; %.4g per comparison over %d treatment(s)):\n\n",
		p.Power, p.Alpha, p.AlphaPerComparison, p.Variants-1)
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
