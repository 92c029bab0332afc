package bandit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/client"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/targeting"
)

// Issue 21's stickiness test, on the real database with two servers and a restart: over ten
// reweights that each move most of the traffic to another arm, no returning shopper changes
// variant, whichever server they come back to — while plain bucketing would have moved many.
func TestReturningShoppersKeepTheirVariantOverTenReweights(t *testing.T) {
	url := dbtest.URL(t)
	began := time.Now()
	a, b := apptest.Start(t, manual(url, began)), apptest.Start(t, manual(url, began))
	ctx := context.Background()
	admin := connect(t, a.URL, apptest.AdminKey)
	def := client.Definition{Key: "sticky", Name: "sticky", Metrics: &client.Metrics{Primary: "conversion"},
		Allocation: &client.Allocation{Type: "bandit", BurnIn: "0s", UpdateEvery: "10s", MinUnits: 1},
		Variants: []client.Variant{
			{Key: "control", Name: "C", Weight: 0.34, Strategy: client.Strategy{Type: "none"}},
			{Key: "one", Name: "1", Weight: 0.33, Strategy: client.Strategy{Type: "suggestion", Products: []string{"sku-1"}, Timing: "cart"}},
			{Key: "two", Name: "2", Weight: 0.33, Strategy: client.Strategy{Type: "suggestion", Products: []string{"sku-2"}, Timing: "cart"}},
		}}
	launch(t, admin, def)
	waitPeriod(t, b, "sticky", 0) // b hears of the start through the notification
	checkout := []*client.Client{plain(t, a.URL, apptest.CheckoutKey), plain(t, b.URL, apptest.CheckoutKey)}
	variants := []string{"control", "one", "two"}
	rotations := [][]float64{{0.8, 0.15, 0.05}, {0.05, 0.8, 0.15}, {0.15, 0.05, 0.8}}
	seed := targeting.NewSeed("sticky")

	first := map[string]string{}
	var order []string
	changed, wouldMove, returns := 0, 0, 0
	const perRound = 30
	for round := 1; round <= 10; round++ {
		// Shoppers seen before come back, each to the server other than the one of last round.
		for i, s := range order {
			if v := assignAll(t, checkout[(i+round)%2], "sticky", []string{s})[s]; v != first[s] {
				changed++
				t.Errorf("round %d: %s came back in %s, first exposed in %s", round, s, v, first[s])
			}
		}
		// New shoppers, half on each server, under this period's weights.
		for i, s := range shoppers(fmt.Sprintf("r%d", round), perRound) {
			first[s] = assignAll(t, checkout[i%2], "sticky", []string{s})[s]
			order = append(order, s)
		}
		waitExposures(t, a.DB, "sticky", len(order))
		weights := rotations[round%3]
		up, err := a.App.Experiments.UpdateBandit(ctx, "sticky", began.Add(time.Duration(round)*time.Minute),
			func(e *experiments.Experiment) (*experiments.BanditUpdate, error) {
				w := map[string]float64{}
				for i, v := range variants {
					w[v] = weights[i]
				}
				return &experiments.BanditUpdate{Period: &round, Weights: w, Arms: json.RawMessage("[]")}, nil
			})
		if err != nil || up == nil {
			t.Fatalf("round %d: reweight %v %v", round, up, err)
		}
		waitPeriod(t, a, "sticky", round)
		waitPeriod(t, b, "sticky", round)
		// What plain bucketing with the new weights would have done to the shoppers seen so far.
		ranges := targeting.BucketRanges(3, 1, weights)
		for _, s := range order {
			returns++
			if variants[targeting.ChooseVariation(seed.Hash(s), ranges)] != first[s] {
				wouldMove++
			}
		}
	}
	t.Logf("%d shoppers over ten reweights: %d changed variant; bucketing alone would have moved %d of their %d returns",
		len(order), changed, wouldMove, returns)
	if wouldMove*3 < returns {
		t.Fatalf("bucketing alone would have moved only %d: the weights did not change enough for the test to mean anything", wouldMove)
	}

	// A server that starts after all this learns every first variant from the exposures table.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	c := apptest.Start(t, manual(url, began))
	waitPeriod(t, c, "sticky", 10)
	got := assignAll(t, plain(t, c.URL, apptest.CheckoutKey), "sticky", order)
	for _, s := range order {
		if got[s] != first[s] {
			t.Errorf("after a restart: %s in %s, first exposed in %s", s, got[s], first[s])
		}
	}
	var flagged int
	if err := a.DB.Get(&flagged, `SELECT count(*) FROM exposures WHERE experiment_key = 'sticky' AND multiple_variants`); err != nil || flagged != 0 {
		t.Errorf("%d shoppers flagged as seen in two variants (%v)", flagged, err)
	}
}
