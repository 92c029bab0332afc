package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/offers"
)

func TestHoldoutUsageErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	oneLineError(t, 2, "holdout: --generation must be 1 or more, got -1", "holdout", "--generation", "-1")
	oneLineError(t, 2, `invalid value "two" for flag -generation`, "holdout", "--generation", "two")
	oneLineError(t, 2, `--since must be a positive duration such as 36h or 14d, got "a month"`, "holdout", "--since", "a month")
	oneLineError(t, 2, `--window must be a positive duration such as 36h or 14d, got "-3h"`, "holdout", "--window", "-3h")
	oneLineError(t, 2, `holdout: --format must be one of text, json, csv, html, got "pdf"`, "holdout", "--format", "pdf")
	oneLineError(t, 2, `holdout: --correction must be holm, bh or none, got "sidak"`, "holdout", "--correction", "sidak")
	oneLineError(t, 2, "alpha must be between 0 and 0.5, got 0.9", "holdout", "--alpha", "0.9")
	oneLineError(t, 2, `holdout: --cap must be a quantile between 0.5 and 1 such as 0.999, or off, got "2"`, "holdout", "--cap", "2")
	oneLineError(t, 2, "holdout: flag provided but not defined: -experiment", "holdout", "--experiment", "x")
	oneLineError(t, 2, `holdout: unexpected argument "now"`, "holdout", "now")
	if code, out, _ := runCLI(t, "holdout", "-h"); code != 0 || !strings.Contains(out, "-generation") || !strings.Contains(out, "-since") {
		t.Errorf("holdout -h: exit %d, %q", code, out)
	}
	if code, out, _ := runCLI(t, "help"); code != 0 || !strings.Contains(out, "analyze holdout") {
		t.Errorf("help does not list holdout: %q", out)
	}
}

func TestHoldoutCommandOnDatabase(t *testing.T) {
	db := seedDB(t)
	oneLineError(t, 1, "no holdout: none has been set yet (PUT /v1/holdout)", "holdout")

	start := time.Now().Add(-72 * time.Hour).UTC()
	v := `[{"key":"control","name":"c","weight":0.5,"control":true,"strategy":{"type":"none"}},{"key":"b","name":"b","weight":0.5,"strategy":{"type":"none"}}]`
	db.MustExec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants, target_products, started_at, metrics)
		VALUES ('x1','X1','running',1,'x1','shopper_id',1,$1,'["sku-t"]',$2,'{}')`, v, start)
	db.MustExec(`INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at) VALUES ('x1',1,'x1',1,$1,$2)`, v, start)
	st := offers.NewStore(db, func() time.Time { return start })
	if _, err := st.SetHoldout(context.Background(), offers.Actor{Role: "admin", Name: "t"}, nil, 10, "h-2026"); err != nil {
		t.Fatal(err)
	}
	// 50 held out, 450 not; everyone else buys twice as often, a third of them the target.
	db.MustExec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen)
		SELECT '__holdout', 1, 's' || g, CASE WHEN g <= 50 THEN 'holdout' ELSE 'rest' END, '{"device":"mobile"}', $1::timestamptz + interval '1 hour'
		FROM generate_series(1, 500) g`, start)
	db.MustExec(`INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		SELECT 'e' || g, 'order_completed', 's' || g, $1::timestamptz + interval '2 hours', 'o' || g, 4000 + g, 100, 'EUR'
		FROM generate_series(1, 500) g WHERE (g <= 50 AND g % 4 = 0) OR (g > 50 AND g % 2 = 0)`, start)
	db.MustExec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
		SELECT 'e' || g, 0, $1::timestamptz + interval '2 hours', 'o' || g, 's' || g, 'sku-t', 1, 100
		FROM generate_series(1, 500) g WHERE g > 50 AND g % 6 = 0`, start)

	code, out, stderr := runCLI(t, "holdout")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`Programme holdout, generation 1: 10% of shoppers (seed "h-2026") kept from every cross-sell offer`,
		"the whole programme's incremental effect per shopper",
		"Cross-sell: an order holding a target product of any experiment of the window: sku-t",
		"SRM check: ok",
		"net_revenue (mean, primary)",
		"offer_cost (mean, lower is better)",
		"The programme in all: the difference per shopper times the 450 shoppers who had it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "holdout", "--format", "json", "--cuped", "--segment", "device")
	var rep struct {
		Experiment string `json:"experiment"`
		Control    string `json:"control"`
		Variants   []struct {
			Key            string  `json:"key"`
			Units          int64   `json:"units"`
			ExpectedWeight float64 `json:"expected_weight"`
		} `json:"variants"`
		CUPED   bool `json:"cuped"`
		Holdout struct {
			Percent float64 `json:"percent"`
			Meaning string  `json:"meaning"`
			Totals  []struct {
				Metric   string  `json:"metric"`
				Shoppers int64   `json:"shoppers"`
				Total    float64 `json:"total"`
			} `json:"totals"`
		} `json:"holdout"`
		Results []struct {
			Metric        string  `json:"metric"`
			Variant       string  `json:"variant"`
			ControlMean   float64 `json:"control_mean"`
			TreatmentMean float64 `json:"treatment_mean"`
		} `json:"results"`
		Segments []struct {
			Value string `json:"value"`
		} `json:"segments"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Experiment != "__holdout" || rep.Control != "holdout" || len(rep.Variants) != 2 || rep.Variants[0].Units != 50 ||
		rep.Variants[0].ExpectedWeight != 0.1 || rep.Variants[1].Units != 450 || !rep.CUPED || len(rep.Segments) != 1 || rep.Holdout.Percent != 10 {
		t.Errorf("json report: %+v", rep)
	}
	// Cross-selling: no holdout shopper bought the target; 75 of the 450 others (every sixth).
	for _, r := range rep.Results {
		if r.Metric == "cross_sell_rate" && (r.Variant != "rest" || r.ControlMean != 0 || r.TreatmentMean != 75.0/450) {
			t.Errorf("cross_sell_rate %+v", r)
		}
	}
	if len(rep.Holdout.Totals) != 4 || rep.Holdout.Totals[0].Shoppers != 450 || rep.Holdout.Meaning == "" {
		t.Errorf("holdout totals %+v", rep.Holdout)
	}

	page := filepath.Join(t.TempDir(), "h.html")
	if code, _, stderr := runCLI(t, "holdout", "--format", "html", "--out", page); code != 0 {
		t.Fatalf("html: %s", stderr)
	}
	b, _ := os.ReadFile(page)
	if !strings.Contains(string(b), "<h1>Programme holdout, generation 1</h1>") || !strings.Contains(string(b), "incremental effect per shopper") ||
		!strings.Contains(string(b), "The programme in all") || strings.Count(string(b), "<svg") < 4 {
		t.Errorf("html lacks the holdout's section or the effect charts")
	}
	if code, out, _ := runCLI(t, "holdout", "--format", "csv"); code != 0 || !strings.Contains(out, "net_revenue") {
		t.Errorf("csv: exit %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, "holdout", "--sql", "--since", "30d", "--window", "7d")
	if code != 0 || !strings.Contains(out, "FROM exposures") || strings.Contains(out, "$1") {
		t.Fatalf("--sql: exit %d\n%s", code, out)
	}
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM ("+strings.TrimSuffix(strings.TrimSpace(out), ";")+") q"); err != nil || n == 0 {
		t.Errorf("the printed SQL does not run: %v", err)
	}
	oneLineError(t, 1, "the holdout has no generation 2 (it is in generation 1)", "holdout", "--generation", "2")
}
