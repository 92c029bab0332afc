// Package report renders an experiment report (internal/analysis) for people: numbers in
// their units, the one-sentence reading of each result, SVG charts drawn with gonum/plot, and
// the report's HTML, which `analyze report --format html` and the web console both show.
package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/money"
)

// Sig writes x with three significant digits, without exponent for everyday sizes and without
// trailing zeros: 0.003, 12.5, 1234.
func Sig(x float64) string {
	switch {
	case x == 0:
		return "0"
	case math.IsNaN(x) || math.IsInf(x, 0):
		return fmt.Sprint(x)
	case math.Abs(x) < 1e-6:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	mag := int(math.Floor(math.Log10(math.Abs(x))))
	decimals := max(0, 2-mag)
	s := strconv.FormatFloat(x, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// Signed puts an explicit + on positive numbers and a true minus sign on negative ones.
func Signed(s string) string {
	switch {
	case strings.HasPrefix(s, "-"):
		return "−" + s[1:]
	case s == "0":
		return s
	}
	return "+" + s
}

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

// Pct writes a fraction as a signed percentage with three significant digits.
func Pct(x float64) string {
	return Signed(Sig(100*x)) + "%"
}

// Amounts formats the values of one metric: proportions as percentages, money in the report's
// currency (text: "EUR 29.04"; symbol: "€29.04" for pages), other means as numbers.
type Amounts struct {
	Kind     analysis.Kind
	Currency string
	Symbol   bool
}

// AmountsOf returns the formatter of a result's values.
func AmountsOf(r analysis.Result, symbol bool) Amounts {
	return Amounts{Kind: r.Kind, Currency: r.Currency, Symbol: symbol}
}

// Value writes a mean.
func (a Amounts) Value(x float64) string {
	switch {
	case a.Kind == analysis.Proportion:
		return Sig(100*x) + "%"
	case a.Currency != "" && x < 0:
		return "−" + a.Money(-x)
	case a.Currency != "":
		return a.Money(x)
	}
	return Sig(x)
}

// Diff writes a difference: percentage points for proportions, signed money or number otherwise.
func (a Amounts) Diff(x float64) string {
	switch {
	case a.Kind == analysis.Proportion:
		return Signed(Sig(100*x)) + "pp"
	case a.Currency != "":
		if x < 0 {
			return "−" + a.Money(-x)
		}
		return "+" + a.Money(x)
	}
	return Signed(Sig(x))
}

// Money writes an amount of minor units: to the minor unit from one major unit up, with three
// significant digits below it so that a difference of a fraction of a cent is not "0.00".
func (a Amounts) Money(minor float64) string {
	c := money.Lookup(a.Currency)
	if math.Abs(minor) >= float64(c.MinorPerMajor()) || minor == 0 {
		if a.Symbol {
			return c.Symbol(minor)
		}
		return c.FormatFloat(minor)
	}
	major := Sig(minor / float64(c.MinorPerMajor()))
	if a.Symbol {
		return strings.Replace(c.Symbol(0), "0"+decimalZeros(c), major, 1)
	}
	return c.Code() + " " + major
}

// decimalZeros is the fraction part of a zero amount in currency c: ".00" for EUR, "" for JPY.
func decimalZeros(c money.Currency) string {
	if c.Exponent() == 0 {
		return ""
	}
	return "." + strings.Repeat("0", c.Exponent())
}

// Interval writes [low, high] with f, or a dash when absent.
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

// Sentence is the one-line reading of a result; its effect is the lift where one is reported
// and the difference otherwise, so its sign always agrees with the verdict.
func Sentence(r analysis.Result, control, correction string, symbol bool) string {
	a := AmountsOf(r, symbol)
	switch {
	case r.Verdict == analysis.VerdictTooFewUnits:
		return fmt.Sprintf("%s vs %s on %s: %s", r.Variant, control, r.Metric, r.Reason)
	case r.PValue == nil:
		return fmt.Sprintf("%s vs %s on %s: not computed — %s", r.Variant, control, r.Metric, r.Reason)
	}
	effect := a.Diff(r.Diff) + " " + Interval(r.DiffCI, a.Diff)
	if r.Lift != nil {
		effect = Pct(*r.Lift) + " " + Interval(r.LiftCI, Pct)
	}
	p := "p = " + P(*r.PAdjusted)
	if strings.HasPrefix(P(*r.PAdjusted), "<") {
		p = "p " + P(*r.PAdjusted)
	}
	p += " " + CorrectionName(correction)
	switch r.Verdict {
	case analysis.VerdictBetter:
		return fmt.Sprintf("%s beats %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	case analysis.VerdictWorse:
		return fmt.Sprintf("%s loses to %s on %s: %s, %s", r.Variant, control, r.Metric, effect, p)
	}
	return fmt.Sprintf("%s vs %s on %s: no significant difference, %s, %s", r.Variant, control, r.Metric, effect, p)
}

// Level writes the intervals' confidence level: 95% for alpha 0.05.
func Level(alpha float64) string { return Sig(100*(1-alpha)) + "%" }

// IntervalsNote says what the intervals are and what the correction applies to.
func IntervalsNote(rep *analysis.Report) string {
	what := "intervals"
	if rep.Method == "sequential" {
		what = "always-valid confidence sequences"
	}
	s := fmt.Sprintf("%s %s of each comparison on its own, not adjusted for the %d comparisons in this report", Level(rep.Alpha), what, rep.Comparisons)
	if rep.Correction != "none" {
		s += fmt.Sprintf("; \"p adj\" and the verdicts are adjusted (%s)", CorrectionName(string(rep.Correction)))
	}
	return s
}

// CapsNote says how revenue-like values were capped.
func CapsNote(rep *analysis.Report, symbol bool) string {
	if rep.Cap == 0 {
		return "Capping: off (every value as recorded)"
	}
	q := strconv.FormatFloat(math.Round(1e6*100*rep.Cap)/1e6, 'f', -1, 64)
	lo := strconv.FormatFloat(math.Round(1e6*100*(1-rep.Cap))/1e6, 'f', -1, 64)
	var parts []string
	for _, c := range rep.Caps {
		a := Amounts{Kind: analysis.Mean}
		if c.Metric == "pre_exposure_revenue" { // the CUPED covariate, which has no result of its own
			a.Currency, a.Symbol = rep.Currency, symbol
		}
		for _, r := range rep.Results {
			if r.Metric == c.Metric {
				a = AmountsOf(r, symbol)
				break
			}
		}
		parts = append(parts, fmt.Sprintf("%s to [%s, %s] (%s)", c.Metric, a.Value(c.Lower), a.Value(c.Upper), Plural(c.Capped, "unit")))
	}
	s := fmt.Sprintf("Capping: revenue-like values held within the %s–%sth percentiles of all units", lo, q)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	return s
}

// Plural writes a count with its noun: "1 unit", "5 units".
func Plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// KindOf returns the kind of a metric of the report.
func KindOf(rep *analysis.Report, metric string) analysis.Kind {
	for _, r := range rep.Results {
		if r.Metric == metric {
			return r.Kind
		}
	}
	return analysis.Mean
}

// HoldoutTotalFormat is how a holdout's total of one metric is written: money or a number for
// a mean, extra shoppers for a proportion.
func HoldoutTotalFormat(rep *analysis.Report, t analysis.HoldoutTotal) func(float64) string {
	if KindOf(rep, t.Metric) == analysis.Proportion {
		return func(x float64) string { return Signed(Sig(x)) + " shoppers" }
	}
	return Amounts{Kind: analysis.Mean, Currency: t.Currency}.Diff
}
