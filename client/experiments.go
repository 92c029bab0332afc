package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Strategy is what a variant offers: none (control), suggestion, bundle or loyalty_points.
type Strategy struct {
	Type string `json:"type"`
	// Source is where a suggestion's or bundle's products come from: "" or "fixed", Products;
	// "complements", learned from orders for each assign request's Context.
	Source   string   `json:"source,omitempty"`
	Products []string `json:"products,omitempty"`
	// Scores are, in an assign answer of a learned strategy, each of Products' score.
	Scores           []float64 `json:"scores,omitempty"`
	MaxProducts      *int      `json:"max_products,omitempty"`      // learned: at most this many products (default 3)
	MinLift          *float64  `json:"min_lift,omitempty"`          // learned: complements of at least this lift (default 1)
	DiscountPercent  *float64  `json:"discount_percent,omitempty"`  // bundle: 0 < x ≤ 90
	DiscountAmount   *int64    `json:"discount_amount,omitempty"`   // bundle: minor units of Currency
	Currency         string    `json:"currency,omitempty"`          // with DiscountAmount
	BonusPoints      *int64    `json:"bonus_points,omitempty"`      // loyalty_points
	PointsMultiplier *float64  `json:"points_multiplier,omitempty"` // loyalty_points: > 1
	Timing           string    `json:"timing,omitempty"`            // product_page, cart, checkout or post_purchase
	TriggerProducts  []string  `json:"trigger_products,omitempty"`  // show only when the basket holds one
}

// Variant is one arm of an experiment.
type Variant struct {
	Key      string   `json:"key"`
	Name     string   `json:"name"`
	Weight   float64  `json:"weight"`
	Control  bool     `json:"control,omitempty"` // by default the first variant is the control
	Strategy Strategy `json:"strategy"`
	// FrequencyCap and Budget are the variant's own, part of its treatment (SPEC §2a).
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	Budget       *Budget       `json:"budget,omitempty"`
}

// FrequencyCap limits how often a shopper is given an offer: at most Offers answers within
// any window of Per ("24h", "7d" or "30d"). Over it, an answer says "offer": "capped".
type FrequencyCap struct {
	Offers int    `json:"offers"`
	Per    string `json:"per"`
}

// Budget bounds what offers may cost: discounts, bonus points, and one shopper's take.
type Budget struct {
	Discount   *Amount       `json:"discount,omitempty"`
	Points     *int64        `json:"points,omitempty"`
	PerShopper *ShopperLimit `json:"per_shopper,omitempty"`
}

// Amount is money: integer minor units of an ISO 4217 currency.
type Amount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ShopperLimit bounds one shopper's accepted offers and discount within Per.
type ShopperLimit struct {
	AcceptedOffers *int   `json:"accepted_offers,omitempty"`
	Discount       *int64 `json:"discount,omitempty"`
	Per            string `json:"per"`
}

// BudgetStatus is one budget with what it has spent: Variant is empty for the experiment's
// own; ExhaustedAt is when it closed, nil while open.
type BudgetStatus struct {
	Variant     string     `json:"variant,omitempty"`
	Kind        string     `json:"kind"` // discount or points
	Budget      int64      `json:"budget"`
	Currency    string     `json:"currency,omitempty"`
	Spent       int64      `json:"spent"`
	Left        int64      `json:"left"`
	Overspent   int64      `json:"overspent"`
	Exhausted   bool       `json:"exhausted"`
	ExhaustedAt *time.Time `json:"exhausted_at,omitempty"`
}

// Layer places experiments in a shared hash space: those in disjoint ranges share no shopper.
type Layer struct {
	Name  string     `json:"name"`
	Range [2]float64 `json:"range"`
}

// Metrics names what an experiment is judged on.
type Metrics struct {
	Primary    string      `json:"primary,omitempty"`
	Secondary  []string    `json:"secondary,omitempty"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
}

// Guardrail is a metric that must not get worse by more than Margin. A zero Margin is sent as
// the bare metric name, for the server's default margin.
type Guardrail struct {
	Metric   string  `json:"metric"`
	Margin   float64 `json:"margin"`
	Relative bool    `json:"relative,omitempty"`
}

// MarshalJSON writes a guardrail without a margin as its metric's name.
func (g Guardrail) MarshalJSON() ([]byte, error) {
	if g.Margin == 0 && !g.Relative {
		return json.Marshal(g.Metric)
	}
	type plain Guardrail
	return json.Marshal(plain(g))
}

// UnmarshalJSON reads a guardrail as an object or as a bare metric name.
func (g *Guardrail) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*g = Guardrail{Metric: name}
		return nil
	}
	type plain Guardrail
	return json.Unmarshal(b, (*plain)(g))
}

// Definition is the part of an experiment its owners write.
type Definition struct {
	Key           string    `json:"key,omitempty"` // a slug; may be left out of an update
	Name          string    `json:"name"`
	Hypothesis    string    `json:"hypothesis,omitempty"`
	Seed          string    `json:"seed,omitempty"`           // the key by default
	HashAttribute string    `json:"hash_attribute,omitempty"` // shopper_id by default
	Coverage      *float64  `json:"coverage,omitempty"`       // 0 < c ≤ 1, 1 by default
	Variants      []Variant `json:"variants"`
	// Targeting is a GrowthBook condition on the attributes, such as
	// {"country": {"$in": ["IT", "FR"]}}; nil targets everyone.
	Targeting      map[string]any    `json:"targeting,omitempty"`
	Layer          *Layer            `json:"layer,omitempty"`
	TargetProducts []string          `json:"target_products,omitempty"` // the variants' products by default
	Metrics        *Metrics          `json:"metrics,omitempty"`
	Forced         map[string]string `json:"forced,omitempty"`     // shopper id → variant key, for QA
	Allocation     *Allocation       `json:"allocation,omitempty"` // fixed by default; see bandit.go
	// FrequencyCap caps every arm alike, counting the shopper's answers in all of them;
	// Budget is shared by the variants that can spend it (SPEC §2a).
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	Budget       *Budget       `json:"budget,omitempty"`
}

// The statuses of an experiment: draft → running ⇄ paused → stopped.
const (
	StatusDraft   = "draft"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// Experiment is a definition with the state the server keeps.
type Experiment struct {
	Definition
	Status    string       `json:"status"`
	Phase     int          `json:"phase"`
	Version   int          `json:"version"` // send it back to update: changes since make the write fail
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	StartedAt *time.Time   `json:"started_at,omitempty"`
	StoppedAt *time.Time   `json:"stopped_at,omitempty"`
	Bandit    *BanditState `json:"bandit,omitempty"` // a started bandit's period and weights
	// BudgetStatus is every budget of the experiment with what it has spent and has left.
	BudgetStatus []BudgetStatus `json:"budget_status,omitempty"`
}

// ExperimentPage is one page of experiments.
type ExperimentPage struct {
	Experiments []Experiment `json:"experiments"`
	NextCursor  string       `json:"next_cursor"` // empty on the last page
}

// ListOptions filters and pages ListExperiments; the zero value lists the first page of all.
type ListOptions struct {
	Status string // draft, running, paused, stopped, or "" for all
	Limit  int    // 1 to 200; 0 for the server's default
	Cursor string // a NextCursor
}

// PhaseChange is the allocation of a new phase; what it leaves out stays as it was.
type PhaseChange struct {
	Variants   []Variant   `json:"variants,omitempty"`
	Coverage   *float64    `json:"coverage,omitempty"`
	Allocation *Allocation `json:"allocation,omitempty"`
}

// AuditEntry is one change in an experiment's history.
type AuditEntry struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Action  string          `json:"action"`
	Role    string          `json:"role"`
	KeyName string          `json:"key_name"` // the API key's name, never its secret
	Version int             `json:"version"`
	Changes json.RawMessage `json:"changes"` // field → {"from", "to"}
}

// Writes of experiments are retried only on answers that say nothing was done (429, 503):
// after a dropped connection a create may have happened, and its retry would say
// already_exists; an edit's retry would say version_conflict.

// CreateExperiment defines an experiment, as a draft (admin key).
func (c *Client) CreateExperiment(ctx context.Context, def Definition) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, "/v1/experiments", def, 0, retryUnapplied)
}

// GetExperiment reads an experiment (admin or analyst key).
func (c *Client) GetExperiment(ctx context.Context, key string) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodGet, experimentPath(key), nil, 0, retrySafe)
}

// ListExperiments reads one page of experiments (admin or analyst key).
func (c *Client) ListExperiments(ctx context.Context, o ListOptions) (*ExperimentPage, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	var p ExperimentPage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/experiments", query: q, retry: retrySafe, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdateExperiment replaces an experiment's definition, based on the version read: if it
// changed since, the answer is CodeVersionConflict (admin key).
func (c *Client) UpdateExperiment(ctx context.Context, key string, def Definition, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPut, experimentPath(key), def, version, retryUnapplied)
}

// DeleteExperiment deletes a draft; version 0 deletes whatever version it is at (admin key).
func (c *Client) DeleteExperiment(ctx context.Context, key string, version int) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: experimentPath(key), header: ifMatch(version), retry: retryUnapplied})
	return err
}

// StartExperiment starts a draft; version 0 skips the version check (admin key).
func (c *Client) StartExperiment(ctx context.Context, key string, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(key)+"/start", nil, version, retryUnapplied)
}

// PauseExperiment pauses a running experiment: it answers not_running until resumed.
func (c *Client) PauseExperiment(ctx context.Context, key string, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(key)+"/pause", nil, version, retryUnapplied)
}

// ResumeExperiment resumes a paused experiment.
func (c *Client) ResumeExperiment(ctx context.Context, key string, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(key)+"/resume", nil, version, retryUnapplied)
}

// StopExperiment stops an experiment for good.
func (c *Client) StopExperiment(ctx context.Context, key string, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(key)+"/stop", nil, version, retryUnapplied)
}

// NewPhase starts a new phase with a new allocation, re-randomising the shoppers.
func (c *Client) NewPhase(ctx context.Context, key string, change PhaseChange, version int) (*Experiment, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(key)+"/phases", change, version, retryUnapplied)
}

// ExperimentHistory reads every change of an experiment, oldest first.
func (c *Client) ExperimentHistory(ctx context.Context, key string) ([]AuditEntry, error) {
	var h struct {
		History []AuditEntry `json:"history"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: experimentPath(key) + "/history", retry: retrySafe, out: &h}); err != nil {
		return nil, err
	}
	return h.History, nil
}

func (c *Client) experimentCall(ctx context.Context, method, path string, body any, version int, mode retryMode) (*Experiment, error) {
	var e Experiment
	if _, err := c.do(ctx, request{method: method, path: path, body: body, header: ifMatch(version), retry: mode, out: &e}); err != nil {
		return nil, err
	}
	return &e, nil
}

func experimentPath(key string) string { return "/v1/experiments/" + url.PathEscape(key) }

// ifMatch is the If-Match header of a write based on version, or none for version 0.
func ifMatch(version int) http.Header {
	if version == 0 {
		return nil
	}
	return http.Header{"If-Match": {strconv.Quote(strconv.Itoa(version))}}
}
