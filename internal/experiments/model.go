package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/money"
	"github.com/xsell/xsell/internal/validate"
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
	Type             StrategyType `json:"type"`
	Products         []string     `json:"products,omitempty"`
	DiscountPercent  *float64     `json:"discount_percent,omitempty"`
	DiscountAmount   *int64       `json:"discount_amount,omitempty"` // minor units of Currency
	Currency         string       `json:"currency,omitempty"`        // ISO 4217, with DiscountAmount
	BonusPoints      *int64       `json:"bonus_points,omitempty"`
	PointsMultiplier *float64     `json:"points_multiplier,omitempty"`
	Timing           Timing       `json:"timing,omitempty"`
	TriggerProducts  []string     `json:"trigger_products,omitempty"`
}

// Variant is one arm of an experiment.
type Variant struct {
	Key      string   `json:"key"`
	Name     string   `json:"name"`
	Weight   float64  `json:"weight"`
	Control  bool     `json:"control,omitempty"`
	Strategy Strategy `json:"strategy"`
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
	if err := json.Unmarshal(b, &p); err != nil {
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
}

// Limits of a definition.
const (
	MinVariants     = 2
	MaxVariants     = 20
	WeightTolerance = 0.001
	MaxNameLen      = 200
	MaxTextLen      = 5000
	MaxSKULen       = validate.MaxSKU
	MaxProducts     = 200
	MaxForced       = 1000
	// MaxTargetingBytes bounds a targeting condition as sent: every assignment evaluates it.
	MaxTargetingBytes = 16 << 10
)

var (
	keyPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	attrPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)
)

// Normalize fills the defaults of SPEC §3: seed = key, hash attribute shopper_id, coverage 1,
// the first variant as control, target products = the variants' products, primary metric
// cross_sell_rate.
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
	// An empty condition targets everyone; store it as absent so that edits compare equal.
	if t := string(bytes.TrimSpace(d.Targeting)); t == "" || t == "null" || t == "{}" {
		d.Targeting = nil
	}
}

// Validate reports every problem of a normalized definition with its JSON path.
func (d *Definition) Validate() error {
	var p apperr.Problems
	if !keyPattern.MatchString(d.Key) {
		p.Add("key", "invalid_format", "must match ^[a-z0-9][a-z0-9_-]{0,63}$ (lowercase slug), got %q", d.Key)
	}
	checkText(&p, "name", d.Name, MaxNameLen, true)
	checkText(&p, "hypothesis", d.Hypothesis, MaxTextLen, false)
	checkText(&p, "seed", d.Seed, MaxNameLen, true)
	if !attrPattern.MatchString(d.HashAttribute) {
		p.Add("hash_attribute", "invalid_format", "must be an attribute name (letters, digits, _ . -), got %q", d.HashAttribute)
	}
	if c := *d.Coverage; !(c > 0 && c <= 1) {
		p.Add("coverage", "out_of_range", "must be in (0, 1], got %v", c)
	}
	d.validateVariants(&p)
	if len(d.Targeting) > MaxTargetingBytes {
		p.Add("targeting", "too_large", "must take at most %d bytes as JSON, not %d", MaxTargetingBytes, len(d.Targeting))
	} else if len(d.Targeting) > 0 {
		if _, err := ParseCondition(d.Targeting); err != nil {
			if ce, ok := err.(*ConditionError); ok {
				p.Add(ce.Path, "invalid_condition", "%s", ce.Message)
			} else {
				p.Add("targeting", "invalid_condition", "%v", err)
			}
		}
	}
	if l := d.Layer; l != nil {
		checkText(&p, "layer.name", l.Name, 64, true)
		if !(l.Range[0] >= 0 && l.Range[0] < l.Range[1] && l.Range[1] <= 1) {
			p.Add("layer.range", "out_of_range", "must be [start, end) with 0 ≤ start < end ≤ 1, got %v", l.Range)
		}
	}
	checkSKUs(&p, "target_products", d.TargetProducts, false)
	d.validateMetrics(&p)
	if len(d.Forced) > MaxForced {
		p.Add("forced", "too_many", "at most %d forced shoppers, got %d", MaxForced, len(d.Forced))
	}
	for _, shopper := range sortedKeys(d.Forced) {
		if !validate.ShopperID(&p, "forced."+validate.PathName(shopper), shopper) {
			continue
		}
		if !slices.ContainsFunc(d.Variants, func(v Variant) bool { return v.Key == d.Forced[shopper] }) {
			p.Add("forced."+shopper, "unknown_variant", "no variant with key %q", d.Forced[shopper])
		}
	}
	return p.Err()
}

func (d *Definition) validateVariants(p *apperr.Problems) {
	n := len(d.Variants)
	if n < MinVariants || n > MaxVariants {
		p.Add("variants", "wrong_count", "must have %d to %d variants, got %d", MinVariants, MaxVariants, n)
	}
	seen := map[string]int{}
	sum, controls := 0.0, 0
	for i, v := range d.Variants {
		path := "variants[" + strconv.Itoa(i) + "]"
		if !keyPattern.MatchString(v.Key) {
			p.Add(path+".key", "invalid_format", "must match ^[a-z0-9][a-z0-9_-]{0,63}$, got %q", v.Key)
		} else if j, dup := seen[v.Key]; dup {
			p.Add(path+".key", "duplicate", "%q is also the key of variants[%d]", v.Key, j)
		} else {
			seen[v.Key] = i
		}
		checkText(p, path+".name", v.Name, MaxNameLen, true)
		if !(v.Weight >= 0 && v.Weight <= 1) {
			p.Add(path+".weight", "out_of_range", "must be in [0, 1], got %v", v.Weight)
		}
		sum += v.Weight
		if v.Control {
			controls++
		}
		v.Strategy.validate(p, path+".strategy")
	}
	if n >= MinVariants && math.Abs(sum-1) > WeightTolerance {
		p.Add("variants", "weights_sum", "weights must sum to 1 ± %v, they sum to %v", WeightTolerance, sum)
	}
	if controls > 1 {
		p.Add("variants", "controls", "exactly one variant may say \"control\": true, %d do", controls)
	}
}

func (s *Strategy) validate(p *apperr.Problems, path string) {
	forbid := func(name string, set bool) {
		if set {
			p.Add(path+"."+name, "not_allowed", "is not a parameter of a %q strategy", s.Type)
		}
	}
	switch s.Type {
	case StrategyNone:
		forbid("products", len(s.Products) > 0)
		forbid("timing", s.Timing != "")
		forbid("trigger_products", len(s.TriggerProducts) > 0)
	case StrategySuggestion, StrategyBundle, StrategyLoyaltyPoints:
		if len(s.Products) == 0 {
			p.Add(path+".products", "required", "a %q strategy needs at least one product", s.Type)
		}
		checkSKUs(p, path+".products", s.Products, false)
		checkSKUs(p, path+".trigger_products", s.TriggerProducts, false)
		switch s.Timing {
		case TimingProductPage, TimingCart, TimingCheckout, TimingPostPurchase:
		case "":
			p.Add(path+".timing", "required", "must be one of product_page, cart, checkout, post_purchase")
		default:
			p.Add(path+".timing", "not_allowed", "must be one of product_page, cart, checkout, post_purchase, got %q", s.Timing)
		}
	case "":
		p.Add(path+".type", "required", "must be one of none, suggestion, bundle, loyalty_points")
		return
	default:
		p.Add(path+".type", "not_allowed", "must be one of none, suggestion, bundle, loyalty_points, got %q", s.Type)
		return
	}
	bundle, loyalty := s.Type == StrategyBundle, s.Type == StrategyLoyaltyPoints
	if !bundle {
		forbid("discount_percent", s.DiscountPercent != nil)
		forbid("discount_amount", s.DiscountAmount != nil)
		forbid("currency", s.Currency != "")
	}
	if !loyalty {
		forbid("bonus_points", s.BonusPoints != nil)
		forbid("points_multiplier", s.PointsMultiplier != nil)
	}
	if bundle {
		switch {
		case s.DiscountPercent == nil && s.DiscountAmount == nil:
			p.Add(path+".discount_percent", "required", "a bundle needs discount_percent or discount_amount")
		case s.DiscountPercent != nil && s.DiscountAmount != nil:
			p.Add(path+".discount_amount", "exclusive", "give discount_percent or discount_amount, not both")
		case s.DiscountPercent != nil:
			if x := *s.DiscountPercent; !(x > 0 && x <= 90) {
				p.Add(path+".discount_percent", "out_of_range", "must be in (0, 90], got %v", x)
			}
			forbid("currency", s.Currency != "")
		default:
			if *s.DiscountAmount <= 0 {
				p.Add(path+".discount_amount", "out_of_range", "must be a positive amount in minor units, got %d", *s.DiscountAmount)
			}
			switch _, err := money.Parse(s.Currency); {
			case s.Currency == "":
				p.Add(path+".currency", "required", "discount_amount needs an ISO 4217 currency such as EUR")
			case errors.Is(err, money.ErrFormat):
				p.Add(path+".currency", "invalid_format", "%s", money.ErrFormat)
			case err != nil:
				p.Add(path+".currency", "not_allowed", "%q %s", s.Currency, money.ErrUnknown)
			}
		}
	}
	if loyalty {
		switch {
		case s.BonusPoints == nil && s.PointsMultiplier == nil:
			p.Add(path+".bonus_points", "required", "a loyalty_points strategy needs bonus_points or points_multiplier")
		case s.BonusPoints != nil && s.PointsMultiplier != nil:
			p.Add(path+".points_multiplier", "exclusive", "give bonus_points or points_multiplier, not both")
		case s.BonusPoints != nil:
			if *s.BonusPoints <= 0 || *s.BonusPoints > 1_000_000 {
				p.Add(path+".bonus_points", "out_of_range", "must be a whole number in [1, 1000000], got %d", *s.BonusPoints)
			}
		default:
			if x := *s.PointsMultiplier; !(x > 1 && x <= 100) {
				p.Add(path+".points_multiplier", "out_of_range", "must be in (1, 100], got %v", x)
			}
		}
	}
}

func (d *Definition) validateMetrics(p *apperr.Problems) {
	m := d.Metrics
	known := func(path, name string) {
		if !slices.Contains(MetricNames, name) {
			p.Add(path, "unknown_metric", "unknown metric %q (known: %v)", name, MetricNames)
		}
	}
	known("metrics.primary", m.Primary)
	for i, s := range m.Secondary {
		known(fmt.Sprintf("metrics.secondary[%d]", i), s)
	}
	for i, g := range m.Guardrails {
		path := fmt.Sprintf("metrics.guardrails[%d]", i)
		known(path+".metric", g.Metric)
		if !(g.Margin > 0) || math.IsInf(g.Margin, 0) {
			p.Add(path+".margin", "out_of_range", "must be a positive number, got %v", g.Margin)
		}
	}
}

func checkText(p *apperr.Problems, path, s string, max int, required bool) {
	switch {
	case required && s == "":
		p.Add(path, "required", "is required")
	case !validate.Text(p, path, s):
	case len(s) > max:
		p.Add(path, "too_long", "must be at most %d bytes, got %d", max, len(s))
	}
}

func checkSKUs(p *apperr.Problems, path string, skus []string, required bool) {
	if required && len(skus) == 0 {
		p.Add(path, "required", "needs at least one product")
	}
	if len(skus) > MaxProducts {
		p.Add(path, "too_many", "at most %d products, got %d", MaxProducts, len(skus))
		return
	}
	for i, s := range skus {
		validate.SKU(p, fmt.Sprintf("%s[%d]", path, i), s)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
