package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/client"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/openapitest"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/internal/simulation"
)

// TestLearnedComplementsFindThePlantedPairs runs the demo's scenario: past shoppers' orders
// teach the server its complements, and for every product whose catalog entry plants pairs
// (goes_with), the learned top complement is its strongest planted partner. Then the demo's
// learned bundle offers, for the product a shopper came for, what goes with it.
func TestLearnedComplementsFindThePlantedPairs(t *testing.T) {
	dbURL := dbtest.URL(t)
	srv := servertest.Start(t, dbURL)
	sc, err := simulation.LoadScenario(filepath.Join("..", "..", "scripts", "demo", "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc.Shoppers, sc.Days = 600, 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := &http.Client{Transport: openapitest.Transport(t, nil), Timeout: time.Minute}
	cfg := simulation.Config{BaseURL: srv.URL, AdminKey: "dev-admin", CheckoutKey: "dev-checkout", Experiment: sc.ExperimentKey(),
		Concurrency: 4, HTTP: h, WaitLoyalty: -1}
	past, err := simulation.Learn(ctx, sc, cfg, 20000) // as many as the demo learns from
	if err != nil {
		t.Fatal(err)
	}
	if past.Orders == 0 || past.Learned < past.Orders || past.Products == 0 {
		t.Fatalf("learned from the past: %+v", past)
	}
	c, err := client.New(srv.URL, "dev-checkout", client.WithHTTPClient(h))
	if err != nil {
		t.Fatal(err)
	}
	planted := 0
	for _, p := range sc.Catalog {
		var partner string
		for sku, chance := range p.GoesWith {
			if partner == "" || chance > p.GoesWith[partner] || (chance == p.GoesWith[partner] && sku < partner) {
				partner = sku
			}
		}
		if partner == "" {
			continue
		}
		planted++
		got, err := c.GetComplements(ctx, p.SKU, client.ComplementsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Complements) == 0 || got.Complements[0].SKU != partner {
			t.Errorf("%s: learned %+v; its planted partner is %s (chance %v)", p.SKU, got.Complements, partner, p.GoesWith[partner])
		}
	}
	if planted < 5 {
		t.Fatalf("the demo plants %d pairs; the test expects the five of its catalog", planted)
	}

	// The demo's fourth arm: shoppers in it are offered what goes with what they came for.
	if err := simulation.CreateExperiment(ctx, sc, cfg); err != nil {
		t.Fatal(err)
	}
	sum, err := simulation.Run(ctx, sc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sum.Arms, func(a simulation.ArmSummary) bool { return a.Variant == "learned15" })
	if i < 0 || sum.Arms[i].Shoppers == 0 || sum.Arms[i].Viewed == 0 || sum.Arms[i].Accepted == 0 {
		t.Fatalf("the learned arm: %+v", sum.Arms)
	}
	a, err := c.Assign(ctx, client.AssignRequest{ShopperID: "qa-learned", Experiments: []string{sc.ExperimentKey()},
		Track: client.Bool(false), Context: &client.AssignContext{Products: []string{"sku-razor"}}})
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := a.For(sc.ExperimentKey()); x.Variant != nil && *x.Variant == "learned15" &&
		(len(x.Strategy.Products) == 0 || x.Strategy.Products[0] != "sku-shaving-gel") {
		t.Errorf("a razor's learned bundle: %+v", x.Strategy)
	}
}

// TestLearnFlag checks the command's --learn: it reports the past and the snapshot learned.
func TestLearnFlag(t *testing.T) {
	dbURL := dbtest.URL(t)
	srv := servertest.Start(t, dbURL)
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(e2eScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--server", srv.URL, "--scenario", file, "--create", "--shoppers", "300",
		"--learn", "400", "--wait-loyalty", "0",
		"--admin-key", "dev-admin", "--checkout-key", "dev-checkout"}, &stdout, &stderr, false)
	if code != 0 || !strings.Contains(stdout.String(), "orders of 400 past shoppers; complements snapshot") {
		t.Fatalf("status %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
}
