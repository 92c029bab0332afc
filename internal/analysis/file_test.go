package analysis_test

import (
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
	rep, err := analysis.FileReport(f, "units.csv", analysis.FileOptions{Options: analysis.Options{Alpha: 0.05, Correction: c}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestFileModeMatchesReference(t *testing.T) {
	var want unitsExpected
	readJSON(t, "units_expected.json", &want)
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
			checkResult(t, got, w, padj)
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
		got, err := analysis.Plan(analysis.PlanRequest{Baseline: w.Baseline, StdDev: w.StdDev, MDE: w.MDE, Relative: w.Relative,
			Variants: w.Variants, Alpha: w.Alpha, Power: w.Power, DailyTraffic: 1000})
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
}
