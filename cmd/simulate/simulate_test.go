package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/openapitest"
	"github.com/xsell/xsell/internal/servertest"
	"github.com/xsell/xsell/internal/simulation"
)

// e2eScenario plants a large effect (cross-sell ×2.5) in the bundle arm and none at all in the
// points arm. Without an offer, half the shoppers order, and an order for sku-shampoo (half of
// them) holds sku-conditioner with chance 0.3: 7.5% of control shoppers cross-buy, against
// 18.75% in the bundle arm. With ~1,000 shoppers an arm that is a z of about 7. No refunds, so
// that the points paid are exactly 200 per order that holds conditioner.
const e2eScenario = `
seed: 7
shoppers: 3000
days: 3
currency: EUR
attributes:
  device: {mobile: 0.6, desktop: 0.4}
catalog:
  - {sku: sku-shampoo, price: 900, weight: 1, goes_with: {sku-conditioner: 0.3}}
  - {sku: sku-soap, price: 400, weight: 1}
  - {sku: sku-conditioner, price: 1200, weight: 0}
shopper:
  conversion: 0.5
  order_value: {median: 1500, sigma: 0.4}
  refund: 0
effects:
  big: {cross_sell: 1.5}
  zero: {cross_sell: 0}
experiment:
  key: e2e
  name: End-to-end
  variants:
    - {key: control, name: Control, weight: 0.34, strategy: {type: none}}
    - {key: big, name: Bundle, weight: 0.33, strategy: {type: bundle, products: [sku-conditioner], discount_percent: 20, timing: cart}}
    - {key: zero, name: Points, weight: 0.33, strategy: {type: loyalty_points, products: [sku-conditioner], bonus_points: 200, timing: checkout}}
  metrics: {primary: cross_sell_rate, secondary: [offer_cost]}
`

// report is the part of analyze's JSON report (SPEC §6) the test reads.
type report struct {
	Variants []struct {
		Key   string `json:"key"`
		Units int64  `json:"units"`
	} `json:"variants"`
	SRM struct {
		Mismatch bool `json:"mismatch"`
	} `json:"srm"`
	Results []result `json:"results"`
}

// result is one treatment-versus-control comparison of the report.
type result struct {
	Metric         string   `json:"metric"`
	Variant        string   `json:"variant"`
	TreatmentUnits int64    `json:"treatment_units"`
	ControlMean    float64  `json:"control_mean"`
	TreatmentMean  float64  `json:"treatment_mean"`
	PValue         *float64 `json:"p_value"`
	Significant    bool     `json:"significant"`
}

// TestEndToEnd runs the server, simulates a scenario with a planted large effect and a planted
// zero effect against it, and checks that `analyze report` finds the first and not the second.
func TestEndToEnd(t *testing.T) {
	dbURL := dbtest.URL(t)
	srv := servertest.Start(t, dbURL)
	analyze := buildAnalyze(t)
	sc, err := simulation.ParseScenario([]byte(e2eScenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every exchange of the run is checked against the OpenAPI document as well.
	pooled := http.DefaultTransport.(*http.Transport).Clone()
	pooled.MaxIdleConnsPerHost = 8
	cfg := simulation.Config{BaseURL: srv.URL, AdminKey: "dev-admin", CheckoutKey: "dev-checkout", Experiment: "e2e", Concurrency: 4,
		HTTP: &http.Client{Transport: openapitest.Transport(t, pooled), Timeout: time.Minute}}
	if err := simulation.CreateExperiment(ctx, sc, cfg); err != nil {
		t.Fatal(err)
	}
	sum, err := simulation.Run(ctx, sc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.LoyaltyReady || sum.Warning != "" {
		t.Fatalf("run did not see its exposures and points through: ready=%v warning=%q", sum.LoyaltyReady, sum.Warning)
	}
	arms := map[string]simulation.ArmSummary{}
	var shoppers int64
	for _, a := range sum.Arms {
		arms[a.Variant] = a
		shoppers += a.Shoppers
	}
	if shoppers != 3000 || arms[""].Shoppers != 0 {
		t.Fatalf("summary counts %d shoppers, %d outside the experiment; want 3000, all in it", shoppers, arms[""].Shoppers)
	}

	var rep report
	reportJSON(ctx, t, analyze, dbURL, "e2e", &rep)
	var units int64
	for _, v := range rep.Variants {
		units += v.Units
		if v.Units != arms[v.Key].Shoppers {
			t.Errorf("variant %s: report counts %d exposed shoppers, the simulator assigned %d", v.Key, v.Units, arms[v.Key].Shoppers)
		}
	}
	if units != 3000 || rep.SRM.Mismatch {
		t.Errorf("report: %d units (want 3000), SRM mismatch %v", units, rep.SRM.Mismatch)
	}

	big := find(t, rep, "cross_sell_rate", "big")
	zero := find(t, rep, "cross_sell_rate", "zero")
	if !big.Significant || big.TreatmentMean < 2*big.ControlMean {
		t.Errorf("planted ×2.5 cross-sell: significant=%v, control %.4f, treatment %.4f", big.Significant, big.ControlMean, big.TreatmentMean)
	}
	if zero.Significant || zero.PValue == nil || *zero.PValue < 0.05 {
		p := "null"
		if zero.PValue != nil {
			p = fmt.Sprint(*zero.PValue)
		}
		t.Errorf("planted zero effect found significant: p=%s, control %.4f, treatment %.4f", p, zero.ControlMean, zero.TreatmentMean)
	}
	// Control rates near the 7.5% the scenario implies, and the planted ×2.5 near 18.75%.
	if math.Abs(big.ControlMean-0.075) > 0.025 || math.Abs(big.TreatmentMean-0.1875) > 0.04 {
		t.Errorf("cross-sell rates control %.4f, big %.4f; the scenario implies 0.075 and 0.1875", big.ControlMean, big.TreatmentMean)
	}

	// Costs reach the report: the bundle's discounts as sent, and the points the server
	// credited (200 a point-worthy order, a point worth 1 cent by default) — which only holds
	// if the simulator waited for the credits.
	bundleCost := find(t, rep, "offer_cost", "big")
	if got := math.Round(bundleCost.TreatmentMean * float64(bundleCost.TreatmentUnits)); int64(got) != arms["big"].Discount {
		t.Errorf("bundle offer cost in the report %v, discounts sent %d", got, arms["big"].Discount)
	}
	pointsCost := find(t, rep, "offer_cost", "zero")
	if got := math.Round(pointsCost.TreatmentMean * float64(pointsCost.TreatmentUnits)); int64(got) != 200*arms["zero"].CrossSell {
		t.Errorf("points offer cost in the report %v, want 200 × %d orders with conditioner", got, arms["zero"].CrossSell)
	}
}

// reportJSON runs `analyze report --format json` on the experiment and decodes it into v.
func reportJSON(ctx context.Context, t *testing.T, analyze, dbURL, key string, v any) {
	t.Helper()
	cmd := exec.CommandContext(ctx, analyze, "report", "--experiment", key, "--format", "json")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("analyze report: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("analyze report --format json: %v\n%s", err, out)
	}
}

// find is the report's result of one metric for one variant.
func find(t *testing.T, rep report, metric, variant string) result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Metric == metric && r.Variant == variant {
			return r
		}
	}
	t.Fatalf("the report has no %s result for %s", metric, variant)
	return result{}
}

// buildAnalyze builds cmd/analyze, so that the test reads the report a user would.
func buildAnalyze(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "analyze")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/analyze")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/analyze: %v\n%s", err, out)
	}
	return bin
}

// TestUsageErrors checks that command-line mistakes are answered with exit status 2 and a line
// that names the problem, before any request is sent.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(good, []byte(e2eScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("shoppers: 0\ncatalog: []\nshopper: {conversion: 2}\neffects: {bundle: {cross_sel: 0.2}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "--scenario FILE is required"},
		{[]string{"--scenario", good, "--batch", "1001"}, "--batch must be between 1 and 1000"},
		{[]string{"--scenario", good, "extra"}, `unexpected argument "extra"`},
		{[]string{"--scenario", good, "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"--scenario", bad}, "field cross_sel not found"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr, false)
		if c.want == "field cross_sel not found" {
			// A broken scenario is not a command-line mistake: status 1.
			if code != 1 || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("%v: status %d, stderr %q; want 1 and %q", c.args, code, stderr.String(), c.want)
			}
			continue
		}
		if code != 2 || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q; want 2 and one line with %q", c.args, code, stderr.String(), c.want)
		}
	}
}
