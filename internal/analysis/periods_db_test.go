package analysis_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/stats"
)

// seedSimpson stores a bandit whose treatment converts better within each period, but got
// most of its traffic in the period in which everyone converted less: 9,000/1,000 shoppers at
// 20% and 23% before the update, 1,000/9,000 at 5% and 7% after it.
func seedSimpson(t *testing.T, db *sqlx.DB) (start, update time.Time) {
	t.Helper()
	start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	update = start.Add(24 * time.Hour)
	seedExperiment(t, db, "simpson", "running", []string{"sku-x"}, `{"primary":"conversion"}`,
		phase{variants: arms("control", 0.9, "bundle", 0.1), start: start})
	mustExec(t, db, `UPDATE experiments SET allocation = '{"type":"bandit","metric":"conversion","burn_in":"24h","update_every":"24h","min_weight":0.01,"min_units":100,"sampling":"top_two","leader_share":0.8}' WHERE key = 'simpson'`)
	mustExec(t, db, `INSERT INTO bandit_updates (experiment_key, phase, period, at, weights) VALUES ('simpson', 1, 1, $1, '{"control":0.1,"bundle":0.9}')`, update)
	n := 0
	add := func(variant string, from time.Time, units, converted int) {
		exposeAndOrder(t, db, "simpson", &n, variant, from, units, converted)
	}
	add("control", start, 9000, 1800)
	add("bundle", start, 1000, 230)
	add("control", update, 1000, 50)
	add("bundle", update, 9000, 630)
	return start, update
}

// exposeAndOrder stores units shoppers of key's phase 1 exposed to variant a second apart from
// from, the first converted of them ordering EUR 20.00 a minute later; *n numbers the shoppers.
func exposeAndOrder(t *testing.T, db *sqlx.DB, key string, n *int, variant string, from time.Time, units, converted int) {
	t.Helper()
	mustExec(t, db, `INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
		SELECT $1, 1, $1 || ($2 + i), $3, $4::timestamptz + i * interval '1 second' FROM generate_series(1, $5) i`,
		key, *n, variant, from, units)
	mustExec(t, db, `INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		SELECT $1 || 'o' || ($2 + i), 'order_completed', $1 || ($2 + i), $3::timestamptz + i * interval '1 second' + interval '1 minute',
		       $1 || 'o' || ($2 + i), 2000, 0, 'EUR' FROM generate_series(1, $4) i`, key, *n, from, converted)
	*n += units
}

// SRM is checked within each period: two periods at 50/50 that each split 6,000/4,000, in
// opposite directions, add up to a perfect 10,000/10,000 that a pooled check would pass.
func TestBanditSRMIsCheckedInEachPeriod(t *testing.T) {
	db := dbtest.New(t)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	update := start.Add(24 * time.Hour)
	seedExperiment(t, db, "drift", "running", []string{"sku-x"}, `{"primary":"conversion"}`,
		phase{variants: arms("control", 0.5, "bundle", 0.5), start: start})
	mustExec(t, db, `UPDATE experiments SET allocation = '{"type":"bandit","metric":"conversion","burn_in":"24h","update_every":"24h","min_weight":0.01,"min_units":100,"sampling":"top_two","leader_share":0.8}' WHERE key = 'drift'`)
	mustExec(t, db, `INSERT INTO bandit_updates (experiment_key, phase, period, at, weights) VALUES ('drift', 1, 1, $1, '{"control":0.5,"bundle":0.5}')`, update)
	n := 0
	exposeAndOrder(t, db, "drift", &n, "control", start, 6000, 600)
	exposeAndOrder(t, db, "drift", &n, "bundle", start, 4000, 400)
	exposeAndOrder(t, db, "drift", &n, "control", update, 4000, 400)
	exposeAndOrder(t, db, "drift", &n, "bundle", update, 6000, 600)
	now := update.Add(24 * time.Hour)
	r, err := analysis.NewSource(db, func() time.Time { return now }).Report(context.Background(),
		analysis.ReportRequest{Experiment: "drift", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	// Each period: (1000² + 1000²)/5000 = 400 on one degree of freedom; summed, 800 on two.
	if !r.SRM.Mismatch || r.SRM.DF != 2 || r.SRM.Chi2 == nil {
		t.Fatalf("SRM %+v, want a mismatch on two degrees of freedom", r.SRM)
	}
	near(t, "chi2", *r.SRM.Chi2, 800)
}

func TestBanditReportComparesWithinPeriods(t *testing.T) {
	db := dbtest.New(t)
	start, update := seedSimpson(t, db)
	now := update.Add(24 * time.Hour)
	r, err := analysis.NewSource(db, func() time.Time { return now }).Report(context.Background(),
		analysis.ReportRequest{Experiment: "simpson", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	var conv *analysis.Result
	for i := range r.Results {
		if r.Results[i].Metric == "conversion" {
			conv = &r.Results[i]
		}
	}
	if conv == nil || conv.Test != stats.TestStratified {
		t.Fatalf("conversion result %+v, want the stratified test", conv)
	}
	// Within each period +3 and +2 points, Mantel–Haenszel weights 900 and 900: +2.5 points.
	near(t, "diff", conv.Diff, 0.025)
	if conv.Verdict != analysis.VerdictBetter {
		t.Errorf("verdict %s (p %v), want better", conv.Verdict, *conv.PValue)
	}
	// Pooled, the treatment converts 8.6% against 18.5%: the trap the report avoids.
	pooledC, pooledT := 1850.0/10000, 860.0/10000
	if !(pooledT < pooledC) {
		t.Fatal("the seed should make the pooled comparison look worse")
	}
	// SRM against each period's weights: the traffic matches them exactly.
	if r.SRM.Mismatch || r.SRM.DF != 2 || *r.SRM.Chi2 > 1e-9 {
		t.Errorf("SRM %+v, want the two periods' checks combined, no mismatch", r.SRM)
	}
	if r.Bandit == nil || len(r.Bandit.Periods) != 2 || r.Bandit.Metric != "conversion" {
		t.Fatalf("bandit section %+v", r.Bandit)
	}
	p0, p1 := r.Bandit.Periods[0], r.Bandit.Periods[1]
	if !p0.Start.Equal(start) || !p0.End.Equal(update) || !p1.Start.Equal(update) || !p1.End.Equal(now) {
		t.Errorf("periods %v–%v and %v–%v", p0.Start, p0.End, p1.Start, p1.End)
	}
	if p0.Units["bundle"] != 1000 || p1.Units["bundle"] != 9000 || p1.Weights["bundle"] != 0.9 {
		t.Errorf("periods %+v %+v", p0, p1)
	}
	// Over the phase the bundle was meant to get (10,000·0.1 + 10,000·0.9)/20,000: half the traffic.
	for _, v := range r.Variants {
		near(t, "expected weight of "+v.Key, v.ExpectedWeight, 0.5)
	}
	if !strings.Contains(strings.Join(r.Warnings, " "), "not unbiased effect sizes") {
		t.Errorf("warnings %q should say the estimates are for decision", r.Warnings)
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"bandit":{"metric":"conversion"`) {
		t.Errorf("JSON %.300s", b)
	}
	if r.Cumulative != nil {
		t.Error("a bandit's report should draw no confidence sequences")
	}

	// What the bandit's updater reads: the metric by period and arm.
	data, err := analysis.NewSource(db, func() time.Time { return now }).ByPeriod(context.Background(), "simpson", "conversion")
	if err != nil {
		t.Fatal(err)
	}
	if len(data.Arms) != 2 || data.Arms[0][1].Moments.N != 1000 || data.Arms[0][1].Moments.Sum != 230 || data.Arms[1][0].Moments.Sum != 50 {
		t.Errorf("by period: %+v", data.Arms)
	}
}
