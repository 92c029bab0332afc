package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Allocation is how an experiment splits its traffic (SPEC §3a, docs/bandits.md): "fixed" at the
// variants' weights, or "bandit", which moves the weights towards the better arms of Metric.
// Settings left out take the server's defaults, which GetExperiment then shows.
type Allocation struct {
	Type        string   `json:"type"`                   // fixed or bandit
	Metric      string   `json:"metric,omitempty"`       // what a bandit maximises; the primary metric by default
	BurnIn      string   `json:"burn_in,omitempty"`      // "24h", "7d": how long the variants' weights hold
	UpdateEvery string   `json:"update_every,omitempty"` // "6h": how often the weights are recomputed after it
	MinWeight   *float64 `json:"min_weight,omitempty"`   // every arm's least share (0.01)
	MinUnits    int      `json:"min_units,omitempty"`    // shoppers every arm needs before the weights move (100)
	Sampling    string   `json:"sampling,omitempty"`     // top_two (default) or thompson
	LeaderShare *float64 `json:"leader_share,omitempty"` // top-two's share for a clear leader (0.8)
}

// BanditState is where a started bandit stands in its current phase.
type BanditState struct {
	Period     int                `json:"period"` // 0 during the burn-in
	Since      time.Time          `json:"since"`
	Weights    map[string]float64 `json:"weights"` // in force, by variant key
	LastUpdate *time.Time         `json:"last_update,omitempty"`
	NextUpdate *time.Time         `json:"next_update,omitempty"`
}

// BanditUpdate is one scheduled update of a bandit's weights.
type BanditUpdate struct {
	ID      int64              `json:"id"`
	Phase   int                `json:"phase"`
	At      time.Time          `json:"at"`
	Period  *int               `json:"period"`  // the period it started; nil when it held the weights
	Weights map[string]float64 `json:"weights"` // in force after it
	Arms    json.RawMessage    `json:"arms"`    // the posterior per arm: units, mean, sd, ci, chance_best, weight
	Note    string             `json:"note,omitempty"`
}

// BanditUpdates reads a bandit's updates, every phase, oldest first, with its state in force
// (nil for a draft or a fixed allocation) (admin or analyst key).
func (c *Client) BanditUpdates(ctx context.Context, key string) ([]BanditUpdate, *BanditState, error) {
	var b struct {
		State   *BanditState   `json:"state"`
		Updates []BanditUpdate `json:"updates"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: experimentPath(key) + "/bandit", retry: retrySafe, out: &b}); err != nil {
		return nil, nil, err
	}
	return b.Updates, b.State, nil
}

// UpdateBandit recomputes a running bandit's weights now, off its schedule (admin key). A
// non-zero at back-dates the update, for simulated or back-filled traffic: the update reads the
// data up to it and takes effect then. With too little data the update holds the weights and
// its Note says why.
func (c *Client) UpdateBandit(ctx context.Context, key string, at time.Time) (*BanditUpdate, error) {
	body := struct {
		At *time.Time `json:"at,omitempty"`
	}{}
	if !at.IsZero() {
		body.At = &at
	}
	var out struct {
		Update BanditUpdate `json:"update"`
	}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: experimentPath(key) + "/bandit/update", body: body, retry: retryUnapplied, out: &out}); err != nil {
		return nil, err
	}
	return &out.Update, nil
}
