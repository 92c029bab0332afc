package main

import (
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/report"
	"github.com/xsell/xsell/internal/stats"
)

// A bandit's report lists its periods with their weights, shoppers and SRM check, in text and
// in HTML, and says how to read its estimates.
func TestBanditReportShowsItsPeriods(t *testing.T) {
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	conv := analysis.StandardMetrics[1]
	arm := func(periods ...[2]float64) analysis.Arm {
		a := analysis.Arm{Metrics: []analysis.Suff{{}}}
		for _, p := range periods {
			m := stats.ProportionMoments(p[0], p[1])
			a.Units += int64(p[0])
			a.Metrics[0].Moments.Merge(m)
			a.Periods = append(a.Periods, analysis.Arm{Units: int64(p[0]), Metrics: []analysis.Suff{{Moments: m}}})
		}
		return a
	}
	rep, err := analysis.Build(analysis.Input{Experiment: "bx", Phase: 1, Options: analysis.DefaultOptions,
		Variants: []analysis.VariantSpec{{Key: "control", Weight: 0.5}, {Key: "bundle", Weight: 0.5}},
		Metrics:  []analysis.MetricSpec{{Metric: conv}},
		Periods: []analysis.PeriodSpec{{Index: 0, Start: start, End: start.Add(time.Hour), Weights: []float64{0.5, 0.5}},
			{Index: 1, Start: start.Add(time.Hour), End: start.Add(2 * time.Hour), Weights: []float64{0.2, 0.8}}},
		Data: analysis.Data{Overall: []analysis.Arm{arm([2]float64{500, 50}, [2]float64{200, 20}), arm([2]float64{500, 70}, [2]float64{800, 110})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var text, html strings.Builder
	if err := writeReportText(&text, rep); err != nil {
		t.Fatal(err)
	}
	if err := report.WritePage(&html, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 periods of constant weights",
		"2026-11-30 09:00:00  20.0% (200)  80.0% (800)",
		"not unbiased effect sizes",
		"expected",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(html.String(), "<td>80.0% (800)</td>") || !strings.Contains(html.String(), "weights by period") {
		t.Log(html.String())
		t.Errorf("HTML lacks the periods table")
	}
}
