package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/experiments"
)

// complementsAPI is the whole API over a fresh database, building the complements model on
// request only.
type complementsAPI struct {
	srv         *apptest.Server
	url         string
	db          *sqlx.DB
	cache       *complements.Cache
	assignments *experiments.Cache
}

func newComplementsAPI(t *testing.T) *complementsAPI {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{Configure: func(c *app.Config) { c.ComplementsRefresh = -1 }})
	return &complementsAPI{srv: srv, url: srv.URL, db: srv.DB, cache: srv.App.Complements, assignments: srv.App.Assignments}
}

// orders stores count orders of the given products, placed an hour ago.
func (a *complementsAPI) orders(t *testing.T, prefix string, count int, skus ...string) {
	t.Helper()
	for i := range count {
		id := fmt.Sprintf("%s-%d", prefix, i)
		for line, sku := range skus {
			_, err := a.db.Exec(`INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
				VALUES ($1, $2, now() - interval '1 hour', $1, 's', $3, 1, 100)`, id, line, sku)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// shop stores 80 orders: shampoo with conditioner ×20, shampoo with a comb ×10, a brush alone
// ×50.
func (a *complementsAPI) shop(t *testing.T) {
	a.orders(t, "sc", 20, "shampoo", "conditioner")
	a.orders(t, "sk", 10, "shampoo", "comb")
	a.orders(t, "b", 50, "brush")
}

// build asks for a build through the API and waits until this server serves it.
func (a *complementsAPI) build(t *testing.T) {
	t.Helper()
	before := a.cache.Model().Version
	if r := do(t, "POST", a.url+"/v1/models/complements/builds", adminKey, "", ""); r.status != 202 || r.header.Get("Location") != "/v1/models/complements" {
		t.Fatalf("POST builds: %d %s", r.status, r.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.cache.WaitFor(ctx, before+1); err != nil {
		t.Fatalf("the build never reached the cache: %v", err)
	}
}

func TestGetComplementsOfAProduct(t *testing.T) {
	a := newComplementsAPI(t)
	// Before the first build: no complements, and no model.
	r := do(t, "GET", a.url+"/v1/complements/shampoo", checkoutKey, "", "")
	if r.status != 200 || r.raw != `{"sku":"shampoo","complements":[],"model":null}` {
		t.Fatalf("before any build: %d %s", r.status, r.raw)
	}
	a.shop(t)
	a.build(t)

	r = do(t, "GET", a.url+"/v1/complements/shampoo", analystKey, "", "")
	list, _ := r.body["complements"].([]any)
	if r.status != 200 || len(list) != 2 {
		t.Fatalf("shampoo: %d %s", r.status, r.raw)
	}
	// Conditioner: 20 orders of 80; shampoo in 30, conditioner in 20: lift 20·80/(30·20) = 8/3,
	// confidence 20/30, G² of (20, 10, 0, 50) 51.8. The comb (lift 10·80/(30·10) = 8/3 too, on
	// 10 orders, G² of (10, 20, 0, 50) 22.1) comes second: weaker evidence.
	first := list[0].(map[string]any)
	if first["sku"] != "conditioner" || first["orders"] != 20.0 || !closeTo(first["lift"], 8.0/3) || !closeTo(first["confidence"], 20.0/30) {
		t.Errorf("shampoo's first complement: %v", first)
	}
	if second := list[1].(map[string]any); second["sku"] != "comb" {
		t.Errorf("shampoo's second complement: %v", second)
	}
	if model, _ := r.body["model"].(map[string]any); model["version"] != 1.0 || model["orders"] != 80.0 {
		t.Errorf("model: %v", r.body["model"])
	}
	if r := do(t, "GET", a.url+"/v1/complements/shampoo?limit=1", checkoutKey, "", ""); len(r.body["complements"].([]any)) != 1 {
		t.Errorf("limit=1: %s", r.raw)
	}
	// A product never bought, or bought alone: no complements, and that is an answer.
	for _, sku := range []string{"brush", "no-such-product", "a%2Fb"} {
		if r := do(t, "GET", a.url+"/v1/complements/"+sku, checkoutKey, "", ""); r.status != 200 || !strings.Contains(r.raw, `"complements":[]`) {
			t.Errorf("%s: %d %s", sku, r.status, r.raw)
		}
	}
}

func TestGetComplementsRefusesBadInput(t *testing.T) {
	a := newComplementsAPI(t)
	for _, tc := range []struct {
		name, path, key string
		status          int
		code, field     string
	}{
		{"no key", "/v1/complements/x", "", 401, "unauthorized", ""},
		{"too long", "/v1/complements/" + strings.Repeat("x", 129), checkoutKey, 400, "invalid_request", "sku"},
		{"not UTF-8", "/v1/complements/%FF", checkoutKey, 400, "invalid_request", "sku"},
		{"NUL", "/v1/complements/a%00b", checkoutKey, 400, "invalid_request", "sku"},
		{"limit 0", "/v1/complements/x?limit=0", checkoutKey, 400, "invalid_request", "limit"},
		{"limit not a number", "/v1/complements/x?limit=ten", checkoutKey, 400, "invalid_request", "limit"},
		{"limit too large", "/v1/complements/x?limit=51", checkoutKey, 400, "invalid_request", "limit"},
		{"min_lift negative", "/v1/complements/x?min_lift=-1", checkoutKey, 400, "invalid_request", "min_lift"},
		{"min_lift NaN", "/v1/complements/x?min_lift=NaN", checkoutKey, 400, "invalid_request", "min_lift"},
		{"settings: checkout may not", "/v1/models/complements", checkoutKey, 403, "forbidden", ""},
	} {
		r := do(t, "GET", a.url+tc.path, tc.key, "", "")
		if r.status != tc.status || errorCode(r) != tc.code || (tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`)) {
			t.Errorf("%s: %d %s; want %d %s at %q", tc.name, r.status, r.raw, tc.status, tc.code, tc.field)
		}
	}
	// 128 bytes is a SKU.
	if r := do(t, "GET", a.url+"/v1/complements/"+strings.Repeat("é", 64), checkoutKey, "", ""); r.status != 200 {
		t.Errorf("128 bytes: %d %s", r.status, r.raw)
	}
}

func TestComplementsSettingsDriveTheNextBuild(t *testing.T) {
	a := newComplementsAPI(t)
	a.shop(t)

	r := do(t, "GET", a.url+"/v1/models/complements", analystKey, "", "")
	settings, _ := r.body["settings"].(map[string]any)
	if r.status != 200 || r.body["serving"] != nil || settings["min_orders"] != 3.0 || settings["version"] != 1.0 {
		t.Fatalf("GET model: %d %s", r.status, r.raw)
	}
	// Bad settings change nothing and say where they are wrong.
	bad := `{"window_days": 0, "min_orders": 3, "min_confidence": 2, "min_lift": 1, "min_llr": 10.83,
		"max_complements": 10, "max_basket": 50, "excluded": ["a", "a"]}`
	r = do(t, "PUT", a.url+"/v1/models/complements/settings", adminKey, "application/json", bad)
	if r.status != 400 || !strings.Contains(r.raw, `"field":"window_days"`) || !strings.Contains(r.raw, `"field":"min_confidence"`) ||
		!strings.Contains(r.raw, `"field":"excluded[1]"`) {
		t.Errorf("bad settings: %d %s", r.status, r.raw)
	}
	if r := do(t, "PUT", a.url+"/v1/models/complements/settings", adminKey, "application/json", `{"window_days": 90}`); r.status != 400 {
		t.Errorf("partial settings: %d %s", r.status, r.raw)
	}
	if r := do(t, "PUT", a.url+"/v1/models/complements/settings", analystKey, "application/json", bad); r.status != 403 {
		t.Errorf("analyst PUT: %d", r.status)
	}
	// Exclude the conditioner; a stale version conflicts.
	good := `{"window_days": 30, "min_orders": 3, "min_confidence": 0, "min_lift": 1, "min_llr": 0,
		"max_complements": 10, "max_basket": 50, "excluded": ["conditioner"], "version": 1}`
	if r := do(t, "PUT", a.url+"/v1/models/complements/settings", adminKey, "application/json", good); r.status != 200 {
		t.Fatalf("PUT settings: %d %s", r.status, r.raw)
	}
	if r := do(t, "PUT", a.url+"/v1/models/complements/settings", adminKey, "application/json", good); r.status != 409 || errorCode(r) != "version_conflict" {
		t.Errorf("stale version: %d %s", r.status, r.raw)
	}
	a.build(t)
	r = do(t, "GET", a.url+"/v1/complements/shampoo", checkoutKey, "", "")
	list, _ := r.body["complements"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["sku"] != "comb" {
		t.Errorf("with the conditioner excluded: %s", r.raw)
	}
	r = do(t, "GET", a.url+"/v1/models/complements", adminKey, "", "")
	serving, _ := r.body["serving"].(map[string]any)
	// The catalog without the conditioner: shampoo, comb, brush; shampoo and comb have a
	// complement (each other).
	if serving["version"] != 1.0 || serving["catalog"] != 3.0 || serving["products"] != 2.0 || !closeTo(r.body["coverage"], 2.0/3) {
		t.Errorf("GET model after the build: %s", r.raw)
	}
}

func closeTo(v any, want float64) bool {
	f, ok := v.(float64)
	return ok && f > want-1e-12 && f < want+1e-12
}

// learnedBundle is an experiment of a control and a learned bundle; shopper "qa" is forced
// into the bundle.
func learnedBundle(key string) map[string]any {
	return map[string]any{
		"key": key, "name": "Learned bundle", "forced": map[string]any{"qa": "learned"},
		"variants": []any{
			map[string]any{"key": "control", "name": "No offer", "weight": 0.5, "strategy": map[string]any{"type": "none"}},
			map[string]any{"key": "learned", "name": "Learned bundle -10%", "weight": 0.5, "strategy": map[string]any{
				"type": "bundle", "source": "complements", "max_products": 2, "discount_percent": 10, "timing": "cart"}},
		},
	}
}

func TestAssignOffersLearnedComplementsForTheContext(t *testing.T) {
	a := newComplementsAPI(t)
	created := createExperiment(t, a.url, learnedBundle("learned"))
	// The defaults are stored and shown: min_lift 1.
	st := created.body["variants"].([]any)[1].(map[string]any)["strategy"].(map[string]any)
	if st["source"] != "complements" || st["max_products"] != 2.0 || st["min_lift"] != 1.0 || st["products"] != nil {
		t.Fatalf("created strategy: %v", st)
	}
	do(t, "POST", a.url+"/v1/experiments/learned/start", adminKey, "", "")
	if err := a.assignments.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.shop(t)
	a.build(t)

	assign := func(body string) map[string]any {
		t.Helper()
		r := do(t, "POST", a.url+"/v1/assign", checkoutKey, "application/json", body)
		if r.status != 200 {
			t.Fatalf("assign %s: %d %s", body, r.status, r.raw)
		}
		return r.body["assignments"].([]any)[0].(map[string]any)
	}
	// Shampoo's complements: conditioner (G² 51.78) then comb (22.09).
	got := assign(`{"shopper_id": "qa", "context": {"products": ["shampoo"]}}`)
	st = got["strategy"].(map[string]any)
	if got["variant"] != "learned" || got["offer"] != "show" || fmt.Sprint(st["products"]) != "[conditioner comb]" ||
		fmt.Sprint(st["scores"]) != "[51.783 22.092]" || st["discount_percent"] != 10.0 || st["source"] != "complements" {
		t.Errorf("with shampoo in the context: %v", got)
	}
	// The cart holds the conditioner already: only the comb is left to offer.
	st = assign(`{"shopper_id": "qa", "context": {"products": ["shampoo", "conditioner"]}}`)["strategy"].(map[string]any)
	if fmt.Sprint(st["products"]) != "[comb]" {
		t.Errorf("with shampoo and conditioner in the cart: %v", st)
	}
	// Nothing to offer: the shopper keeps the variant and is told so.
	for _, body := range []string{`{"shopper_id": "qa"}`, `{"shopper_id": "qa", "context": {"products": ["brush"]}}`,
		`{"shopper_id": "qa", "context": {"products": []}}`} {
		got := assign(body)
		st := got["strategy"].(map[string]any)
		if got["variant"] != "learned" || got["in_experiment"] != true || got["offer"] != "no_complements" ||
			fmt.Sprint(st["products"]) != "[]" || st["type"] != "bundle" {
			t.Errorf("%s: %v", body, got)
		}
	}
}

// What a learned strategy offers a shopper assigned by randomisation is recorded with their
// exposure, every distinct product across requests, for analysis to judge their cross-sell.
func TestAssignRecordsWhatLearnedStrategiesOffered(t *testing.T) {
	a := newComplementsAPI(t)
	createExperiment(t, a.url, learnedBundle("learned"))
	do(t, "POST", a.url+"/v1/experiments/learned/start", adminKey, "", "")
	if err := a.assignments.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.shop(t)
	a.build(t)
	assign := func(shopper, context string) map[string]any {
		t.Helper()
		body := fmt.Sprintf(`{"shopper_id": %q, "context": {"products": [%s]}}`, shopper, context)
		r := do(t, "POST", a.url+"/v1/assign", checkoutKey, "application/json", body)
		if r.status != 200 {
			t.Fatalf("assign %s: %d %s", body, r.status, r.raw)
		}
		return r.body["assignments"].([]any)[0].(map[string]any)
	}
	variants := map[string]string{}
	for i := range 20 {
		shopper := fmt.Sprintf("s-%d", i)
		variants[shopper] = assign(shopper, `"brush"`)["variant"].(string) // nothing to offer
		assign(shopper, `"shampoo"`)                                       // conditioner, comb
		assign(shopper, `"shampoo", "conditioner"`)                        // comb again
		assign(shopper, `"shampoo"`)                                       // the same request again
	}
	if err := a.srv.Stop(); err != nil { // writes what is queued
		t.Fatal(err)
	}
	var rows []struct {
		Shopper string `db:"shopper_id"`
		SKUs    string `db:"skus"`
	}
	if err := a.db.Select(&rows, `SELECT shopper_id, array_to_string(skus, ' ') AS skus FROM exposure_offers
		WHERE experiment_key = 'learned' AND phase = 1 ORDER BY shopper_id`); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Shopper] = r.SKUs
	}
	learned := 0
	for shopper, v := range variants {
		want := ""
		if v == "learned" {
			want, learned = "comb conditioner", learned+1 // offered together, ties by SKU
		}
		if got[shopper] != want {
			t.Errorf("%s in %s was offered %q, want %q", shopper, v, got[shopper], want)
		}
	}
	if learned == 0 || learned == len(variants) {
		t.Fatalf("%d of %d shoppers in the learned arm: the test needs both arms", learned, len(variants))
	}
}

func TestAssignRefusesABadContext(t *testing.T) {
	a := newComplementsAPI(t)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("sku-%d", i))
	}
	for _, tc := range []struct {
		name, context, field, code string
	}{
		{"101 products", `{"products": [` + strings.Join(many, ",") + `]}`, "context.products", "too_many"},
		{"an empty SKU", `{"products": ["sku-1", ""]}`, "context.products[1]", "required"},
		{"a NUL", `{"products": ["a\u0000b"]}`, "context.products[0]", "invalid_character"},
		{"129 bytes", `{"products": ["` + strings.Repeat("x", 129) + `"]}`, "context.products[0]", "too_long"},
		{"a number", `{"products": [7]}`, "context.products[0]", ""},
		{"another key", `{"products": [], "page": "pdp"}`, "context.page", ""},
	} {
		r := do(t, "POST", a.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-1", "context": `+tc.context+`}`)
		if r.status != 400 || !strings.Contains(r.raw, `"field":"`+tc.field+`"`) || (tc.code != "" && !strings.Contains(r.raw, `"code":"`+tc.code+`"`)) {
			t.Errorf("%s: %d %s; want 400 %s at %s", tc.name, r.status, r.raw, tc.code, tc.field)
		}
	}
	// 100 valid SKUs are a context.
	if r := do(t, "POST", a.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-1", "context": {"products": [`+strings.Join(many[:100], ",")+`]}}`); r.status != 200 {
		t.Errorf("100 products: %d %s", r.status, r.raw)
	}
}
