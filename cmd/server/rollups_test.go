package main

import (
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
)

// TestRollupsCommand builds the report rollups of a database loaded without a server running
// (`server rollups`), then finds nothing more to read.
func TestRollupsCommand(t *testing.T) {
	url, db := testDatabase(t)
	db.MustExec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, started_at)
		VALUES ('x', 'x', 'running', 1, 'x', 'shopper_id', 1,
		'[{"key":"control","strategy":{"type":"none"}},{"key":"b","strategy":{"type":"none"}}]', now() - interval '2 days')`)
	db.MustExec(`INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at)
		SELECT key, 1, seed, coverage, variants, started_at FROM experiments`)
	db.MustExec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
		VALUES ('x', 1, 's-1', 'b', now() - interval '1 day')`)
	db.MustExec(`INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		VALUES ('e-1', 'order_completed', 's-1', now() - interval '1 hour', 'o-1', 2500, 0, 'EUR')`)

	for run, want := range []string{`"rebuilt":true`, `"events":0`} {
		out, err := servertest.Command(t, []string{"DATABASE_URL=" + url}, "rollups").CombinedOutput()
		if err != nil {
			t.Fatalf("server rollups (run %d): %v\n%s", run+1, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("run %d logged %s, want %s", run+1, out, want)
		}
	}
	var revenue int64
	if err := db.Get(&revenue, `SELECT revenue FROM analysis_rollups WHERE shopper_id = 's-1'`); err != nil || revenue != 2500 {
		t.Fatalf("the shopper's rollup revenue is %d (%v), want 2500", revenue, err)
	}
}

// testDatabase is a freshly migrated database: its URL, for a server, and a pool on it, for the
// test.
func testDatabase(t *testing.T) (string, *sqlx.DB) {
	t.Helper()
	url := dbtest.URL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return url, db
}
