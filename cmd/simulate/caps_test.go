package main

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/xsell/xsell/client"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/openapitest"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/internal/simulation"
)

// TestCapsAndBudget runs the demo's caps scenario (scripts/demo/caps.yaml, seed fixed in it)
// against a server and checks what the demo shows: with the planted annoyance (every offer
// shown beyond the second cuts the chance to order by 30%), the offer shown at every visit
// loses to the same offer capped at two a day; and the capped arm's discount budget, sized
// for it, runs out on day 10 (±1) of the 14, after which the arm's answers say
// "budget_exhausted" and the report marks the date.
func TestCapsAndBudget(t *testing.T) {
	dbURL := dbtest.URL(t)
	srv := servertest.Start(t, dbURL)
	analyze := buildAnalyze(t)
	sc, err := simulation.LoadScenario("../../scripts/demo/caps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The run's 24,000 requests go straight to the server (TestEndToEnd checks a run's
	// exchanges against the OpenAPI document); the experiment's GET below is checked.
	pooled := http.DefaultTransport.(*http.Transport).Clone()
	pooled.MaxIdleConnsPerHost = 16
	cfg := simulation.Config{BaseURL: srv.URL, AdminKey: "dev-admin", CheckoutKey: "dev-checkout",
		Experiment: sc.ExperimentKey(), Concurrency: 8, HTTP: &http.Client{Transport: pooled, Timeout: time.Minute}}
	if err := simulation.CreateExperiment(ctx, sc, cfg); err != nil {
		t.Fatal(err)
	}
	sum, err := simulation.Run(ctx, sc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Warning != "" {
		t.Fatalf("run: %s", sum.Warning)
	}
	arms := map[string]simulation.ArmSummary{}
	for _, a := range sum.Arms {
		arms[a.Variant] = a
	}
	// The caps at work: the uncapped arm shows its offer at every visit; the capped ones hold
	// it back after two a day; only the budgeted one ever says its budget is spent.
	every, capped, budget := arms["every_visit"], arms["capped"], arms["capped_budget"]
	if every.HeldBack != 0 || every.Shown != every.Visits || capped.HeldBack == 0 || capped.Exhausted != 0 || budget.Exhausted == 0 {
		t.Fatalf("answers held back: every_visit %d of %d, capped %d (%d for budget), capped_budget %d for budget",
			every.HeldBack, every.Visits, capped.HeldBack, capped.Exhausted, budget.Exhausted)
	}

	// The budget ran out on day 10 of 14, give or take one, as the server recorded it.
	checked := &http.Client{Transport: openapitest.Transport(t, pooled), Timeout: time.Minute}
	admin, err := client.New(srv.URL, "dev-admin", client.WithHTTPClient(checked))
	if err != nil {
		t.Fatal(err)
	}
	x, err := admin.GetExperiment(ctx, sc.ExperimentKey())
	if err != nil {
		t.Fatal(err)
	}
	var closed *time.Time
	for _, b := range x.BudgetStatus {
		if b.Variant == "capped_budget" && b.Kind == "discount" && b.Exhausted {
			closed = b.ExhaustedAt
		}
	}
	if closed == nil {
		t.Fatalf("capped_budget's discount budget is not exhausted: %+v", x.BudgetStatus)
	}
	day := int(closed.Sub(sum.From)/(24*time.Hour)) + 1
	if day < 9 || day > 11 {
		t.Errorf("the budget ran out on day %d of %d (%s), want day 10 ± 1", day, sum.Days, closed)
	}

	rep := capsReport(ctx, t, analyze, dbURL, sc.ExperimentKey())
	if len(rep.Constrained) != 1 || rep.Constrained[0].Variant != "capped_budget" || !rep.Constrained[0].Since.Equal(*closed) {
		t.Errorf("report marks %+v, want capped_budget constrained from %s", rep.Constrained, closed)
	}
	// The planted annoyance: capped, the offer keeps shoppers ordering; at every visit it
	// does not. A two-proportion z-test (pooled) of conversion, capped against every visit,
	// worked out here from the report's figures.
	ce, cc := findCaps(t, rep, "conversion", "every_visit"), findCaps(t, rep, "conversion", "capped")
	n1, n2 := float64(ce.TreatmentUnits), float64(cc.TreatmentUnits)
	p := (ce.TreatmentMean*n1 + cc.TreatmentMean*n2) / (n1 + n2)
	z := (cc.TreatmentMean - ce.TreatmentMean) / math.Sqrt(p*(1-p)*(1/n1+1/n2))
	if z < 3 {
		t.Errorf("conversion capped %.4f, every visit %.4f: z = %.2f, want the capped arm clearly ahead (z ≥ 3)", cc.TreatmentMean, ce.TreatmentMean, z)
	}
	ne, nc := findCaps(t, rep, "net_revenue", "every_visit"), findCaps(t, rep, "net_revenue", "capped")
	if !ne.Significant || ne.TreatmentMean >= ne.ControlMean || nc.TreatmentMean <= ne.TreatmentMean {
		t.Errorf("net revenue: every visit %.0f (significant vs control %v, control %.0f), capped %.0f; want every visit significantly below control and below capped",
			ne.TreatmentMean, ne.Significant, ne.ControlMean, nc.TreatmentMean)
	}
}

// capsReportJSON is the part of the report TestCapsAndBudget reads.
type capsReportJSON struct {
	Results     []result `json:"results"`
	Constrained []struct {
		Variant string    `json:"variant"`
		Since   time.Time `json:"since"`
	} `json:"constrained"`
}

func capsReport(ctx context.Context, t *testing.T, analyze, dbURL, key string) capsReportJSON {
	t.Helper()
	var rep capsReportJSON
	reportJSON(ctx, t, analyze, dbURL, key, &rep)
	return rep
}

func findCaps(t *testing.T, rep capsReportJSON, metric, variant string) result {
	t.Helper()
	return find(t, report{Results: rep.Results}, metric, variant)
}
