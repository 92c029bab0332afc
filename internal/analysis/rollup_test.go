package analysis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
)

// advance runs the rollup job until it has read everything committed, as the server's job
// does every second.
func advance(t *testing.T, db *sqlx.DB, batch int) analysis.RollupProgress {
	t.Helper()
	p, err := analysis.NewRollups(db, analysis.RollupOptions{Batch: batch}).Advance(context.Background())
	if err != nil {
		t.Fatalf("rollup job: %v", err)
	}
	return p
}

// sameReport compares two reports number by number (relative 1e-9, absolute near 0), all
// but where they read their figures from.
func sameReport(t *testing.T, what string, got, want *analysis.Report) {
	t.Helper()
	var g, w any
	for _, c := range []struct {
		r   *analysis.Report
		out *any
	}{{got, &g}, {want, &w}} {
		r := *c.r
		r.Source = nil
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, c.out); err != nil {
			t.Fatal(err)
		}
	}
	var diffs []string
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		switch av := a.(type) {
		case map[string]any:
			bv, ok := b.(map[string]any)
			if !ok || len(av) != len(bv) {
				diffs = append(diffs, fmt.Sprintf("%s: %v against %v", path, a, b))
				return
			}
			for k := range av {
				walk(path+"."+k, av[k], bv[k])
			}
		case []any:
			bv, ok := b.([]any)
			if !ok || len(av) != len(bv) {
				diffs = append(diffs, fmt.Sprintf("%s: %d items against %v", path, len(av), b))
				return
			}
			for i := range av {
				walk(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])
			}
		case float64:
			bv, ok := b.(float64)
			if !ok || math.Abs(av-bv) > 1e-9*math.Max(1, math.Abs(bv)) {
				diffs = append(diffs, fmt.Sprintf("%s: %v against %v", path, a, b))
			}
		default:
			if a != b {
				diffs = append(diffs, fmt.Sprintf("%s: %v against %v", path, a, b))
			}
		}
	}
	walk("report", g, w)
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
		}
		t.Errorf("%s: the rollups' report differs from the events':\n%s", what, fmt.Sprint(diffs))
	}
}

// compareWithEvents runs one report from the rollups and the same from events, checks they
// agree and returns where the first read its figures.
func compareWithEvents(t *testing.T, src *analysis.Source, what string, req analysis.ReportRequest) analysis.DataSource {
	t.Helper()
	got, err := src.Report(context.Background(), req)
	if err != nil {
		t.Fatalf("%s from rollups: %v", what, err)
	}
	req.FromEvents = true
	want, err := src.Report(context.Background(), req)
	if err != nil {
		t.Fatalf("%s from events: %v", what, err)
	}
	if want.Source.Form != analysis.FormEvents {
		t.Fatalf("%s: the reference read %s", what, want.Source.Form)
	}
	sameReport(t, what, got, want)
	return *got.Source
}

// seededRequests are the reports the seeded fixture is read with: every option that changes
// what is summed (capping, CUPED's covariate, segments) or how (sequential).
func seededRequests() map[string]analysis.ReportRequest {
	capped := uncapped
	capped.Cap = analysis.DefaultCap
	tight := uncapped
	tight.Cap = 0.9 // caps tens of units at each end, the lower cap above 0 for some metrics
	cuped := capped
	cuped.CUPED = true
	seq := uncapped
	seq.Sequential = true
	return map[string]analysis.ReportRequest{
		"uncapped":       {Experiment: "seeded", Options: uncapped},
		"defaults":       {Experiment: "seeded", Options: analysis.DefaultOptions},
		"capped at 0.9":  {Experiment: "seeded", Options: tight},
		"CUPED, capped":  {Experiment: "seeded", Options: cuped},
		"sequential":     {Experiment: "seeded", Options: seq},
		"segment device": {Experiment: "seeded", Segment: "device", Options: capped},
		"segment, CUPED": {Experiment: "seeded", Segment: "device", Options: cuped},
	}
}

func TestRollupsGiveTheSeededReportExactly(t *testing.T) {
	for _, how := range []string{"rebuilt", "incremental"} {
		t.Run(how, func(t *testing.T) {
			db := dbtest.New(t)
			if how == "incremental" {
				// An order read first makes the job's first pass incremental rather than a
				// rebuild; then the fixture arrives, read in small batches.
				event(t, db, "order_completed", "someone", seedStart, "o-first", 100, 0)
				if p := advance(t, db, 0); !p.Rebuilt {
					t.Fatalf("first pass %+v, want a rebuild", p)
				}
			}
			loadSeed(t, db)
			p := advance(t, db, 50)
			if (how == "rebuilt") != p.Rebuilt || p.Events == 0 && how == "incremental" {
				t.Fatalf("job: %+v", p)
			}
			src := source(db, seedEnd.Add(30*24*time.Hour))
			for what, req := range seededRequests() {
				ds := compareWithEvents(t, src, what, req)
				want := analysis.FormRollupGroups
				if req.Segment != "" {
					want = analysis.FormRollupRows
				}
				if ds.Form != want || ds.UnitsFromEvents != 0 {
					t.Errorf("%s: read from %+v, want %s with nothing from events", what, ds, want)
				}
			}
			// --sql says what its statement reads: the rollups' sums, their rows for a segment,
			// and events for a conversion window, which the rollups cannot answer (the window
			// report is still exact).
			window := analysis.ReportRequest{Experiment: "seeded", Window: 7 * 24 * time.Hour, Options: uncapped}
			if ds := compareWithEvents(t, src, "window", window); ds.Form != analysis.FormEvents {
				t.Errorf("a window report read %+v, want events", ds)
			}
			for _, c := range []struct {
				req  analysis.ReportRequest
				says string
			}{
				{seededRequests()["defaults"], "the sums the rollup job keeps per variant and day (analysis_rollup_groups"},
				{seededRequests()["segment device"], "each shopper's rollup row (analysis_rollups"},
				{window, "every shopper's figures from events: a conversion window (--window)"},
			} {
				p, err := src.Prepare(context.Background(), c.req)
				if err != nil {
					t.Fatal(err)
				}
				q, err := p.InlineSQL()
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(strings.ReplaceAll(q, "\n-- ", " "), c.says) {
					t.Errorf("--sql for %+v does not say it reads %q:\n%.600s", c.req, c.says, q)
				}
			}
			// The uncapped figures are also the independent reference's.
			rep, err := src.Report(context.Background(), analysis.ReportRequest{Experiment: "seeded", Options: uncapped})
			if err != nil {
				t.Fatal(err)
			}
			var want seedExpected
			readJSON(t, "seed_expected.json", &want)
			for _, w := range want.Results {
				r := findResult(t, rep.Results, w.Metric, w.Variant)
				near(t, w.Metric+"/"+w.Variant+" control mean", r.ControlMean, w.ControlMean)
				near(t, w.Metric+"/"+w.Variant+" treatment mean", r.TreatmentMean, w.TreatmentMean)
			}
		})
	}
}

func TestRollupsIncrementalEqualsRebuilt(t *testing.T) {
	snapshot := func(db *sqlx.DB) string {
		var rows, groups []string
		if err := db.Select(&rows, `SELECT r::text FROM analysis_rollups r ORDER BY experiment_key, phase, shopper_id`); err != nil {
			t.Fatal(err)
		}
		if err := db.Select(&groups, `SELECT g::text FROM analysis_rollup_groups g ORDER BY experiment_key, phase, state, variant, day`); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(rows, groups)
	}
	rebuilt := dbtest.New(t)
	loadSeed(t, rebuilt)
	advance(t, rebuilt, 0)
	incremental := dbtest.New(t)
	loadSeed(t, incremental)
	// A cursor before the first event makes the job read the whole history in batches, as if
	// every event had arrived after it started (at 0 it would rebuild).
	mustExec(t, incremental, `UPDATE analysis_rollup_state SET seq = -1`)
	if p := advance(t, incremental, 37); p.Rebuilt {
		t.Fatalf("job rebuilt: %+v", p)
	}
	if a, b := snapshot(rebuilt), snapshot(incremental); a != b {
		t.Errorf("rows and sums differ between a rebuild and reading event by event:\n%.2000s\n%.2000s", a, b)
	}
}

// checkpoint compares every report of the live experiment with events, with the job behind
// (what it has not read comes from events) and then caught up (nothing from events but the
// shoppers in fromEvents), and returns the caught-up report.
func checkpoint(t *testing.T, db *sqlx.DB, src *analysis.Source, step string, fromEvents int64) *analysis.Report {
	t.Helper()
	reqs := map[string]analysis.ReportRequest{
		"capped":  {Experiment: "live", Options: analysis.DefaultOptions},
		"CUPED":   {Experiment: "live", Options: analysis.Options{Alpha: 0.05, Correction: "holm", Cap: 0.8, CUPED: true}},
		"segment": {Experiment: "live", Segment: "device", Options: uncapped},
	}
	for what, req := range reqs {
		if ds := compareWithEvents(t, src, step+", job behind, "+what, req); ds.Form == analysis.FormEvents && ds.Reason == "" {
			t.Errorf("%s, job behind, %s: read events without a reason", step, what)
		}
	}
	advance(t, db, 3)
	for what, req := range reqs {
		ds := compareWithEvents(t, src, step+", job caught up, "+what, req)
		if ds.Form == analysis.FormEvents || ds.UnitsFromEvents != fromEvents {
			t.Errorf("%s, %s: read from %+v, want rollups with %d units from events", step, what, ds, fromEvents)
		}
	}
	rep, err := src.Report(context.Background(), reqs["capped"])
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRollupsStayExactAsDataArrives(t *testing.T) {
	db := dbtest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	h := func(hours float64) time.Time { return now.Add(time.Duration(hours * float64(time.Hour))) }
	seedExperiment(t, db, "live", "running", []string{"sku-x"}, "", phase{variants: arms("control", 0.5, "treat", 0.5), start: h(-72)})
	// Reports end an hour ahead, so that they end after every pass of the job; the job runs
	// on the database's clock, which is this one.
	src := source(db, h(1))
	event(t, db, "order_completed", "nobody", h(-100), "o0", 100, 0) // the job's first pass: a rebuild of nothing
	advance(t, db, 0)

	for i, s := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		v := []string{"control", "treat"}[i%2]
		expose(t, db, "live", 1, s, v, h(-48+float64(i)), []string{"mobile", "desktop"}[i%3%2], false)
	}
	event(t, db, "order_completed", "a", h(-47), "a1", 3000, 0, "sku-x")
	event(t, db, "order_completed", "b", h(-60), "b0", 9000, 0)   // before exposure: CUPED's covariate only
	event(t, db, "order_refunded", "c", h(-20), "c1", 500, 0)     // a refund read before its order
	event(t, db, "order_completed", "c", h(-21), "c1", 2000, 200) // and the order, older
	event(t, db, "order_completed", "d", h(-10), "d2", 4000, 0)
	event(t, db, "order_completed", "d", h(-30), "d1", 1500, 0, "sku-x") // out of order
	checkpoint(t, db, src, "orders and refunds", 0)

	// Orders of a shopper whose exposure is written after the job read them.
	event(t, db, "order_completed", "late", h(-5), "l1", 7000, 0, "sku-x")
	advance(t, db, 0)
	expose(t, db, "live", 1, "late", "treat", h(-40), "mobile", false)
	checkpoint(t, db, src, "a late exposure", 0)

	// A shopper found in a second variant leaves the analysis.
	mustExec(t, db, `UPDATE exposures SET multiple_variants = true WHERE shopper_id = 'a'`)
	rep := checkpoint(t, db, src, "a second variant", 0)
	if rep.ExcludedMultipleVariants != 1 {
		t.Errorf("excluded %d, want a", rep.ExcludedMultipleVariants)
	}

	// A bonus and its reversal, written to the ledger by crediting.
	mustExec(t, db, `INSERT INTO loyalty_accounts (shopper_id, created_at) VALUES ('d', $1)`, h(-10))
	mustExec(t, db, `INSERT INTO loyalty_entries (shopper_id, kind, points, source, order_id, experiment, variant, created_at)
		VALUES ('d', 'earn', 300, 'order', 'd2', 'live', 'treat', $1)`, h(-9))
	mustExec(t, db, `INSERT INTO loyalty_entries (shopper_id, kind, points, source, order_id, reverses, created_at)
		SELECT 'd', 'reverse', -100, 'order', 'd2', id, $1 FROM loyalty_entries WHERE order_id = 'd2'`, h(-8))
	checkpoint(t, db, src, "a bonus and its reversal", 0)

	// An order dated after the report's end counts only from a later report: until then its
	// shopper is read from events.
	event(t, db, "order_completed", "e", h(2), "e1", 5000, 0)
	checkpoint(t, db, src, "an order dated ahead", 1)

	// New orders keep arriving.
	for i := range 20 {
		s := []string{"f", "g", "h", "b"}[i%4]
		event(t, db, "order_completed", s, h(-float64(i)), fmt.Sprintf("n%d", i), int64(500+97*i), int64(i%3*10), "sku-x")
	}
	checkpoint(t, db, src, "a burst of orders", 1)

	// The experiment stops; an order after its end was read already and stops counting.
	event(t, db, "order_completed", "f", h(-0.5), "after", 8000, 0)
	advance(t, db, 0)
	mustExec(t, db, `UPDATE experiment_phases SET ended_at = $1`, h(-1))
	mustExec(t, db, `UPDATE experiments SET status = 'stopped', stopped_at = $1`, h(-1))
	rep, err := src.Report(context.Background(), analysis.ReportRequest{Experiment: "live", Options: uncapped})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source.Form != analysis.FormEvents || rep.Source.Reason == "" {
		t.Errorf("before the job clips the rows at the end, the report read %+v", rep.Source)
	}
	checkpoint(t, db, src, "the phase ended", 0)

	// Bonus points are priced at the program's point value, which changed.
	mustExec(t, db, `UPDATE loyalty_program SET point_value = 7`)
	checkpoint(t, db, src, "a new point value", 0)

	// A shopper whose sums the database refuses to store: set aside and read from events; the
	// job goes on.
	expose(t, db, "live", 1, "poison", "treat", h(-30), "mobile", false)
	event(t, db, "order_completed", "poison", h(-20), "p1", 5e18, 0)
	event(t, db, "order_completed", "poison", h(-19), "p2", 5e18, 0)
	event(t, db, "order_completed", "g", h(-18), "g-after-poison", 1234, 0)
	checkpoint(t, db, src, "a poison shopper", 1)
	var q []struct {
		Key   string `db:"key"`
		State string `db:"sqlstate"`
	}
	if err := db.Select(&q, `SELECT key, sqlstate FROM quarantine WHERE consumer = $1`, analysis.RollupConsumer); err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Key != "poison" || q[0].State != "22003" {
		t.Errorf("quarantine holds %+v, want the poison shopper refused for a bigint out of range", q)
	}
	var behind int
	if err := db.Get(&behind, `SELECT count(*) FROM events WHERE seq > (SELECT seq FROM analysis_rollup_state)
		AND type IN ('order_completed', 'order_refunded')`); err != nil || behind != 0 {
		t.Errorf("%d orders left behind the cursor (%v): the poison stopped the job", behind, err)
	}
}
