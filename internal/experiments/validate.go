package experiments

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/targeting"
	"github.com/xsell/xsell/internal/validate"
)

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
	checkTargeting(&p, d.Targeting)
	if l := d.Layer; l != nil {
		checkText(&p, "layer.name", l.Name, 64, true)
		if !(l.Range[0] >= 0 && l.Range[0] < l.Range[1] && l.Range[1] <= 1) {
			p.Add("layer.range", "out_of_range", "must be [start, end) with 0 ≤ start < end ≤ 1, got %v", l.Range)
		}
	}
	checkSKUs(&p, "target_products", d.TargetProducts, false)
	d.validateMetrics(&p)
	d.validateLimits(&p)
	if d.Allocation != nil {
		d.Allocation.validate(&p, d.Variants)
	}
	if len(d.Forced) > MaxForced {
		p.Add("forced", "too_many", "at most %d forced shoppers, got %d", MaxForced, len(d.Forced))
	}
	for _, shopper := range slices.Sorted(maps.Keys(d.Forced)) {
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

// validate reports the problems of a strategy: its type, the parameters the type takes, and
// those it does not.
func (s *Strategy) validate(p *apperr.Problems, path string) {
	forbid := func(name string, set bool) {
		if set {
			p.Add(path+"."+name, "not_allowed", "is not a parameter of a %q strategy", s.Type)
		}
	}
	switch s.Type {
	case StrategyNone:
		forbid("source", s.Source != "")
		forbid("max_products", s.MaxProducts != nil)
		forbid("min_lift", s.MinLift != nil)
		forbid("products", len(s.Products) > 0)
		forbid("timing", s.Timing != "")
		forbid("trigger_products", len(s.TriggerProducts) > 0)
	case StrategySuggestion, StrategyBundle, StrategyLoyaltyPoints:
		s.validateSource(p, path)
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
	switch s.Type {
	case StrategyBundle:
		s.validateBundle(p, path)
	default:
		forbid("discount_percent", s.DiscountPercent != nil)
		forbid("discount_amount", s.DiscountAmount != nil)
		forbid("currency", s.Currency != "")
	}
	switch s.Type {
	case StrategyLoyaltyPoints:
		s.validateLoyalty(p, path)
	default:
		forbid("bonus_points", s.BonusPoints != nil)
		forbid("points_multiplier", s.PointsMultiplier != nil)
	}
}

// validateBundle checks the discount of a bundle: a percentage, or an amount with its currency.
func (s *Strategy) validateBundle(p *apperr.Problems, path string) {
	percent, ok := exactlyOne(p, path, "a bundle", "discount_percent", s.DiscountPercent != nil, "discount_amount", s.DiscountAmount != nil)
	switch {
	case !ok:
	case percent:
		if x := *s.DiscountPercent; !(x > 0 && x <= 90) {
			p.Add(path+".discount_percent", "out_of_range", "must be in (0, 90], got %v", x)
		}
		if s.Currency != "" {
			p.Add(path+".currency", "not_allowed", "goes with discount_amount, not discount_percent")
		}
	default:
		if *s.DiscountAmount <= 0 {
			p.Add(path+".discount_amount", "out_of_range", "must be a positive amount in minor units, got %d", *s.DiscountAmount)
		}
		checkCurrency(p, path+".currency", s.Currency)
	}
}

// validateLoyalty checks the reward of a loyalty_points strategy: bonus points or a multiplier.
func (s *Strategy) validateLoyalty(p *apperr.Problems, path string) {
	bonus, ok := exactlyOne(p, path, "a loyalty_points strategy", "bonus_points", s.BonusPoints != nil, "points_multiplier", s.PointsMultiplier != nil)
	switch {
	case !ok:
	case bonus:
		if *s.BonusPoints <= 0 || *s.BonusPoints > 1_000_000 {
			p.Add(path+".bonus_points", "out_of_range", "must be a whole number in [1, 1000000], got %d", *s.BonusPoints)
		}
	default:
		if x := *s.PointsMultiplier; !(x > 1 && x <= 100) {
			p.Add(path+".points_multiplier", "out_of_range", "must be in (1, 100], got %v", x)
		}
	}
}

// exactlyOne checks that what (a strategy) has exactly one of the parameters a and b; first
// says which it has, when ok.
func exactlyOne(p *apperr.Problems, path, what, a string, hasA bool, b string, hasB bool) (first, ok bool) {
	switch {
	case !hasA && !hasB:
		p.Add(path+"."+a, "required", "%s needs %s or %s", what, a, b)
	case hasA && hasB:
		p.Add(path+"."+b, "exclusive", "give %s or %s, not both", a, b)
	default:
		return hasA, true
	}
	return false, false
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

// checkTargeting reports every problem of a targeting condition, at its path under targeting.
func checkTargeting(p *apperr.Problems, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	if len(raw) > MaxTargetingBytes {
		p.Add("targeting", "too_large", "must take at most %d bytes as JSON, not %d", MaxTargetingBytes, len(raw))
		return
	}
	_, err := targeting.Parse(raw)
	var te *targeting.Error
	if !errors.As(err, &te) {
		if err != nil {
			p.Add("targeting", targeting.CodeInvalid, "%v", err)
		}
		return
	}
	for _, problem := range te.Problems {
		path := "targeting"
		if problem.Path != "" {
			path += "." + problem.Path
		}
		p.Add(path, problem.Code, "%s", problem.Message)
	}
}
