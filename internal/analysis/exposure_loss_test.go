package analysis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
)

// TestTheReportWarnsOfLostAndStagedExposures injects what the recorder leaves when it cannot
// keep up: counts in exposure_losses and rows still in exposure_log. The report of the window
// says how many were lost, their share overall and per variant, and why; losses outside the
// window or of another phase do not count.
func TestTheReportWarnsOfLostAndStagedExposures(t *testing.T) {
	db := dbtest.New(t)
	start := ts(t, "2026-06-01T00:00:00Z")
	end := ts(t, "2026-06-03T00:00:00Z")
	seedExperiment(t, db, "lossy", "stopped", nil, "", phase{variants: arms("control", 0.5, "treat", 0.5), start: start, end: &end})
	for i := range 100 {
		expose(t, db, "lossy", 1, fmt.Sprintf("c-%d", i), "control", start.Add(time.Duration(i)*7*time.Minute), "", false)
		expose(t, db, "lossy", 1, fmt.Sprintf("t-%d", i), "treat", start.Add(time.Duration(i)*7*time.Minute), "", false)
	}
	src := source(db, end)
	rep, err := src.Report(context.Background(), analysis.ReportRequest{Experiment: "lossy", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Warnings {
		if strings.Contains(w, "lost") || strings.Contains(w, "staged") {
			t.Fatalf("a report without loss warns %q", w)
		}
	}

	mustExec(t, db, `INSERT INTO exposure_losses (experiment_key, phase, variant, hour, reason, lost) VALUES
		('lossy', 1, 'control', '2026-06-01T10:00:00Z', 'queue_full', 8),
		('lossy', 1, 'control', '2026-06-02T10:00:00Z', 'quarantined', 2),
		('lossy', 1, 'treat',   '2026-06-02T23:00:00Z', 'shutdown', 1),
		('lossy', 1, 'treat',   '2026-06-03T00:00:00Z', 'queue_full', 500), -- after the window
		('lossy', 2, 'control', '2026-06-01T10:00:00Z', 'queue_full', 700), -- another phase
		('other', 1, 'control', '2026-06-01T10:00:00Z', 'queue_full', 900)`)
	mustExec(t, db, `INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants) VALUES
		('s-1', '2026-06-02T12:00:00Z', '{}', '{lossy,other}', '{1,1}', '{treat,a}'),
		('s-2', '2026-06-02T12:00:00Z', '{}', '{lossy}', '{2}', '{treat}'),
		('s-3', '2026-06-04T12:00:00Z', '{}', '{lossy}', '{1}', '{treat}')`)
	rep, err = src.Report(context.Background(), analysis.ReportRequest{Experiment: "lossy", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Warnings, "\n")
	// 11 lost of 200 kept + 11: 5.2%; control 10 of 110 (9.1%), treat 1 of 101 (0.99%).
	for _, want := range []string{
		"11 exposures of this window were lost by the recorder (5.2% of 211 recorded or lost)",
		"control 10 (9.1%), treat 1 (0.99%)",
		"why: queue full 8, quarantined 2, shutdown 1",
		"1 exposures of this window are still staged",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}

	// Products offered by a learned arm and lost: counted apart from exposures.
	mustExec(t, db, `INSERT INTO exposure_losses (experiment_key, phase, variant, hour, reason, lost, offers_lost) VALUES
		('lossy', 1, 'treat', '2026-06-01T10:00:00Z', 'queue_full', 0, 4),
		('lossy', 1, 'treat', '2026-06-02T22:00:00Z', 'shutdown', 0, 3)`)
	rep, err = src.Report(context.Background(), analysis.ReportRequest{Experiment: "lossy", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	all = strings.Join(rep.Warnings, "\n")
	for _, want := range []string{
		"11 exposures of this window were lost by the recorder (5.2% of 211 recorded or lost)",
		"why: queue full 8, quarantined 2, shutdown 1",
		"7 products offered by learned strategies in this window were lost by the recorder (treat 7)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}
