package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/dbtest"
)

// runCLI runs the command line and returns its exit status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// oneLineError checks an error is a single line with the expected text and exit status.
func oneLineError(t *testing.T, wantCode int, wantText string, args ...string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	if code != wantCode {
		t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, wantCode, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "analyze: ") || !strings.Contains(last, wantText) {
		t.Errorf("%v: stderr %q, want one line containing %q", args, stderr, wantText)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	oneLineError(t, 2, "a command is needed")
	oneLineError(t, 2, `unknown command "reprot"`, "reprot")
	oneLineError(t, 2, "report: flag provided but not defined: -bogus", "report", "--bogus")
	oneLineError(t, 2, "--experiment KEY is required", "report")
	oneLineError(t, 2, `--format must be one of text, json, csv, html, got "pdf"`, "report", "--experiment", "x", "--format", "pdf")
	oneLineError(t, 2, `--correction must be holm, bh or none, got "bonferroni"`, "report", "--experiment", "x", "--correction", "bonferroni")
	oneLineError(t, 2, "alpha must be between 0 and 0.5, got 1.5", "report", "--experiment", "x", "--alpha", "1.5")
	oneLineError(t, 2, `--window must be a positive duration such as 36h or 14d, got "soon"`, "report", "--experiment", "x", "--window", "soon")
	oneLineError(t, 2, `invalid value "x" for flag -phase`, "report", "--experiment", "x", "--phase", "x")
	oneLineError(t, 2, `unexpected argument "extra"`, "report", "--experiment", "x", "extra")
	oneLineError(t, 2, "--input FILE is required", "file")
	oneLineError(t, 2, "weights must look like", "file", "--input", "testdata/units.csv", "--weights", "half")
	oneLineError(t, 2, `--cap must be a quantile between 0.5 and 1 such as 0.999, or off, got "99.9"`, "file", "--input", "testdata/units.csv", "--cap", "99.9")
	oneLineError(t, 2, "a ratio must look like name=numerator/denominator", "file", "--input", "testdata/units.csv", "--ratio", "aov")
	oneLineError(t, 2, "minimum units must not be negative", "file", "--input", "testdata/units.csv", "--min-units", "-1")
	oneLineError(t, 2, "--baseline and --mde are required", "plan", "--baseline", "0.1")
	oneLineError(t, 2, "baseline rate must be strictly between 0 and 1", "plan", "--baseline", "1.5", "--mde", "0.1")
	oneLineError(t, 2, "--min-orders and --top must be at least 1", "affinity", "--top", "0")
	oneLineError(t, 2, `--format must be one of text, json, csv, got "html"`, "list", "--format", "html")
	if code, out, _ := runCLI(t, "report", "-h"); code != 0 || !strings.Contains(out, "-experiment") {
		t.Errorf("report -h: exit %d, %q", code, out)
	}
}

func TestDatabaseUnreachable(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	for _, args := range [][]string{{"report", "--experiment", "x"}, {"list"}, {"affinity"}} {
		oneLineError(t, 1, "database unreachable at DATABASE_URL (postgres://nobody@127.0.0.1:1/none", args...)
		_, _, stderr := runCLI(t, args...)
		if strings.Contains(stderr, "secret") {
			t.Errorf("the password leaked: %q", stderr)
		}
	}
}

func TestFileCommand(t *testing.T) {
	oneLineError(t, 1, "cannot read testdata/missing.csv: no such file or directory", "file", "--input", "testdata/missing.csv")
	oneLineError(t, 1, `testdata/bad_value.csv:4: column revenue: "abc" is not a number`, "file", "--input", "testdata/bad_value.csv")

	code, out, stderr := runCLI(t, "file", "--input", "testdata/units.csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Values from internal/analysis/testdata: treat_a vs control on converted has a lift of
	// +39.4%, p = 0.0496 raw and 0.199 after Holm over 4 tests (units_expected.json, statsmodels);
	// its score interval for the ratio is [+0.0523%, +94.5%] (independent.json, mpmath). The
	// interval is unadjusted, which the header says, while the verdict is adjusted.
	for _, want := range []string{
		"SRM check: ok",
		"converted (proportion, primary)",
		"treat_a vs control on converted: no significant difference, +39.4% [+0.0523%, +94.5%], p = 0.199 after Holm",
		"revenue (mean)",
		"Intervals: 95% intervals of each comparison on its own, not adjusted for the 4 comparisons in this report; \"p adj\" and the verdicts are adjusted (after Holm)",
		"Lift: treatment mean / control mean − 1, relative to control",
		"Capping: revenue-like values held within the 0.1–99.9th percentiles of all units: revenue to [0, 224] (1 unit)",
		"diff 95% CI",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "file", "--input", "testdata/units.csv", "--format", "json", "--correction", "none")
	if code != 0 {
		t.Fatal(code)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"experiment", "phase", "alpha", "correction", "control", "variants", "srm", "results"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("json lacks %q", k)
		}
	}
	r0 := rep["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"metric", "kind", "variant", "control_units", "treatment_units", "control_mean", "treatment_mean",
		"diff", "diff_ci", "lift", "lift_ci", "p_value", "p_adjusted", "significant", "test"} {
		if _, ok := r0[k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	if r0["p_value"] != r0["p_adjusted"] {
		t.Errorf("with --correction none p_adjusted %v differs from p_value %v", r0["p_adjusted"], r0["p_value"])
	}

	code, out, _ = runCLI(t, "file", "--input", "testdata/units.csv", "--format", "csv")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[0], "segment,metric,kind,currency,variant") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}

	dir := t.TempDir()
	page := filepath.Join(dir, "r.html")
	if code, _, stderr := runCLI(t, "file", "--input", "testdata/units.csv", "--format", "html", "--out", page); code != 0 {
		t.Fatalf("html: %d %s", code, stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if strings.Count(html, "<svg") != 2 { // a lift chart per metric
		t.Errorf("html has %d svg charts, want 2", strings.Count(html, "<svg"))
	}
	// Self-contained: nothing is fetched (the SVG namespace is a name, not a request).
	if m := regexp.MustCompile(`(src|href)\s*=\s*["']?(https?:)?//`).FindString(html); m != "" {
		t.Errorf("html references the network: %s", m)
	}
}

func TestPlanCommand(t *testing.T) {
	// Evan Miller's calculator: 14,751 per variation for 10% → 11%, alpha 0.05, power 0.8.
	code, out, _ := runCLI(t, "plan", "--baseline", "0.1", "--mde", "0.1", "--relative", "--daily-traffic", "5000", "--metrics", "1")
	if code != 0 || !strings.Contains(out, "14751 units per variant, 29502 in total over 2 variants") || !strings.Contains(out, "6 days at 5000") {
		t.Errorf("plan: exit %d\n%s", code, out)
	}
	// By default the plan counts the seven metrics a report tests, so each is planned at 0.05/7.
	code, out, _ = runCLI(t, "plan", "--baseline", "0.1", "--mde", "0.1", "--relative", "--format", "json")
	var p struct {
		Comparisons        int     `json:"comparisons"`
		AlphaPerComparison float64 `json:"alpha_per_comparison"`
		PerVariant         int64   `json:"per_variant"`
		Method             string  `json:"method"`
	}
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || p.Comparisons != 7 || math.Abs(p.AlphaPerComparison-0.05/7) > 1e-15 || p.PerVariant <= 14751 {
		t.Errorf("default plan: exit %d, %+v (%v)", code, p, err)
	}
	code, out, _ = runCLI(t, "plan", "--baseline", "0.1", "--mde", "0.1", "--relative", "--metrics", "1", "--sequential", "--format", "json")
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || p.Method != "sequential" || p.PerVariant <= 14751 {
		t.Errorf("sequential plan: exit %d, %+v (%v)", code, p, err)
	}
	oneLineError(t, 2, "--stddev-treatment and --multiplicative are for means", "plan", "--baseline", "0.1", "--mde", "0.1", "--relative", "--multiplicative")
	oneLineError(t, 2, "--metrics must be at least 1", "plan", "--baseline", "0.1", "--mde", "0.1", "--metrics", "0")
}

// seedDB gives the command a fresh database with a small experiment, through DATABASE_URL.
func seedDB(t *testing.T) *sqlx.DB {
	t.Helper()
	url := dbtest.URL(t)
	t.Setenv("DATABASE_URL", url)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestReportCommandOnDatabase(t *testing.T) {
	db := seedDB(t)
	start := time.Now().Add(-72 * time.Hour).UTC()
	v := `[{"key":"control","name":"c","weight":0.5,"control":true,"strategy":{"type":"none"}},{"key":"bundle10","name":"b","weight":0.5,"strategy":{"type":"none"}}]`
	db.MustExec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, target_products, started_at, metrics)
		VALUES ('skewed','Skewed','running',1,'skewed','shopper_id',1,$1,'["sku-c"]',$2,'{"primary":"conversion"}'), ('fresh','Fresh','running',1,'fresh','shopper_id',1,$1,'[]',$2,'{}'),
		('plan','Draft','draft',1,'plan','shopper_id',1,$1,'[]',NULL,'{}')`, v, start)
	db.MustExec(`INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at)
		VALUES ('skewed',1,'skewed',1,$1,$2), ('fresh',1,'fresh',1,$1,$2)`, v, start)
	// 300 control and 200 treatment shoppers on 50/50 weights: χ² = 20, p ≈ 7.7e-6, a mismatch.
	db.MustExec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen)
		SELECT 'skewed', 1, 's' || g, CASE WHEN g <= 300 THEN 'control' ELSE 'bundle10' END, '{"device":"mobile"}', $1::timestamptz + (g % 48) * interval '1 hour'
		FROM generate_series(1, 500) g`, start)
	db.MustExec(`INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		SELECT 'e' || g, 'order_completed', 's' || g, $1::timestamptz + interval '49 hours', 'o' || g, 1000 + g, 0, 'EUR'
		FROM generate_series(1, 500) g WHERE g % 3 = 0`, start)

	oneLineError(t, 1, `unknown experiment "nope" (analyze list shows the experiments)`, "report", "--experiment", "nope")
	oneLineError(t, 1, `no exposures yet for experiment "fresh" phase 1`, "report", "--experiment", "fresh")
	oneLineError(t, 1, `no exposures yet: experiment "plan" is a draft and has not started`, "report", "--experiment", "plan")

	code, out, stderr := runCLI(t, "report", "--experiment", "skewed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "!!! SAMPLE RATIO MISMATCH") || !strings.Contains(strings.SplitN(out, "\n", 3)[1], "DO NOT TRUST THE RESULTS") {
		t.Errorf("the SRM warning is not first and loud:\n%s", out)
	}
	if !strings.Contains(out, "bundle10 vs control on conversion") || !strings.Contains(out, "conversion (proportion, primary)") {
		t.Errorf("report text:\n%s", out)
	}
	if stderr != "" {
		t.Errorf("progress written to a non-terminal stderr: %q", stderr)
	}

	code, out, _ = runCLI(t, "report", "--experiment", "skewed", "--format", "json", "--segment", "device", "--sequential", "--cuped")
	var rep struct {
		SRM struct {
			Chi2     float64 `json:"chi2"`
			Mismatch bool    `json:"mismatch"`
		} `json:"srm"`
		Method   string `json:"method"`
		Segments []struct {
			Value string `json:"value"`
		} `json:"segments"`
		Results []struct {
			Metric string   `json:"metric"`
			PValue *float64 `json:"p_value"`
			Reason string   `json:"reason"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if !rep.SRM.Mismatch || rep.SRM.Chi2 != 20 || rep.Method != "sequential" || len(rep.Segments) != 1 || rep.Segments[0].Value != "mobile" {
		t.Errorf("json report: %+v", rep)
	}
	// Nobody bought the target SKU, so cross_sell_rate has no variation: absent, with a reason, not NaN.
	for _, r := range rep.Results {
		if r.Metric == "cross_sell_rate" && (r.PValue != nil || r.Reason == "") {
			t.Errorf("cross_sell_rate %+v", r)
		}
	}
	if rep.Results[0].Metric != "conversion" {
		t.Errorf("the primary metric is not first: %s", rep.Results[0].Metric)
	}

	page := filepath.Join(t.TempDir(), "r.html")
	if code, _, stderr := runCLI(t, "report", "--experiment", "skewed", "--format", "html", "--out", page); code != 0 {
		t.Fatalf("html: %s", stderr)
	}
	b, _ := os.ReadFile(page)
	// The chart over days draws confidence sequences, which may be looked at every day.
	if !strings.Contains(string(b), "Cumulative effect over days") || !strings.Contains(string(b), "dashed: confidence sequence") || strings.Count(string(b), "<svg") < 2 {
		t.Errorf("html lacks the cumulative chart of confidence sequences or the effect charts")
	}

	code, out, _ = runCLI(t, "report", "--experiment", "skewed", "--sql")
	if code != 0 || !strings.Contains(out, "FROM exposures") || strings.Contains(out, "$1") {
		t.Errorf("--sql: exit %d\n%s", code, out)
	}
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM ("+strings.TrimSuffix(strings.TrimSpace(out), ";")+") q"); err != nil || n == 0 {
		t.Errorf("the printed SQL does not run: %v", err)
	}

	code, out, _ = runCLI(t, "list")
	if code != 0 || !regexp.MustCompile(`skewed\s+running\s+1\s+3\s+500\s+Skewed`).MatchString(out) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "affinity", "--format", "json")
	if code != 0 || !strings.Contains(out, `"orders": 0`) {
		t.Errorf("affinity: exit %d\n%s", code, out)
	}
}

func TestComplementsCommandListsTheStrongestPairs(t *testing.T) {
	db := seedDB(t)
	code, out, _ := runCLI(t, "complements")
	if code != 0 || !strings.Contains(out, "No complements snapshot has been built yet") {
		t.Fatalf("before any build: exit %d\n%s", code, out)
	}
	// 30 orders of shampoo and conditioner, 12 of razor and gel, 40 of soap alone: two pairs,
	// the first the stronger.
	at := time.Now().Add(-time.Hour)
	for i, skus := range slices.Concat(slices.Repeat([][]string{{"shampoo", "conditioner"}}, 30),
		slices.Repeat([][]string{{"razor", "gel"}}, 12), slices.Repeat([][]string{{"soap"}}, 40)) {
		for line, sku := range skus {
			db.MustExec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
				VALUES ($1, $2, $3, $1, $1, $4, 1, 100)`, fmt.Sprintf("o%d", i), line, at, sku)
		}
	}
	if _, err := complements.NewBuilder(db, time.Now).Build(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "complements", "--top", "3", "--k", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var listed []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "→" {
			listed = append(listed, f[0]+" "+f[2])
		}
	}
	// conditioner and shampoo tie on G² (a pair's G² is symmetric): by SKU.
	if want := []string{"conditioner shampoo", "shampoo conditioner", "gel razor"}; !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v\n%s", listed, want, out)
	}
}
