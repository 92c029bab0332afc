package analysis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
)

// TestTheReportMarksWhenABudgetConstrainedAVariant: the budgets' log says when a variant's
// budget was spent (and opened again); the report lists those stretches of its window and
// warns its reader from which date the variant served the control's experience.
func TestTheReportMarksWhenABudgetConstrainedAVariant(t *testing.T) {
	db := dbtest.New(t)
	start := ts(t, "2026-06-01T00:00:00Z")
	day := func(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }
	seedExperiment(t, db, "budgeted", "running", nil, "",
		phase{variants: arms("control", 0.34, "bundle", 0.33, "points", 0.33), start: start})
	expose(t, db, "budgeted", 1, "a", "control", day(0).Add(time.Hour), "", false)
	expose(t, db, "budgeted", 1, "b", "bundle", day(0).Add(time.Hour), "", false)
	expose(t, db, "budgeted", 1, "c", "points", day(0).Add(time.Hour), "", false)
	logged := func(variant, kind, ev string, at time.Time) {
		mustExec(t, db, `INSERT INTO offer_budget_log (experiment, variant, kind, event, spent, budget, at)
			VALUES ('budgeted', $1, $2, $3, 100, 100, $4)`, variant, kind, ev, at)
	}
	logged("points", "points", "exhausted", day(-5)) // before the window, and over before it
	logged("points", "points", "reopened", day(-4))
	logged("", "discount", "exhausted", day(-1)) // the experiment's own, spent before the window opened
	logged("", "discount", "reopened", day(1))
	logged("points", "points", "exhausted", day(2).Add(9*time.Hour))
	logged("points", "points", "reopened", day(4))
	logged("bundle", "discount", "exhausted", day(9).Add(14*time.Hour+3*time.Minute))
	logged("bundle", "discount", "exhausted", day(11)) // a second close while closed changes nothing
	mustExec(t, db, `INSERT INTO offer_budget_log (experiment, variant, kind, event, spent, budget, at)
		VALUES ('other', 'bundle', 'discount', 'exhausted', 1, 1, $1)`, day(3))

	rep, err := source(db, day(14)).Report(context.Background(), analysis.ReportRequest{Experiment: "budgeted", Options: uncapped})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Time) *time.Time { return &d }
	want := []analysis.Constraint{
		{Variant: "", Kind: "discount", Since: start, Until: at(day(1))},
		{Variant: "points", Kind: "points", Since: day(2).Add(9 * time.Hour), Until: at(day(4))},
		{Variant: "bundle", Kind: "discount", Since: day(9).Add(14*time.Hour + 3*time.Minute)},
	}
	if len(rep.Constrained) != len(want) {
		t.Fatalf("constrained %+v, want %+v", rep.Constrained, want)
	}
	for i, w := range want {
		g := rep.Constrained[i]
		if g.Variant != w.Variant || g.Kind != w.Kind || !g.Since.Equal(w.Since) || (g.Until == nil) != (w.Until == nil) ||
			(g.Until != nil && !g.Until.Equal(*w.Until)) {
			t.Errorf("constraint %d: %+v, want %+v", i, g, w)
		}
	}
	text := strings.Join(rep.Warnings, "\n")
	if !strings.Contains(text, "variant bundle's discount budget was spent from 2026-06-10 14:03 UTC to the end of the window") {
		t.Errorf("the warnings do not give the bundle's date:\n%s", text)
	}
}

// TestABudgetSpentAmongBackDatedExposuresKeepsItsDate: exposures back-dated to before the
// phase's start (the simulator's past days) are analysed, so a budget that ran out among them
// is marked from its own date, not from the start.
func TestABudgetSpentAmongBackDatedExposuresKeepsItsDate(t *testing.T) {
	db := dbtest.New(t)
	start := ts(t, "2026-06-15T00:00:00Z")
	day := func(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }
	seedExperiment(t, db, "backdated", "running", nil, "",
		phase{variants: arms("control", 0.5, "bundle", 0.5), start: start})
	expose(t, db, "backdated", 1, "a", "control", day(-14), "", false)
	expose(t, db, "backdated", 1, "b", "bundle", day(-13), "", false)
	mustExec(t, db, `INSERT INTO offer_budget_log (experiment, variant, kind, event, spent, budget, at)
		VALUES ('backdated', 'bundle', 'discount', 'exhausted', 100, 100, $1)`, day(-5))
	rep, err := source(db, start.Add(time.Hour)).Report(context.Background(), analysis.ReportRequest{Experiment: "backdated", Options: uncapped})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Constrained) != 1 || !rep.Constrained[0].Since.Equal(day(-5)) {
		t.Fatalf("constrained %+v, want bundle's budget from %s", rep.Constrained, day(-5))
	}
}
