package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apptest"
)

// offersAPI is the whole server over a fresh database, with its spender run by hand.
type offersAPI struct {
	srv *apptest.Server
}

func newOffersAPI(t *testing.T) offersAPI {
	t.Helper()
	return offersAPI{srv: apptest.Start(t, apptest.Options{})}
}

func (a offersAPI) do(t *testing.T, method, path, key, body string) answer {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return do(t, method, a.srv.URL+path, key, ct, body)
}

// details lists an error answer's details as "field:code".
func details(a answer) string {
	var out []string
	e, _ := a.body["error"].(map[string]any)
	ds, _ := e["details"].([]any)
	for _, d := range ds {
		m := d.(map[string]any)
		out = append(out, fmt.Sprint(m["field"], ":", m["code"]))
	}
	return strings.Join(out, " ")
}

func errCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// offerExperiment is the body of an experiment with a control, a bundle of 300 EUR cents off
// and 200 bonus points; extra is spliced into the definition.
func offerExperiment(key, extra, bundleExtra, pointsExtra string) string {
	return `{"key": "` + key + `", "name": "n", ` + extra + `"variants": [
		{"key": "control", "name": "C", "weight": 0.34, "strategy": {"type": "none"}},
		{"key": "bundle", "name": "B", "weight": 0.33, ` + bundleExtra + `"strategy": {"type": "bundle", "products": ["sku-2"], "discount_amount": 300, "currency": "EUR", "timing": "cart"}},
		{"key": "points", "name": "P", "weight": 0.33, ` + pointsExtra + `"strategy": {"type": "loyalty_points", "products": ["sku-2"], "bonus_points": 200, "timing": "checkout"}}]}`
}

func (a offersAPI) start(t *testing.T, body string) string {
	t.Helper()
	var def struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal([]byte(body), &def)
	if r := a.do(t, "POST", "/v1/experiments", apptest.AdminKey, body); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r := a.do(t, "POST", "/v1/experiments/"+def.Key+"/start", apptest.AdminKey, ""); r.status != 200 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	return def.Key
}

// shopperIn finds a shopper the experiment puts in variant.
func (a offersAPI) shopperIn(t *testing.T, key, variant string) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("%s-%d", variant, i)
		if x := a.assign(t, id, key, false); x["variant"] == variant {
			return id
		}
	}
	t.Fatalf("nobody in %s of %s", variant, key)
	return ""
}

// assign is one shopper's answer for one experiment.
func (a offersAPI) assign(t *testing.T, shopper, key string, track bool) map[string]any {
	t.Helper()
	r := a.do(t, "POST", "/v1/assign", apptest.CheckoutKey, fmt.Sprintf(`{"shopper_id": %q, "experiments": [%q], "track": %v}`, shopper, key, track))
	if r.status != 200 {
		t.Fatalf("assign: %d %s", r.status, r.raw)
	}
	return r.body["assignments"].([]any)[0].(map[string]any)
}

// waitOffer asks until the shopper's answer says offer, for up to within: budget changes reach
// the cache through NOTIFY.
func (a offersAPI) waitOffer(t *testing.T, shopper, key, offer string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		x := a.assign(t, shopper, key, false)
		if x["offer"] == offer {
			if x["in_experiment"] != true {
				t.Fatalf("offer %s answered out of the experiment: %v", offer, x)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s still gets %v after %s, want offer %s", shopper, key, x, within, offer)
		}
	}
}

func TestOfferSettingsAndTheHoldoutAreTheAdminsAndAudited(t *testing.T) {
	api := newOffersAPI(t)
	if r := api.do(t, "GET", "/v1/offers/settings", apptest.AnalystKey, ""); r.status != 200 || r.body["global_cap"] != nil {
		t.Fatalf("GET settings: %d %s", r.status, r.raw)
	}
	cases := []struct {
		method, path, key, body string
		status                  int
		details                 string
	}{
		{"PUT", "/v1/offers/settings", apptest.AnalystKey, `{"global_cap": null}`, 403, ""},
		{"PUT", "/v1/offers/settings", apptest.CheckoutKey, `{"global_cap": null}`, 403, ""},
		{"PUT", "/v1/offers/settings", apptest.AdminKey, `{"global_cap": {"offers": 0, "per": "1w"}}`, 400, "global_cap.offers:out_of_range global_cap.per:not_allowed"},
		{"PUT", "/v1/offers/settings", apptest.AdminKey, `{"global_cap": {"offers": 3, "per": "7d", "extra": 1}}`, 400, "global_cap.extra:unknown_field"},
		{"PUT", "/v1/offers/settings", apptest.AdminKey, `{"global_cap": {"offers": 10, "per": "7d"}, "version": 7}`, 409, ""},
		{"PUT", "/v1/offers/settings", apptest.AdminKey, `{"global_cap": {"offers": 10, "per": "7d"}, "version": 1}`, 200, ""},
		{"PUT", "/v1/holdout", apptest.AnalystKey, `{"percent": 5, "seed": "h"}`, 403, ""},
		{"PUT", "/v1/holdout", apptest.AdminKey, `{"percent": 60, "seed": "h"}`, 400, "percent:out_of_range"},
		{"PUT", "/v1/holdout", apptest.AdminKey, `{"percent": 5}`, 400, "seed:required"},
		{"PUT", "/v1/holdout", apptest.AdminKey, `{"seed": "h"}`, 400, "percent:required"},
		{"PUT", "/v1/holdout", apptest.AdminKey, `{"percent": 50, "seed": "holdout-2026"}`, 200, ""},
	}
	for _, tc := range cases {
		r := api.do(t, tc.method, tc.path, tc.key, tc.body)
		if r.status != tc.status || details(r) != tc.details {
			t.Errorf("%s %s %s: %d %s, want %d with details %q", tc.method, tc.path, tc.body, r.status, r.raw, tc.status, tc.details)
		}
	}
	h := api.do(t, "GET", "/v1/holdout", apptest.AnalystKey, "")
	if h.status != 200 || h.body["percent"] != 50.0 || h.body["seed"] != "holdout-2026" || h.body["generation"] != 1.0 {
		t.Fatalf("GET holdout: %d %s", h.status, h.raw)
	}
	hist := api.do(t, "GET", "/v1/offers/history", apptest.AnalystKey, "")
	entries, _ := hist.body["history"].([]any)
	if len(entries) != 2 || entries[0].(map[string]any)["action"] != "settings" || entries[1].(map[string]any)["action"] != "holdout" ||
		entries[1].(map[string]any)["key_name"] != "admin-1" {
		t.Fatalf("history: %s", hist.raw)
	}
	// Half the shoppers are held out: they keep their variant, see the control's experience.
	key := api.start(t, offerExperiment("held", "", "", ""))
	held := 0
	for i := range 200 {
		x := api.assign(t, fmt.Sprintf("h-%d", i), key, false)
		if x["offer"] == "holdout" {
			held++
			if x["in_experiment"] != true || x["variant"] == nil || x["strategy"].(map[string]any)["type"] != "none" {
				t.Fatalf("held out: %v", x)
			}
		}
	}
	if held < 60 || held > 140 {
		t.Fatalf("%d of 200 held out at 50%%", held)
	}
}

func TestAnExperimentsBudgetsShowAndChangeWhileItRuns(t *testing.T) {
	api := newOffersAPI(t)
	key := api.start(t, offerExperiment("budgeted", `"frequency_cap": {"offers": 3, "per": "7d"}, `,
		`"budget": {"discount": {"amount": 50000, "currency": "EUR"}}, `, ""))
	g := api.do(t, "GET", "/v1/experiments/"+key, apptest.AnalystKey, "")
	st, _ := g.body["budget_status"].([]any)
	if g.status != 200 || len(st) != 1 || st[0].(map[string]any)["left"] != 50000.0 || st[0].(map[string]any)["variant"] != "bundle" {
		t.Fatalf("GET: %s", g.raw)
	}
	// What GET answered, with the budget raised and the cap lowered, goes back as it is.
	raised := strings.Replace(strings.Replace(g.raw, `"amount":50000`, `"amount":80000`, 1), `"offers":3`, `"offers":2`, 1)
	if r := api.do(t, "PUT", "/v1/experiments/"+key, apptest.AdminKey, raised); r.status != 200 {
		t.Fatalf("PUT while running: %d %s", r.status, r.raw)
	}
	hist := api.do(t, "GET", "/v1/experiments/"+key+"/history", apptest.AnalystKey, "")
	if !strings.Contains(hist.raw, `"variants[].budget"`) || !strings.Contains(hist.raw, `"frequency_cap"`) {
		t.Fatalf("history does not show the changes: %s", hist.raw)
	}
	// A variant's own cap is its treatment: a new phase.
	g = api.do(t, "GET", "/v1/experiments/"+key, apptest.AnalystKey, "")
	armCap := strings.Replace(g.raw, `"key":"points","name":"P",`, `"key":"points","name":"P","frequency_cap":{"offers":1,"per":"24h"},`, 1)
	if r := api.do(t, "PUT", "/v1/experiments/"+key, apptest.AdminKey, armCap); r.status != 409 || errCode(r) != "requires_new_phase" {
		t.Fatalf("a variant's cap while running: %d %s", r.status, r.raw)
	}
}

func TestBonusEarnsBeyondABudgetOrALimitAre409(t *testing.T) {
	api := newOffersAPI(t)
	key := api.start(t, offerExperiment("bonus", "", "",
		`"budget": {"points": 500, "per_shopper": {"accepted_offers": 2, "per": "30d"}}, `))
	earn := func(shopper, idem, variant string) answer {
		return api.do(t, "POST", "/v1/loyalty/accounts/"+shopper+"/earn", apptest.CheckoutKey,
			fmt.Sprintf(`{"points": 200, "idempotency_key": %q, "reason": "bundle bonus", "experiment": %q, "variant": %q}`, idem, key, variant))
	}
	steps := []struct {
		shopper, idem, variant string
		status                 int
		code                   string
	}{
		{"s-1", "k1", "points", 201, ""},
		{"s-1", "k2", "points", 201, ""},
		{"s-1", "k3", "points", 409, "per_shopper_limit_exceeded"}, // a third offer for s-1
		{"s-2", "k1", "points", 409, "budget_exhausted"},           // 100 left, the bonus is 200
		{"s-2", "k2", "nope", 400, "invalid_request"},
	}
	for _, s := range steps {
		if r := earn(s.shopper, s.idem, s.variant); r.status != s.status || (s.code != "" && errCode(r) != s.code) {
			t.Fatalf("%+v: %d %s", s, r.status, r.raw)
		}
	}
	if a := api.do(t, "GET", "/v1/loyalty/accounts/s-2", apptest.CheckoutKey, ""); a.body["balance"] != 0.0 {
		t.Fatalf("a refused bonus credited points: %s", a.raw)
	}
	// 100 left cannot pay a bonus of 200: the points arm shows the control's experience.
	api.waitOffer(t, api.shopperIn(t, key, "points"), key, "budget_exhausted", 5*time.Second)
	if x := api.assign(t, api.shopperIn(t, key, "bundle"), key, false); x["offer"] != "show" {
		t.Fatalf("the bundle arm: %v", x)
	}
}

func TestOrderDiscountsSpendTheBudgetAndRefundsGiveItBack(t *testing.T) {
	api := newOffersAPI(t)
	key := api.start(t, offerExperiment("discounts", "", `"budget": {"discount": {"amount": 600, "currency": "EUR"}}, `, ""))
	buyer := api.shopperIn(t, key, "bundle")
	api.assign(t, buyer, key, true) // the exposure that attributes the orders to the variant
	deadline := time.Now().Add(5 * time.Second)
	for n := 0; n == 0; {
		if err := api.srv.DB.Get(&n, `SELECT count(*) FROM exposures WHERE experiment_key = $1 AND shopper_id = $2`, key, buyer); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the buyer's exposure was not written within 5s")
		}
	}
	order := func(id string) string {
		return fmt.Sprintf(`{"id": "e-%s", "type": "order_completed", "shopper_id": %q, "experiment": %q, "order_id": %q,
			"amount": 3000, "discount": 300, "currency": "EUR"}`, id, buyer, key, id)
	}
	post := func(evs ...string) {
		t.Helper()
		if r := api.do(t, "POST", "/v1/events", apptest.CheckoutKey, `{"events": [`+strings.Join(evs, ",")+`]}`); r.status != 200 {
			t.Fatalf("events: %d %s", r.status, r.raw)
		}
		if _, err := api.srv.App.Spender.ChargeOrders(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	post(order("o-1"), order("o-2"))
	st := api.do(t, "GET", "/v1/experiments/"+key, apptest.AnalystKey, "").body["budget_status"].([]any)[0].(map[string]any)
	if st["spent"] != 600.0 || st["left"] != 0.0 || st["exhausted"] != true {
		t.Fatalf("after two orders: %v", st)
	}
	api.waitOffer(t, buyer, key, "budget_exhausted", 5*time.Second)
	metrics := api.do(t, "GET", "/metrics", "", "")
	if want := `xsell_offer_budget_exhausted{experiment="discounts",kind="discount",variant="bundle"} 1`; !strings.Contains(metrics.raw, want) {
		t.Fatalf("/metrics lacks %s", want)
	}
	// A whole refund gives the order's discount back: room for a bundle again.
	post(`{"id": "r-1", "type": "order_refunded", "shopper_id": "` + buyer + `", "order_id": "o-1", "amount": 3000, "currency": "EUR"}`)
	api.waitOffer(t, buyer, key, "show", 5*time.Second)
	st = api.do(t, "GET", "/v1/experiments/"+key, apptest.AnalystKey, "").body["budget_status"].([]any)[0].(map[string]any)
	if st["spent"] != 300.0 || st["exhausted"] != false {
		t.Fatalf("after the refund: %v", st)
	}
}
