package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/pgcluster"
	"github.com/xsell/xsell/migrations"
)

// startCluster starts a throwaway TCP cluster, removed when the test ends.
func startCluster(t *testing.T, start func(pgcluster.Options) (*pgcluster.Cluster, error), name string) *pgcluster.Cluster {
	t.Helper()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c, err := start(pgcluster.Options{Dir: filepath.Join(t.TempDir(), name), Port: port})
	if err != nil {
		t.Fatalf("starting the %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("removing the %s: %v", name, err)
		}
	})
	return c
}

// loadStandbyFixture writes a stopped three-arm experiment with 1,500 shoppers, their orders,
// refunds, order lines and bonus entries, and runs the rollup job over it.
func loadStandbyFixture(t *testing.T, db *sqlx.DB) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, target_products, metrics, started_at, stopped_at)
		 VALUES ('replica', 'Replica', 'stopped', 1, 'replica', 'shopper_id', 1,
		  '[{"key":"control","name":"c","weight":0.34,"control":true,"strategy":{"type":"none"}},
		    {"key":"bundle10","name":"b","weight":0.33,"strategy":{"type":"bundle","products":["sku-cond"],"discount_percent":10,"timing":"cart"}},
		    {"key":"points200","name":"p","weight":0.33,"strategy":{"type":"loyalty_points","products":["sku-cond"],"bonus_points":200,"timing":"checkout"}}]',
		  '["sku-cond"]', '{"primary":"cross_sell_rate"}', '2026-02-01', '2026-02-21')`,
		`INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at, ended_at)
		 SELECT key, 1, seed, coverage, variants, started_at, stopped_at FROM experiments`,
		`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
		 SELECT 'replica', 1, 's' || g, (ARRAY['control','bundle10','points200'])[1 + g % 3],
		        jsonb_build_object('device', CASE WHEN g % 5 < 3 THEN 'mobile' ELSE 'desktop' END),
		        timestamptz '2026-02-01' + g * interval '17 minutes', g % 500 = 0
		 FROM generate_series(1, 1500) g`,
		`INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		 SELECT 'e' || g, CASE WHEN g % 7 = 0 THEN 'order_refunded' ELSE 'order_completed' END, 's' || (g % 1500 + 1),
		        timestamptz '2026-01-20' + g * interval '13 minutes', 'o' || (g / 7 * 7 + 1),
		        1000 + (g * 7919) % 9000, (g % 4 = 0)::int * 300, 'EUR'
		 FROM generate_series(1, 3000) g`,
		`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
		 SELECT id, 0, occurred_at, order_id, shopper_id, CASE WHEN amount % 3 = 0 THEN 'sku-cond' ELSE 'sku-x' END, 1, amount
		 FROM events WHERE type = 'order_completed'`,
		`INSERT INTO loyalty_accounts (shopper_id, created_at) SELECT DISTINCT shopper_id, timestamptz '2026-01-01' FROM events`,
		`INSERT INTO loyalty_entries (shopper_id, kind, points, source, order_id, experiment, variant, created_at)
		 SELECT e.shopper_id, 'earn', 200, 'order', e.order_id, 'replica', 'points200', e.occurred_at
		 FROM events e JOIN order_items i ON i.event_id = e.id AND i.sku = 'sku-cond'
		 JOIN exposures x ON x.shopper_id = e.shopper_id AND x.variant = 'points200'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	if _, err := analysis.NewRollups(db, analysis.RollupOptions{}).Advance(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitForReplay returns once the standby has replayed everything the primary has written (its
// insert position: a throwaway cluster commits without waiting for the WAL to be written).
// Postgres before 17 has no call that waits for a position, so the standby's replay position
// is read until it reaches the primary's.
func waitForReplay(t *testing.T, primary, standby *sqlx.DB) {
	t.Helper()
	var lsn string
	if err := primary.Get(&lsn, `SELECT pg_current_wal_insert_lsn()::text`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var done bool
		if err := standby.GetContext(ctx, &done, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn); err != nil {
			t.Fatalf("waiting for the standby to replay %s: %v", lsn, err)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the standby has not replayed %s in a minute", lsn)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestReportOnHotStandby runs reports on a read-only streaming replica: every statement of a
// report must be one a standby accepts (no write, no ANALYZE, no temporary table), and the
// figures must be the primary's.
func TestReportOnHotStandby(t *testing.T) {
	ctx := context.Background()
	primary := startCluster(t, func(o pgcluster.Options) (*pgcluster.Cluster, error) {
		c, err := pgcluster.Open(o)
		if err != nil {
			return nil, err
		}
		return c, c.Start(ctx)
	}, "primary")
	db, err := sqlx.Open("postgres", primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	loadStandbyFixture(t, db)
	standby := startCluster(t, func(o pgcluster.Options) (*pgcluster.Cluster, error) {
		return primary.StartStandby(ctx, o, "analysts")
	}, "standby")

	// A later change on the primary reaches the standby.
	if _, err := db.Exec(`UPDATE exposures SET multiple_variants = true WHERE shopper_id = 's7'`); err != nil {
		t.Fatal(err)
	}
	if _, err := analysis.NewRollups(db, analysis.RollupOptions{}).Advance(ctx); err != nil {
		t.Fatal(err)
	}
	sdb, err := sqlx.Open("postgres", standby.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	waitForReplay(t, db, sdb)
	var excluded int
	if err := sdb.Get(&excluded, `SELECT count(*) FROM exposures WHERE multiple_variants`); err != nil || excluded != 4 {
		t.Fatalf("the standby holds %d shoppers in two variants (%v), want the primary's 4", excluded, err)
	}

	// The standby cannot analyse: the planner statistics its reports use are those the
	// primary's rollup job made (the rollups, and events, a partitioned table autovacuum never
	// analyses), replicated with the data.
	var tables []string
	if err := sdb.Select(&tables, `SELECT DISTINCT tablename::text FROM pg_stats
		WHERE schemaname = 'public' AND tablename IN ('analysis_rollups', 'events') ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tables, ",") != "analysis_rollups,events" {
		t.Errorf("the standby has statistics of %v, want analysis_rollups and events from the primary's job", tables)
	}

	report := func(url string, flags ...string) map[string]any {
		t.Helper()
		args := append([]string{"report", "--experiment", "replica", "--format", "json"}, flags...)
		if url != "" {
			args = append(args, "--database-url", url)
		}
		code, out, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return rep
	}
	for _, flags := range [][]string{nil, {"--cuped"}, {"--segment", "device"}, {"--from", "events"}} {
		onStandby, onPrimary := report(standby.URL(), flags...), report(primary.URL(), flags...)
		a, _ := json.Marshal(onStandby)
		b, _ := json.Marshal(onPrimary)
		if string(a) != string(b) {
			t.Errorf("%v: the standby's report differs from the primary's:\n%s\n%s", flags, a, b)
		}
		if ds := onStandby["data_source"].(map[string]any); flags == nil && ds["form"] != analysis.FormRollupGroups {
			t.Errorf("the standby's report read %v", ds)
		}
	}
	// ANALYZE_DATABASE_URL sends analysts to the replica whatever DATABASE_URL says.
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	t.Setenv("ANALYZE_DATABASE_URL", standby.URL())
	if rep := report(""); rep["experiment"] != "replica" {
		t.Errorf("report through ANALYZE_DATABASE_URL: %v", rep)
	}
	log, err := os.ReadFile(filepath.Join(standby.Dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "ERROR") {
			t.Errorf("the standby refused a statement: %s", line)
		}
	}
}
