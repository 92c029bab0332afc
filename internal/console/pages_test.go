package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/loyalty"
)

// seedExposures records exposed shoppers and their orders directly, as the recorder and the
// events committer would, so that a report has data.
func seedExposures(t *testing.T, e *env, key string, perVariant map[string]int, withTarget map[string]int) {
	t.Helper()
	at := e.clock.Now().Add(-24 * time.Hour)
	for variant, n := range perVariant {
		for i := range n {
			shopper := variant + "-" + strconv.Itoa(i)
			if _, err := e.db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen) VALUES ($1, 1, $2, $3, $4)`,
				key, shopper, variant, at); err != nil {
				t.Fatal(err)
			}
			if i < withTarget[variant] {
				id := "o-" + shopper
				if _, err := e.db.Exec(`INSERT INTO events (id, type, shopper_id, occurred_at, experiment, order_id, amount, discount, currency)
					VALUES ($1, 'order_completed', $2, $3, $4, $1, 2400, 0, 'EUR')`, id, shopper, at.Add(time.Hour), key); err != nil {
					t.Fatal(err)
				}
				if _, err := e.db.Exec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
					VALUES ($1, 0, $2, $1, $3, 'sku-conditioner', 1, 2400)`, id, at.Add(time.Hour), shopper); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestResultsComeFromStoredSnapshotsAndRefreshNow(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(analystKey)
	draft := u.get("/console/experiments/pdp/results").wantStatus(http.StatusOK)
	draft.wantText(".snapshot-bar", "is a draft")
	if draft.doc.Find(`form[action$="/results/refresh"]`).Length() != 0 {
		t.Error("a draft offers Refresh now")
	}
	e.transition("pdp", experiments.ActionStart)
	seedExposures(t, e, "pdp", map[string]int{"control": 300, "bundle10": 300, "points200": 300},
		map[string]int{"control": 30, "bundle10": 60, "points200": 33})

	waiting := u.get("/console/experiments/pdp/results").wantStatus(http.StatusOK)
	waiting.wantText(".snapshot-bar", "No results have been computed yet")
	if c, _ := waiting.doc.Find(`meta[http-equiv="refresh"]`).Attr("content"); c == "" {
		t.Error("a page waiting for its first snapshot does not reload itself")
	}
	// Refresh now: the request is stored, the scheduler answers it.
	u.submit(waiting, "/console/experiments/pdp/results/refresh", url.Values{}).wantRedirect("/console/experiments/pdp/results?done=refresh")
	pending := u.get("/console/experiments/pdp/results?done=refresh")
	pending.wantText(".pending", "Fresh results were asked for")
	if n, err := e.sched.RunDue(context.Background()); err != nil || n < 1 {
		t.Fatalf("RunDue: %d, %v", n, err)
	}
	p := u.get("/console/experiments/pdp/results").wantStatus(http.StatusOK)
	if p.doc.Find(".pending").Length() != 0 {
		t.Error("the request is still pending after the snapshot")
	}
	p.wantText(".snapshot-bar", "Computed")
	// The primary metric's row: 60/300 against 30/300.
	p.wantRow("#metric-cross_sell_rate", "bundle10 300 20% +10pp")
	p.wantRow("#metric-cross_sell_rate", "control (control) 300 10%")
	p.wantText("#metric-cross_sell_rate .verdict", "better")
	if p.doc.Find("#metric-cross_sell_rate svg[role=img] title").Length() != 2 {
		t.Error("the lift chart has no tooltip per treatment")
	}
	// Money in its currency, never in minor units.
	p.wantRow("#metric-revenue", "control (control) 300 €2.40")
	// A second snapshot, an hour later; the first stays readable.
	e.clock.Advance(61 * time.Minute)
	if _, err := e.sched.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	p = u.get("/console/experiments/pdp/results")
	links := p.doc.Find(".older a")
	if links.Length() != 2 {
		t.Fatalf("%d snapshots listed, want 2", links.Length())
	}
	href, _ := links.Last().Attr("href")
	old := u.get(href).wantStatus(http.StatusOK)
	old.wantText(".snapshot-bar", "An older snapshot")
	old.wantRow("#metric-cross_sell_rate", "bundle10 300 20%")
	u.get("/console/experiments/pdp/results?snapshot=999999").wantStatus(http.StatusNotFound)
	u.get("/console/experiments/pdp/results?snapshot=x").wantStatus(http.StatusNotFound)
}

func TestASnapshotThatCouldNotBeComputedSaysWhy(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	e.transition("pdp", experiments.ActionStart)
	if _, err := e.sched.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := e.signedIn(adminKey).get("/console/experiments/pdp/results").wantStatus(http.StatusOK)
	p.wantText(".problem", "no exposures yet")
	e.signedIn(adminKey).get("/console/experiments").wantText("tbody", "no results yet")
}

func TestLoyaltyProgramSettings(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	p := u.get("/console/loyalty").wantStatus(http.StatusOK)
	if v, _ := p.doc.Find("#f-earn_rate").Attr("value"); v != "1" {
		t.Errorf("earn rate shown as %q", v)
	}
	bad := u.submit(p, "/console/loyalty/program", url.Values{"earn_rate": {"x"}, "point_value": {"1"}, "expiry_days": {"10"}, "pending_days": {"30"}}).
		wantStatus(http.StatusBadRequest)
	if got := bad.errorAt("earn_rate"); !strings.Contains(got, "whole number") {
		t.Errorf("beside earn_rate: %q", got)
	}
	bad = u.submit(p, "/console/loyalty/program", url.Values{"earn_rate": {"2"}, "point_value": {"1"}, "expiry_days": {"10"}, "pending_days": {"30"}}).
		wantStatus(http.StatusBadRequest)
	if got := bad.errorAt("expiry_days"); !strings.Contains(got, "more than pending_days") {
		t.Errorf("beside expiry_days: %q", got)
	}
	if v, _ := bad.doc.Find("#f-pending_days").Attr("value"); v != "30" {
		t.Errorf("the typed value was not kept: %q", v)
	}
	if prog, _ := e.loyalty.Program(context.Background()); prog.EarnRate != 1 {
		t.Errorf("a refused save changed the program: %+v", prog)
	}
	u.submit(p, "/console/loyalty/program", url.Values{"earn_rate": {"2"}, "point_value": {"1"}, "expiry_days": {"400"}, "pending_days": {"30"}}).
		wantRedirect("/console/loyalty?done=program")
	if prog, _ := e.loyalty.Program(context.Background()); prog.EarnRate != 2 || prog.ExpiryDays != 400 || prog.PendingDays != 30 {
		t.Errorf("program after save: %+v", prog)
	}
}

func TestAccountLookupAndReversal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	earn, err := e.loyalty.Earn(ctx, "s-3", loyalty.EarnRequest{Points: 120, IdempotencyKey: "k1", Reason: "welcome"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.loyalty.Redeem(ctx, "s-3", loyalty.RedeemRequest{Points: 20, IdempotencyKey: "k2", OrderID: "o-9"}); err != nil {
		t.Fatal(err)
	}
	u := e.signedIn(adminKey)
	p := u.get("/console/loyalty/accounts?shopper=s-3").wantStatus(http.StatusOK)
	p.wantText("#balance", "100 points")
	p.wantRow("#h-lots + .table-wrap, section[aria-labelledby=h-lots]", "100 120")
	p.wantRow("section[aria-labelledby=h-tx]", "redeem −20 api order o-9")
	p.wantRow("section[aria-labelledby=h-tx]", "earn 120 api · welcome")
	u.get("/console/loyalty/accounts?shopper=").wantStatus(http.StatusBadRequest).wantText("#shopper-error", "Enter a shopper id")

	id := earn.Receipt.Transaction.ID
	confirm := u.get("/console/loyalty/transactions/" + strconv.FormatInt(id, 10) + "/reverse").wantStatus(http.StatusOK)
	confirm.wantText(".explain", "takes back what is left")
	key, _ := confirm.doc.Find(`input[name="idempotency_key"]`).Attr("value")
	form := url.Values{"idempotency_key": {key}, "points": {"lots"}}
	u.submit(confirm, "/console/loyalty/transactions/"+strconv.FormatInt(id, 10)+"/reverse", form).wantStatus(http.StatusBadRequest).
		wantText("#f-points-error", "whole number")
	form.Set("points", "")
	u.submit(confirm, "/console/loyalty/transactions/"+strconv.FormatInt(id, 10)+"/reverse", form).wantRedirect("/console/loyalty/accounts?")
	// Pressing the button twice replays the first answer: nothing is reversed twice.
	u.submit(confirm, "/console/loyalty/transactions/"+strconv.FormatInt(id, 10)+"/reverse", form).wantRedirect("/console/loyalty/accounts?")
	if n := e.count(`SELECT count(*) FROM loyalty_entries WHERE kind = 'reverse'`); n != 1 {
		t.Errorf("%d reversals, want 1", n)
	}
	a, _ := e.loyalty.Account(ctx, "s-3")
	if a.Balance != 0 {
		t.Errorf("balance %d after reversing the earn", a.Balance)
	}
	// A reversal cannot itself be reversed.
	var rid int64
	if err := e.db.Get(&rid, `SELECT id FROM loyalty_entries WHERE kind = 'reverse'`); err != nil {
		t.Fatal(err)
	}
	u.get("/console/loyalty/transactions/" + strconv.FormatInt(rid, 10) + "/reverse").wantStatus(http.StatusConflict)
	u.get("/console/loyalty/transactions/999999/reverse").wantStatus(http.StatusNotFound)
}

func TestBundleIdeasFilterAndOpenAPrefilledForm(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	none := u.get("/console/bundles").wantStatus(http.StatusOK)
	none.wantText(".snapshot-bar", "have not been computed yet")
	// Orders: shampoo with conditioner in 8 of 10, shampoo with razor in 5.
	at := e.clock.Now().Add(-48 * time.Hour)
	for i := range 10 {
		id := "o-" + strconv.Itoa(i)
		skus := []string{"sku-shampoo"}
		if i < 8 {
			skus = append(skus, "sku-conditioner")
		}
		if i < 5 {
			skus = append(skus, "sku-razor")
		}
		for line, sku := range skus {
			if _, err := e.db.Exec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
				VALUES ($1, $2, $3, $1, 's', $4, 1, 100)`, id, line, at, sku); err != nil {
				t.Fatal(err)
			}
		}
	}
	u.submit(none, "/console/bundles/refresh", url.Values{}).wantRedirect("/console/bundles?done=ideas")
	if _, err := e.sched.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := u.get("/console/bundles").wantStatus(http.StatusOK)
	p.wantText(".snapshot-bar", "10 orders")
	p.wantRow("table.pairs", "sku-conditioner + sku-shampoo 8 80.0% 100.0% 80.0% 1.00")
	if n := p.doc.Find("table.pairs tbody tr").Length(); n != 3 {
		t.Errorf("%d pairs, want 3", n)
	}
	p = u.get("/console/bundles?min_orders=6")
	if n := p.doc.Find("table.pairs tbody tr").Length(); n != 1 {
		t.Errorf("min_orders=6 leaves %d pairs, want 1", n)
	}
	p = u.get("/console/bundles?min_support=60&min_confidence=90")
	if n := p.doc.Find("table.pairs tbody tr").Length(); n != 1 {
		t.Errorf("support ≥ 60%% and confidence ≥ 90%% leave %d pairs, want 1", n)
	}
	p = u.get("/console/bundles?min_lift=1.3")
	p.wantText("main", "No pair passes these thresholds")
	bad := u.get("/console/bundles?min_lift=high").wantStatus(http.StatusBadRequest)
	if got := bad.errorAt("min_lift"); !strings.Contains(got, "number") {
		t.Errorf("beside min_lift: %q", got)
	}
	// Create an experiment from the pair: the form is filled in, and saves as it is.
	href, _ := u.get("/console/bundles?min_orders=6").doc.Find(`table.pairs a[href*="trigger=sku-shampoo"]`).Attr("href")
	form := u.get(href).wantStatus(http.StatusOK)
	form.wantText(".notice", "sku-shampoo → sku-conditioner")
	values := url.Values{}
	form.doc.Find("form.experiment-form input, form.experiment-form select, form.experiment-form textarea").Each(func(_ int, s *goquerySelection) {
		name, _ := s.Attr("name")
		typ, _ := s.Attr("type")
		if name == "" || name == "csrf_token" || ((typ == "checkbox" || typ == "radio") && s.AttrOr("checked", "x") == "x") {
			return
		}
		switch {
		case goquerySelectionIs(s, "select"):
			values.Set(name, s.Find("option[selected]").AttrOr("value", s.Find("option").First().AttrOr("value", "")))
		case goquerySelectionIs(s, "textarea"):
			values.Set(name, s.Text())
		default:
			values.Add(name, s.AttrOr("value", ""))
		}
	})
	values.Set("op", "save")
	u.submit(form, "/console/experiments/new", values).wantRedirect("/console/experiments/xsell-sku-shampoo-sku-conditioner")
	x := mustGet(t, e, "xsell-sku-shampoo-sku-conditioner")
	if len(x.Variants) != 3 || x.Variants[1].Strategy.Type != experiments.StrategyBundle || x.Variants[2].Strategy.Type != experiments.StrategyLoyaltyPoints ||
		x.Variants[1].Strategy.TriggerProducts[0] != "sku-shampoo" || x.Variants[1].Strategy.Products[0] != "sku-conditioner" {
		t.Errorf("the prefilled experiment: %+v", x.Variants)
	}
}

func goquerySelectionIs(s *goquerySelection, tag string) bool { return goquerySelectionName(s) == tag }

func goquerySelectionName(s *goquerySelection) string {
	if len(s.Nodes) == 0 {
		return ""
	}
	return s.Nodes[0].Data
}
