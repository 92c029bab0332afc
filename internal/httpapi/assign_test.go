package httpapi_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/httpapi"
)

func TestAssignAnswersAsTheSpecShows(t *testing.T) {
	api := newTestAPI(t)
	createExperiment(t, api.url, validExperiment("pdp-bundle"))
	do(t, "POST", api.url+"/v1/experiments/pdp-bundle/start", adminKey, "", "")
	createExperiment(t, api.url, validExperiment("draft-one"))
	api.reload(t)

	a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json",
		`{"shopper_id": "s-1", "attributes": {"country": "IT", "device": "mobile"}, "experiments": ["pdp-bundle", "draft-one", "ghost"]}`)
	if a.status != 200 || a.body["shopper_id"] != "s-1" {
		t.Fatalf("assign: %d %s", a.status, a.raw)
	}
	got := a.body["assignments"].([]any)
	first := got[0].(map[string]any)
	if first["experiment"] != "pdp-bundle" || first["phase"] != 1.0 || first["in_experiment"] != true || first["reason"] != "assigned" {
		t.Fatalf("first assignment = %v", first)
	}
	strategy := first["strategy"].(map[string]any)
	switch first["variant"] {
	case "control":
		if strategy["type"] != "none" {
			t.Fatalf("control with strategy %v", strategy)
		}
	case "bundle10":
		if strategy["type"] != "bundle" || strategy["discount_percent"] != 10.0 || strategy["timing"] != "cart" {
			t.Fatalf("bundle10 with strategy %v", strategy)
		}
	case "points":
		if strategy["type"] != "loyalty_points" || strategy["bonus_points"] != 200.0 {
			t.Fatalf("points with strategy %v", strategy)
		}
	default:
		t.Fatalf("variant %v", first["variant"])
	}
	for i, want := range []string{"", "not_running", "unknown_experiment"} {
		if i == 0 {
			continue
		}
		x := got[i].(map[string]any)
		if x["reason"] != want || x["in_experiment"] != false || x["variant"] != nil {
			t.Errorf("assignment %d = %v, want %s with a null variant", i, x, want)
		}
	}
	// Not targeted: the control experience, no variant.
	us := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-1", "attributes": {"country": "US"}}`)
	x := us.body["assignments"].([]any)[0].(map[string]any)
	if x["reason"] != "not_targeted" || x["variant"] != nil {
		t.Fatalf("US shopper: %v", x)
	}
	// The same shopper always gets the same answer.
	again := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-1", "attributes": {"country": "IT"}}`)
	if v := again.body["assignments"].([]any)[0].(map[string]any)["variant"]; v != first["variant"] {
		t.Fatalf("second answer %v, first %v", v, first["variant"])
	}
	api.stop()
	var n int
	if err := api.db.Get(&n, `SELECT count(*) FROM exposures WHERE experiment_key = 'pdp-bundle' AND shopper_id = 's-1'`); err != nil || n != 1 {
		t.Fatalf("exposure rows for s-1: %d %v, want 1", n, err)
	}
}

func TestAssignForcedAndPaused(t *testing.T) {
	api := newTestAPI(t)
	body := validExperiment("qa")
	body["forced"] = map[string]any{"tester-1": "points"}
	createExperiment(t, api.url, body)
	do(t, "POST", api.url+"/v1/experiments/qa/start", adminKey, "", "")
	api.reload(t)
	a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "tester-1", "attributes": {"country": "US"}}`)
	x := a.body["assignments"].([]any)[0].(map[string]any)
	if x["reason"] != "forced" || x["variant"] != "points" || x["in_experiment"] != true {
		t.Fatalf("forced: %v", x)
	}
	do(t, "POST", api.url+"/v1/experiments/qa/pause", adminKey, "", "")
	api.reload(t)
	a = do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-2", "attributes": {"country": "IT"}, "experiments": ["qa"]}`)
	x = a.body["assignments"].([]any)[0].(map[string]any)
	if x["reason"] != "not_running" || x["variant"] != nil {
		t.Fatalf("paused: %v", x)
	}
	// With no experiments named, only running ones answer.
	a = do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-2"}`)
	if n := len(a.body["assignments"].([]any)); n != 0 {
		t.Fatalf("paused experiment listed by default: %s", a.raw)
	}
}

func TestAssignBadRequests(t *testing.T) {
	api := newTestAPI(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	old := time.Now().Add(-100 * 24 * time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name, key, body string
		status          int
		field           string
	}{
		{"no shopper", checkoutKey, `{"attributes": {}}`, 400, "shopper_id"},
		{"long shopper", checkoutKey, `{"shopper_id": "` + strings.Repeat("s", 257) + `"}`, 400, "shopper_id"},
		{"attributes not an object", checkoutKey, `{"shopper_id": "s", "attributes": [1]}`, 400, "attributes"},
		{"unknown field", checkoutKey, `{"shopper_id": "s", "user": "x"}`, 400, "user"},
		{"at from checkout", checkoutKey, `{"shopper_id": "s", "at": "` + past + `"}`, 400, "at"},
		{"at in the future", adminKey, `{"shopper_id": "s", "at": "` + future + `"}`, 400, "at"},
		{"at too old", adminKey, `{"shopper_id": "s", "at": "` + old + `"}`, 400, "at"},
		{"analyst key", analystKey, `{"shopper_id": "s"}`, 403, ""},
		{"at from admin", adminKey, `{"shopper_id": "s", "at": "` + past + `"}`, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", api.url+"/v1/assign", tc.key, "application/json", tc.body)
			if a.status != tc.status || (tc.field != "" && !hasDetailField(a, tc.field)) {
				t.Fatalf("got %d %s, want %d naming %q", a.status, a.raw, tc.status, tc.field)
			}
		})
	}
}

func TestAStartedExperimentAnswersAtOnceOnTheSameServer(t *testing.T) {
	api := newTestAPI(t)
	createExperiment(t, api.url, validExperiment("at-once"))
	do(t, "POST", api.url+"/v1/experiments/at-once/start", adminKey, "", "")
	// No reload by the test: the write itself refreshed this server's cache.
	a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-9", "attributes": {"country": "FR"}}`)
	list := a.body["assignments"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["reason"] != "assigned" {
		t.Fatalf("right after start: %s", a.raw)
	}
}

// TestExposuresKeepEachShoppersAttributes guards the reuse of request state between
// assignments: each exposure row holds the attributes its own request sent, even when
// returning shoppers (nothing to record) and new ones (recorded) alternate from many clients.
func TestExposuresKeepEachShoppersAttributes(t *testing.T) {
	api := newTestAPI(t)
	createExperiment(t, api.url, validExperiment("attrs"))
	do(t, "POST", api.url+"/v1/experiments/attrs/start", adminKey, "", "")
	const shoppers = 60
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < shoppers; i += 6 {
				body := fmt.Sprintf(`{"shopper_id": "s-%d", "attributes": {"country": "IT", "visits": %d, "city": "c-%d"}}`, i, i, i)
				for range 3 { // first visit recorded, then returning
					if a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", body); a.status != 200 {
						t.Errorf("assign s-%d: %d %s", i, a.status, a.raw)
					}
				}
			}
		})
	}
	wg.Wait()
	api.stop() // writes the queued exposures
	var rows []struct {
		Shopper string `db:"shopper_id"`
		City    string `db:"city"`
		Visits  int    `db:"visits"`
	}
	if err := api.db.Select(&rows, `SELECT shopper_id, attributes->>'city' AS city, (attributes->>'visits')::int AS visits FROM exposures`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != shoppers {
		t.Fatalf("%d exposure rows, want %d", len(rows), shoppers)
	}
	for _, r := range rows {
		if want := strings.TrimPrefix(r.Shopper, "s-"); r.City != "c-"+want || fmt.Sprint(r.Visits) != want {
			t.Errorf("exposure of %s holds city %q and visits %d", r.Shopper, r.City, r.Visits)
		}
	}
}

// TestTrackFalseRecordsNothing: a prefetch with "track": false gets the same answer and
// records no exposure, and does not keep the shopper's later, tracked request from recording.
func TestTrackFalseRecordsNothing(t *testing.T) {
	api := newTestAPI(t)
	createExperiment(t, api.url, validExperiment("prefetched"))
	do(t, "POST", api.url+"/v1/experiments/prefetched/start", adminKey, "", "")
	api.reload(t)
	variant := func(a answer) any { return a.body["assignments"].([]any)[0].(map[string]any)["variant"] }
	quiet := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json",
		`{"shopper_id": "s-quiet", "attributes": {"country": "IT"}, "track": false}`)
	prefetch := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json",
		`{"shopper_id": "s-later", "attributes": {"country": "IT"}, "track": false}`)
	if quiet.status != 200 || variant(quiet) == nil || prefetch.status != 200 {
		t.Fatalf("track false: %d %s / %d %s", quiet.status, quiet.raw, prefetch.status, prefetch.raw)
	}
	shown := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", `{"shopper_id": "s-later", "attributes": {"country": "IT"}}`)
	if variant(shown) != variant(prefetch) {
		t.Fatalf("tracked answer %v differs from the prefetched %v", variant(shown), variant(prefetch))
	}
	api.stop()
	var recorded []string
	if err := api.db.Select(&recorded, `SELECT shopper_id FROM exposures ORDER BY shopper_id`); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 1 || recorded[0] != "s-later" {
		t.Fatalf("exposures of %v, want only s-later's tracked request", recorded)
	}
	var n int
	if err := api.db.Get(&n, `SELECT count(*) FROM exposure_log`); err != nil || n != 0 {
		t.Fatalf("%d rows staged (%v), want none", n, err)
	}
}

// TestReadyzSaysWhenExposuresAreShed: with the recorder's queue full, /readyz still answers
// ready (taking the instance out would only move its load) and says that it sheds.
func TestReadyzSaysWhenExposuresAreShed(t *testing.T) {
	rec := exposures.New(nil, exposures.Config{QueueSize: 1}, nil, nil) // not running: nothing drains it
	s := cachedAPI(t, httpapi.Config{}, httpapi.Deps{DB: dbtest.New(t), Exposures: rec})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, id := range []string{"s-1", "s-2"} {
		body := `{"shopper_id": "` + id + `", "attributes": {"country": "IT", "device": "mobile", "visits": 5}}`
		if a := do(t, "POST", ts.URL+"/v1/assign", checkoutKey, "application/json", body); a.status != 200 {
			t.Fatalf("assign %s: %d %s", id, a.status, a.raw)
		}
	}
	r := do(t, "GET", ts.URL+"/readyz", "", "", "")
	if line, _ := r.body["exposures"].(string); r.status != 200 || r.body["status"] != "ready" || !strings.HasPrefix(line, "shedding:") {
		t.Fatalf("readyz: %d %s, want 200 ready with an exposures line saying it sheds", r.status, r.raw)
	}
}

// TestAPoisonedAssignmentStopsNobodysExposures replays issue 13's first reproducer: a NUL in
// the shopper id, or in an attribute's key or value. Whether the edge refuses such a request
// or answers it, the exposures of the shoppers after it are written.
func TestAPoisonedAssignmentStopsNobodysExposures(t *testing.T) {
	api := newTestAPI(t)
	createExperiment(t, api.url, validExperiment("poisoned"))
	do(t, "POST", api.url+"/v1/experiments/poisoned/start", adminKey, "", "")
	api.reload(t)
	for _, body := range []string{
		`{"shopper_id": "evil\u0000x", "attributes": {"country": "IT"}}`,
		`{"shopper_id": "evil-key", "attributes": {"country": "IT", "k\u0000": "v"}}`,
		`{"shopper_id": "evil-value", "attributes": {"country": "IT", "k": "v\u0000"}}`,
	} {
		if a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", body); a.status >= 500 {
			t.Fatalf("%s: %d %s", body, a.status, a.raw)
		}
	}
	for i := range 20 {
		body := fmt.Sprintf(`{"shopper_id": "after-%d", "attributes": {"country": "IT"}}`, i)
		if a := do(t, "POST", api.url+"/v1/assign", checkoutKey, "application/json", body); a.status != 200 {
			t.Fatalf("assign after-%d: %d %s", i, a.status, a.raw)
		}
	}
	api.stop()
	var n int
	if err := api.db.Get(&n, `SELECT count(*) FROM exposures WHERE shopper_id LIKE 'after-%'`); err != nil || n != 20 {
		t.Fatalf("%d of the 20 later shoppers' exposures written (%v)", n, err)
	}
}
