package experiments

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xsell/xsell/internal/dbtest"
)

// runRecorder runs a recorder until the test ends; stop flushes it.
func runRecorder(t *testing.T, db *sqlx.DB, cfg RecorderConfig) (r *Recorder, stop func()) {
	t.Helper()
	r = NewRecorder(db, cfg, prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx, 5*time.Second)
	stop = func() { cancel(); <-r.Done() }
	t.Cleanup(stop)
	return r, stop
}

func TestOneExposureRowPerShopperAfterManyCalls(t *testing.T) {
	db := dbtest.New(t)
	r, stop := runRecorder(t, db, RecorderConfig{})
	s := snapshotOf(t, experimentFor("once", []float64{0.5, 0.5}, 1))
	for range 50 {
		for _, id := range []string{"s-1", "s-2", "s-3"} {
			s.Assign(id, map[string]any{"device": "mobile"}, nil, nil, func(e Exposure) { r.Record(e) })
		}
	}
	stop()
	var rows []struct {
		Shopper string `db:"shopper_id"`
		Device  string `db:"device"`
	}
	if err := db.Select(&rows, `SELECT shopper_id, attributes->>'device' AS device FROM exposures ORDER BY shopper_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Shopper != "s-1" || rows[2].Device != "mobile" {
		t.Fatalf("exposure rows = %+v, want one per shopper with attributes", rows)
	}
	if got := counterValue(t, r.written); got != 3 {
		t.Fatalf("rows sent = %v, want 3: in-memory de-duplication failed", got)
	}
}

func TestFirstExposureWinsAndASecondVariantFlagsTheShopper(t *testing.T) {
	db := dbtest.New(t)
	r, stop := runRecorder(t, db, RecorderConfig{})
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	r.Record(Exposure{Experiment: "e", Phase: 1, ShopperID: "s-1", Variant: "a", At: t0})
	r.Record(Exposure{Experiment: "e", Phase: 1, ShopperID: "s-1", Variant: "b", At: t0.Add(time.Hour)})
	r.Record(Exposure{Experiment: "e", Phase: 1, ShopperID: "s-2", Variant: "a", At: t0})
	r.Record(Exposure{Experiment: "e", Phase: 2, ShopperID: "s-1", Variant: "b", At: t0})
	stop()
	var rows []struct {
		Shopper string    `db:"shopper_id"`
		Phase   int       `db:"phase"`
		Variant string    `db:"variant"`
		Seen    time.Time `db:"first_seen"`
		Multi   bool      `db:"multiple_variants"`
	}
	if err := db.Select(&rows, `SELECT shopper_id, phase, variant, first_seen, multiple_variants FROM exposures ORDER BY phase, shopper_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %+v", rows)
	}
	if r := rows[0]; r.Shopper != "s-1" || r.Variant != "a" || !r.Seen.Equal(t0) || !r.Multi {
		t.Fatalf("s-1 phase 1 = %+v, want first variant a, flagged as seen in two", r)
	}
	if rows[1].Multi || rows[2].Multi {
		t.Fatalf("single-variant shoppers flagged: %+v", rows)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	r := NewRecorder(nil, RecorderConfig{QueueSize: 2}, prometheus.NewRegistry(), nil)
	for _, id := range []string{"a", "b", "c", "d"} {
		r.Record(Exposure{Experiment: "e", Phase: 1, ShopperID: id, Variant: "v"})
	}
	if got := counterValue(t, r.dropped); got != 2 {
		t.Fatalf("dropped = %v, want 2 (queue of 2, 4 exposures, no writer running)", got)
	}
}

func TestCacheSeesACommittedChangeThroughNotify(t *testing.T) {
	url := dbtest.URL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := NewStore(db, nil)
	// A reload period far longer than the test: only the notification can bring the change.
	cache := NewCache(store, url, time.Hour, nil)
	if err := cache.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-cache.reloaded
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cache.Run(ctx)

	def := experimentFor("notified", []float64{0.5, 0.5}, 1).Definition
	actor := Actor{Role: "admin", Name: "test"}
	if _, err := store.Create(ctx, actor, def); err != nil {
		t.Fatal(err)
	}
	waitFor(t, cache, func(s *Snapshot) bool { return s.byKey["notified"] != nil })
	start := time.Now()
	if _, err := store.Transition(ctx, actor, "notified", ActionStart, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, cache, func(s *Snapshot) bool { return s.byKey["notified"].status == StatusRunning })
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the cache saw the start after %s, want within 1s", d)
	}
}

// waitFor waits for reloads until the snapshot satisfies ok, failing after 5 s.
func waitFor(t *testing.T, c *Cache, ok func(*Snapshot) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !ok(c.Snapshot()) {
		select {
		case <-c.reloaded:
		case <-deadline:
			t.Fatal("the cache did not see the change within 5s")
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestAnUnchangedReloadKeepsTheSnapshot: the periodic reload finds nothing new most of the
// time, and then keeps the snapshot (and its generation, under which returning shoppers'
// requests are remembered as recorded); a real change makes a new one.
func TestAnUnchangedReloadKeepsTheSnapshot(t *testing.T) {
	db := dbtest.New(t)
	store := NewStore(db, nil)
	cache := NewCache(store, "", time.Hour, nil)
	ctx := context.Background()
	actor := Actor{Role: "admin", Name: "test"}
	if _, err := store.Create(ctx, actor, experimentFor("kept", []float64{0.5, 0.5}, 1).Definition); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Transition(ctx, actor, "kept", ActionStart, nil); err != nil {
		t.Fatal(err)
	}
	if err := cache.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first, checked := cache.Snapshot(), cache.Checked()
	if err := cache.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if cache.Snapshot() != first {
		t.Fatal("a reload with nothing changed replaced the snapshot")
	}
	if !cache.Checked().After(checked) {
		t.Fatalf("Checked() stayed at %v after a successful reload", checked)
	}
	if _, err := store.Transition(ctx, actor, "kept", ActionPause, nil); err != nil {
		t.Fatal(err)
	}
	if err := cache.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if s := cache.Snapshot(); s == first || s.Generation == first.Generation || s.byKey["kept"].status != StatusPaused {
		t.Fatal("a reload after a pause kept the old snapshot")
	}
}
