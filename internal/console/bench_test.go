package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
)

// BenchmarkConsolePages times every console page on the server side (the handler, from request
// to the last byte written, over the real database) with 1,000 experiments and 1,000,000
// exposed shoppers stored: ten running experiments of 100,000 shoppers each, with 150,000
// orders. Figures and the command are in docs/benchmarks.md.
func BenchmarkConsolePages(b *testing.B) {
	e := newBenchEnv(b)
	cookie := e.benchSession(b)
	pages := []struct{ name, path string }{
		{"list", "/console/experiments"},
		{"list_search", "/console/experiments?q=exp-05"},
		{"list_running_page5", "/console/experiments?status=running&after=exp-0400"},
		{"experiment", "/console/experiments/exp-0001"},
		{"experiment_preview", "/console/experiments/exp-0001?shopper=s-42&attributes=country%3DIT%0Adevice%3Dmobile"},
		{"edit_form", "/console/experiments/exp-0001/edit"},
		{"new_form", "/console/experiments/new"},
		{"new_form_from_bundle", "/console/experiments/new?trigger=sku-shampoo&offer=sku-conditioner"},
		{"history", "/console/experiments/exp-0001/history"},
		{"results", "/console/experiments/exp-0001/results"},
		{"results_other", "/console/experiments/exp-0500/results"},
		{"loyalty", "/console/loyalty"},
		{"account", "/console/loyalty/accounts?shopper=bench-shopper"},
		{"bundles", "/console/bundles"},
		{"bundles_filtered", "/console/bundles?min_orders=20&min_lift=1.2"},
		{"signin", "/console/signin"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, p.path, nil)
				if p.name != "signin" {
					req.AddCookie(cookie)
				}
				w := httptest.NewRecorder()
				e.handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: status %d\n%s", p.path, w.Code, w.Body.String())
				}
			}
		})
	}
	b.Run("form_with_errors", func(b *testing.B) {
		form := threeArmForm("Bad Key")
		form.Set("csrf_token", e.csrf)
		body := form.Encode()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/console/experiments/new", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, req)
			if w.Code != http.StatusBadRequest {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// benchEnv is the console over the benchmark's data.
type benchEnv struct {
	*env
	csrf string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := newEnvTB(b)
	ctx := context.Background()
	start := time.Now()
	// Seeding statements run for seconds: on a connection of their own, without the server
	// pool's statement timeout.
	conn, err := e.db.Connx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		b.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			b.Fatalf("%v\n%s", err, q)
		}
	}
	exec(`SET statement_timeout = 0`)
	now := e.clock.Now()
	// 1,000 experiments: 600 running, 200 stopped, 200 drafts, three arms each.
	exec(`INSERT INTO experiments (key, name, hypothesis, status, phase, seed, hash_attribute, coverage, variants,
		target_products, metrics, forced, version, created_at, updated_at, started_at, stopped_at)
		SELECT 'exp-' || lpad(i::text, 4, '0'), 'Experiment number ' || i, 'Bundles sell more', s, 1, 'exp-' || lpad(i::text, 4, '0'),
		  'shopper_id', 1, $1::jsonb, '["sku-conditioner"]', '{"primary": "cross_sell_rate", "guardrails": [{"metric": "refund_rate", "margin": 0.05, "relative": true}]}',
		  '{}', 1, $2::timestamptz - interval '20 days', $2::timestamptz - interval '20 days',
		  CASE WHEN s = 'draft' THEN NULL ELSE $2::timestamptz - interval '14 days' END,
		  CASE WHEN s = 'stopped' THEN $2::timestamptz - interval '1 day' END
		FROM (SELECT i, CASE WHEN i <= 600 THEN 'running' WHEN i <= 800 THEN 'stopped' ELSE 'draft' END AS s
		      FROM generate_series(1, 1000) i) x`,
		`[{"key": "control", "name": "No offer", "weight": 0.34, "control": true, "strategy": {"type": "none"}},
		  {"key": "bundle10", "name": "Bundle", "weight": 0.33, "strategy": {"type": "bundle", "products": ["sku-conditioner"], "discount_percent": 10, "timing": "cart"}},
		  {"key": "points200", "name": "Points", "weight": 0.33, "strategy": {"type": "loyalty_points", "products": ["sku-conditioner"], "bonus_points": 200, "timing": "checkout"}}]`, now)
	exec(`INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at, ended_at)
		SELECT key, 1, seed, coverage, variants, started_at, stopped_at FROM experiments WHERE status <> 'draft'`)
	// 1,000,000 exposed shoppers: 100,000 in each of ten running experiments, over 14 days.
	exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen)
		SELECT 'exp-' || lpad((1 + i % 10)::text, 4, '0'), 1, 's-' || i,
		  (ARRAY['control', 'bundle10', 'points200'])[1 + (i / 10) % 3],
		  jsonb_build_object('country', (ARRAY['IT', 'FR', 'ES'])[1 + i % 3]),
		  $1::timestamptz - make_interval(secs => (i % 1209600))
		FROM generate_series(0, 999999) i`, now)
	// 150,000 orders of exposed shoppers, a third with the conditioner.
	exec(`INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
		SELECT 'o-' || i, 'order_completed', 's-' || (i * 6), $1::timestamptz - make_interval(secs => ((i * 6) % 1209600)) + interval '1 hour',
		  'exp-' || lpad((1 + (i * 6) % 10)::text, 4, '0'), 'o-' || i, 2400 + (i % 50) * 10, 0, 'EUR'
		FROM generate_series(0, 149999) i`, now)
	exec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
		SELECT e.id, l.line, e.occurred_at, e.order_id, e.shopper_id, l.sku, 1, 1200
		FROM events e CROSS JOIN LATERAL (VALUES (0, (ARRAY['sku-shampoo', 'sku-razor', 'sku-toothpaste'])[1 + (e.seq % 3)]),
		  (1, CASE WHEN e.seq % 3 = 0 THEN 'sku-conditioner' ELSE 'sku-sponge' END)) AS l(line, sku)`)
	exec(`ANALYZE`)
	b.Logf("seeded in %v", time.Since(start).Round(time.Second))
	// Snapshots of every started experiment, and the bundle ideas, as the scheduler computes them.
	start = time.Now()
	if _, err := e.sched.RunDue(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("computed the snapshots in %v", time.Since(start).Round(time.Second))
	// The experiments without traffic show a real report too, so that the list draws badges and
	// lifts on every row.
	exec(`UPDATE results_snapshots s SET report = r.report, summary = r.summary, error = NULL
		FROM (SELECT report, summary FROM results_snapshots WHERE experiment_key = 'exp-0001') r WHERE s.error IS NOT NULL`)
	// An experiment with a long history, an account with a long ledger.
	for i := range 30 {
		d := threeArms("exp-0001")
		d.Name = fmt.Sprintf("Experiment number 1, edit %d", i)
		x, _ := e.store.Get(ctx, "exp-0001")
		d.Variants = x.Variants
		d.Metrics = x.Metrics
		v := x.Version
		if _, err := e.store.Update(ctx, experiments.Actor{Role: "admin", Name: "bench"}, "exp-0001", d, experiments.ReadOnly{}, &v); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		if _, err := e.loyalty.Earn(ctx, "bench-shopper", loyalty.EarnRequest{Points: int64(10 + i), IdempotencyKey: fmt.Sprint("k", i), Reason: "order"}); err != nil {
			b.Fatal(err)
		}
	}
	return &benchEnv{env: e}
}

// benchSession signs in once and returns the session cookie and, on the env, its CSRF token.
func (e *benchEnv) benchSession(b *testing.B) *http.Cookie {
	b.Helper()
	u := e.anonymous()
	u.signIn(adminKey)
	for _, c := range u.client.Jar.Cookies(mustURL(e.t, e.url+"/console/")) {
		if c.Name == "xsell_console" {
			p := u.get("/console/experiments")
			e.csrf, _ = p.doc.Find(`input[name="csrf_token"]`).Attr("value")
			return c
		}
	}
	b.Fatal("no session cookie")
	return nil
}
