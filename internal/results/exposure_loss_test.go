package results_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/report"
)

// TestTheStoredSnapshotWarnsOfLostExposures: exposures the recorder could not keep (issue 16)
// are on the record in exposure_losses; the snapshot the console shows warns of them with
// their count and share, as `analyze report` does, and the page renders the warning.
func TestTheStoredSnapshotWarnsOfLostExposures(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Now().UTC().Truncate(time.Second))
	ctx := context.Background()
	started(t, db, clk, "lossy", 100)
	if _, err := db.Exec(`INSERT INTO exposure_losses (experiment_key, phase, variant, hour, reason, lost)
		VALUES ('lossy', 1, 'control', $1, 'queue_full', 10)`, clk.Now().Add(-time.Hour).Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := newScheduler(db, clk, time.Hour)
	if _, err := s.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Store().Latest(ctx, "lossy")
	if err != nil || snap == nil || snap.Report == nil {
		t.Fatalf("latest: %+v, %v", snap, err)
	}
	// 10 lost beside 200 kept: 4.8% of 210; control 10 of 110.
	const want = "10 exposures of this window were lost by the recorder (4.8% of 210 recorded or lost): control 10 (9.1%), b 0 (0.00%)"
	var found bool
	for _, w := range snap.Report.Warnings {
		found = found || strings.HasPrefix(w, want)
	}
	if !found {
		t.Fatalf("the stored snapshot does not warn of the loss; warnings: %q", snap.Report.Warnings)
	}
	page, err := report.Body(snap.Report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "Warning: "+want) {
		t.Errorf("the console's page of the snapshot does not show the warning:\n%s", page)
	}
}
