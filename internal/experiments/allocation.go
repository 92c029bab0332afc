package experiments

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xsell/xsell/internal/apperr"
)

// AllocationType says how an experiment's traffic is split between its variants.
type AllocationType string

// The allocation types of SPEC §3.
const (
	// AllocationFixed keeps the definition's weights for the whole phase.
	AllocationFixed AllocationType = "fixed"
	// AllocationBandit starts at the definition's weights and then follows Thompson sampling
	// on the allocation's metric (SPEC §3a, docs/bandits.md).
	AllocationBandit AllocationType = "bandit"
)

// The ways a bandit turns its posterior into weights.
const (
	// SamplingTopTwo is top-two Thompson sampling: the leader gets LeaderShare of the traffic
	// when it is clear, the runners-up the rest.
	SamplingTopTwo = "top_two"
	// SamplingThompson is plain Thompson sampling: each arm's weight is its chance of being best.
	SamplingThompson = "thompson"
)

// Defaults of a bandit allocation, written into the definition when it is saved so that GET
// shows what is in force.
const (
	DefaultBurnIn      = "24h"
	DefaultUpdateEvery = "6h"
	DefaultMinWeight   = 0.01
	// DefaultMinUnits is GrowthBook's rule: no update before every arm has 100 shoppers.
	DefaultMinUnits    = 100
	DefaultLeaderShare = 0.8
)

// Bounds of a bandit allocation.
const (
	MaxBurnIn = 90 * 24 * time.Hour
	// MinUpdateEvery lets a demo or a test watch several updates within minutes; an update
	// runs the report's aggregate and reloads every server's cache, so production cadences
	// are hours (docs/bandits.md).
	MinUpdateEvery = 10 * time.Second
	MaxUpdateEvery = 30 * 24 * time.Hour
	MaxMinUnits    = 1_000_000
)

// Allocation is how an experiment splits its traffic: fixed at the definition's weights, or a
// bandit that moves it towards the better arms of Metric.
type Allocation struct {
	Type AllocationType `json:"type"`
	// Metric is what the bandit maximises (minimises when lower is better: offer_cost,
	// refund_rate), one of MetricNames; the experiment's primary metric by default.
	Metric string `json:"metric,omitempty"`
	// BurnIn is how long the definition's weights hold after the phase starts; UpdateEvery how
	// often the weights are recomputed after it. Go durations, or whole days as "7d".
	BurnIn      string `json:"burn_in,omitempty"`
	UpdateEvery string `json:"update_every,omitempty"`
	// MinWeight is every arm's least share of traffic, so that none stops being learnt about.
	MinWeight *float64 `json:"min_weight,omitempty"`
	// MinUnits is the fewest exposed shoppers every arm needs before the first update.
	MinUnits int `json:"min_units,omitempty"`
	// Sampling is top_two (default) or thompson; LeaderShare is top-two's β, the share a clear
	// leader gets before the floors.
	Sampling    string   `json:"sampling,omitempty"`
	LeaderShare *float64 `json:"leader_share,omitempty"`
}

// IsBandit reports whether the allocation is a bandit's.
func (a *Allocation) IsBandit() bool { return a != nil && a.Type == AllocationBandit }

// normalize fills a bandit's defaults; metric defaults to the experiment's primary metric.
func (a *Allocation) normalize(primary string) {
	if a.Type != AllocationBandit {
		return
	}
	if a.Metric == "" {
		a.Metric = primary
	}
	if a.BurnIn == "" {
		a.BurnIn = DefaultBurnIn
	}
	if a.UpdateEvery == "" {
		a.UpdateEvery = DefaultUpdateEvery
	}
	if a.MinWeight == nil {
		a.MinWeight = ptrTo(DefaultMinWeight)
	}
	if a.MinUnits == 0 {
		a.MinUnits = DefaultMinUnits
	}
	if a.Sampling == "" {
		a.Sampling = SamplingTopTwo
	}
	if a.Sampling == SamplingTopTwo && a.LeaderShare == nil {
		a.LeaderShare = ptrTo(DefaultLeaderShare)
	}
}

func ptrTo[T any](v T) *T { return &v }

// BurnInDuration is the burn-in as a duration (valid allocations only).
func (a *Allocation) BurnInDuration() time.Duration {
	d, _ := ParseDuration(a.BurnIn)
	return d
}

// UpdateEveryDuration is the update period as a duration (valid allocations only).
func (a *Allocation) UpdateEveryDuration() time.Duration {
	d, _ := ParseDuration(a.UpdateEvery)
	return d
}

// ParseDuration reads a Go duration ("90m", "6h", "1h30m") or a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// validate reports the problems of an allocation for an experiment with these variants.
func (a *Allocation) validate(p *apperr.Problems, variants []Variant) {
	forbid := func(name string, set bool) {
		if set {
			p.Add("allocation."+name, "not_allowed", "is a setting of a bandit allocation, not of a %q one", a.Type)
		}
	}
	switch a.Type {
	case AllocationFixed:
		forbid("metric", a.Metric != "")
		forbid("burn_in", a.BurnIn != "")
		forbid("update_every", a.UpdateEvery != "")
		forbid("min_weight", a.MinWeight != nil)
		forbid("min_units", a.MinUnits != 0)
		forbid("sampling", a.Sampling != "")
		forbid("leader_share", a.LeaderShare != nil)
		return
	case AllocationBandit:
	case "":
		p.Add("allocation.type", "required", "must be fixed or bandit")
		return
	default:
		p.Add("allocation.type", "not_allowed", "must be fixed or bandit, got %q", a.Type)
		return
	}
	if !slices.Contains(MetricNames, a.Metric) {
		p.Add("allocation.metric", "not_allowed", "must be one of %s, got %q", strings.Join(MetricNames, ", "), a.Metric)
	}
	checkDuration(p, "allocation.burn_in", a.BurnIn, 0, MaxBurnIn)
	checkDuration(p, "allocation.update_every", a.UpdateEvery, MinUpdateEvery, MaxUpdateEvery)
	k := float64(len(variants))
	if w := *a.MinWeight; !(w >= 0 && w*k < 1 && w <= 0.2) {
		p.Add("allocation.min_weight", "out_of_range", "must be in [0, 0.2] and below 1/%d (the share of each of the %d variants), got %v", len(variants), len(variants), w)
	}
	if a.MinUnits < 1 || a.MinUnits > MaxMinUnits {
		p.Add("allocation.min_units", "out_of_range", "must be a whole number from 1 to %d, got %d", MaxMinUnits, a.MinUnits)
	}
	switch a.Sampling {
	case SamplingTopTwo:
		if s := *a.LeaderShare; !(s >= 0.5 && s <= 0.95) {
			p.Add("allocation.leader_share", "out_of_range", "must be in [0.5, 0.95], got %v", s)
		}
	case SamplingThompson:
		forbid("leader_share", a.LeaderShare != nil)
	default:
		p.Add("allocation.sampling", "not_allowed", "must be top_two or thompson, got %q", a.Sampling)
	}
	for i, v := range variants {
		if v.Weight == 0 {
			p.Add("variants["+strconv.Itoa(i)+"].weight", "out_of_range", "a bandit's arms all need traffic in the burn-in, so that the bandit can learn about them; %q has weight 0", v.Key)
		}
	}
}

// checkDuration reports a duration that does not parse or lies outside [lo, hi].
func checkDuration(p *apperr.Problems, path, s string, lo, hi time.Duration) {
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		p.Add(path, "invalid_format", "must be a duration such as \"30m\", \"6h\" or \"7d\", got %q", s)
	case d < lo || d > hi:
		p.Add(path, "out_of_range", "must be from %s to %s, got %q", formatDuration(lo), formatDuration(hi), s)
	}
}

// formatDuration writes whole days as "7d" and the rest as Go does.
func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
