package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/internal/simulation"
)

// banditScenario is e2eScenario's shop with the arms as a bandit on cross-sell: two days of
// burn-in, then an update after every simulated day.
var banditScenario = strings.Replace(strings.Replace(e2eScenario, "key: e2e", "key: e2e-bandit", 1),
	"  metrics: {primary: cross_sell_rate, secondary: [offer_cost]}",
	"  metrics: {primary: cross_sell_rate}\n  allocation: {type: bandit, burn_in: 2d, update_every: 1d, min_units: 100}", 1)

// The demo's bandit, small: the simulator asks for the day-end updates the schedule would make,
// the traffic moves to the arm that sells the most conditioner, and the report is made period
// by period with the weights of each.
func TestBanditEndToEnd(t *testing.T) {
	dbURL := dbtest.URL(t)
	srv := servertest.Start(t, dbURL)
	analyze := buildAnalyze(t)
	sc, err := simulation.ParseScenario([]byte(banditScenario))
	if err != nil {
		t.Fatal(err)
	}
	sc.Days = 6
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := simulation.Config{BaseURL: srv.URL, AdminKey: "dev-admin", CheckoutKey: "dev-checkout", Experiment: "e2e-bandit", Concurrency: 4}
	if err := simulation.CreateExperiment(ctx, sc, cfg); err != nil {
		t.Fatal(err)
	}
	sum, err := simulation.Run(ctx, sc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Updates after days 2, 3, 4 and 5; none after the last day, when nobody is left to assign.
	if len(sum.Bandit) != 4 {
		t.Fatalf("%d bandit updates, want 4: %+v", len(sum.Bandit), sum.Bandit)
	}
	for i, b := range sum.Bandit {
		if b.Period == nil || *b.Period != i+1 || b.Day != i+2 {
			t.Errorf("update %d: %+v", i, b)
		}
	}
	if last := sum.Bandit[3].Weights["big"]; last < 0.7 {
		t.Errorf("the arm that sells 2.5 times the conditioner ends with %.3f of the traffic", last)
	}
	var out bytes.Buffer
	writeBandit(&out, sum)
	if !strings.Contains(out.String(), "after day") || !strings.Contains(out.String(), "big") {
		t.Errorf("summary:\n%s", out.String())
	}

	cmd := exec.CommandContext(ctx, analyze, "report", "--experiment", "e2e-bandit", "--format", "json")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("analyze report: %v", err)
	}
	var rep struct {
		SRM struct {
			Mismatch bool `json:"mismatch"`
		} `json:"srm"`
		Bandit struct {
			Periods []struct {
				Weights map[string]float64 `json:"weights"`
				Units   map[string]int64   `json:"units"`
			} `json:"periods"`
		} `json:"bandit"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Bandit.Periods) != 5 || rep.SRM.Mismatch {
		t.Fatalf("report: %d periods (want 5), SRM mismatch %v", len(rep.Bandit.Periods), rep.SRM.Mismatch)
	}
	var units int64
	for i, p := range rep.Bandit.Periods {
		for v, n := range p.Units {
			units += n
			if i > 0 && p.Weights[v] != sum.Bandit[i-1].Weights[v] {
				t.Errorf("period %d: %s at %v in the report, %v in the update", i, v, p.Weights[v], sum.Bandit[i-1].Weights[v])
			}
		}
	}
	if units != 3000 {
		t.Errorf("the periods hold %d shoppers, want 3000", units)
	}
}
