package complements_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/dbtest"
)

// server is what one server of the fleet holds: its own pool and cache of the model.
type server struct {
	db    *sqlx.DB
	cache *complements.Cache
}

// startServers starts n caches on the same database, each with its own pool and listener,
// whose backstop reload is an hour away: within a test, only NOTIFY (and the load that follows
// LISTEN) brings them a new snapshot. They stop when the test ends.
func startServers(t *testing.T, url string, n int) []server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var out []server
	for range n {
		db, err := sqlx.Open("postgres", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c := complements.NewCache(db, url, time.Hour, nil)
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
		out = append(out, server{db: db, cache: c})
	}
	return out
}

// waitAll waits until every server holds version, or fails the test after a minute.
func waitAll(t *testing.T, servers []server, version int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, s := range servers {
		if err := s.cache.WaitFor(ctx, version); err != nil {
			t.Fatalf("server %d never got snapshot %d (holds %d): %v", i, version, s.cache.Model().Version, err)
		}
	}
}

func TestTwoServersSeeTheSameSnapshotAfterNotify(t *testing.T) {
	url := dbtest.URL(t)
	servers := startServers(t, url, 2)
	db := servers[0].db
	fixture(t, db)
	setSettings(t, db, func(s *complements.Settings) { s.MinLLR = 5 })
	builder := complements.NewBuilder(db, clock)

	// The first snapshot may be built before the caches LISTEN; the load that follows LISTEN
	// brings it.
	first, err := builder.Build(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, servers, first.Version)
	// Both listen now: the second can reach them only by its notification.
	insertOrders(t, db, "more", basket{count: 10, skus: []string{"K", "H"}})
	second, err := builder.Build(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, servers, second.Version)
	for i, s := range servers {
		m := s.cache.Model()
		// K–H: 10 orders of 36; K in 14, H in 12 — bought together far more than by chance.
		if m.Version != second.Version || m.Orders != 36 || len(m.Of("K")) == 0 || m.Of("K")[0].SKU != "H" {
			t.Errorf("server %d holds version %d of %d orders, K's complements %v; want version %d, 36 orders, H first",
				i, m.Version, m.Orders, skus(m.Of("K")), second.Version)
		}
		if !s.cache.Healthy() {
			t.Errorf("server %d: cache unhealthy", i)
		}
	}
}

func TestRefreshUnderConcurrentReads(t *testing.T) {
	url := dbtest.URL(t)
	servers := startServers(t, url, 1)
	db, cache := servers[0].db, servers[0].cache
	setSettings(t, db, func(s *complements.Settings) { s.MinLLR = 0 })
	// Every order is {A, B} or {C}: in each snapshot, A's one complement, B, is in every
	// order that holds A. A reader that saw part of one snapshot and part of another would
	// find A–B's orders differ from the orders of A.
	insertOrders(t, db, "r0", basket{count: 5, skus: []string{"A", "B"}}, basket{count: 5, skus: []string{"C"}})

	// The readers stop once they read the last snapshot, whose version final then holds.
	var final atomic.Int64
	final.Store(-1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	seen := map[int64]bool{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []complements.Suggestion
			for {
				runtime.Gosched() // readers share two cores with the builds they race
				m := cache.Model()
				if !m.Built() {
					continue
				}
				a := m.Of("A")
				out = m.ForContext([]string{"A", "C"}, 3, 1, out[:0])
				var problem string
				switch {
				case len(a) != 1 || a[0].SKU != "B":
					problem = fmt.Sprintf("version %d: A's complements %v", m.Version, skus(a))
				case a[0].Orders != m.Of("B")[0].Orders || a[0].Confidence != 1:
					problem = fmt.Sprintf("version %d: A–B in %d orders, B–A in %d, confidence %v", m.Version, a[0].Orders, m.Of("B")[0].Orders, a[0].Confidence)
				case len(out) != 1 || out[0].SKU != "B":
					problem = fmt.Sprintf("version %d: for A and C: %v", m.Version, out)
				}
				mu.Lock()
				seen[m.Version] = true
				if problem != "" && len(problems) < 10 {
					problems = append(problems, problem)
				}
				mu.Unlock()
				if m.Version == final.Load() {
					return
				}
			}
		}()
	}
	builder := complements.NewBuilder(db, clock)
	var last int64
	for i := 1; i <= 5; i++ {
		insertOrders(t, db, fmt.Sprintf("r%d", i), basket{count: i, skus: []string{"A", "B"}}, basket{count: 2, skus: []string{"C"}})
		snap, err := builder.Build(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		last = snap.Version
		waitAll(t, servers, last)
	}
	final.Store(last)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("the readers read snapshots %v", seen)
	// Only the newest snapshots stay in the database.
	var kept int
	if err := db.Get(&kept, `SELECT count(*) FROM complement_snapshots`); err != nil || kept != complements.KeepSnapshots {
		t.Errorf("%d snapshots kept (%v), want %d", kept, err, complements.KeepSnapshots)
	}
}

func TestOneServerOfTheFleetBuildsPerPeriod(t *testing.T) {
	url := dbtest.URL(t)
	servers := startServers(t, url, 3)
	fixture(t, servers[0].db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		snap *complements.Snapshot
		err  error
	}
	outcomes := make(chan outcome, 10)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, s := range servers {
		r := complements.NewRefresher(complements.NewBuilder(s.db, clock), time.Hour, nil)
		r.Check = time.Hour
		r.Checked = func(snap *complements.Snapshot, err error) { outcomes <- outcome{snap, err} }
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	// Each server checks once at start: one builds; the others find the lock taken or the
	// snapshot fresh.
	built := 0
	for range servers {
		o := <-outcomes
		switch {
		case o.err != nil && !errors.Is(o.err, complements.ErrBusy):
			t.Fatal(o.err)
		case o.snap != nil:
			built++
		}
	}
	cancel()
	var n int
	if err := servers[0].db.Get(&n, `SELECT count(*) FROM complement_snapshots`); err != nil {
		t.Fatal(err)
	}
	if built != 1 || n != 1 {
		t.Errorf("%d servers built, %d snapshots stored; want 1 and 1", built, n)
	}
	waitAll(t, servers, 1)
}

func TestTriggeredBuildReachesTheCache(t *testing.T) {
	url := dbtest.URL(t)
	servers := startServers(t, url, 1)
	fixture(t, servers[0].db)
	// Scheduled builds off: only the trigger builds.
	r := complements.NewRefresher(complements.NewBuilder(servers[0].db, clock), 0, nil)
	done := make(chan error, 1)
	r.Checked = func(_ *complements.Snapshot, err error) { done <- err }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	r.Trigger()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitAll(t, servers, 1)
	if m := servers[0].cache.Model(); m.Orders != 26 {
		t.Errorf("the triggered build learned from %d orders, want 26", m.Orders)
	}
}
