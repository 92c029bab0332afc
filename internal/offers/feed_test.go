package offers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
)

// server is one server's counter, feed and snapshot over a shared database.
type server struct {
	c    *offers.Counter
	feed *offers.Feed
	snap *experiments.Snapshot
	stop func()
}

// startServer loads the counts the feed holds, then runs the feed until the test ends or
// stop; flush and poll are its periods.
func startServer(t *testing.T, db *sqlx.DB, flush, poll time.Duration, list ...*experiments.Experiment) *server {
	t.Helper()
	s := &server{c: offers.NewCounter(0)}
	s.feed = offers.NewFeed(db, s.c, offers.FeedConfig{Flush: flush, Poll: poll}, offers.NewMetrics(nil), nil)
	s.snap = snapshot(t, s.c, experiments.OfferState{}, list...)
	if err := s.feed.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.feed.Run(ctx) }()
	stopped := false
	s.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feed: %v", err)
			}
		}
	}
	t.Cleanup(s.stop)
	return s
}

// waitCapped waits, up to within, for server s to cap the shopper: it asks (without counting)
// after each read of the feed that brought rows. It returns how long that took.
func waitCapped(t *testing.T, s *server, shopper string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		if a := ask(s.snap, shopper, time.Now(), false)["shared"]; a.Offer == experiments.OfferCapped {
			return time.Since(start)
		}
		select {
		case <-s.feed.Pulled():
		case <-deadline:
			t.Fatalf("server B still shows the offer to %s %s after server A capped them", shopper, within)
		}
	}
}

// TestACapReachedOnOneServerHoldsOnAnotherWithinTheStatedDelay: three opportunities on server
// A reach server B through Postgres within FeedBound (docs/offers.md), with the default
// periods; and a server started afterwards — a restart — knows them before it serves.
func TestACapReachedOnOneServerHoldsOnAnotherWithinTheStatedDelay(t *testing.T) {
	db := dbtest.New(t)
	e := experiment("shared", 2)
	e.FrequencyCap = &experiments.FrequencyCap{Offers: 3, Per: experiments.PeriodDay}
	a := startServer(t, db, 0, 0, e)
	b := startServer(t, db, 0, 0, e)
	for i := range 3 {
		if got := ask(a.snap, "s-1", time.Now(), true)["shared"]; got.Offer != experiments.OfferShow {
			t.Fatalf("visit %d on A: %s", i, got.Offer)
		}
	}
	if got := ask(a.snap, "s-1", time.Now(), false)["shared"]; got.Offer != experiments.OfferCapped {
		t.Fatalf("server A itself: %s, want capped at once", got.Offer)
	}
	took := waitCapped(t, b, "s-1", offers.FeedBound)
	t.Logf("server B capped the shopper %s after server A did", took)

	// Counts split between servers add up: one more shopper, two visits on each.
	for _, s := range []*server{a, b, a} {
		ask(s.snap, "s-2", time.Now(), true)
	}
	waitCapped(t, b, "s-2", offers.FeedBound)

	// A stop writes what is left; a new server reads every count back before serving.
	a.stop()
	b.stop()
	restarted := startServer(t, db, time.Hour, time.Hour, e)
	for _, id := range []string{"s-1", "s-2"} {
		if got := ask(restarted.snap, id, time.Now(), false)["shared"]; got.Offer != experiments.OfferCapped {
			t.Fatalf("after a restart %s gets %s, want capped", id, got.Offer)
		}
	}
	if got := ask(restarted.snap, "s-3", time.Now(), false)["shared"]; got.Offer != experiments.OfferShow {
		t.Fatalf("a new shopper after a restart: %s", got.Offer)
	}
}

// TestAClosedOfferReachesEveryServer: a per-shopper limit reached in a spend closes the offer
// to that shopper on every server, through the feed.
func TestAClosedOfferReachesEveryServer(t *testing.T) {
	db := dbtest.New(t)
	started(t, db, "closing", func(d *experiments.Definition) {
		d.Variants[1].Budget = &experiments.Budget{Discount: &experiments.Amount{Amount: 100_000, Currency: "EUR"},
			PerShopper: &experiments.ShopperLimit{AcceptedOffers: ptr(1), Per: experiments.PeriodMonth}}
	})
	e, err := experiments.NewStore(db, nil).Get(context.Background(), "closing")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, db, 0, 0, e)
	shopper := ""
	for i := 0; shopper == ""; i++ {
		id := fmt.Sprintf("s-%d", i)
		if a := ask(s.snap, id, time.Now(), false)["closing"]; a.Variant != nil && *a.Variant == "bundle" {
			shopper = id
		}
	}
	b := offers.NewBudgets(db, nil)
	if _, err := charge(context.Background(), db, b, offers.Spend{Experiment: "closing", Variant: "bundle", ShopperID: shopper,
		Kind: experiments.BudgetDiscount, Amount: 300, Currency: "EUR", Base: 3000, Ref: "o-1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(offers.FeedBound)
	for {
		a := ask(s.snap, shopper, time.Now(), true)["closing"]
		if a.Offer == experiments.OfferBudgetExhausted && *a.Variant == "bundle" {
			break
		}
		select {
		case <-s.feed.Pulled():
		case <-deadline:
			t.Fatalf("the offer is still %s to %s", a.Offer, shopper)
		}
	}
}

// TestAFeedThatCannotWriteKeepsItsCounts: with the database gone, what a server counted stays
// in memory for the next write, and counts on that server still cap.
func TestAFeedThatCannotWriteKeepsItsCounts(t *testing.T) {
	db := dbtest.New(t)
	e := experiment("offline", 2)
	e.FrequencyCap = &experiments.FrequencyCap{Offers: 2, Per: experiments.PeriodDay}
	c := offers.NewCounter(0)
	s := snapshot(t, c, experiments.OfferState{}, e)
	for range 2 {
		ask(s, "s-1", time.Now(), true)
	}
	if got := ask(s, "s-1", time.Now(), false)["offline"]; got.Offer != experiments.OfferCapped {
		t.Fatalf("offline: %s", got.Offer)
	}
	// A feed on a closed pool fails to write and keeps the marks; one on the database writes them.
	back := sqlx.NewDb(db.DB, "postgres")
	broken := offers.NewFeed(sqlx.MustOpen("postgres", "postgres://127.0.0.1:1/nowhere?connect_timeout=1&sslmode=disable"), c,
		offers.FeedConfig{DrainTimeout: 2 * time.Second}, offers.NewMetrics(nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := broken.Run(ctx); err != nil { // stops at once and tries its last write, which fails
		t.Fatal(err)
	}
	ok := offers.NewFeed(back, c, offers.FeedConfig{}, offers.NewMetrics(nil), nil)
	if err := ok.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var n int
	if err := db.Get(&n, `SELECT COALESCE(sum(cardinality(experiments)), 0) FROM offer_feed WHERE shopper_id = 's-1'`); err != nil || n != 2 {
		t.Fatalf("rows written after the database came back: %d (%v), want the 2 opportunities", n, err)
	}
}
