package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/results"
)

// threeArmForm is the new-experiment form filled in as a person would for threeArms.
func threeArmForm(key string) url.Values {
	return url.Values{
		"key": {key}, "name": {"Conditioner with shampoo"}, "hypothesis": {"A bundle sells more"},
		"variant_count": {"3"}, "control": {"0"}, "coverage": {"1"}, "hash_attribute": {"shopper_id"},
		"variants[0].key": {"control"}, "variants[0].name": {"No offer"}, "variants[0].weight": {"0.34"}, "variants[0].strategy.type": {"none"},
		"variants[1].key": {"bundle10"}, "variants[1].name": {"Bundle"}, "variants[1].weight": {"0.33"},
		"variants[1].strategy.type": {"bundle"}, "variants[1].strategy.products": {"sku-conditioner"},
		"variants[1].strategy.discount_percent": {"10"}, "variants[1].strategy.timing": {"cart"},
		"variants[2].key": {"points200"}, "variants[2].name": {"Points"}, "variants[2].weight": {"0.33"},
		"variants[2].strategy.type": {"loyalty_points"}, "variants[2].strategy.products": {"sku-conditioner"},
		"variants[2].strategy.bonus_points": {"200"}, "variants[2].strategy.timing": {"checkout"},
		"metrics.primary": {"cross_sell_rate"}, "metrics.secondary": {"revenue", "net_revenue"},
		"metrics.guardrails.refund_rate": {"on"}, "metrics.guardrails.refund_rate.margin": {"0.1"}, "metrics.guardrails.refund_rate.relative": {"on"},
		"targeting": {`{"country": {"$in": ["IT", "FR"]}}`},
		"forced":    {"qa-1=bundle10"},
		"op":        {"save"},
	}
}

func TestCreatingAnExperimentThroughTheFormStoresTheDefinition(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/new").wantStatus(http.StatusOK)
	if form.doc.Find(`label[for="f-variants-1-strategy-discount_percent"]`).Length() != 1 {
		t.Fatal("the discount input has no label")
	}
	u.submit(form, "/console/experiments/new", threeArmForm("pdp")).wantRedirect("/console/experiments/pdp?done=created")
	got, err := e.store.Get(context.Background(), "pdp")
	if err != nil {
		t.Fatal(err)
	}
	want := threeArms("pdp")
	want.Hypothesis = "A bundle sells more"
	want.Targeting = json.RawMessage(`{"country": {"$in": ["IT", "FR"]}}`)
	want.Metrics = &experiments.Metrics{Primary: "cross_sell_rate", Secondary: []string{"revenue", "net_revenue"},
		Guardrails: []experiments.Guardrail{{Metric: "refund_rate", Margin: 0.1, Relative: true}}}
	want.Forced = map[string]string{"qa-1": "bundle10"}
	want.Normalize()
	if !reflect.DeepEqual(got.Definition, want) {
		t.Errorf("stored\n%+v\nwant\n%+v", got.Definition, want)
	}
	page := u.get("/console/experiments/pdp?done=created").wantStatus(http.StatusOK)
	page.wantText(".notice", "created as a draft")
	hist, _ := e.store.History(context.Background(), "pdp")
	if len(hist) != 1 || hist[0].KeyName != "ops" || hist[0].Role != "admin" {
		t.Errorf("audit: %+v", hist)
	}
}

func TestEveryProblemOfTheFormIsShownBesideItsFieldAndNothingIsStored(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
		says  string
	}{
		{"bad key", func(f url.Values) { f.Set("key", "Bad Key") }, "key", "lowercase slug"},
		{"weights", func(f url.Values) { f.Set("variants[2].weight", "0.5") }, "f-variants-error", "must sum to 1"},
		{"weight not a number", func(f url.Values) { f.Set("variants[1].weight", "a third") }, "variants[1].weight", "must be a number"},
		{"no discount", func(f url.Values) { f.Del("variants[1].strategy.discount_percent") }, "variants[1].strategy.discount_percent", "needs discount_percent or discount_amount"},
		{"both discounts", func(f url.Values) {
			f.Set("variants[1].strategy.discount_amount", "2.50")
			f.Set("variants[1].strategy.currency", "EUR")
		}, "variants[1].strategy.discount_amount", "not both"},
		{"amount with too many decimals", func(f url.Values) {
			f.Del("variants[1].strategy.discount_percent")
			f.Set("variants[1].strategy.discount_amount", "2.505")
			f.Set("variants[1].strategy.currency", "EUR")
		}, "variants[1].strategy.discount_amount", "more decimals than EUR has (2)"},
		{"unknown currency", func(f url.Values) {
			f.Del("variants[1].strategy.discount_percent")
			f.Set("variants[1].strategy.discount_amount", "2.50")
			f.Set("variants[1].strategy.currency", "EUX")
		}, "variants[1].strategy.currency", "ISO 4217"},
		{"no products", func(f url.Values) { f.Set("variants[2].strategy.products", " ") }, "variants[2].strategy.products", "needs at least one product"},
		{"no timing", func(f url.Values) { f.Set("variants[2].strategy.timing", "") }, "variants[2].strategy.timing", "must be one of"},
		{"bonus not whole", func(f url.Values) { f.Set("variants[2].strategy.bonus_points", "1.5") }, "variants[2].strategy.bonus_points", "whole number"},
		{"duplicate variant", func(f url.Values) { f.Set("variants[2].key", "bundle10") }, "variants[2].key", "also the key of variants[1]"},
		{"targeting JSON", func(f url.Values) { f.Set("targeting", `{"country": `) }, "targeting", "not valid JSON"},
		{"targeting operator", func(f url.Values) { f.Set("targeting", `{"country": {"$bogus": 1}}`) }, "targeting", "$bogus"},
		{"coverage", func(f url.Values) { f.Set("coverage", "1.5") }, "coverage", "must be in (0, 1]"},
		{"layer range", func(f url.Values) {
			f.Set("layer.name", "checkout")
			f.Set("layer.start", "0.6")
			f.Set("layer.end", "0.2")
		}, "layer.start", "0 ≤ start < end ≤ 1"},
		{"guardrail margin", func(f url.Values) { f.Set("metrics.guardrails.refund_rate.margin", "-1") }, "metrics.guardrails.refund_rate.margin", "positive"},
		{"forced line", func(f url.Values) { f.Set("forced", "qa-1 bundle10") }, "forced", "line 1: write shopper_id=variant_key"},
		{"forced variant", func(f url.Values) { f.Set("forced", "qa-1=nope") }, "forced", `no variant with key "nope"`},
		{"name", func(f url.Values) { f.Set("name", "") }, "name", "is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := u.get("/console/experiments/new")
			values := threeArmForm("pdp")
			tc.edit(values)
			p := u.submit(form, "/console/experiments/new", values).wantStatus(http.StatusBadRequest)
			if got := p.errorAt(tc.field); !strings.Contains(got, tc.says) {
				t.Errorf("beside %s: %q, want %q\nsummary: %s", tc.field, got, tc.says, p.text(".error-summary"))
			}
			p.wantText(".error-summary", "Nothing was stored")
			// The user's input is kept.
			if v, _ := p.doc.Find("#f-name").Attr("value"); v != values.Get("name") {
				t.Errorf("name shown as %q, typed %q", v, values.Get("name"))
			}
			if n := e.count(`SELECT count(*) FROM experiments`); n != 0 {
				t.Fatalf("a refused form stored %d experiments", n)
			}
		})
	}
}

func TestAnExistingKeyIsShownBesideTheKey(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(adminKey)
	p := u.submit(u.get("/console/experiments/new"), "/console/experiments/new", threeArmForm("pdp")).wantStatus(http.StatusBadRequest)
	if got := p.errorAt("key"); !strings.Contains(got, "exists already") {
		t.Errorf("beside key: %q", got)
	}
}

func TestTheFormsOwnButtonsAddRemoveAndSplitVariants(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/new")
	values := threeArmForm("pdp")
	values.Set("op", "add_variant")
	p := u.submit(form, "/console/experiments/new", values).wantStatus(http.StatusOK)
	if n := p.doc.Find("fieldset.variant").Length(); n != 4 {
		t.Fatalf("%d variants after adding one to three", n)
	}
	if v, _ := p.doc.Find(`input[name="variants[1].strategy.products"]`).Attr("value"); v != "sku-conditioner" {
		t.Errorf("adding a variant lost what was typed: %q", v)
	}
	values.Set("variant_count", "4")
	values.Set("op", "equal_weights")
	p = u.submit(p, "/console/experiments/new", values)
	var weights []string
	p.doc.Find(`input[name$=".weight"]`).Each(func(_ int, s *goquerySelection) { v, _ := s.Attr("value"); weights = append(weights, v) })
	if strings.Join(weights, " ") != "0.25 0.25 0.25 0.25" {
		t.Errorf("equal weights of four: %v", weights)
	}
	values.Set("op", "remove_variant:1")
	p = u.submit(p, "/console/experiments/new", values)
	if n := p.doc.Find("fieldset.variant").Length(); n != 3 {
		t.Fatalf("%d variants after removing one of four", n)
	}
	if v, _ := p.doc.Find(`input[name="variants[1].key"]`).Attr("value"); v != "points200" {
		t.Errorf("after removing variant 2 the second is %q", v)
	}
	if n := e.count(`SELECT count(*) FROM experiments`); n != 0 {
		t.Errorf("the form's own buttons stored an experiment")
	}
}

func TestTheListShowsHealthAndLiftAndFilters(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp-bundle"))
	e.transition("pdp-bundle", experiments.ActionStart)
	d := threeArms("cart-points")
	d.Name = "Points at the cart"
	e.create(d)
	lift, lo, hi := 0.23, 0.127, 0.333
	if _, err := e.sched.Store().Save(context.Background(), e.db, &results.Snapshot{Experiment: "pdp-bundle", Phase: 1, ComputedAt: e.clock.Now(),
		Error: "placeholder", Summary: results.Summary{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE results_snapshots SET error = NULL, report = '{}', summary = $1`, []byte(mustJSON(t, results.Summary{
		Units: 50123, SRMMismatch: true, FailingGuardrails: []string{"refund_rate (bundle10)"}, PrimaryMetric: "cross_sell_rate",
		Primary: []results.Lift{{Variant: "bundle10", Lift: &lift, LiftCI: &[2]float64{lo, hi}, Verdict: "better"}},
	}))); err != nil {
		t.Fatal(err)
	}
	u := e.signedIn(analystKey)
	p := u.get("/console/experiments").wantStatus(http.StatusOK)
	row := p.doc.Find(`tbody tr`).FilterFunction(func(_ int, s *goquerySelection) bool { return strings.Contains(s.Text(), "pdp-bundle") })
	text := strings.Join(strings.Fields(row.Text()), " ")
	for _, want := range []string{"running", "50,123", "SRM mismatch", "guardrail failing: refund_rate (bundle10)", "bundle10 +23.0% [+12.7%, +33.3%]"} {
		if !strings.Contains(text, want) {
			t.Errorf("row %q lacks %q", text, want)
		}
	}
	if p.doc.Find("tbody tr").Length() != 2 {
		t.Errorf("want both experiments listed")
	}
	p = u.get("/console/experiments?status=draft")
	if p.doc.Find("tbody tr").Length() != 1 || !strings.Contains(p.text("tbody"), "cart-points") {
		t.Errorf("status=draft lists: %s", p.text("tbody"))
	}
	p = u.get("/console/experiments?q=POINTS+AT")
	if p.doc.Find("tbody tr").Length() != 1 || !strings.Contains(p.text("tbody"), "cart-points") {
		t.Errorf("search by name lists: %s", p.text("tbody"))
	}
	p = u.get("/console/experiments?q=50%25")
	p.wantText("main", "No experiment matches")
	u.get("/console/experiments?status=bogus").wantStatus(http.StatusBadRequest).wantText(".problem", "status must be one of")
}

func TestEditingARunningExperimentOffersOnlyWhatSPEC3Allows(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	x := e.transition("pdp", experiments.ActionStart)
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/pdp/edit").wantStatus(http.StatusOK)
	form.wantText(".explain", "a new phase")
	if form.doc.Find(`input[name="variants[0].weight"]`).Length() != 0 {
		t.Error("a running experiment's form offers its weights")
	}
	for _, id := range []string{"#f-name", "#f-coverage", "#f-targeting"} {
		if _, off := form.doc.Find(id).Attr("disabled"); off {
			t.Errorf("%s is disabled on a running experiment", id)
		}
	}
	if _, off := form.doc.Find("#f-layer-name").Attr("disabled"); !off {
		t.Error("the layer of a running experiment is editable")
	}
	values := url.Values{"version": {"2"}, "name": {"Renamed"}, "hypothesis": {""}, "coverage": {"0.5"},
		"metrics.primary": {"conversion"}, "targeting": {`{"device": "mobile"}`},
		// A forged post of the variants changes nothing: they are not the form's to change.
		"variant_count": {"2"}, "variants[0].key": {"x"}, "variants[0].weight": {"1"}}
	u.submit(form, "/console/experiments/pdp/edit", values).wantRedirect("/console/experiments/pdp?done=saved")
	got, _ := e.store.Get(context.Background(), "pdp")
	if got.Name != "Renamed" || *got.Coverage != 0.5 || got.Metrics.Primary != "conversion" || string(got.Targeting) != `{"device": "mobile"}` {
		t.Errorf("after edit: %+v", got.Definition)
	}
	if !reflect.DeepEqual(got.Variants, x.Variants) {
		t.Errorf("the variants changed: %+v", got.Variants)
	}
}

func TestAStaleEditSaysSoAndKeepsTheInput(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/pdp/edit")
	// Someone else saves first.
	other := threeArms("pdp")
	other.Name = "Their name"
	v1 := 1
	if _, err := e.store.Update(context.Background(), experiments.Actor{Role: "admin", Name: "colleague"}, "pdp", other, experiments.ReadOnly{}, &v1); err != nil {
		t.Fatal(err)
	}
	values := threeArmForm("pdp")
	values.Set("version", "1")
	values.Set("name", "My name")
	p := u.submit(form, "/console/experiments/pdp/edit", values).wantStatus(http.StatusConflict)
	p.wantText(".conflict", "Someone else saved this experiment")
	p.wantText(".conflict", "colleague")
	if v, _ := p.doc.Find("#f-name").Attr("value"); v != "My name" {
		t.Errorf("the user's name was replaced by %q", v)
	}
	if v, _ := p.doc.Find(`input[name="version"]`).Attr("value"); v != "2" {
		t.Errorf("version %q: a second save should knowingly replace version 2", v)
	}
	got, _ := e.store.Get(context.Background(), "pdp")
	if got.Name != "Their name" {
		t.Errorf("the stale edit was stored: %q", got.Name)
	}
	// Saving again, having seen the conflict, replaces theirs.
	values.Set("version", "2")
	u.submit(p, "/console/experiments/pdp/edit", values).wantRedirect("/console/experiments/pdp")
	if got, _ := e.store.Get(context.Background(), "pdp"); got.Name != "My name" {
		t.Errorf("after the second save: %q", got.Name)
	}
}

func TestLifecycleButtonsConfirmWhatWillHappen(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(adminKey)
	page := u.get("/console/experiments/pdp")
	var actions []string
	page.doc.Find(".actions a").Each(func(_ int, s *goquerySelection) { actions = append(actions, strings.TrimSpace(s.Text())) })
	if strings.Join(actions, ",") != "Edit,Start…,Delete draft…" {
		t.Errorf("a draft offers %v", actions)
	}
	confirm := u.get("/console/experiments/pdp/confirm/start").wantStatus(http.StatusOK)
	confirm.wantText(".explain", "first exposure is recorded")
	confirm.wantText(".explain", "freeze")
	u.submit(confirm, "/console/experiments/pdp/action/start", url.Values{"version": {"1"}}).wantRedirect("/console/experiments/pdp?done=start")
	if x, _ := e.store.Get(context.Background(), "pdp"); x.Status != experiments.StatusRunning {
		t.Fatalf("status %s after start", x.Status)
	}
	// The same confirmation again is stale: nothing happens twice.
	u.submit(confirm, "/console/experiments/pdp/action/start", url.Values{"version": {"1"}}).wantStatus(http.StatusConflict)
	u.get("/console/experiments/pdp/confirm/resume").wantStatus(http.StatusConflict)
	stop := u.get("/console/experiments/pdp/confirm/stop").wantStatus(http.StatusOK)
	stop.wantText(".explain", "ends for good")
	u.submit(stop, "/console/experiments/pdp/action/stop", url.Values{"version": {"2"}}).wantRedirect("/console/experiments/pdp?done=stop")
	if x, _ := e.store.Get(context.Background(), "pdp"); x.Status != experiments.StatusStopped {
		t.Fatalf("status %s after stop", x.Status)
	}
	u.get("/console/experiments/pdp/confirm/bogus").wantStatus(http.StatusNotFound)
}

func TestDeletingADraft(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(adminKey)
	c := u.get("/console/experiments/pdp/confirm/delete").wantStatus(http.StatusOK)
	u.submit(c, "/console/experiments/pdp/action/delete", url.Values{"version": {"1"}}).wantRedirect("/console/experiments?done=deleted")
	if n := e.count(`SELECT count(*) FROM experiments`); n != 0 {
		t.Error("the draft is still there")
	}
}

func TestANewPhaseChangesTheWeightsAndReseeds(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	e.transition("pdp", experiments.ActionStart)
	u := e.signedIn(adminKey)
	u.get("/console/experiments/pdp").wantText(".actions", "New phase")
	form := u.get("/console/experiments/pdp/phase").wantStatus(http.StatusOK)
	form.wantText(".explain", "pdp:2")
	values := threeArmForm("pdp")
	values.Set("version", "2")
	values.Set("variants[0].weight", "0.5")
	values.Set("variants[1].weight", "0.5")
	values.Set("variants[2].weight", "0.5")
	u.submit(form, "/console/experiments/pdp/phase", values).wantStatus(http.StatusBadRequest).wantText(".error-summary", "must sum to 1")
	values.Set("variants[2].weight", "0")
	u.submit(form, "/console/experiments/pdp/phase", values).wantRedirect("/console/experiments/pdp?done=phase")
	x, _ := e.store.Get(context.Background(), "pdp")
	if x.Phase != 2 || x.Seed != "pdp:2" || x.Variants[2].Weight != 0 {
		t.Errorf("after the new phase: phase %d seed %q weights %v", x.Phase, x.Seed, x.Weights())
	}
	u.get("/console/experiments/pdp/history").wantRow(".history > li:first-child", "variants[points200].weight 0.33 0")
}

func TestPreviewUsesTheAssignmentCodeAndRecordsNothing(t *testing.T) {
	e := newEnv(t)
	d := threeArms("pdp")
	d.Targeting = json.RawMessage(`{"country": "IT"}`)
	d.Forced = map[string]string{"qa-1": "points200"}
	e.create(d)
	u := e.signedIn(analystKey)
	p := u.get("/console/experiments/pdp?" + url.Values{"shopper": {"qa-1"}, "attributes": {"country=IT"}}.Encode()).wantStatus(http.StatusOK)
	p.wantText("#preview-variant", "points200")
	p.wantText("#preview-answer", "once the experiment runs")
	p = u.get("/console/experiments/pdp?" + url.Values{"shopper": {"s-9"}, "attributes": {"country=US"}}.Encode())
	p.wantText("#preview-variant", "not_targeted")
	e.transition("pdp", experiments.ActionStart)
	// The same shopper always gets the same variant: ask the assignment code directly.
	snap, err := experiments.NewSnapshot([]*experiments.Experiment{mustGet(t, e, "pdp")}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, shopper := range []string{"s-1", "s-2", "s-3", "s-4"} {
		want := snap.Assign(shopper, map[string]any{"country": "IT"}, []string{"pdp"}, nil, nil)[0]
		p = u.get("/console/experiments/pdp?" + url.Values{"shopper": {shopper}, "attributes": {"country=IT\ndevice = mobile"}}.Encode())
		if got := p.text("#preview-variant"); want.Variant == nil || got != *want.Variant {
			t.Errorf("%s: preview says %q, assignment %v", shopper, got, want.Variant)
		}
	}
	p = u.get("/console/experiments/pdp?" + url.Values{"shopper": {"s-1"}, "attributes": {"country"}}.Encode())
	p.wantText(".preview .error", "Line 1: write attribute=value")
	if n := e.count(`SELECT count(*) FROM exposures`); n != 0 {
		t.Errorf("the preview recorded %d exposures", n)
	}
}

func mustGet(t *testing.T, e *env, key string) *experiments.Experiment {
	t.Helper()
	x, err := e.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestHistoryShowsEachChangeAsADiffWithWhoAndWhen(t *testing.T) {
	e := newEnv(t)
	e.create(threeArms("pdp"))
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/pdp/edit")
	values := threeArmForm("pdp")
	values.Set("version", "1")
	values.Set("name", "New name")
	values.Set("variants[1].strategy.discount_percent", "15")
	u.submit(form, "/console/experiments/pdp/edit", values).wantRedirect("/console/experiments/pdp")
	p := u.get("/console/experiments/pdp/history").wantStatus(http.StatusOK)
	p.wantText(".history > li:first-child h2", "update by ops admin")
	p.wantText(".history > li:first-child h2", "version 2")
	p.wantRow(".history > li:first-child", "name Conditioner with shampoo New name")
	p.wantRow(".history > li:first-child", "variants[bundle10].strategy.discount_percent 10 15")
	if p.doc.Find(".history > li").Length() != 2 {
		t.Errorf("want create and update in the history")
	}
}

func TestALearnedBundleIsCreatedAndEditedThroughTheForm(t *testing.T) {
	e := newEnv(t)
	u := e.signedIn(adminKey)
	form := u.get("/console/experiments/new").wantStatus(http.StatusOK)
	values := threeArmForm("learned")
	values.Set("variants[1].strategy.source", "complements")
	values.Set("variants[1].strategy.products", "")
	values.Set("variants[1].strategy.max_products", "2")
	values.Set("variants[1].strategy.min_lift", "1.5")
	u.submit(form, "/console/experiments/new", values).wantRedirect("/console/experiments/learned?done=created")
	got, err := e.store.Get(context.Background(), "learned")
	if err != nil {
		t.Fatal(err)
	}
	st := got.Variants[1].Strategy
	if st.Source != experiments.SourceComplements || st.Products != nil || st.MaxProducts == nil || *st.MaxProducts != 2 ||
		st.MinLift == nil || *st.MinLift != 1.5 || *st.DiscountPercent != 10 {
		t.Fatalf("stored strategy %+v", st)
	}
	// The edit form shows it as it is, so that saving it unchanged keeps it learned.
	edit := u.get("/console/experiments/learned/edit").wantStatus(http.StatusOK)
	if v, _ := edit.doc.Find(`select[name="variants[1].strategy.source"] option[selected]`).Attr("value"); v != "complements" {
		t.Errorf("source shown as %q", v)
	}
	if v, _ := edit.doc.Find(`input[name="variants[1].strategy.max_products"]`).Attr("value"); v != "2" {
		t.Errorf("max_products shown as %q", v)
	}
	if v, _ := edit.doc.Find(`input[name="variants[1].strategy.min_lift"]`).Attr("value"); v != "1.5" {
		t.Errorf("min_lift shown as %q", v)
	}
	// A learned strategy with products typed in as well is refused beside the field.
	values.Set("key", "both")
	values.Set("variants[1].strategy.products", "sku-conditioner")
	p := u.submit(form, "/console/experiments/new", values)
	if p.errorAt("variants[1].strategy.products") == "" {
		t.Errorf("learned with products: no problem shown at products")
	}
	if _, err := e.store.Get(context.Background(), "both"); err == nil {
		t.Error("an invalid learned strategy was stored")
	}
}
