package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/offers"
	"github.com/xsell/xsell/internal/servertest"
)

// offerOf asks server base for the shopper's answer in experiment key; track false asks
// without counting an opportunity.
func offerOf(t *testing.T, base, key, shopper string, track bool) map[string]any {
	t.Helper()
	st, m := call(t, "POST", base+"/v1/assign", devCheckout,
		fmt.Sprintf(`{"shopper_id": %q, "experiments": [%q], "track": %v}`, shopper, key, track))
	if st != 200 {
		t.Fatalf("assign: %d %v", st, m)
	}
	return m["assignments"].([]any)[0].(map[string]any)
}

// waitOfferOn asks server base until the shopper's answer says offer, for up to within, and
// returns how long that took.
func waitOfferOn(t *testing.T, base, key, shopper, offer string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		a := offerOf(t, base, key, shopper, false)
		if a["offer"] == offer {
			if a["in_experiment"] != true {
				t.Fatalf("offer %s answered out of the experiment: %v", offer, a)
			}
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("server %s still answers %v after %s, want offer %s", base, a, within, offer)
		}
	}
}

// TestCapsAndBudgetsHoldAcrossTwoServersAndARestart runs two server processes on one
// database: a cap reached through server A holds on server B within the feed's stated
// delay; both keep it after a restart; and a budget spent through B closes the offer on A.
func TestCapsAndBudgetsHoldAcrossTwoServersAndARestart(t *testing.T) {
	url := dbtest.URL(t)
	a := servertest.Start(t, url)
	b := servertest.Start(t, url)
	body := `{"key": "capped", "name": "caps", "frequency_cap": {"offers": 2, "per": "24h"}, "variants": [
		{"key": "control", "name": "C", "weight": 0.5, "strategy": {"type": "none"}},
		{"key": "points", "name": "P", "weight": 0.5, "budget": {"points": 300},
		 "strategy": {"type": "loyalty_points", "products": ["sku-2"], "bonus_points": 200, "timing": "cart"}}]}`
	if st, m := call(t, "POST", a.URL+"/v1/experiments", devAdmin, body); st != 201 {
		t.Fatalf("create: %d %v", st, m)
	}
	if st, m := call(t, "POST", a.URL+"/v1/experiments/capped/start", devAdmin, ""); st != 200 {
		t.Fatalf("start: %d %v", st, m)
	}
	waitVariant(t, b.URL, "capped", "probe", 5*time.Second)

	for i := range 2 {
		if x := offerOf(t, a.URL, "capped", "s-1", true); x["offer"] != "show" {
			t.Fatalf("visit %d on A: %v", i, x)
		}
	}
	took := waitOfferOn(t, b.URL, "capped", "s-1", "capped", offers.FeedBound)
	t.Logf("server B capped the shopper %s after server A's second answer", took)

	// A bonus through B spends 200 of 300: too little is left for another, and A's points
	// arm answers budget_exhausted (the cache hears of it through NOTIFY).
	var member string
	for i := 0; member == ""; i++ {
		id := fmt.Sprintf("p-%d", i)
		if x := offerOf(t, a.URL, "capped", id, false); x["variant"] == "points" {
			member = id
		}
	}
	earn := `{"points": 200, "idempotency_key": "bonus-1", "reason": "bonus", "experiment": "capped", "variant": "points"}`
	if st, m := call(t, "POST", b.URL+"/v1/loyalty/accounts/"+member+"/earn", devCheckout, earn); st != 201 {
		t.Fatalf("earn on B: %d %v", st, m)
	}
	took = waitOfferOn(t, a.URL, "capped", member, "budget_exhausted", time.Second)
	t.Logf("server A closed the spent arm %s after server B's bonus", took)

	// Restarted, A still caps s-1 and still knows the arm is spent.
	a.Kill()
	restarted := servertest.StartAt(t, a.Addr, url)
	if x := offerOf(t, restarted.URL, "capped", "s-1", false); x["offer"] != "capped" {
		t.Fatalf("s-1 after a restart: %v", x)
	}
	if x := offerOf(t, restarted.URL, "capped", member, false); x["offer"] != "budget_exhausted" {
		t.Fatalf("the spent arm after a restart: %v", x)
	}
}
