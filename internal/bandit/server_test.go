package bandit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/client"
	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/openapitest"
)

// connect is a client of a test server whose every exchange is checked against the OpenAPI
// document.
func connect(t *testing.T, url, key string) *client.Client {
	t.Helper()
	h := &http.Client{Transport: openapitest.Transport(t, nil), Timeout: 30 * time.Second}
	c, err := client.New(url, key, client.WithHTTPClient(h))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// plain is a client of a test server without the document's checks, for tests that send
// thousands of requests whose shape other tests check.
func plain(t *testing.T, url, key string) *client.Client {
	t.Helper()
	c, err := client.New(url, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// manual is a server whose bandit updates the test runs by hand, on a clock it moves, which
// starts at now (the wall clock's time when zero).
func manual(url string, now time.Time) apptest.Options {
	return apptest.Options{Now: now, Configure: func(c *app.Config) {
		c.BanditTick = -1
		if url != "" {
			c.DatabaseURL = url
		}
	}}
}

func f64(v float64) *float64 { return &v }

// twoArms is a bandit on conversion: control and a bundle.
func twoArms(key string, a client.Allocation) client.Definition {
	return client.Definition{Key: key, Name: key, Allocation: &a,
		Variants: []client.Variant{
			{Key: "control", Name: "No offer", Weight: 0.5, Strategy: client.Strategy{Type: "none"}},
			{Key: "bundle", Name: "Bundle", Weight: 0.5, Strategy: client.Strategy{Type: "bundle", Products: []string{"sku-2"},
				DiscountPercent: f64(10), Timing: "cart"}},
		},
		Metrics: &client.Metrics{Primary: "conversion"}}
}

// assignAll asks for each shopper's variant and returns them.
func assignAll(t *testing.T, c *client.Client, key string, shoppers []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range shoppers {
		res, err := c.Assign(context.Background(), client.AssignRequest{ShopperID: s, Experiments: []string{key}})
		if err != nil {
			t.Fatal(err)
		}
		a, ok := res.For(key)
		if !ok || a.Variant == nil {
			t.Fatalf("%s: no variant: %+v", s, res)
		}
		out[s] = *a.Variant
	}
	return out
}

// waitExposures waits until the phase has n exposures stored: the recorder writes them off the
// request path.
func waitExposures(t *testing.T, db *sqlx.DB, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got int
		if err := db.Get(&got, `SELECT count(*) FROM exposures WHERE experiment_key = $1`, key); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d exposures stored after 15s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPeriod waits until the server assigns with the bandit's period.
func waitPeriod(t *testing.T, s *apptest.Server, key string, period int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.App.Assignments.WaitFor(ctx, func(snap *experiments.Snapshot) bool {
		_, p, ok := snap.BanditPeriod(key)
		return ok && p == period
	}); err != nil {
		t.Fatalf("the server did not reach period %d of %s: %v", period, key, err)
	}
}

// launch creates an experiment and starts its first phase.
func launch(t *testing.T, admin *client.Client, def client.Definition) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CreateExperiment(ctx, def); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.StartExperiment(ctx, def.Key, 0); err != nil {
		t.Fatal(err)
	}
}

func shoppers(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// The whole round: a bandit refuses a wrong setting by name, holds its weights through the
// burn-in, then one update moves traffic to the arm that converts, is stored, listed, in the
// history, and reaches assignment through the notification; shoppers already in keep their
// variant, new ones follow the new weights, and the report compares within periods.
func TestABanditMovesTrafficOnSchedule(t *testing.T) {
	// The phase starts two hours ago by the server's clock; shoppers arrive now, as the
	// exposure recorder's clock says, and the clock is set back to now for the update.
	began := time.Now().Add(-2 * time.Hour)
	srv := apptest.Start(t, manual("", began))
	admin, checkout := connect(t, srv.URL, apptest.AdminKey), connect(t, srv.URL, apptest.CheckoutKey)
	ctx := context.Background()

	_, err := admin.CreateExperiment(ctx, twoArms("bad", client.Allocation{Type: "bandit", UpdateEvery: "1s"}))
	var ce *client.Error
	if !errors.As(err, &ce) || !slices.ContainsFunc(ce.Details, func(d client.Detail) bool { return d.Field == "allocation.update_every" }) {
		t.Fatalf("an update every second: %v, want a 400 naming allocation.update_every", err)
	}

	def := twoArms("upsell", client.Allocation{Type: "bandit", BurnIn: "1h", UpdateEvery: "2h", MinUnits: 50})
	if _, err := admin.CreateExperiment(ctx, def); err != nil {
		t.Fatal(err)
	}
	started, err := admin.StartExperiment(ctx, "upsell", 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := started.Bandit; b == nil || b.Period != 0 || b.NextUpdate == nil || !b.NextUpdate.Equal(b.Since.Add(time.Hour)) {
		t.Fatalf("a started bandit's state: %+v", b)
	}
	if a := started.Allocation; a.Metric != "conversion" || *a.MinWeight != 0.01 || a.Sampling != "top_two" {
		t.Errorf("the defaults in force: %+v", a)
	}

	first := assignAll(t, checkout, "upsell", shoppers("early", 300))
	waitExposures(t, srv.DB, "upsell", 300)
	srv.Clock.Set(time.Now())
	// The bundle converts 40% of its shoppers, the control 10%.
	var events []client.Event
	i := 0
	for _, s := range shoppers("early", 300) {
		i++
		if (first[s] == "bundle" && i%5 < 2) || (first[s] == "control" && i%10 == 0) {
			amount := int64(2000)
			events = append(events, client.Event{Type: "order_completed", ShopperID: s, OrderID: "o-" + s, Amount: &amount, Currency: "EUR"})
		}
	}
	if _, err := checkout.SendEvents(ctx, events); err != nil {
		t.Fatal(err)
	}

	srv.Clock.Set(began.Add(59 * time.Minute))
	if ups, err := srv.App.Bandits.UpdateDue(ctx); err != nil || len(ups) != 0 {
		t.Fatalf("during the burn-in: %v, %v", ups, err)
	}
	srv.Clock.Set(time.Now())
	ups, err := srv.App.Bandits.UpdateDue(ctx)
	if err != nil || len(ups) != 1 || ups[0].Period == nil || *ups[0].Period != 1 {
		t.Fatalf("after the burn-in: %+v, %v", ups, err)
	}
	w := ups[0].Weights["bundle"]
	if w < 0.7 || w > 0.8 {
		t.Errorf("the bundle's weight after the update: %v, want the leader's share (0.01 + 0.98·0.8 at most)", w)
	}
	// Not due again before update_every.
	srv.Clock.Advance(time.Hour)
	if ups, err := srv.App.Bandits.UpdateDue(ctx); err != nil || len(ups) != 0 {
		t.Fatalf("an hour after the update: %v, %v", ups, err)
	}

	listed, state, err := admin.BanditUpdates(ctx, "upsell")
	if err != nil || len(listed) != 1 || state == nil || state.Period != 1 || state.Weights["bundle"] != w {
		t.Fatalf("listed updates %+v, state %+v, %v", listed, state, err)
	}
	history, err := admin.ExperimentHistory(ctx, "upsell")
	if err != nil {
		t.Fatal(err)
	}
	last := history[len(history)-1]
	if last.Action != "reweight" || last.Role != "system" || last.KeyName != "bandit" {
		t.Errorf("the last history entry: %+v", last)
	}

	waitPeriod(t, srv, "upsell", 1)
	again := assignAll(t, checkout, "upsell", shoppers("early", 300))
	for s, v := range first {
		if again[s] != v {
			t.Errorf("%s moved from %s to %s with the new weights", s, v, again[s])
		}
	}
	late := assignAll(t, checkout, "upsell", shoppers("late", 400))
	inBundle := 0
	for _, v := range late {
		if v == "bundle" {
			inBundle++
		}
	}
	// 400 new shoppers at weight w ≈ 0.79: 316 expected; 99.9% of binomial draws fall within ±27.
	if want := 400 * w; float64(inBundle) < want-27 || float64(inBundle) > want+27 {
		t.Errorf("%d of 400 new shoppers in the bundle at weight %.3f", inBundle, w)
	}

	waitExposures(t, srv.DB, "upsell", 700)
	r, err := analysis.NewSource(srv.DB, time.Now).Report(ctx, analysis.ReportRequest{Experiment: "upsell", Options: analysis.DefaultOptions})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bandit == nil || len(r.Bandit.Periods) != 2 || r.Bandit.Periods[0].Units["control"]+r.Bandit.Periods[0].Units["bundle"] != 300 ||
		r.Bandit.Periods[1].Units["control"]+r.Bandit.Periods[1].Units["bundle"] != 400 {
		t.Fatalf("report's periods: %+v", r.Bandit)
	}
	if r.SRM.Mismatch {
		t.Errorf("SRM against each period's weights: %+v", r.SRM)
	}
}

// Before every arm has its minimum of shoppers, an update holds the weights and says why.
func TestTooLittleDataHoldsTheWeights(t *testing.T) {
	srv := apptest.Start(t, manual("", time.Time{}))
	admin, checkout := connect(t, srv.URL, apptest.AdminKey), connect(t, srv.URL, apptest.CheckoutKey)
	ctx := context.Background()
	launch(t, admin, twoArms("thin", client.Allocation{Type: "bandit", BurnIn: "0s", UpdateEvery: "1h", MinUnits: 500}))
	assignAll(t, checkout, "thin", shoppers("s", 40))
	waitExposures(t, srv.DB, "thin", 40)
	srv.Clock.Advance(time.Minute)
	ups, err := srv.App.Bandits.UpdateDue(ctx)
	if err != nil || len(ups) != 1 || ups[0].Period != nil || ups[0].Weights["bundle"] != 0.5 {
		t.Fatalf("update with 40 shoppers: %+v, %v", ups, err)
	}
	e, err := admin.GetExperiment(ctx, "thin")
	if err != nil {
		t.Fatal(err)
	}
	if b := e.Bandit; b.Period != 0 || b.LastUpdate == nil || !b.NextUpdate.Equal(b.LastUpdate.Add(time.Hour)) {
		t.Errorf("after a held update: %+v", b)
	}
	history, err := admin.ExperimentHistory(ctx, "thin")
	if err != nil {
		t.Fatal(err)
	}
	if last := history[len(history)-1]; last.Action != "reweight_held" {
		t.Errorf("the last history entry: %+v", last)
	}
	listed, _, err := admin.BanditUpdates(ctx, "thin")
	if err != nil || len(listed) != 1 || listed[0].Note == "" {
		t.Fatalf("%+v %v", listed, err)
	}
	t.Logf("held: %s", listed[0].Note)
}

// Two servers find the same update due at the same moment: one stores it, and both assign
// with its weights.
func TestOneServerOfTheFleetUpdates(t *testing.T) {
	url := dbtest.URL(t)
	a, b := apptest.Start(t, manual(url, time.Time{})), apptest.Start(t, manual(url, time.Time{}))
	admin, checkout := connect(t, a.URL, apptest.AdminKey), connect(t, a.URL, apptest.CheckoutKey)
	ctx := context.Background()
	launch(t, admin, twoArms("fleet", client.Allocation{Type: "bandit", BurnIn: "0s", UpdateEvery: "1h", MinUnits: 10}))
	assignAll(t, checkout, "fleet", shoppers("s", 60))
	waitExposures(t, a.DB, "fleet", 60)
	a.Clock.Advance(time.Minute)
	b.Clock.Set(a.Clock.Now())
	results := make(chan int, 2)
	for _, s := range []*apptest.Server{a, b} {
		go func() {
			ups, err := s.App.Bandits.UpdateDue(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- len(ups)
		}()
	}
	if n := <-results + <-results; n != 1 {
		t.Errorf("%d updates stored by two servers, want 1", n)
	}
	var rows int
	if err := a.DB.Get(&rows, `SELECT count(*) FROM bandit_updates WHERE experiment_key = 'fleet'`); err != nil || rows != 1 {
		t.Errorf("%d rows (%v), want 1", rows, err)
	}
	waitPeriod(t, a, "fleet", 1)
	waitPeriod(t, b, "fleet", 1)
}

// An admin can run an update off the schedule, now or back-dated; it follows the same rules
// and is audited as theirs.
func TestAnAdminUpdatesABanditOnDemand(t *testing.T) {
	srv := apptest.Start(t, manual("", time.Time{}))
	admin, checkout := connect(t, srv.URL, apptest.AdminKey), connect(t, srv.URL, apptest.CheckoutKey)
	ctx := context.Background()
	fixed := twoArms("fixed", client.Allocation{Type: "fixed"})
	for _, def := range []client.Definition{fixed, twoArms("ondemand", client.Allocation{Type: "bandit", MinUnits: 20})} {
		launch(t, admin, def)
	}
	assignAll(t, checkout, "ondemand", shoppers("s", 80))
	waitExposures(t, srv.DB, "ondemand", 80)

	var ce *client.Error
	if _, err := admin.UpdateBandit(ctx, "fixed", time.Time{}); !errors.As(err, &ce) || ce.Code != "conflict" {
		t.Errorf("updating a fixed experiment: %v, want conflict", err)
	}
	if _, err := admin.UpdateBandit(ctx, "ondemand", time.Now().Add(time.Hour)); !errors.As(err, &ce) || ce.Status != 400 ||
		len(ce.Details) == 0 || ce.Details[0].Field != "at" {
		t.Errorf("an update in the future: %v, want a 400 naming at", err)
	}
	// Within the burn-in (24 hours by default), on demand.
	srv.Clock.Set(time.Now())
	up, err := admin.UpdateBandit(ctx, "ondemand", time.Time{})
	if err != nil || up.Period == nil || *up.Period != 1 {
		t.Fatalf("update now: %+v, %v", up, err)
	}
	if _, err := admin.UpdateBandit(ctx, "ondemand", up.At.Add(-time.Second)); !errors.As(err, &ce) || ce.Code != "conflict" {
		t.Errorf("an update before the current period's start: %v, want conflict", err)
	}
	history, err := admin.ExperimentHistory(ctx, "ondemand")
	if err != nil {
		t.Fatal(err)
	}
	if last := history[len(history)-1]; last.Action != "reweight" || last.Role != "admin" {
		t.Errorf("the last history entry: %+v, want the admin's reweight", last)
	}
	// The server that answered assigns with the new weights at once.
	if _, p, ok := srv.App.Assignments.Snapshot().BanditPeriod("ondemand"); !ok || p != 1 {
		t.Errorf("the answering server assigns with period %d (%v), want 1", p, ok)
	}
}
