package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/offers"
	"github.com/xsell/xsell/internal/stats"
)

var holdoutStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// setHoldout changes the holdout at a given time through the store the API uses, so that
// the history the analysis reads is the one the server writes.
func setHoldout(t *testing.T, db *sqlx.DB, at time.Time, percent float64, seed string) {
	t.Helper()
	st := offers.NewStore(db, func() time.Time { return at })
	if _, err := st.SetHoldout(context.Background(), offers.Actor{Role: "admin", Name: "test"}, nil, percent, seed); err != nil {
		t.Fatal(err)
	}
}

// runningExperiment stores a running experiment whose target product defines cross-selling.
func runningExperiment(t *testing.T, db *sqlx.DB, key string, start time.Time, end *time.Time, targets ...string) {
	t.Helper()
	status := "running"
	if end != nil {
		status = "stopped"
	}
	seedExperiment(t, db, key, status, targets, "", phase{variants: arms("control", 0.5, "offer", 0.5), start: start, end: end})
}

// earn writes a ledger entry: a bonus when experiment is set, the base earn otherwise.
func earn(t *testing.T, db *sqlx.DB, shopper, order string, points int64, experiment string, at time.Time) int64 {
	t.Helper()
	mustExec(t, db, `INSERT INTO loyalty_accounts (shopper_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, shopper, at)
	var id int64
	variant := ""
	if experiment != "" {
		variant = "offer"
	}
	if err := db.Get(&id, `INSERT INTO loyalty_entries (shopper_id, kind, points, source, reason, order_id, experiment, variant, created_at)
		VALUES ($1, 'earn', $2, 'order', 'test', $3, NULLIF($4, ''), NULLIF($5, ''), $6) RETURNING id`,
		shopper, points, order, experiment, variant, at); err != nil {
		t.Fatal(err)
	}
	return id
}

func holdoutOptions() analysis.Options {
	return analysis.Options{Alpha: 0.05, Correction: stats.CorrectionNone}
}

// TestHoldoutReportMatchesHandComputedFigures checks every figure of a ten-shopper holdout
// against values worked out by hand: the means from the fixture, Welch's interval with
// t(0.975, 8) = 2.306004 and t(0.975, 4) = 2.776445 from the published table, the p-values
// from the closed form of Student's t for even degrees of freedom
// (p = 1 − A·Σ_{j<ν/2} C(2j,j)/4^j·(1−A²)^j, A = t/√(ν+t²)), and the z-test's from erfc.
func TestHoldoutReportMatchesHandComputedFigures(t *testing.T) {
	db := dbtest.New(t)
	mustExec(t, db, `UPDATE loyalty_program SET point_value = 2`)
	t0 := holdoutStart
	oldEnd := t0.Add(-time.Hour)
	runningExperiment(t, db, "x1", t0.Add(-24*time.Hour), nil, "sku-t")
	runningExperiment(t, db, "gone", t0.Add(-72*time.Hour), &oldEnd, "sku-old") // ended before the generation
	setHoldout(t, db, t0, 50, "h-2026")

	at := t0.Add(time.Hour)
	buy := at.Add(time.Hour)
	// Holdout: revenue 0, 1000, 2000, 3000, 4000; h2 cross-sells; base points earn no cost.
	for i, amount := range []int64{0, 1000, 2000, 3000, 4000} {
		s := fmt.Sprintf("h%d", i+1)
		expose(t, db, experiments.HoldoutExperiment, 1, s, "holdout", at, "", false)
		if amount > 0 {
			skus := []string{"sku-other"}
			if i == 1 {
				skus = []string{"sku-t", "sku-old"}
			}
			event(t, db, "order_completed", s, buy, "o-"+s, amount, 0, skus...)
			earn(t, db, s, "o-"+s, amount/100, "", buy)
		}
	}
	// Rest: revenue 2000 … 6000; r1–r3 cross-sell. Cost: r1 a discount of 200, r3 a bonus of
	// 50 points, r4 one of 100 points of which 40 were reversed: 200, 0, 100, 120, 0.
	for i, amount := range []int64{2000, 3000, 4000, 5000, 6000} {
		s := fmt.Sprintf("r%d", i+1)
		expose(t, db, experiments.HoldoutExperiment, 1, s, "rest", at, "", false)
		skus := []string{"sku-other"}
		if i < 3 {
			skus = []string{"sku-t"}
		}
		discount := int64(0)
		if i == 0 {
			discount = 200
		}
		event(t, db, "order_completed", s, buy, "o-"+s, amount, discount, skus...)
		earn(t, db, s, "o-"+s, amount/100, "", buy)
	}
	earn(t, db, "r3", "o-r3", 50, "x1", buy)
	bonus := earn(t, db, "r4", "o-r4", 100, "x1", buy)
	mustExec(t, db, `INSERT INTO loyalty_entries (shopper_id, kind, points, source, reason, reverses, created_at)
		VALUES ('r4', 'reverse', -40, 'order', 'refund', $1, $2)`, bonus, buy.Add(time.Hour))
	// Neither an order before first exposure nor a shopper never exposed counts.
	event(t, db, "order_completed", "r5", t0.Add(-time.Hour), "o-early", 9999, 0, "sku-t")
	event(t, db, "order_completed", "nobody", buy, "o-nobody", 9999, 0, "sku-t")

	rep, err := source(db, t0.Add(10*24*time.Hour)).HoldoutReport(context.Background(), analysis.HoldoutRequest{Options: holdoutOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Control != "holdout" || rep.PrimaryMetric != "net_revenue" || rep.Phase != 1 || rep.Experiment != experiments.HoldoutExperiment {
		t.Fatalf("report identity: control %q, primary %q, phase %d, experiment %q", rep.Control, rep.PrimaryMetric, rep.Phase, rep.Experiment)
	}
	h := rep.Holdout
	if h == nil || h.Percent != 50 || h.Seed != "h-2026" || h.Generation != 1 || !h.GenerationStart.Equal(t0) || h.GenerationEnd != nil {
		t.Fatalf("holdout section %+v", h)
	}
	if strings.Join(h.TargetProducts, ",") != "sku-t" {
		t.Errorf("target products %v, want only sku-t (gone ended before the generation)", h.TargetProducts)
	}
	if !strings.Contains(h.Meaning, "incremental effect per shopper") || !strings.Contains(h.Meaning, "rest minus holdout") {
		t.Errorf("meaning %q", h.Meaning)
	}
	if rep.SRM.PValue == nil || *rep.SRM.Chi2 != 0 || rep.SRM.Mismatch {
		t.Errorf("SRM of 5 against 5 at 50%%: %+v", rep.SRM)
	}

	rev := findResult(t, rep.Results, "revenue", "rest")
	near(t, "revenue holdout mean", rev.ControlMean, 2000)
	near(t, "revenue rest mean", rev.TreatmentMean, 4000)
	near(t, "revenue diff", rev.Diff, 2000)
	near(t, "revenue CI low", rev.DiffCI[0], 2000-2.306004135*1000)
	near(t, "revenue CI high", rev.DiffCI[1], 2000+2.306004135*1000)
	nearTol(t, "revenue p", *rev.PValue, 0.0805162379572627, 1e-7)
	near(t, "revenue lift", *rev.Lift, 1)

	cost := findResult(t, rep.Results, "offer_cost", "rest")
	se := math.Sqrt(7280.0 / 5)
	near(t, "cost holdout mean", cost.ControlMean, 0)
	near(t, "cost rest mean", cost.TreatmentMean, 84)
	near(t, "cost CI low", cost.DiffCI[0], 84-2.776445105*se)
	near(t, "cost CI high", cost.DiffCI[1], 84+2.776445105*se)
	nearTol(t, "cost p", *cost.PValue, 0.09250837267236323, 1e-7)

	net := findResult(t, rep.Results, "net_revenue", "rest")
	near(t, "net holdout mean", net.ControlMean, 2000)
	near(t, "net rest mean", net.TreatmentMean, (1800+3000+3900+4880+6000)/5.0)

	xs := findResult(t, rep.Results, "cross_sell_rate", "rest")
	near(t, "cross-sell holdout", xs.ControlMean, 0.2)
	near(t, "cross-sell rest", xs.TreatmentMean, 0.6)
	// Counts this small take the exact z-pooled test (Suissa–Shuster): the largest, over a
	// common rate π, chance of the 20 tables of 5 + 5 whose pooled z is at least 1.291. By brute
	// force over π on a grid of 1e-5 (python3, math.comb): 352/1024 at π = 0.5.
	nearTol(t, "cross-sell p (exact z-pooled)", *xs.PValue, 352.0/1024, 1e-9)

	if len(h.Totals) != 4 {
		t.Fatalf("totals %+v", h.Totals)
	}
	for _, tot := range h.Totals {
		if tot.Metric == "net_revenue" && (tot.Shoppers != 5 || math.Abs(tot.Total-5*1916) > 1e-6) {
			t.Errorf("net revenue total %+v, want 5 shoppers × 1916", tot)
		}
	}
}

// nearTol compares with an absolute tolerance.
func nearTol(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g ± %g", what, got, want, tol)
	}
}

// behaviour is how one side of the holdout buys: the chance of an order (one, of amount),
// its discount, the chance it holds the target product, and the bonus points it then earns.
type behaviour struct {
	order, target      float64
	amount, discount   int64
	bonusOnCrossSell   int64
	pointValue         int64
	heldOut, holdShare float64
}

// means are a behaviour's expected figures per shopper, in closed form.
func (b behaviour) means() map[string]float64 {
	xs := b.order * b.target
	cost := b.order*float64(b.discount) + xs*float64(b.bonusOnCrossSell*b.pointValue)
	return map[string]float64{"revenue": b.order * float64(b.amount), "cross_sell_rate": xs,
		"offer_cost": cost, "net_revenue": b.order*float64(b.amount) - cost}
}

// simulateHoldout writes n shoppers of generation 1, each held out with probability share,
// who then behave as held or rest says, drawn from a PCG with the given seed.
func simulateHoldout(t *testing.T, db *sqlx.DB, n int, share float64, held, rest behaviour, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	at := holdoutStart.Add(time.Hour)
	var ids, sides, orders, skus, bonusShoppers []string
	var amounts, discounts, points []int64
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%05d", i)
		b, side := rest, "rest"
		if rng.Float64() < share {
			b, side = held, "holdout"
		}
		ids, sides = append(ids, id), append(sides, side)
		if rng.Float64() >= b.order {
			continue
		}
		sku := "sku-other"
		if rng.Float64() < b.target {
			sku = "sku-t"
			if b.bonusOnCrossSell > 0 {
				bonusShoppers, points = append(bonusShoppers, id), append(points, b.bonusOnCrossSell)
			}
		}
		orders, skus = append(orders, id), append(skus, sku)
		amounts, discounts = append(amounts, b.amount), append(discounts, b.discount)
	}
	tx := db.MustBegin()
	tx.MustExec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
		SELECT $1, 1, s, v, $2 FROM unnest($3::text[], $4::text[]) AS u(s, v)`,
		experiments.HoldoutExperiment, at, pq.Array(ids), pq.Array(sides))
	tx.MustExec(`INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		SELECT 'e-' || s, 'order_completed', s, $1, 'o-' || s, a, d, 'EUR' FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(s, a, d)`,
		at.Add(time.Hour), pq.Array(orders), pq.Array(amounts), pq.Array(discounts))
	tx.MustExec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
		SELECT 'e-' || s, 0, $1, 'o-' || s, s, k, 1, 100 FROM unnest($2::text[], $3::text[]) AS u(s, k)`,
		at.Add(time.Hour), pq.Array(orders), pq.Array(skus))
	tx.MustExec(`INSERT INTO loyalty_accounts (shopper_id, created_at) SELECT s, $1 FROM unnest($2::text[]) s`, at, pq.Array(bonusShoppers))
	tx.MustExec(`INSERT INTO loyalty_entries (shopper_id, kind, points, source, reason, order_id, experiment, variant, created_at)
		SELECT s, 'earn', p, 'order', 'bonus', 'o-' || s, 'x1', 'offer', $1 FROM unnest($2::text[], $3::bigint[]) AS u(s, p)`,
		at.Add(time.Hour), pq.Array(bonusShoppers), pq.Array(points))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// holdoutFixture is a programme of n shoppers behind a 10% holdout, with the given behaviours.
func holdoutFixture(t *testing.T, n int, share float64, held, rest behaviour) *sqlx.DB {
	t.Helper()
	db := dbtest.New(t)
	mustExec(t, db, `UPDATE loyalty_program SET point_value = 2`)
	runningExperiment(t, db, "x1", holdoutStart.Add(-24*time.Hour), nil, "sku-t")
	setHoldout(t, db, holdoutStart, 10, "h-2026")
	simulateHoldout(t, db, n, share, held, rest, 2026)
	return db
}

func holdoutReport(t *testing.T, db *sqlx.DB, req analysis.HoldoutRequest) *analysis.Report {
	t.Helper()
	if req.Options == (analysis.Options{}) {
		req.Options = analysis.DefaultOptions
	}
	rep, err := source(db, holdoutStart.Add(30*24*time.Hour)).HoldoutReport(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var organic = behaviour{order: 0.20, target: 0.5, amount: 5000, pointValue: 2}

// TestHoldoutReportFindsAPlantedProgrammeEffect plants a programme that raises orders and
// cross-selling at a cost: every interval must cover the planted difference (the closed-form
// expectations of the behaviours), and the programme must come out ahead on net revenue.
func TestHoldoutReportFindsAPlantedProgrammeEffect(t *testing.T) {
	programme := behaviour{order: 0.35, target: 0.8, amount: 5000, discount: 500, bonusOnCrossSell: 50, pointValue: 2}
	db := holdoutFixture(t, 6000, 0.10, organic, programme)
	rep := holdoutReport(t, db, analysis.HoldoutRequest{})
	if rep.SRM.Mismatch {
		t.Errorf("SRM flagged on a 10%% draw against 10%%: %+v", rep.SRM)
	}
	want, base := programme.means(), organic.means()
	for _, m := range analysis.HoldoutMetrics {
		r := findResult(t, rep.Results, m, "rest")
		planted := want[m] - base[m]
		if r.DiffCI == nil || planted < r.DiffCI[0] || planted > r.DiffCI[1] {
			t.Errorf("%s: interval %v does not cover the planted difference %g (estimate %g)", m, r.DiffCI, planted, r.Diff)
		}
		if math.Signbit(r.Diff) != math.Signbit(planted) {
			t.Errorf("%s: diff %g: not the sign of the planted %g", m, r.Diff, planted)
		}
		if base[m] == 0 { // the holdout pays no offer: no lift relative to nothing
			if r.Lift != nil {
				t.Errorf("%s: lift %g over a holdout mean of 0", m, *r.Lift)
			}
			continue
		}
		if lift := planted / base[m]; r.LiftCI == nil || lift < r.LiftCI[0] || lift > r.LiftCI[1] {
			t.Errorf("%s: lift interval %v does not cover the planted lift %g", m, r.LiftCI, lift)
		}
	}
	net := findResult(t, rep.Results, "net_revenue", "rest")
	if net.Verdict != analysis.VerdictBetter {
		t.Errorf("net revenue: verdict %q, want better (planted +%g per shopper)", net.Verdict, want["net_revenue"]-base["net_revenue"])
	}
	if cost := findResult(t, rep.Results, "offer_cost", "rest"); cost.Verdict != analysis.VerdictWorse {
		t.Errorf("offer cost: verdict %q, want worse: the programme costs money", cost.Verdict)
	}
}

// TestHoldoutReportSeesNoEffectWhereNoneIsPlanted gives both sides the same behaviour.
func TestHoldoutReportSeesNoEffectWhereNoneIsPlanted(t *testing.T) {
	db := holdoutFixture(t, 6000, 0.10, organic, organic)
	rep := holdoutReport(t, db, analysis.HoldoutRequest{})
	for _, r := range rep.Results {
		if r.Metric == "offer_cost" {
			continue // zero on both sides: nothing to test
		}
		if r.DiffCI == nil || r.DiffCI[0] > 0 || r.DiffCI[1] < 0 || r.Verdict != analysis.VerdictNoDifference {
			t.Errorf("%s: interval %v, verdict %s; want one covering 0 and no difference", r.Metric, r.DiffCI, r.Verdict)
		}
	}
}

// TestHoldoutReportFlagsASplitOffItsPercentage draws 15% of shoppers into a 10% holdout.
func TestHoldoutReportFlagsASplitOffItsPercentage(t *testing.T) {
	db := holdoutFixture(t, 6000, 0.15, organic, organic)
	rep := holdoutReport(t, db, analysis.HoldoutRequest{})
	if !rep.SRM.Mismatch || rep.Variants[0].ExpectedWeight != 0.1 {
		t.Errorf("SRM %+v, variants %+v: want a mismatch against the holdout's 10%%", rep.SRM, rep.Variants)
	}
}

// TestHoldoutReportReadsOneGeneration checks the window of a generation: a past one ends
// where the next began, --since cuts its start, and there is nothing to read without a holdout.
func TestHoldoutReportReadsOneGeneration(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	src := source(db, holdoutStart.Add(30*24*time.Hour))
	req := analysis.HoldoutRequest{Options: holdoutOptions()}
	if _, err := src.HoldoutReport(ctx, req); !errors.Is(err, analysis.ErrNoHoldout) {
		t.Fatalf("no holdout set: %v", err)
	}
	runningExperiment(t, db, "x1", holdoutStart.Add(-24*time.Hour), nil, "sku-t")
	setHoldout(t, db, holdoutStart, 10, "h-2026")
	if _, err := src.HoldoutReport(ctx, req); !errors.Is(err, analysis.ErrNoExposures) {
		t.Fatalf("nobody exposed yet: %v", err)
	}
	second := holdoutStart.Add(10 * 24 * time.Hour)
	setHoldout(t, db, second, 20, "h-2026")
	setHoldout(t, db, second.Add(24*time.Hour), 0, "")
	for i, g := range []struct {
		gen  int
		at   time.Time
		side string
	}{{1, holdoutStart.Add(time.Hour), "holdout"}, {1, holdoutStart.Add(5 * 24 * time.Hour), "rest"},
		{1, second.Add(time.Hour), "rest"}, // recorded late by a server still on generation 1: after its end
		{2, second.Add(time.Hour), "holdout"}, {2, second.Add(2 * time.Hour), "rest"},
		{2, holdoutStart, "rest"}} { // an assignment an admin back-dated: it counts in its generation
		expose(t, db, experiments.HoldoutExperiment, g.gen, fmt.Sprintf("s%d", i), g.side, g.at, "", false)
	}

	req.Generation = 1
	rep, err := src.HoldoutReport(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Holdout.GenerationEnd == nil || !rep.Holdout.GenerationEnd.Equal(second) || rep.Variants[0].Units != 1 || rep.Variants[1].Units != 1 {
		t.Errorf("generation 1: end %v, variants %+v; want it to end at %v with one shopper a side", rep.Holdout.GenerationEnd, rep.Variants, second)
	}
	req.Since = 10 * 24 * time.Hour // from the generation's start: nothing cut
	if rep, err = src.HoldoutReport(ctx, req); err != nil || rep.Holdout.Since != nil {
		t.Errorf("--since longer than the generation: %v, since %v", err, rep.Holdout.Since)
	}
	req.Since = 7 * 24 * time.Hour // from day 3: the first holdout shopper is left out
	if rep, err = src.HoldoutReport(ctx, req); err != nil {
		t.Fatalf("--since 7d: %v", err)
	}
	if rep.Variants[0].Units != 0 || rep.Variants[1].Units != 1 || rep.Holdout.Since == nil || !rep.Holdout.Since.Equal(holdoutStart.Add(3*24*time.Hour)) {
		t.Errorf("--since 7d: variants %+v, since %v", rep.Variants, rep.Holdout.Since)
	}

	req = analysis.HoldoutRequest{Generation: 2, Options: holdoutOptions()}
	if rep, err = src.HoldoutReport(ctx, req); err != nil {
		t.Fatalf("generation 2: %v", err)
	}
	if rep.Holdout.Percent != 20 || rep.Variants[0].ExpectedWeight != 0.2 || rep.Variants[0].Units != 1 || rep.Variants[1].Units != 2 {
		t.Errorf("generation 2: %+v, variants %+v", rep.Holdout, rep.Variants)
	}
	req.Generation = 3
	if _, err := src.HoldoutReport(ctx, req); !errors.Is(err, analysis.ErrNoHoldout) {
		t.Errorf("generation 3 switched the holdout off: %v", err)
	}
	req.Generation = 4
	if _, err := src.HoldoutReport(ctx, req); err == nil || !strings.Contains(err.Error(), "no generation 4 (it is in generation 3)") {
		t.Errorf("generation 4: %v", err)
	}
}
