// Package report renders an experiment report (internal/analysis) for people: numbers in
// their units, the one-sentence reading of each result, SVG charts drawn with gonum/plot,
// and the report's HTML, which `analyze report --format html` and the console both show.
package report

import (
	"fmt"
	"strings"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/money"
)

// P writes a p-value the way a reader compares it with alpha.
func P(p float64) string {
	switch {
	case p < 0.0001:
		return "< 0.0001"
	case p < 0.001:
		return fmt.Sprintf("%.4f", p)
	}
	return fmt.Sprintf("%.3f", p)
}

// Pct writes a fraction as a signed percentage: +23.0%, −1.2%.
func Pct(x float64) string {
	return Signed(fmt.Sprintf("%.1f%%", 100*x))
}

// Signed puts an explicit + on positive numbers and a true minus sign on negative ones.
func Signed(s string) string {
	if strings.HasPrefix(s, "-") {
		return "−" + s[1:]
	}
	return "+" + s
}

// Value writes a metric value in its unit: proportions as percentages, money (minor units of
// currency) with the currency's symbol, anything else as a number.
func Value(kind analysis.Kind, currency string, x float64) string {
	switch {
	case kind == analysis.Proportion:
		return fmt.Sprintf("%.2f%%", 100*x)
	case currency != "":
		return money.Lookup(currency).Symbol(x)
	}
	return fmt.Sprintf("%.2f", x)
}

// Diff writes a difference: percentage points for proportions, signed money for money.
func Diff(kind analysis.Kind, currency string, x float64) string {
	switch {
	case kind == analysis.Proportion:
		return Signed(fmt.Sprintf("%.2fpp", 100*x))
	case currency != "":
		return Signed(money.Lookup(currency).Symbol(x))
	}
	return Signed(fmt.Sprintf("%.2f", x))
}

// Interval writes an interval with f, a dash when absent.
func Interval(ci *[2]float64, f func(float64) string) string {
	if ci == nil {
		return "—"
	}
	return "[" + f(ci[0]) + ", " + f(ci[1]) + "]"
}

// CorrectionName is how a sentence names the correction.
func CorrectionName(c string) string {
	switch c {
	case "holm":
		return "after Holm"
	case "bh":
		return "after Benjamini-Hochberg"
	}
	return "uncorrected"
}

// Sentence is the one-line reading of a result.
func Sentence(r analysis.Result, control, correction, currency string) string {
	if r.PValue == nil {
		return fmt.Sprintf("%s vs %s on %s: not computed — %s", r.Variant, control, r.Metric, r.Reason)
	}
	diff := func(x float64) string { return Diff(r.Kind, currency, x) }
	effect := diff(r.Diff) + " " + Interval(r.DiffCI, diff)
	if r.Lift != nil {
		effect = Pct(*r.Lift) + " " + Interval(r.LiftCI, Pct)
	}
	p := "p = " + P(*r.PAdjusted) + " " + CorrectionName(correction)
	if strings.HasPrefix(P(*r.PAdjusted), "<") {
		p = "p " + P(*r.PAdjusted) + " " + CorrectionName(correction)
	}
	switch r.Verdict {
	case "better":
		return fmt.Sprintf("%s beats %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	case "worse":
		return fmt.Sprintf("%s loses to %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	}
	return fmt.Sprintf("%s vs %s on %s: no significant difference, %s, %s", r.Variant, control, r.Metric, effect, p)
}
