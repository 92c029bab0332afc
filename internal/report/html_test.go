package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/xsell/xsell/internal/analysis"
)

func ptr[T any](v T) *T { return &v }

// twoArms is a report with a sample ratio mismatch, a proportion and a money metric.
func twoArms() *analysis.Report {
	return &analysis.Report{
		Experiment: "pdp", Phase: 1, Alpha: 0.05, Correction: "holm", Control: "control", PrimaryMetric: "cross_sell_rate",
		Method: "fixed_horizon", Currency: "EUR", Comparisons: 2,
		Variants: []analysis.VariantSummary{{Key: "control", Units: 12000, ExpectedWeight: 0.5, ObservedShare: 0.6}, {Key: "bundle", Units: 8000, ExpectedWeight: 0.5, ObservedShare: 0.4}},
		SRM:      analysis.SRM{Chi2: ptr(800.0), PValue: ptr(1e-12), Mismatch: true, DF: 1},
		Results: []analysis.Result{
			{Metric: "cross_sell_rate", Kind: analysis.Proportion, Variant: "bundle", ControlUnits: 12000, TreatmentUnits: 8000,
				ControlMean: 0.05, TreatmentMean: 0.06, Diff: 0.01, DiffCI: &[2]float64{0.004, 0.016}, Lift: ptr(0.2), LiftCI: &[2]float64{0.08, 0.32},
				PValue: ptr(0.001), PAdjusted: ptr(0.002), Significant: true, Verdict: analysis.VerdictBetter, Test: "z"},
			{Metric: "revenue", Kind: analysis.Mean, Variant: "bundle", Currency: "EUR", ControlUnits: 12000, TreatmentUnits: 8000,
				ControlMean: 2904, TreatmentMean: 2850, Diff: -54, DiffCI: &[2]float64{-120, 12}, Lift: ptr(-0.0186), LiftCI: &[2]float64{-0.041, 0.004},
				PValue: ptr(0.11), PAdjusted: ptr(0.11), Verdict: analysis.VerdictNoDifference, Test: "welch"},
		},
	}
}

func TestTheBodyPutsTheSampleRatioMismatchFirstAndShowsMoneyWithItsSymbol(t *testing.T) {
	body, err := Body(twoArms())
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	srm := strings.Index(s, "SAMPLE RATIO MISMATCH")
	if srm < 0 || srm > strings.Index(s, "<h2") {
		t.Errorf("the mismatch is not the first thing said")
	}
	for _, want := range []string{`role="alert"`, "€29.04", "−€0.54", "12,000", `data-variant="bundle"`, "better", "+20%"} {
		if !strings.Contains(s, want) {
			t.Errorf("the body lacks %q", want)
		}
	}
	if strings.Contains(s, "2904") {
		t.Error("money shown in minor units")
	}
}

func TestChartsCarryATooltipPerPoint(t *testing.T) {
	rep := twoArms()
	chart, err := EffectChart("cross_sell_rate", rep.Results[:1])
	if err != nil {
		t.Fatal(err)
	}
	s := string(chart)
	if !strings.HasPrefix(s, `<svg role="img" aria-label="cross_sell_rate: effect vs control, with its interval"`) {
		t.Errorf("the chart is not labelled: %.120s", s)
	}
	if n := strings.Count(s, "<title>"); n != 1 || !strings.Contains(s, "<title>bundle: lift +20%, interval [+8%, +32%]</title>") {
		t.Errorf("want one tooltip with the lift and its interval, got %d:\n%s", n, s[strings.LastIndex(s, "<g class"):])
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "</g></svg>") || strings.Count(s, "<svg") != 1 {
		t.Error("the tooltips are not inside the one svg")
	}
}

func TestThePageReadsOffline(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePage(&buf, twoArms()); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	// The SVG's xmlns names a namespace; nothing is fetched from an href or a src.
	if !strings.HasPrefix(s, "<!DOCTYPE html>") || !strings.Contains(s, "<style>") || regexp.MustCompile(`(src|href)\s*=\s*["']?(https?:)?//`).MatchString(s) {
		t.Errorf("the page is not self-contained:\n%.300s", s)
	}
}
