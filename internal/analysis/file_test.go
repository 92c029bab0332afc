package analysis_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/stats"
)

type unitsExpected struct {
	Order []string `json:"order"`
	Units []int64  `json:"units"`
	SRM   struct {
		Chi2   float64 `json:"chi2"`
		PValue float64 `json:"p_value"`
	} `json:"srm"`
	Results []expectedResult `json:"results"`
}

func fileReport(t *testing.T, c stats.Correction) *analysis.Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "units.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := analysis.FileReport(f, "units.csv", analysis.FileOptions{Options: analysis.Options{Alpha: 0.05, Correction: c}}) // uncapped, as the reference
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestFileModeMatchesReference(t *testing.T) {
	var want unitsExpected
	readJSON(t, "units_expected.json", &want)
	_, ivs, _ := independentIntervals(t)
	for _, c := range []stats.Correction{stats.CorrectionHolm, stats.CorrectionBH} {
		rep := fileReport(t, c)
		if rep.Control != "control" {
			t.Errorf("control = %s", rep.Control)
		}
		for i, k := range want.Order {
			if rep.Variants[i].Key != k || rep.Variants[i].Units != want.Units[i] {
				t.Errorf("variant %d = %+v, want %s with %d", i, rep.Variants[i], k, want.Units[i])
			}
		}
		near(t, "srm chi2", *rep.SRM.Chi2, want.SRM.Chi2)
		near(t, "srm p", *rep.SRM.PValue, want.SRM.PValue)
		for _, w := range want.Results {
			got := findResult(t, rep.Results, w.Metric, w.Variant)
			kind := analysis.Mean
			if w.Metric == "converted" {
				kind = analysis.Proportion
			}
			if got.Kind != kind {
				t.Errorf("%s kind %s, want %s", w.Metric, got.Kind, kind)
			}
			padj := w.PHolm
			if c == stats.CorrectionBH {
				padj = w.PBH
			}
			checkResult(t, got, w, padj, ivs[w.Metric+"/"+w.Variant])
		}
	}
}

func TestFileModeOptionsAndErrors(t *testing.T) {
	read := func(csv string, fo analysis.FileOptions) error {
		fo.Options = analysis.DefaultOptions
		_, err := analysis.FileReport(strings.NewReader(csv), "u.csv", fo)
		return err
	}
	ok := "variant,unit_id,m\na,1,1\nb,2,0\na,3,0\nb,4,1\n"
	for _, c := range []struct {
		csv  string
		fo   analysis.FileOptions
		want string
	}{
		{"", analysis.FileOptions{}, "u.csv: the file is empty; it needs a header with a variant column"},
		{"unit_id,m\n1,2\n", analysis.FileOptions{}, "u.csv:1: no variant column in the header (unit_id,m)"},
		{"variant,unit_id\na,1\n", analysis.FileOptions{}, "u.csv:1: no metric columns besides variant and unit_id"},
		{"variant,m\n", analysis.FileOptions{}, "u.csv: no rows after the header"},
		{"variant,m\na,1\na,2\n", analysis.FileOptions{}, "u.csv: only one variant (a); a comparison needs at least two"},
		{"variant,m\na,1\nb,2\na,x\n", analysis.FileOptions{}, `u.csv:4: column m: "x" is not a number`},
		{"variant,m\na,1\nb,\n", analysis.FileOptions{}, `u.csv:3: column m: "" is not a number`},
		{"variant,m\na,1\nb,2,3\n", analysis.FileOptions{}, "u.csv:3: wrong number of fields"},
		{"variant,m\na,1\n\"b,2\n", analysis.FileOptions{}, `u.csv:3: extraneous or missing " in quoted-field`},
		{"variant,m\na,1\n,2\n", analysis.FileOptions{}, "u.csv:3: the variant is empty"},
		{"variant,m,m\na,1,1\n", analysis.FileOptions{}, `u.csv:1: column "m" appears twice`},
		{ok, analysis.FileOptions{Control: "zz"}, `control variant "zz" is not in u.csv (variants: a, b)`},
		{ok, analysis.FileOptions{Weights: map[string]float64{"a": 1}}, `weights give no weight for variant "b"`},
		{ok, analysis.FileOptions{Weights: map[string]float64{"a": 1, "b": 1, "c": 1}}, `weights name variant "c", which is not in u.csv (variants: a, b)`},
	} {
		err := read(c.csv, c.fo)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: error %v, want %q", c.csv, err, c.want)
		}
	}
	// Control defaults to the first variant when none is called control; b is the control here.
	rep, err := analysis.FileReport(strings.NewReader(ok), "u.csv", analysis.FileOptions{Control: "b", Weights: map[string]float64{"a": 0.25, "b": 0.75}, Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Control != "b" || rep.Results[0].Variant != "a" || rep.Variants[1].ExpectedWeight != 0.75 {
		t.Errorf("control %s, first result %s, weights %+v", rep.Control, rep.Results[0].Variant, rep.Variants)
	}
	for _, bad := range []string{"a", "a=0", "a=x", "a=1,a=2", "=1"} {
		if _, err := analysis.ParseWeights(bad); err == nil {
			t.Errorf("weights %q accepted", bad)
		}
	}
}

func TestPlanMatchesReference(t *testing.T) {
	var want []struct {
		Kind       string  `json:"kind"`
		Baseline   float64 `json:"baseline"`
		StdDev     float64 `json:"stddev"`
		MDE        float64 `json:"mde"`
		Relative   bool    `json:"relative"`
		Variants   int     `json:"variants"`
		Alpha      float64 `json:"alpha"`
		Power      float64 `json:"power"`
		PerVariant int64   `json:"per_variant"`
	}
	readJSON(t, "plan_expected.json", &want)
	// The first case is also Evan Miller's published calculator answer for a 10% baseline, +10%
	// relative, alpha 0.05, power 0.8: 14,751 per variation (evanmiller.org/ab-testing/sample-size.html).
	if want[0].PerVariant != 14751 {
		t.Fatalf("reference file disagrees with the published figure: %d", want[0].PerVariant)
	}
	for _, w := range want {
		// The reference splits alpha over the treatments of one metric.
		got, err := analysis.Plan(analysis.PlanRequest{Baseline: w.Baseline, StdDev: w.StdDev, MDE: w.MDE, Relative: w.Relative,
			Variants: w.Variants, Alpha: w.Alpha, Power: w.Power, DailyTraffic: 1000, Metrics: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got.PerVariant != w.PerVariant || string(got.Kind) != w.Kind || got.Total != w.PerVariant*int64(w.Variants) {
			t.Errorf("%+v: per variant %d (%s), want %d", w, got.PerVariant, got.Kind, w.PerVariant)
		}
		// Days at 1000 a day split over the variants, rounded up.
		if wantDays := (w.PerVariant*int64(w.Variants) + 999) / 1000; got.Days == nil || int64(*got.Days) != wantDays {
			t.Errorf("%+v: days %v, want %d", w, got.Days, wantDays)
		}
	}
	if _, err := analysis.Plan(analysis.PlanRequest{Baseline: 0.95, MDE: 0.1, Variants: 2, Alpha: 0.05, Power: 0.8}); err == nil {
		t.Error("a rate above 100% was planned")
	}
	// The family the report corrects over: 7 standard metrics × 2 treatments × (1 + 2 segments).
	req := analysis.PlanRequest{Baseline: 0.1, MDE: 0.1, Relative: true, Variants: 3, Alpha: 0.05, Power: 0.8, Segments: 2}
	got, err := analysis.Plan(req)
	if err != nil || got.Comparisons != 42 || got.AlphaPerComparison != 0.05/42 || got.Metrics != 7 {
		t.Errorf("comparisons %d, alpha per comparison %v, metrics %d (%v); want 42, 0.05/42 and 7", got.Comparisons, got.AlphaPerComparison, got.Metrics, err)
	}
	req.Correction = stats.CorrectionNone
	if got, _ := analysis.Plan(req); got.Comparisons != 1 || got.AlphaPerComparison != 0.05 {
		t.Errorf("without correction: %d comparisons at %v", got.Comparisons, got.AlphaPerComparison)
	}
	if _, err := analysis.Plan(analysis.PlanRequest{Baseline: 0.1, MDE: 0.01, Variants: 2, Alpha: 0.05, Power: 0.8, Multiplicative: true}); err == nil {
		t.Error("a multiplicative effect on a rate was accepted")
	}
}

func TestFileModeUnitsInTwoArmsAreLeftOutAndCounted(t *testing.T) {
	csv := "unit_id,variant,m\nu1,a,1\nu2,b,0\nu3,a,0\nu1,b,1\nu4,b,1\nu5,a,1\n"
	rep, err := analysis.FileReport(strings.NewReader(csv), "u.csv", analysis.FileOptions{Options: uncapped})
	if err != nil {
		t.Fatal(err)
	}
	// u1 is in a and in b: both its rows go; a keeps u3, u5 and b keeps u2, u4.
	if rep.ExcludedMultipleVariants != 1 || rep.Variants[0].Units != 2 || rep.Variants[1].Units != 2 {
		t.Errorf("excluded %d, variants %+v; want u1 left out and counted", rep.ExcludedMultipleVariants, rep.Variants)
	}
	if r := rep.Results[0]; r.ControlMean != 0.5 || r.TreatmentMean != 0.5 {
		t.Errorf("means %v, %v; want 0.5 and 0.5 without u1", r.ControlMean, r.TreatmentMean)
	}
	_, err = analysis.FileReport(strings.NewReader("unit_id,variant,m\nu1,a,1\nu2,b,0\nu1,a,0\n"), "u.csv", analysis.FileOptions{Options: uncapped})
	if err == nil || err.Error() != `u.csv:4: unit "u1" appears twice in variant a (first on line 2); a file holds one row per unit` {
		t.Errorf("a unit twice in one arm: %v", err)
	}
}

func TestFileModeMetricOptions(t *testing.T) {
	var b strings.Builder
	b.WriteString("variant,revenue,orders,refunds\n")
	// Control: revenue 1000 or 0 with 1 or 0 orders and a refund one unit in four; treatment
	// the same pattern with 1200 per order.
	for i := range 80 {
		fmt.Fprintf(&b, "control,%d,%d,%d\n", 1000*(i%2), i%2, b2i(i%4 == 0))
		fmt.Fprintf(&b, "treat,%d,%d,%d\n", 1200*(i%2), i%2, b2i(i%4 == 1))
	}
	fo := analysis.FileOptions{Options: uncapped, Currency: "EUR", LowerIsBetter: []string{"refunds"},
		Ratios: []analysis.RatioSpec{{Name: "aov", Num: "revenue", Den: "orders"}}}
	rep, err := analysis.FileReport(strings.NewReader(b.String()), "m.csv", fo)
	if err != nil {
		t.Fatal(err)
	}
	aov := findResult(t, rep.Results, "aov", "treat")
	if aov.Kind != analysis.Ratio || aov.ControlMean != 1000 || aov.TreatmentMean != 1200 || aov.Test != stats.TestDeltaZ || aov.Currency != "EUR" {
		t.Errorf("aov: %+v; want a ratio 1000 → 1200 EUR minor units", aov)
	}
	if r := findResult(t, rep.Results, "refunds", "treat"); !r.LowerIsBetter || r.Kind != analysis.Proportion {
		t.Errorf("refunds: %+v, want a lower-is-better proportion", r)
	}
	if r := findResult(t, rep.Results, "revenue", "treat"); r.Currency != "EUR" || rep.Currency != "EUR" {
		t.Errorf("revenue currency %q, report %q", r.Currency, rep.Currency)
	}
	if r := findResult(t, rep.Results, "orders", "treat"); r.Currency != "" {
		t.Errorf("orders is not money: %q", r.Currency)
	}
	for _, c := range []struct {
		fo   analysis.FileOptions
		want string
	}{
		{analysis.FileOptions{LowerIsBetter: []string{"cost"}}, `--lower-is-better: m.csv has no metric "cost" (metrics: revenue, orders, refunds)`},
		{analysis.FileOptions{Ratios: []analysis.RatioSpec{{"aov", "revenue", "basket"}}}, `ratio aov: m.csv has no column "basket" (columns: revenue, orders, refunds)`},
		{analysis.FileOptions{Ratios: []analysis.RatioSpec{{"orders", "revenue", "orders"}}}, `ratio orders: the name is already a column of m.csv`},
		{analysis.FileOptions{Currency: "EURO"}, `currency "EURO" must be an upper-case ISO 4217 code such as EUR`},
		{analysis.FileOptions{Money: []string{"revenue"}}, `m.csv: money columns need a currency (--currency)`},
	} {
		c.fo.Options = uncapped
		if _, err := analysis.FileReport(strings.NewReader(b.String()), "m.csv", c.fo); err == nil || err.Error() != c.want {
			t.Errorf("%+v: error %v, want %q", c.fo, err, c.want)
		}
	}
	for in, want := range map[string]analysis.RatioSpec{"aov=revenue/orders": {"aov", "revenue", "orders"}, " x = a / b ": {"x", "a", "b"}} {
		if got, err := analysis.ParseRatio(in); err != nil || got != want {
			t.Errorf("ParseRatio(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"aov", "aov=revenue", "=a/b", "x=/b"} {
		if _, err := analysis.ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) accepted", bad)
		}
	}
}

func TestFileModeCapsLikeTheDatabase(t *testing.T) {
	// The values of TestCappingAndMinimumUnits: the same cap of 5200 at quantile 0.95.
	csv := "variant,revenue\ncontrol,0\ncontrol,0\ncontrol,0\ncontrol,100\ncontrol,300\ncontrol,10000\ntreat,0\ntreat,0\ntreat,0\ntreat,200\ntreat,400\n"
	opts := uncapped
	opts.Cap = 0.95
	rep, err := analysis.FileReport(strings.NewReader(csv), "c.csv", analysis.FileOptions{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Caps) != 1 || rep.Caps[0] != (analysis.Cap{Metric: "revenue", Quantile: 0.95, Lower: 0, Upper: 5200, Capped: 1}) {
		t.Errorf("caps %+v, want revenue capped to [0, 5200], 1 unit", rep.Caps)
	}
	near(t, "capped control revenue", rep.Results[0].ControlMean, 5600.0/6)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
