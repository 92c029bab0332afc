package analysis_test

import (
	"slices"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
)

// TestRollupJobRenewsPlannerStatistics checks that the rollup job analyses the tables it fills
// when they grew a lot, and the report's tables when they were never analysed, so that a report
// right after a load (or on a standby, which cannot analyse) is planned on statistics, and that
// it leaves them alone when little changed.
func TestRollupJobRenewsPlannerStatistics(t *testing.T) {
	db := dbtest.New(t)
	analysed := func(table string) bool {
		t.Helper()
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1`, table); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	// Autovacuum, which may analyse a table too when the machine is slow enough for it to come
	// by, keeps out of the job's tables here: what analyses them is the job.
	mustExec(t, db, `ALTER TABLE analysis_rollups SET (autovacuum_enabled = false)`)
	mustExec(t, db, `ALTER TABLE analysis_rollup_shoppers SET (autovacuum_enabled = false)`)
	event(t, db, "order_completed", "someone", seedStart, "o-first", 100, 0)
	p := advance(t, db, 0)
	if !p.Rebuilt || !slices.Contains(p.Analysed, "events") || !analysed("events") {
		t.Fatalf("first pass %+v: want a rebuild that analyses events (partitioned: autovacuum never does)", p)
	}

	loadSeed(t, db)
	p = advance(t, db, 50)
	if p.Rebuilt || p.Events == 0 {
		t.Fatalf("second pass %+v, want the seed read incrementally", p)
	}
	for _, table := range []string{"analysis_rollups", "analysis_rollup_shoppers"} {
		if !slices.Contains(p.Analysed, table) || !analysed(table) {
			t.Errorf("after %d new rows the job analysed %v, not %s", p.Shoppers, p.Analysed, table)
		}
	}

	// One more order changes a row or two: nothing to analyse again.
	event(t, db, "order_completed", "someone", seedStart.Add(time.Hour), "o-second", 100, 0)
	if p = advance(t, db, 0); p.Events != 1 || slices.Contains(p.Analysed, "analysis_rollups") {
		t.Errorf("a pass of one order %+v analysed the rollups again", p)
	}
}
