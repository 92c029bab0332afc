package experiments

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Status is where an experiment is in its lifecycle: draft → running ⇄ paused → stopped.
type Status string

// The statuses of an experiment.
const (
	StatusDraft   Status = "draft"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// StrategyType is what a variant does for the shopper.
type StrategyType string

// The strategy types of SPEC §2.
const (
	StrategyNone          StrategyType = "none"           // control: no offer
	StrategySuggestion    StrategyType = "suggestion"     // show complementary products
	StrategyBundle        StrategyType = "bundle"         // complementary products at a discount
	StrategyLoyaltyPoints StrategyType = "loyalty_points" // extra points for buying them
)

// Timing is the moment the offer is shown.
type Timing string

// The timings of an offer.
const (
	TimingProductPage  Timing = "product_page"
	TimingCart         Timing = "cart"
	TimingCheckout     Timing = "checkout"
	TimingPostPurchase Timing = "post_purchase"
)

// Strategy is what a variant offers; which parameters apply depends on Type.
type Strategy struct {
	Type StrategyType `json:"type"`
	// Source says where a suggestion's or bundle's products come from: fixed (the default)
	// with Products, or complements, learned from orders for each shopper's context, up to
	// MaxProducts with a lift of at least MinLift (learned.go).
	Source           Source   `json:"source,omitempty"`
	Products         []string `json:"products,omitempty"`
	MaxProducts      *int     `json:"max_products,omitempty"`
	MinLift          *float64 `json:"min_lift,omitempty"`
	DiscountPercent  *float64 `json:"discount_percent,omitempty"`
	DiscountAmount   *int64   `json:"discount_amount,omitempty"` // minor units of Currency
	Currency         string   `json:"currency,omitempty"`        // ISO 4217, with DiscountAmount
	BonusPoints      *int64   `json:"bonus_points,omitempty"`
	PointsMultiplier *float64 `json:"points_multiplier,omitempty"`
	Timing           Timing   `json:"timing,omitempty"`
	TriggerProducts  []string `json:"trigger_products,omitempty"`
}

// Variant is one arm of an experiment.
type Variant struct {
	Key      string   `json:"key"`
	Name     string   `json:"name"`
	Weight   float64  `json:"weight"`
	Control  bool     `json:"control,omitempty"`
	Strategy Strategy `json:"strategy"`
	// FrequencyCap caps this arm's offer only: the cap is then the treatment (docs/offers.md).
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	// Budget bounds what this arm's offers may cost; changeable while the experiment runs.
	Budget *Budget `json:"budget,omitempty"`
}

// Layer places experiments in a shared hash space so that those in disjoint ranges never
// share a shopper.
type Layer struct {
	Name  string     `json:"name"`
	Range [2]float64 `json:"range"`
}

// Guardrail is a metric that must not get worse by more than Margin (non-inferiority).
type Guardrail struct {
	Metric string `json:"metric"`
	// Margin is the largest tolerated harm, absolute in the metric's unit unless Relative.
	Margin   float64 `json:"margin"`
	Relative bool    `json:"relative,omitempty"`
}

// UnmarshalJSON accepts a bare metric name, with the default margin, or an object.
func (g *Guardrail) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*g = Guardrail{Metric: name, Margin: DefaultGuardrailMargin, Relative: true}
		return nil
	}
	type plain Guardrail
	var p plain
	// As strict as every body (httpapi): exact names, none unknown or repeated.
	if err := jsonv2.Unmarshal(b, &p, jsonv2.RejectUnknownMembers(true)); err != nil {
		return err
	}
	*g = Guardrail(p)
	return nil
}

// DefaultGuardrailMargin is the relative harm tolerated by a guardrail named without a margin.
const DefaultGuardrailMargin = 0.05

// Metrics names what the experiment is judged on (SPEC §6).
type Metrics struct {
	Primary    string      `json:"primary"`
	Secondary  []string    `json:"secondary,omitempty"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
}

// MetricNames are the standard metrics of SPEC §6.
var MetricNames = []string{"cross_sell_rate", "conversion", "revenue", "aov", "offer_cost", "net_revenue", "refund_rate"}

// Definition is the part of an experiment its owners write.
type Definition struct {
	Key            string            `json:"key"`
	Name           string            `json:"name"`
	Hypothesis     string            `json:"hypothesis,omitempty"`
	Seed           string            `json:"seed,omitempty"`
	HashAttribute  string            `json:"hash_attribute,omitempty"`
	Coverage       *float64          `json:"coverage,omitempty"`
	Variants       []Variant         `json:"variants"`
	Targeting      json.RawMessage   `json:"targeting,omitempty"`
	Layer          *Layer            `json:"layer,omitempty"`
	TargetProducts []string          `json:"target_products,omitempty"`
	Metrics        *Metrics          `json:"metrics,omitempty"`
	Forced         map[string]string `json:"forced,omitempty"`
	// FrequencyCap and Budget limit the experiment's offers (SPEC §2a); both may change while
	// it runs.
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	Budget       *Budget       `json:"budget,omitempty"`
	Allocation   *Allocation   `json:"allocation,omitempty"`
}

// Experiment is a definition with the state the server keeps.
type Experiment struct {
	Definition
	Status    Status     `json:"status"`
	Phase     int        `json:"phase"`
	Version   int        `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// Bandit is where a bandit's allocation stands: its period and weights (read-only).
	Bandit *BanditState `json:"bandit,omitempty"`
}

// Normalize fills the defaults of SPEC §3: seed = key, hash attribute shopper_id, coverage 1,
// the first variant as control, target products = the variants' products, primary metric
// cross_sell_rate, a fixed allocation (a bandit's settings take their defaults).
func (d *Definition) Normalize() {
	if d.Seed == "" {
		d.Seed = d.Key
	}
	if d.HashAttribute == "" {
		d.HashAttribute = "shopper_id"
	}
	if d.Coverage == nil {
		one := 1.0
		d.Coverage = &one
	}
	if len(d.Variants) > 0 && !slices.ContainsFunc(d.Variants, func(v Variant) bool { return v.Control }) {
		d.Variants[0].Control = true
	}
	for i := range d.Variants {
		d.Variants[i].Strategy.normalizeSource()
	}
	if len(d.TargetProducts) == 0 {
		for _, v := range d.Variants {
			for _, p := range v.Strategy.Products {
				if !slices.Contains(d.TargetProducts, p) {
					d.TargetProducts = append(d.TargetProducts, p)
				}
			}
		}
	}
	if d.Metrics == nil {
		d.Metrics = &Metrics{}
	}
	if d.Metrics.Primary == "" {
		d.Metrics.Primary = "cross_sell_rate"
	}
	if d.Allocation == nil {
		d.Allocation = &Allocation{Type: AllocationFixed}
	}
	d.Allocation.normalize(d.Metrics.Primary)
	// An empty condition targets everyone; store it as absent so that edits compare equal.
	if t := string(bytes.TrimSpace(d.Targeting)); t == "" || t == "null" || t == "{}" {
		d.Targeting = nil
	}
}

// ControlKey is the key of the control variant.
func (d *Definition) ControlKey() string {
	for _, v := range d.Variants {
		if v.Control {
			return v.Key
		}
	}
	if len(d.Variants) > 0 {
		return d.Variants[0].Key
	}
	return ""
}

// Weights are the variants' weights in order.
func (d *Definition) Weights() []float64 {
	w := make([]float64, len(d.Variants))
	for i, v := range d.Variants {
		w[i] = v.Weight
	}
	return w
}
