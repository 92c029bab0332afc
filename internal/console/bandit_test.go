package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/xsell/xsell/internal/experiments"
)

// A bandit's reweight is in the console's history as the server stored it: who ran it, the
// period it started, each arm's weight before and after, and the posterior summary.
func TestHistoryShowsABanditsReweights(t *testing.T) {
	e := newEnv(t)
	def := threeArms("pdp")
	def.Allocation = &experiments.Allocation{Type: experiments.AllocationBandit, BurnIn: "24h", UpdateEvery: "1h"}
	e.create(def)
	e.transition("pdp", experiments.ActionStart)
	// On demand, so that the test does not race the server's own schedule (not due for 24h).
	period := 1
	summary := json.RawMessage(`[{"variant":"control","units":400,"mean":0.101,"chance_best":0.02}]`)
	up, err := e.store.UpdateBanditNow(context.Background(), experiments.Actor{Role: "admin", Name: "ops"}, "pdp", e.clock.Now(), func(*experiments.Experiment) (*experiments.BanditUpdate, error) {
		return &experiments.BanditUpdate{Period: &period, Arms: summary,
			Weights: map[string]float64{"control": 0.1, "bundle10": 0.8, "points200": 0.1}}, nil
	})
	if err != nil || up == nil {
		t.Fatalf("reweight: %+v, %v", up, err)
	}
	p := e.signedIn(analystKey).get("/console/experiments/pdp/history").wantStatus(http.StatusOK)
	p.wantText(".history > li:first-child h2", "reweight by ops admin")
	p.wantRow(".history > li:first-child", "period 0 1")
	p.wantRow(".history > li:first-child", "weights.bundle10 0.33 0.8")
	p.wantRow(".history > li:first-child", "weights.control 0.34 0.1")
	p.wantRow(".history > li:first-child", `arms — [{"chance_best":0.02, "mean":0.101, "units":400, "variant":"control"}]`)
}
