package experiments

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/targeting"
)

func banditDef(key string, a *Allocation, weights ...float64) Definition {
	d := experimentFor(key, weights, 1).Definition
	d.Allocation = a
	d.Normalize()
	return d
}

func TestAllocationDefaults(t *testing.T) {
	d := experimentFor("fixed", []float64{0.5, 0.5}, 1).Definition
	if d.Allocation == nil || *d.Allocation != (Allocation{Type: AllocationFixed}) {
		t.Fatalf("default allocation %+v, want fixed", d.Allocation)
	}
	d = banditDef("b", &Allocation{Type: AllocationBandit}, 0.5, 0.5)
	a := d.Allocation
	if a.Metric != d.Metrics.Primary || a.BurnIn != "24h" || a.UpdateEvery != "6h" || *a.MinWeight != 0.01 ||
		a.MinUnits != 100 || a.Sampling != SamplingTopTwo || *a.LeaderShare != 0.8 {
		t.Fatalf("bandit defaults %+v", a)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.BurnInDuration() != 24*time.Hour || a.UpdateEveryDuration() != 6*time.Hour {
		t.Errorf("durations %v %v", a.BurnInDuration(), a.UpdateEveryDuration())
	}
	plain := banditDef("p", &Allocation{Type: AllocationBandit, Sampling: SamplingThompson, UpdateEvery: "7d"}, 0.5, 0.5)
	if plain.Allocation.LeaderShare != nil || plain.Validate() != nil || plain.Allocation.UpdateEveryDuration() != 7*24*time.Hour {
		t.Errorf("thompson with 7d: %+v, %v", plain.Allocation, plain.Validate())
	}
}

func TestAllocationProblemsNameTheirField(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name    string
		a       Allocation
		weights []float64
		field   string
	}{
		{"unknown type", Allocation{Type: "greedy"}, nil, "allocation.type"},
		{"missing type", Allocation{}, nil, "allocation.type"},
		{"fixed with a metric", Allocation{Type: AllocationFixed, Metric: "revenue"}, nil, "allocation.metric"},
		{"unknown metric", Allocation{Type: AllocationBandit, Metric: "clicks"}, nil, "allocation.metric"},
		{"burn-in not a duration", Allocation{Type: AllocationBandit, BurnIn: "a day"}, nil, "allocation.burn_in"},
		{"burn-in negative", Allocation{Type: AllocationBandit, BurnIn: "-1h"}, nil, "allocation.burn_in"},
		{"burn-in too long", Allocation{Type: AllocationBandit, BurnIn: "91d"}, nil, "allocation.burn_in"},
		{"updates too often", Allocation{Type: AllocationBandit, UpdateEvery: "5s"}, nil, "allocation.update_every"},
		{"updates too rarely", Allocation{Type: AllocationBandit, UpdateEvery: "31d"}, nil, "allocation.update_every"},
		{"floor for 2 arms", Allocation{Type: AllocationBandit, MinWeight: f(0.5)}, nil, "allocation.min_weight"},
		{"floor negative", Allocation{Type: AllocationBandit, MinWeight: f(-0.01)}, nil, "allocation.min_weight"},
		{"floor of 5 arms", Allocation{Type: AllocationBandit, MinWeight: f(0.2)}, []float64{0.2, 0.2, 0.2, 0.2, 0.2}, "allocation.min_weight"},
		{"min units", Allocation{Type: AllocationBandit, MinUnits: -3}, nil, "allocation.min_units"},
		{"sampling", Allocation{Type: AllocationBandit, Sampling: "epsilon"}, nil, "allocation.sampling"},
		{"leader share", Allocation{Type: AllocationBandit, LeaderShare: f(0.99)}, nil, "allocation.leader_share"},
		{"leader share of plain thompson", Allocation{Type: AllocationBandit, Sampling: SamplingThompson, LeaderShare: f(0.8)}, nil, "allocation.leader_share"},
		{"arm without burn-in traffic", Allocation{Type: AllocationBandit}, []float64{1, 0}, "variants[1].weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			weights := c.weights
			if weights == nil {
				weights = []float64{0.5, 0.5}
			}
			a := c.a
			d := banditDef("bad", &a, weights...)
			err := d.Validate()
			var ae *apperr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("no problem reported: %v", err)
			}
			var fields []string
			for _, det := range ae.Details {
				fields = append(fields, det.Field)
			}
			if !slices.Contains(fields, c.field) {
				t.Errorf("problems at %v, want one at %s (%v)", fields, c.field, err)
			}
		})
	}
}

// A running bandit's allocation changes only through a new phase, as its variants do.
func TestAllocationIsAPhaseField(t *testing.T) {
	err := editable(StatusRunning, map[string]any{"allocation": nil})
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.RequiresNewPhase {
		t.Fatalf("changing a running experiment's allocation: %v", err)
	}
}

// bandit is a running bandit experiment in the given period with those weights.
func bandit(key string, period int, weights ...float64) *Experiment {
	e := experimentFor(key, weights, 1)
	e.Allocation = &Allocation{Type: AllocationBandit}
	e.Normalize()
	e.Bandit = &BanditState{Period: period, Weights: map[string]float64{}}
	for i, v := range e.Variants {
		e.Bandit.Weights[v.Key] = weights[i]
	}
	return e
}

// In memory, on one server: shoppers keep their first recorded variant through new weights,
// new shoppers follow the new weights, and an answer that recorded nothing ("track": false)
// binds nobody.
func TestStickyKeepsFirstVariantsThroughNewWeights(t *testing.T) {
	sticky := NewSticky(0, nil)
	snap := func(period int, weights ...float64) *Snapshot {
		s, err := newSnapshot([]*Experiment{bandit("bx", period, weights...)}, time.Now(), sticky)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	record := func(Exposure) {}
	first := map[string]string{}
	s0 := snap(0, 0.5, 0.5)
	for i := range 2000 {
		id := fmt.Sprint("s-", i)
		first[id] = *s0.Assign(id, map[string]any{}, []string{"bx"}, nil, record)[0].Variant
	}
	s1 := snap(1, 0.05, 0.95)
	moved, newInV0 := 0, 0
	for i := range 2000 {
		id := fmt.Sprint("s-", i)
		if got := *s1.Assign(id, map[string]any{}, []string{"bx"}, nil, record)[0].Variant; got != first[id] {
			moved++
		}
		if *s1.Assign(fmt.Sprint("new-", i), map[string]any{}, []string{"bx"}, nil, record)[0].Variant == "v0" {
			newInV0++
		}
	}
	if moved != 0 {
		t.Errorf("%d of 2000 returning shoppers changed variant with the new weights", moved)
	}
	// New shoppers at 5% for v0: 100 expected; the 99.9% binomial range is about 70..133.
	if newInV0 < 70 || newInV0 > 133 {
		t.Errorf("%d of 2000 new shoppers in v0 at weight 0.05", newInV0)
	}
	// Prefetching under period 1 binds nobody: under period 2 the shopper gets period 2's variant.
	s2 := snap(2, 0.95, 0.05)
	var flips int
	for i := range 500 {
		id := fmt.Sprint("prefetch-", i)
		before := *s1.Assign(id, map[string]any{}, []string{"bx"}, nil, nil)[0].Variant
		after := *s2.Assign(id, map[string]any{}, []string{"bx"}, nil, record)[0].Variant
		if before != after {
			flips++
		}
	}
	if flips == 0 {
		t.Error("an unrecorded answer bound the shopper to its variant")
	}
	if sticky.Len() != 4500 {
		t.Errorf("%d shoppers remembered, want 4500 (2000 + 2000 new + 500 recorded once)", sticky.Len())
	}
	if _, p, ok := s2.BanditPeriod("bx"); !ok || p != 2 {
		t.Errorf("the snapshot serves period %d (%v), want 2", p, ok)
	}
}

// Memory is bounded: beyond the limit new shoppers are bucketed without being remembered, and
// the tables of phases that ended are forgotten.
func TestStickyLimitAndForgetting(t *testing.T) {
	sticky := NewSticky(10, nil)
	s, err := newSnapshot([]*Experiment{bandit("lim", 0, 0.5, 0.5)}, time.Now(), sticky)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		s.Assign(fmt.Sprint("s-", i), map[string]any{}, []string{"lim"}, nil, func(Exposure) {})
	}
	if sticky.Len() != 10 {
		t.Errorf("%d remembered with a limit of 10", sticky.Len())
	}
	sticky.retain(nil)
	if sticky.Len() != 0 || len(sticky.tables) != 0 {
		t.Errorf("after the phase ended: %d remembered in %d tables", sticky.Len(), len(sticky.tables))
	}
}

// The background merge of staged exposures may trail assignment by more than StickyOverlap
// under load: a change of weights must still find the shoppers whose exposures wait in
// exposure_log, however long ago they were assigned.
func TestStickyLoadFindsStagedExposuresOfAnyAge(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	sticky := NewSticky(0, nil)
	if err := sticky.sync(ctx, db, []*Experiment{bandit("bx", 0, 0.5, 0.5)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	db.MustExec(`INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
		VALUES ('staged-long-ago', now() - interval '1 hour', '{}', '{bx}', '{1}', '{v1}')`)
	if err := sticky.sync(ctx, db, []*Experiment{bandit("bx", 1, 0.95, 0.05)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	table, _ := sticky.table("bx", 1)
	id, _ := targeting.HashValue("staged-long-ago")
	if i, ok := table.get(id); !ok || i != 1 {
		t.Fatalf("a shopper staged an hour ago in v1: remembered %v, variant index %d; want v1", ok, i)
	}
}
