package analysis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/dbtest"
)

// offer records, as the exposure recorder's merge does, that shopper was offered each SKU at
// its time (pairs of SKU and time), adding to what they were offered before.
func offer(t *testing.T, db *sqlx.DB, key string, ph int, shopper string, offers ...any) {
	t.Helper()
	var skus []string
	var ats []time.Time
	for i := 0; i < len(offers); i += 2 {
		skus, ats = append(skus, offers[i].(string)), append(ats, offers[i+1].(time.Time))
	}
	mustExec(t, db, `INSERT INTO exposure_offers AS s (experiment_key, phase, shopper_id, skus, offered_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE
		SET skus = s.skus || EXCLUDED.skus, offered_at = s.offered_at || EXCLUDED.offered_at`,
		key, ph, shopper, pq.StringArray(skus), pq.Array(ats))
}

// boughtTogether is an experiment with a fixed and a learned arm: the control offers nothing,
// "fixed" a suggestion of sku-x (the experiment's target product), "learned" complements.
func boughtTogether(t *testing.T, db *sqlx.DB, start time.Time) {
	t.Helper()
	vs := []variant{
		{Key: "control", Name: "control", Weight: 1.0 / 3, Control: true, Strat: map[string]any{"type": "none"}},
		{Key: "fixed", Name: "fixed", Weight: 1.0 / 3, Strat: map[string]any{"type": "suggestion", "products": []string{"sku-x"}}},
		{Key: "learned", Name: "learned", Weight: 1.0 / 3, Strat: map[string]any{"type": "suggestion", "source": "complements", "max_products": 3}},
	}
	seedExperiment(t, db, "bought", "running", []string{"sku-x"}, "", phase{variants: vs, start: start})
}

// A shopper in a learned arm is cross-sold by an order holding a product they were offered, at
// or after it was offered; the experiment's target products count for the other arms only.
// Reports from the rollups agree with reports from events as offers and orders arrive.
func TestLearnedArmsCountWhatEachShopperWasOffered(t *testing.T) {
	db := dbtest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	h := func(hours float64) time.Time { return now.Add(time.Duration(hours * float64(time.Hour))) }
	boughtTogether(t, db, h(-72))
	src := source(db, h(1))
	event(t, db, "order_completed", "nobody", h(-100), "o0", 100, 0) // the job's first pass: a rebuild of nothing
	advance(t, db, 0)

	shoppers := []struct {
		id, variant string
		offers      []any
		buys        []any // SKU and time
	}{
		{"l-bought-offered", "learned", []any{"sku-a", h(-40)}, []any{"sku-a", h(-30)}},
		{"l-bought-other", "learned", []any{"sku-a", h(-40)}, []any{"sku-b", h(-30)}},
		{"l-bought-target", "learned", []any{"sku-a", h(-40)}, []any{"sku-x", h(-30)}},
		{"l-bought-before-offer", "learned", []any{"sku-b", h(-20)}, []any{"sku-b", h(-30)}},
		{"l-second-offer", "learned", []any{"sku-b", h(-40), "sku-c", h(-20)}, []any{"sku-c", h(-10)}},
		{"l-never-offered", "learned", nil, []any{"sku-a", h(-30)}},
		{"f-bought-target", "fixed", nil, []any{"sku-x", h(-30)}},
		{"f-bought-offered", "fixed", []any{"sku-a", h(-40)}, []any{"sku-a", h(-30)}},
		{"f-nothing", "fixed", nil, nil},
		{"c-bought-target", "control", nil, []any{"sku-x", h(-30)}},
		{"c-nothing", "control", nil, nil},
	}
	for i, s := range shoppers {
		expose(t, db, "bought", 1, s.id, s.variant, h(-41), "", false)
		if s.offers != nil {
			offer(t, db, "bought", 1, s.id, s.offers...)
		}
		if s.buys != nil {
			event(t, db, "order_completed", s.id, s.buys[1].(time.Time), "o"+s.id, 1000+int64(i), 0, s.buys[0].(string))
		}
	}
	req := analysis.ReportRequest{Experiment: "bought", Options: uncapped}
	check := func(step string, want map[string]float64) {
		t.Helper()
		compareWithEvents(t, src, step+", job behind", req)
		advance(t, db, 3)
		if ds := compareWithEvents(t, src, step+", job caught up", req); ds.Form == analysis.FormEvents || ds.UnitsFromEvents != 0 {
			t.Errorf("%s: read from %+v, want rollups only", step, ds)
		}
		rep, err := src.Report(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, "in the learned arms (learned) a purchase of a product the shopper was offered, "+
			"in the others (control, fixed) the experiment's target products (sku-x)") {
			t.Errorf("%s: no warning that the arms count other products:\n%s", step, w)
		}
		for v, rate := range want {
			r := findResult(t, rep.Results, "cross_sell_rate", v)
			near(t, step+": cross_sell_rate of "+v, r.TreatmentMean, rate)
			near(t, step+": cross_sell_rate of control", r.ControlMean, 0.5)
		}
	}
	// Learned: l-bought-offered and l-second-offer of 6; fixed: f-bought-target of 3; control:
	// c-bought-target of 2.
	check("first orders", map[string]float64{"learned": 2.0 / 6, "fixed": 1.0 / 3})

	// A later offer counts for orders after it only: l-bought-other is offered sku-b after
	// buying it, then buys it again.
	offer(t, db, "bought", 1, "l-bought-other", "sku-b", h(-25))
	check("an offer after the order", map[string]float64{"learned": 2.0 / 6, "fixed": 1.0 / 3})
	event(t, db, "order_completed", "l-bought-other", h(-5), "o-again", 500, 0, "sku-b")
	check("an order after the offer", map[string]float64{"learned": 3.0 / 6, "fixed": 1.0 / 3})
}
