package experiments

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
)

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
