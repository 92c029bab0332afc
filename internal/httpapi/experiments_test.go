package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
)

const (
	adminKey    = apptest.AdminKey
	checkoutKey = apptest.CheckoutKey
	analystKey  = apptest.AnalystKey
)

// testAPI is the whole API over a fresh database.
type testAPI struct {
	url      string
	db       *sqlx.DB
	cache    *experiments.Cache
	recorder *exposures.Recorder
	stop     func() // stops the server, which flushes the recorder
}

// newTestAPI serves the whole API over a fresh database, its background components running;
// configure, when given, changes the server's configuration first.
func newTestAPI(t *testing.T, configure ...func(*app.Config)) *testAPI {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{
		APIKeys: "admin:ops:" + adminKey + ",checkout:" + checkoutKey + ",analyst:" + analystKey,
		Configure: func(c *app.Config) {
			for _, f := range configure {
				f(c)
			}
		},
	})
	return &testAPI{url: srv.URL, db: srv.DB, cache: srv.App.Assignments, recorder: srv.App.Exposures,
		stop: func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		}}
}

// reload makes the assignment cache see what the test just wrote (servers do it on NOTIFY).
func (a *testAPI) reload(t *testing.T) {
	t.Helper()
	if err := a.cache.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// apiServer serves the whole API over a fresh database and returns both.
func apiServer(t *testing.T) (string, *sqlx.DB) {
	t.Helper()
	a := newTestAPI(t)
	return a.url, a.db
}

// validExperiment is a body every test starts from: control, a bundle and a loyalty variant.
func validExperiment(key string) map[string]any {
	return map[string]any{
		"key":        key,
		"name":       "Conditioner with shampoo",
		"hypothesis": "A bundle discount sells more conditioner than points do",
		"variants": []any{
			map[string]any{"key": "control", "name": "No offer", "weight": 0.34, "strategy": map[string]any{"type": "none"}},
			map[string]any{"key": "bundle10", "name": "Bundle -10%", "weight": 0.33, "strategy": map[string]any{
				"type": "bundle", "products": []any{"sku-cond"}, "discount_percent": 10, "timing": "cart"}},
			map[string]any{"key": "points", "name": "200 bonus points", "weight": 0.33, "strategy": map[string]any{
				"type": "loyalty_points", "products": []any{"sku-cond"}, "bonus_points": 200, "timing": "checkout"}},
		},
		"targeting": map[string]any{"country": map[string]any{"$in": []any{"IT", "FR"}}},
		"metrics":   map[string]any{"primary": "cross_sell_rate", "guardrails": []any{"refund_rate"}},
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func createExperiment(t *testing.T, url string, body map[string]any) answer {
	t.Helper()
	a := do(t, "POST", url+"/v1/experiments", adminKey, "application/json", mustJSON(t, body))
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	return a
}

func TestCreateAndReadExperiment(t *testing.T) {
	url, _ := apiServer(t)
	a := createExperiment(t, url, validExperiment("shampoo-x"))
	if a.body["status"] != "draft" || a.body["seed"] != "shampoo-x" || a.body["hash_attribute"] != "shopper_id" ||
		a.body["coverage"] != 1.0 || a.body["version"] != 1.0 || a.header.Get("ETag") != `"1"` {
		t.Fatalf("created experiment lacks its defaults: %s", a.raw)
	}
	if tp := fmt.Sprint(a.body["target_products"]); tp != "[sku-cond]" {
		t.Errorf("target_products default = %s, want the variants' products", tp)
	}
	variants := a.body["variants"].([]any)
	if variants[0].(map[string]any)["control"] != true {
		t.Errorf("the first variant is not the control: %v", variants[0])
	}
	for _, key := range []string{adminKey, analystKey} {
		if g := do(t, "GET", url+"/v1/experiments/shampoo-x", key, "", ""); g.status != 200 || g.body["name"] != "Conditioner with shampoo" {
			t.Fatalf("read back: %d %s", g.status, g.raw)
		}
	}
	if g := do(t, "GET", url+"/v1/experiments/shampoo-x", checkoutKey, "", ""); g.status != 403 {
		t.Fatalf("checkout read an experiment: %d", g.status)
	}
	if g := do(t, "POST", url+"/v1/experiments", analystKey, "application/json", mustJSON(t, validExperiment("other"))); g.status != 403 {
		t.Fatalf("analyst created an experiment: %d", g.status)
	}
	dup := do(t, "POST", url+"/v1/experiments", adminKey, "application/json", mustJSON(t, validExperiment("shampoo-x")))
	if dup.status != 409 || errorCode(dup) != "already_exists" {
		t.Fatalf("duplicate key: %d %s", dup.status, dup.raw)
	}
}

func TestListExperimentsFiltersAndPages(t *testing.T) {
	url, _ := apiServer(t)
	for _, k := range []string{"a1", "a2", "a3"} {
		createExperiment(t, url, validExperiment(k))
	}
	do(t, "POST", url+"/v1/experiments/a2/start", adminKey, "", "")
	page := do(t, "GET", url+"/v1/experiments?limit=2", analystKey, "", "")
	if n := len(page.body["experiments"].([]any)); n != 2 || page.body["next_cursor"] != "a2" {
		t.Fatalf("first page: %d items, cursor %v", n, page.body["next_cursor"])
	}
	page = do(t, "GET", url+"/v1/experiments?limit=2&cursor=a2", analystKey, "", "")
	if n := len(page.body["experiments"].([]any)); n != 1 || page.body["next_cursor"] != "" {
		t.Fatalf("second page: %d items, cursor %v", n, page.body["next_cursor"])
	}
	running := do(t, "GET", url+"/v1/experiments?status=running", analystKey, "", "")
	list := running.body["experiments"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["key"] != "a2" {
		t.Fatalf("status filter: %s", running.raw)
	}
	if bad := do(t, "GET", url+"/v1/experiments?status=live", analystKey, "", ""); bad.status != 400 || !strings.Contains(bad.raw, `"field":"status"`) {
		t.Fatalf("bad status filter: %d %s", bad.status, bad.raw)
	}
}

func TestLifecycleTable(t *testing.T) {
	url, _ := apiServer(t)
	// Each status is reached by a path of actions from a fresh draft.
	reach := map[experiments.Status][]string{
		"draft":   nil,
		"running": {"start"},
		"paused":  {"start", "pause"},
		"stopped": {"start", "stop"},
	}
	type want struct {
		status int
		code   string
		result string
	}
	table := map[experiments.Status]map[string]want{
		"draft":   {"start": {200, "", "running"}, "pause": {409, "invalid_transition", ""}, "resume": {409, "invalid_transition", ""}, "stop": {409, "invalid_transition", ""}},
		"running": {"start": {409, "invalid_transition", ""}, "pause": {200, "", "paused"}, "resume": {409, "invalid_transition", ""}, "stop": {200, "", "stopped"}},
		"paused":  {"start": {409, "invalid_transition", ""}, "pause": {409, "invalid_transition", ""}, "resume": {200, "", "running"}, "stop": {200, "", "stopped"}},
		"stopped": {"start": {409, "invalid_transition", ""}, "pause": {409, "invalid_transition", ""}, "resume": {409, "invalid_transition", ""}, "stop": {409, "invalid_transition", ""}},
	}
	n := 0
	for from, actions := range table {
		for action, w := range actions {
			n++
			key := fmt.Sprintf("life-%d", n)
			t.Run(string(from)+"/"+action, func(t *testing.T) {
				createExperiment(t, url, validExperiment(key))
				for _, step := range reach[from] {
					if a := do(t, "POST", url+"/v1/experiments/"+key+"/"+step, adminKey, "", ""); a.status != 200 {
						t.Fatalf("setup %s: %d %s", step, a.status, a.raw)
					}
				}
				a := do(t, "POST", url+"/v1/experiments/"+key+"/"+action, adminKey, "", "")
				if a.status != w.status || errorCode(a) != w.code {
					t.Fatalf("%s from %s: %d %s, want %d %q", action, from, a.status, a.raw, w.status, w.code)
				}
				if w.result != "" && a.body["status"] != w.result {
					t.Fatalf("%s from %s led to %v, want %s", action, from, a.body["status"], w.result)
				}
				// Only drafts can be deleted.
				status := do(t, "GET", url+"/v1/experiments/"+key, adminKey, "", "").body["status"]
				del := do(t, "DELETE", url+"/v1/experiments/"+key, adminKey, "", "")
				after := do(t, "GET", url+"/v1/experiments/"+key, adminKey, "", "")
				if status == "draft" && (del.status != 204 || after.status != 404) {
					t.Fatalf("deleting a draft: %d, then GET %d", del.status, after.status)
				}
				if status != "draft" && (del.status != 409 || errorCode(del) != "invalid_transition" || after.status != 200) {
					t.Fatalf("deleting a %v experiment: %d %s", status, del.status, del.raw)
				}
			})
		}
	}
}

// tableCounts fingerprints everything a bad request must leave untouched.
func tableCounts(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var s string
	if err := db.Get(&s, `SELECT (SELECT count(*) FROM experiments) || '/' || (SELECT count(*) FROM experiment_audit)
		|| '/' || (SELECT count(*) FROM experiment_phases) || '/' || (SELECT coalesce(sum(version), 0) FROM experiments)`); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInvalidExperimentsNameTheFieldAndChangeNothing(t *testing.T) {
	url, db := apiServer(t)
	createExperiment(t, url, validExperiment("existing"))
	set := func(path string, value any) map[string]any {
		body := validExperiment("bad-one")
		setPath(body, path, value)
		return body
	}
	del := func(path string) map[string]any {
		body := validExperiment("bad-one")
		setPath(body, path, deleteMarker{})
		return body
	}
	cases := []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"key not a slug", set("key", "Bad Key"), "invalid_request", "key"},
		{"key too long", set("key", strings.Repeat("k", 65)), "invalid_request", "key"},
		{"key missing", del("key"), "invalid_request", "key"},
		{"name missing", del("name"), "invalid_request", "name"},
		{"name too long", set("name", strings.Repeat("n", 201)), "invalid_request", "name"},
		{"coverage zero", set("coverage", 0), "invalid_request", "coverage"},
		{"coverage above one", set("coverage", 1.5), "invalid_request", "coverage"},
		{"coverage a string", set("coverage", "all"), "invalid_request", "coverage"},
		{"one variant", set("variants", []any{validExperiment("x")["variants"].([]any)[0]}), "invalid_request", "variants"},
		{"weights sum", set("variants[1].weight", 0.5), "invalid_request", "variants"},
		{"negative weight", set("variants[1].weight", -0.33), "invalid_request", "variants[1].weight"},
		{"duplicate variant key", set("variants[2].key", "bundle10"), "invalid_request", "variants[2].key"},
		{"two controls", func() any {
			b := set("variants[1].control", true)
			setPath(b, "variants[0].control", true)
			return b
		}(), "invalid_request", "variants"},
		{"variant name missing", del("variants[1].name"), "invalid_request", "variants[1].name"},
		{"unknown strategy type", set("variants[1].strategy.type", "coupon"), "invalid_request", "variants[1].strategy.type"},
		{"discount above 90", set("variants[1].strategy.discount_percent", 95), "invalid_request", "variants[1].strategy.discount_percent"},
		{"discount zero", set("variants[1].strategy.discount_percent", 0), "invalid_request", "variants[1].strategy.discount_percent"},
		{"both discounts", set("variants[1].strategy.discount_amount", 500), "invalid_request", "variants[1].strategy.discount_amount"},
		{"bundle without products", del("variants[1].strategy.products"), "invalid_request", "variants[1].strategy.products"},
		{"timing unknown", set("variants[1].strategy.timing", "email"), "invalid_request", "variants[1].strategy.timing"},
		{"timing missing", del("variants[1].strategy.timing"), "invalid_request", "variants[1].strategy.timing"},
		{"bonus points zero", set("variants[2].strategy.bonus_points", 0), "invalid_request", "variants[2].strategy.bonus_points"},
		{"multiplier not above one", func() any {
			b := del("variants[2].strategy.bonus_points")
			setPath(b, "variants[2].strategy.points_multiplier", 1)
			return b
		}(), "invalid_request", "variants[2].strategy.points_multiplier"},
		{"bonus on a bundle", set("variants[1].strategy.bonus_points", 5), "invalid_request", "variants[1].strategy.bonus_points"},
		{"params on control", set("variants[0].strategy.products", []any{"sku-1"}), "invalid_request", "variants[0].strategy.products"},
		{"unknown strategy param", set("variants[1].strategy.free_shipping", true), "invalid_request", "variants[1].strategy.free_shipping"},
		{"unknown top-level field", set("owner", "growth"), "invalid_request", "owner"},
		{"unknown targeting operator", set("targeting", map[string]any{"country": map[string]any{"$foo": 1}}), "invalid_request", "targeting.country.$foo"},
		{"bad regex", set("targeting", map[string]any{"email": map[string]any{"$regex": "("}}), "invalid_request", "targeting.email.$regex"},
		{"saved group", set("targeting", map[string]any{"$or": []any{map[string]any{"id": map[string]any{"$inGroup": "vip"}}}}), "invalid_request", "targeting.$or[0].id.$inGroup"},
		{"not in saved group", set("targeting", map[string]any{"id": map[string]any{"$notInGroup": "churned"}}), "invalid_request", "targeting.id.$notInGroup"},
		{"layer range reversed", set("layer", map[string]any{"name": "pdp", "range": []any{0.6, 0.2}}), "invalid_request", "layer.range"},
		{"layer without name", set("layer", map[string]any{"range": []any{0, 0.5}}), "invalid_request", "layer.name"},
		{"unknown metric", set("metrics.primary", "happiness"), "invalid_request", "metrics.primary"},
		{"guardrail margin", set("metrics.guardrails", []any{map[string]any{"metric": "refund_rate", "margin": -1}}), "invalid_request", "metrics.guardrails[0].margin"},
		{"forced to unknown variant", set("forced", map[string]any{"qa-1": "nope"}), "invalid_request", "forced.qa-1"},
		{"hash attribute", set("hash_attribute", "has space"), "invalid_request", "hash_attribute"},
		{"amount without currency", func() any {
			b := del("variants[1].strategy.discount_percent")
			setPath(b, "variants[1].strategy.discount_amount", 500)
			return b
		}(), "invalid_request", "variants[1].strategy.currency"},
		{"variants not an array", set("variants", "three"), "invalid_request", "variants"},
		{"existing key", validExperiment("existing"), "already_exists", ""},
	}
	before := tableCounts(t, db)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", url+"/v1/experiments", adminKey, "application/json", mustJSON(t, tc.body))
			if a.status/100 != 4 || errorCode(a) != tc.code {
				t.Fatalf("got %d %s, want 4xx %s", a.status, a.raw, tc.code)
			}
			if tc.field != "" && !hasDetailField(a, tc.field) {
				t.Fatalf("no detail names %q: %s", tc.field, a.raw)
			}
		})
	}
	if after := tableCounts(t, db); after != before {
		t.Fatalf("bad requests changed the database: %s → %s", before, after)
	}
	if len(cases) < 25 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
}

func hasDetailField(a answer, field string) bool {
	e, _ := a.body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		if d.(map[string]any)["field"] == field {
			return true
		}
	}
	return false
}

type deleteMarker struct{}

// setPath sets (or, with deleteMarker, removes) the value at a path like variants[1].strategy.type.
func setPath(body map[string]any, path string, value any) {
	var cur any = body
	parts := strings.Split(path, ".")
	for i, part := range parts {
		name, idx := part, -1
		if j := strings.Index(part, "["); j >= 0 {
			name = part[:j]
			fmt.Sscanf(part[j:], "[%d]", &idx)
		}
		last := i == len(parts)-1
		m := cur.(map[string]any)
		if idx >= 0 {
			list := m[name].([]any)
			if last {
				list[idx] = value
				return
			}
			cur = list[idx]
			continue
		}
		if last {
			if _, ok := value.(deleteMarker); ok {
				delete(m, name)
			} else {
				m[name] = value
			}
			return
		}
		if m[name] == nil {
			m[name] = map[string]any{}
		}
		cur = m[name]
	}
}

func TestOptimisticConcurrency(t *testing.T) {
	url, db := apiServer(t)
	createExperiment(t, url, validExperiment("occ"))
	body := validExperiment("occ")
	body["name"] = "Renamed"
	noVersion := do(t, "PUT", url+"/v1/experiments/occ", adminKey, "application/json", mustJSON(t, body))
	if noVersion.status != 428 || errorCode(noVersion) != "precondition_required" {
		t.Fatalf("PUT without a version: %d %s", noVersion.status, noVersion.raw)
	}
	ok := doWith(t, "PUT", url+"/v1/experiments/occ", adminKey, mustJSON(t, body), map[string]string{"If-Match": `"1"`})
	if ok.status != 200 || ok.body["version"] != 2.0 || ok.header.Get("ETag") != `"2"` {
		t.Fatalf("PUT with If-Match 1: %d %s", ok.status, ok.raw)
	}
	before := tableCounts(t, db)
	body["name"] = "Lost update"
	stale := doWith(t, "PUT", url+"/v1/experiments/occ", adminKey, mustJSON(t, body), map[string]string{"If-Match": `"1"`})
	if stale.status != 409 || errorCode(stale) != "version_conflict" {
		t.Fatalf("stale If-Match: %d %s", stale.status, stale.raw)
	}
	body["version"] = 1
	stale = do(t, "PUT", url+"/v1/experiments/occ", adminKey, "application/json", mustJSON(t, body))
	if stale.status != 409 || errorCode(stale) != "version_conflict" {
		t.Fatalf("stale version field: %d %s", stale.status, stale.raw)
	}
	if after := tableCounts(t, db); after != before {
		t.Fatalf("a conflict changed the database: %s → %s", before, after)
	}
	if g := do(t, "GET", url+"/v1/experiments/occ", adminKey, "", ""); g.body["name"] != "Renamed" {
		t.Fatalf("name = %v, want the first writer's", g.body["name"])
	}
}

func TestStartedExperimentEditRules(t *testing.T) {
	url, _ := apiServer(t)
	createExperiment(t, url, validExperiment("rules"))
	do(t, "POST", url+"/v1/experiments/rules/start", adminKey, "", "")
	put := func(body map[string]any, version string) answer {
		return doWith(t, "PUT", url+"/v1/experiments/rules", adminKey, mustJSON(t, body), map[string]string{"If-Match": version})
	}
	body := validExperiment("rules")
	body["name"], body["coverage"] = "New name", 0.5
	body["targeting"] = map[string]any{"device": "mobile"}
	if a := put(body, `"2"`); a.status != 200 || a.body["coverage"] != 0.5 {
		t.Fatalf("running edit of name/coverage/targeting: %d %s", a.status, a.raw)
	}
	weights := validExperiment("rules")
	weights["name"], weights["coverage"], weights["targeting"] = "New name", 0.5, map[string]any{"device": "mobile"}
	setPath(weights, "variants[0].weight", 0.5)
	setPath(weights, "variants[1].weight", 0.25)
	setPath(weights, "variants[2].weight", 0.25)
	if a := put(weights, `"3"`); a.status != 409 || errorCode(a) != "requires_new_phase" || !hasDetailField(a, "variants") {
		t.Fatalf("changing weights of a running experiment: %d %s", a.status, a.raw)
	}
	phase := do(t, "POST", url+"/v1/experiments/rules/phases", adminKey, "application/json",
		mustJSON(t, map[string]any{"variants": weights["variants"]}))
	if phase.status != 200 || phase.body["phase"] != 2.0 || phase.body["seed"] != "rules:2" {
		t.Fatalf("new phase: %d %s", phase.status, phase.raw)
	}
}

func TestAuditTrail(t *testing.T) {
	url, _ := apiServer(t)
	createExperiment(t, url, validExperiment("audited"))
	do(t, "POST", url+"/v1/experiments/audited/start", adminKey, "", "")
	body := validExperiment("audited")
	body["hypothesis"] = "Sharper hypothesis"
	if a := doWith(t, "PUT", url+"/v1/experiments/audited", adminKey, mustJSON(t, body), map[string]string{"If-Match": `"2"`}); a.status != 200 {
		t.Fatalf("edit: %d %s", a.status, a.raw)
	}
	if a := do(t, "POST", url+"/v1/experiments/audited/phases", adminKey, "application/json", `{"coverage": 0.8}`); a.status != 200 {
		t.Fatalf("phase: %d %s", a.status, a.raw)
	}
	do(t, "POST", url+"/v1/experiments/audited/stop", adminKey, "", "")
	h := do(t, "GET", url+"/v1/experiments/audited/history", analystKey, "", "")
	entries := h.body["history"].([]any)
	var got []string
	for _, e := range entries {
		m := e.(map[string]any)
		got = append(got, fmt.Sprintf("%s v%v by %s/%s", m["action"], m["version"], m["role"], m["key_name"]))
	}
	want := []string{"create v1 by admin/ops", "start v2 by admin/ops", "update v3 by admin/ops", "new_phase v4 by admin/ops", "stop v5 by admin/ops"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history = %v, want %v", got, want)
	}
	update := entries[2].(map[string]any)["changes"].(map[string]any)
	hyp, _ := update["hypothesis"].(map[string]any)
	if len(update) != 1 || hyp["from"] != "A bundle discount sells more conditioner than points do" || hyp["to"] != "Sharper hypothesis" {
		t.Fatalf("update changes = %v, want only hypothesis from → to", update)
	}
	phase := entries[3].(map[string]any)["changes"].(map[string]any)
	if _, ok := phase["coverage"]; !ok {
		t.Fatalf("new_phase changes lack coverage: %v", phase)
	}
	if _, ok := phase["seed"]; !ok {
		t.Fatalf("new_phase changes lack the new seed: %v", phase)
	}
}

// TestEditWhatGETAnswered: a console reads an experiment, changes its name and PUTs the whole
// object back, server-set fields included. Those that equal the stored values are accepted;
// a changed one is a 400 naming it, and changes nothing.
func TestEditWhatGETAnswered(t *testing.T) {
	url, db := apiServer(t)
	createExperiment(t, url, validExperiment("round-trip"))
	if a := do(t, "POST", url+"/v1/experiments/round-trip/start", adminKey, "", ""); a.status != 200 {
		t.Fatalf("start: %d %s", a.status, a.raw)
	}
	read := do(t, "GET", url+"/v1/experiments/round-trip", adminKey, "", "")
	for _, f := range []string{"status", "phase", "version", "created_at", "updated_at", "started_at"} {
		if _, ok := read.body[f]; !ok {
			t.Fatalf("GET lacks %s, so this test would not send it back: %s", f, read.raw)
		}
	}
	edited := read.body
	edited["name"] = "Renamed in the console"
	put := doWith(t, "PUT", url+"/v1/experiments/round-trip", adminKey, mustJSON(t, edited), map[string]string{"If-Match": read.header.Get("ETag")})
	if put.status != 200 || put.body["name"] != "Renamed in the console" || put.body["version"] != 3.0 {
		t.Fatalf("PUT of the GET answer with a new name: %d %s", put.status, put.raw)
	}

	again := do(t, "GET", url+"/v1/experiments/round-trip", adminKey, "", "")
	changed := again.body
	changed["status"], changed["phase"], changed["created_at"] = "paused", 7, "2020-01-01T00:00:00Z"
	changed["stopped_at"] = "2020-01-02T00:00:00Z"
	before := tableCounts(t, db)
	bad := doWith(t, "PUT", url+"/v1/experiments/round-trip", adminKey, mustJSON(t, changed), map[string]string{"If-Match": again.header.Get("ETag")})
	if bad.status != 400 || errorCode(bad) != "invalid_request" {
		t.Fatalf("PUT changing read-only fields: %d %s", bad.status, bad.raw)
	}
	if got, want := detailFields(bad), []string{"status", "phase", "created_at", "stopped_at"}; !slices.Equal(got, want) {
		t.Fatalf("details name %q; want %q: %s", got, want, bad.raw)
	}
	if after := tableCounts(t, db); after != before {
		t.Fatalf("a refused edit changed the database: %s → %s", before, after)
	}
}

// detailFields lists the fields an error's details name, in order.
func detailFields(a answer) []string {
	e, _ := a.body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	var out []string
	for _, d := range details {
		f, _ := d.(map[string]any)["field"].(string)
		out = append(out, f)
	}
	return out
}

// TestIdenticalBadRequestsGetIdenticalDetails: problems that come from maps (forced shoppers,
// a targeting condition's keys, the fields an edit changes) are listed in path order, the same
// on every call.
func TestIdenticalBadRequestsGetIdenticalDetails(t *testing.T) {
	url, _ := apiServer(t)
	body := validExperiment("detail-order")
	body["forced"] = map[string]any{"qa-d": "nope", "qa-a": "nope", "qa-c": "nope", "qa-b": "nope"}
	body["targeting"] = map[string]any{
		"zip": map[string]any{"$regex": "("}, "age": map[string]any{"$gt": true},
		"$or": []any{map[string]any{"b": map[string]any{"$in": "x"}}, map[string]any{"a": map[string]any{"$foo": 1, "$bar": 2}}},
		"id":  map[string]any{"$inGroup": "vip"},
	}
	want := []string{"targeting.$or[0].b.$in", "targeting.$or[1].a.$bar", "targeting.$or[1].a.$foo",
		"targeting.age.$gt", "targeting.id.$inGroup", "targeting.zip.$regex", "forced.qa-a", "forced.qa-b", "forced.qa-c", "forced.qa-d"}
	first := do(t, "POST", url+"/v1/experiments", adminKey, "application/json", mustJSON(t, body))
	if first.status != 400 || !slices.Equal(detailFields(first), want) {
		t.Fatalf("details name %q; want %q: %s", detailFields(first), want, first.raw)
	}
	firstDetails := mustJSON(t, first.body["error"].(map[string]any)["details"])
	for range 10 {
		again := do(t, "POST", url+"/v1/experiments", adminKey, "application/json", mustJSON(t, body))
		if d := mustJSON(t, again.body["error"].(map[string]any)["details"]); d != firstDetails {
			t.Fatalf("the same bad request gave other details:\n%s\n%s", firstDetails, d)
		}
	}

	createExperiment(t, url, validExperiment("running-edit"))
	do(t, "POST", url+"/v1/experiments/running-edit/start", adminKey, "", "")
	edit := validExperiment("running-edit")
	edit["layer"] = map[string]any{"name": "pdp", "range": []any{0, 0.5}}
	edit["target_products"] = []any{"sku-other"}
	edit["hash_attribute"] = "device_id"
	edit["seed"] = "another"
	for range 10 {
		a := doWith(t, "PUT", url+"/v1/experiments/running-edit", adminKey, mustJSON(t, edit), map[string]string{"If-Match": `"2"`})
		if got, want := detailFields(a), []string{"hash_attribute", "layer", "seed", "target_products"}; a.status != 409 || !slices.Equal(got, want) {
			t.Fatalf("non-editable changes: %d, details name %q; want %q: %s", a.status, got, want, a.raw)
		}
	}
}
