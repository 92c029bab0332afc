package results_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/results"
)

var actor = experiments.Actor{Role: "admin", Name: "test"}

// started stores and starts a two-arm experiment with n exposed shoppers per arm.
func started(t *testing.T, db *sqlx.DB, clk *apptest.Clock, key string, n int) {
	t.Helper()
	store := experiments.NewStore(db, clk.Now)
	ctx := context.Background()
	if _, err := store.Create(ctx, actor, experiments.Definition{Key: key, Name: key, Variants: []experiments.Variant{
		{Key: "control", Name: "A", Weight: 0.5, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
		{Key: "b", Name: "B", Weight: 0.5, Strategy: experiments.Strategy{Type: experiments.StrategySuggestion, Products: []string{"sku-1"}, Timing: experiments.TimingCart}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Transition(ctx, actor, key, experiments.ActionStart, nil); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
			SELECT $1, 1, 's' || i, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'b' END, $2
			FROM generate_series(1, $3) i`, key, clk.Now().Add(-time.Hour), 2*n); err != nil {
			t.Fatal(err)
		}
	}
}

func newScheduler(db *sqlx.DB, clk *apptest.Clock, refresh time.Duration) *results.Scheduler {
	return results.NewScheduler(db, db, results.Config{Refresh: refresh, Clock: clk.Now})
}

func TestSnapshotsAreComputedWhenDueAndNotBefore(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Now().UTC().Truncate(time.Second))
	ctx := context.Background()
	started(t, db, clk, "exp", 100)
	draft := experiments.NewStore(db, clk.Now)
	if _, err := draft.Create(ctx, actor, experiments.Definition{Key: "draft", Name: "d", Variants: []experiments.Variant{
		{Key: "a", Name: "A", Weight: 0.5, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
		{Key: "b", Name: "B", Weight: 0.5, Strategy: experiments.Strategy{Type: experiments.StrategyNone}},
	}}); err != nil {
		t.Fatal(err)
	}
	s := newScheduler(db, clk, time.Hour)
	mustRun := func(want int) {
		t.Helper()
		n, err := s.RunDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The bundle ideas count as one, the first time and every hour.
		if n != want {
			t.Fatalf("computed %d snapshots, want %d", n, want)
		}
	}
	mustRun(2) // the running experiment (never the draft), and the bundle ideas
	latest, err := s.Store().Latest(ctx, "exp")
	if err != nil || latest == nil || latest.Report == nil {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	if latest.Summary.Units != 200 || latest.Phase != 1 || !latest.ComputedAt.Equal(clk.Now()) {
		t.Errorf("summary %+v phase %d at %v", latest.Summary, latest.Phase, latest.ComputedAt)
	}
	mustRun(0)
	clk.Advance(59 * time.Minute)
	mustRun(0)
	clk.Advance(time.Minute)
	mustRun(2)
	// Refresh now: due at once, whatever its age.
	clk.Advance(time.Second)
	if err := s.Refresh(ctx, "exp", "ops"); err != nil {
		t.Fatal(err)
	}
	if at, _ := s.Store().Pending(ctx, "exp"); at == nil {
		t.Fatal("the request is not pending")
	}
	mustRun(1)
	if at, _ := s.Store().Pending(ctx, "exp"); at != nil {
		t.Fatalf("the request is still pending at %v", at)
	}
	list, _ := s.Store().List(ctx, "exp", 10)
	if len(list) != 3 {
		t.Errorf("%d snapshots kept, want 3", len(list))
	}
	// A stop makes a last one, then none.
	clk.Advance(time.Second)
	if _, err := experiments.NewStore(db, clk.Now).Transition(ctx, actor, "exp", experiments.ActionStop, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	mustRun(1)
	clk.Advance(5 * time.Hour)
	mustRun(1) // only the bundle ideas
}

func TestAnExperimentWithoutExposuresGetsASnapshotThatSaysSo(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Now().UTC().Truncate(time.Second))
	started(t, db, clk, "empty", 0)
	s := newScheduler(db, clk, time.Hour)
	if _, err := s.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Store().Latest(context.Background(), "empty")
	if err != nil || snap == nil {
		t.Fatal(snap, err)
	}
	if snap.Report != nil || snap.Error == "" {
		t.Errorf("want the reason and no report, got %+v", snap)
	}
}

func TestTwoSchedulersComputeEachSnapshotOnce(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Now().UTC().Truncate(time.Second))
	for _, k := range []string{"e1", "e2", "e3", "e4"} {
		started(t, db, clk, k, 50)
	}
	a, b := newScheduler(db, clk, time.Hour), newScheduler(db, clk, time.Hour)
	var wg sync.WaitGroup
	for _, s := range []*results.Scheduler{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.RunDue(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var per []int
	if err := db.Select(&per, `SELECT count(*) FROM results_snapshots GROUP BY experiment_key`); err != nil {
		t.Fatal(err)
	}
	if len(per) != 4 {
		t.Fatalf("snapshots of %d experiments, want 4", len(per))
	}
	for _, n := range per {
		if n != 1 {
			t.Errorf("an experiment got %d snapshots from two schedulers, want 1", n)
		}
	}
	var ideas int
	if err := db.Get(&ideas, `SELECT count(*) FROM affinity_snapshots`); err != nil || ideas != 1 {
		t.Errorf("%d affinity snapshots, want 1 (%v)", ideas, err)
	}
}

func TestRunStopsWithItsContextAndAnswersRefreshAtOnce(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Now().UTC().Truncate(time.Second))
	started(t, db, clk, "exp", 10)
	stored := make(chan string, 10)
	s := results.NewScheduler(db, db, results.Config{Refresh: time.Hour, Clock: clk.Now, Stored: func(k string) { stored <- k }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// The first round computes the missing snapshot (and the bundle ideas)...
	waitStored(t, stored, "exp")
	// ...and a refresh asked for later wakes Run at once, an hour before the next round.
	clk.Advance(time.Second)
	if err := s.Refresh(context.Background(), "exp", "ops"); err != nil {
		t.Fatal(err)
	}
	waitStored(t, stored, "exp")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM results_snapshots`); err != nil || n != 2 {
		t.Errorf("%d snapshots, want 2 (%v)", n, err)
	}
}

// waitStored waits until the scheduler says it stored key's snapshot.
func waitStored(t *testing.T, stored <-chan string, key string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case k := <-stored:
			if k == key {
				return
			}
		case <-timeout:
			t.Fatalf("no snapshot of %s stored", key)
		}
	}
}

func TestTrimKeepsAWeekThenTheLastOfEachDay(t *testing.T) {
	db := dbtest.New(t)
	clk := apptest.NewClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	s := newScheduler(db, clk, time.Hour)
	ctx := context.Background()
	for _, at := range []time.Time{
		time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 10, 18, 0, 0, 0, time.UTC), // old: keep the 18:00
		time.Date(2026, 11, 11, 9, 0, 0, 0, time.UTC),                                                 // old, alone on its day
		time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC), // recent: keep both
	} {
		if _, err := s.Store().Save(ctx, db, &results.Snapshot{Experiment: "exp", Phase: 1, ComputedAt: at, Error: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	var hours []time.Time
	if err := db.Select(&hours, `SELECT computed_at FROM results_snapshots ORDER BY computed_at`); err != nil {
		t.Fatal(err)
	}
	want := []string{"11-10 18", "11-11 09", "11-29 09", "11-29 18"}
	if len(hours) != len(want) {
		t.Fatalf("kept %v, want %v", hours, want)
	}
	for i, h := range hours {
		if got := h.UTC().Format("01-02 15"); got != want[i] {
			t.Errorf("kept %s, want %s", got, want[i])
		}
	}
}
