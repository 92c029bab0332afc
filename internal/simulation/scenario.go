package simulation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xsell/xsell/client"
)

// Scenario is who the simulated shoppers are, what they buy, and what each strategy truly does
// to them. It is read from YAML (or JSON, which YAML includes); see scripts/demo/scenario.yaml.
type Scenario struct {
	// Seed makes a run reproducible: the same seed, shoppers and experiment give the same
	// assignments and the same events (times aside, which end at the moment of the run).
	Seed uint64 `yaml:"seed"`
	// Shoppers is how many shoppers arrive over the simulated days.
	Shoppers int `yaml:"shoppers"`
	// Days is how many days back the simulation starts; arrivals are spread evenly over them.
	Days int `yaml:"days"`
	// Currency is the ISO 4217 code of every price and order.
	Currency string `yaml:"currency"`
	// Attributes are sent with each assignment: attribute → value → share of shoppers.
	Attributes map[string]map[string]float64 `yaml:"attributes"`
	// Catalog is what the shop sells, with which products go together.
	Catalog []Product `yaml:"catalog"`
	// Shopper is the behaviour of a shopper who gets no offer.
	Shopper Behaviour `yaml:"shopper"`
	// Effects are the true effects per arm, keyed by variant key or, failing that, by strategy
	// type (none, suggestion, bundle, loyalty_points); an arm with neither behaves as control.
	Effects map[string]Effect `yaml:"effects"`
	// Annoyance, when set, plants the harm of showing a shopper too many offers.
	Annoyance *Annoyance `yaml:"annoyance"`
	// Experiment is the body of POST /v1/experiments, created and started by Create; optional
	// when the experiment already runs.
	Experiment map[string]any `yaml:"experiment"`
}

// Product is a catalog entry.
type Product struct {
	SKU string `yaml:"sku"`
	// Price is the unit price in minor units of the scenario's currency.
	Price int64 `yaml:"price"`
	// Weight is how often the product is what a shopper came for, or fills a basket, relative
	// to the others; 0 means it is bought only as a complement.
	Weight float64 `yaml:"weight"`
	// GoesWith is the chance that a shopper buying this product also buys another, by SKU,
	// without any offer: the product affinities a cross-sell builds on.
	GoesWith map[string]float64 `yaml:"goes_with"`
}

// Behaviour is what shoppers do without an offer.
type Behaviour struct {
	// Conversion is the chance that a shopper places an order.
	Conversion float64 `yaml:"conversion"`
	// OrderValue is the log-normal value a shopper fills the basket up to.
	OrderValue LogNormal `yaml:"order_value"`
	// Refund is the chance that an order is refunded later (in full or one line).
	Refund float64 `yaml:"refund"`
	// MaxItems caps the lines of a basket.
	MaxItems int `yaml:"max_items"`
	// Visits is how many visits a shopper makes on their day: number of visits → share of
	// shoppers. Empty: one visit each. Each visit is a session of its own (an assignment,
	// perhaps an order), 20 to 90 minutes after the one before; a visit that would start less
	// than an hour before the end of the simulated days is not made.
	Visits map[int]float64 `yaml:"visits"`
}

// MaxVisits bounds the visits of one simulated shopper.
const MaxVisits = 50

// Annoyance is the planted harm of too many offers: every offer a shopper is shown beyond the
// first After — the one of the visit included — multiplies their chance of ordering on that
// visit and every later one by 1 + Conversion (−0.25: a quarter less for each). An offer is
// shown when the answer tells checkout to show the variant's offer (not when it is capped or
// its budget is spent), on any page; the control shows none.
type Annoyance struct {
	After      int     `yaml:"after"`
	Conversion float64 `yaml:"conversion"`
}

// LogNormal is a log-normal distribution given by its median and the σ of its logarithm.
type LogNormal struct {
	Median int64   `yaml:"median"` // minor units
	Sigma  float64 `yaml:"sigma"`
}

// Effect is what a strategy truly changes, each as a relative change (0.2 = +20%, -0.1 = −10%).
type Effect struct {
	// CrossSell scales the chance of buying an offered product along with the one it goes with.
	CrossSell float64 `yaml:"cross_sell"`
	// Conversion scales the chance of placing an order at all.
	Conversion float64 `yaml:"conversion"`
	// Refund scales the chance that an order is refunded.
	Refund float64 `yaml:"refund"`
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScenario decodes a scenario from YAML or JSON, refusing unknown fields (a typo in an
// effect would otherwise silently plant nothing), and validates it.
func ParseScenario(b []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) defaults() {
	if s.Days == 0 {
		s.Days = 14
	}
	if s.Currency == "" {
		s.Currency = "EUR"
	}
	if s.Shopper.MaxItems == 0 {
		s.Shopper.MaxItems = 8
	}
	if s.Shopper.OrderValue.Sigma == 0 {
		s.Shopper.OrderValue.Sigma = 0.5
	}
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// MaxDays is how far back a simulation may start: the server back-dates assignments at most
// 90 days, and the last day needs room.
const MaxDays = 89

// Validate reports every problem of the scenario at once, each with its field.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	prob := func(field string, p float64) {
		if !(p >= 0 && p <= 1) {
			bad(field, "must be a probability between 0 and 1, got %v", p)
		}
	}
	if s.Shoppers < 1 {
		bad("shoppers", "must be at least 1, got %d", s.Shoppers)
	}
	if s.Days < 1 || s.Days > MaxDays {
		bad("days", "must be between 1 and %d, got %d", MaxDays, s.Days)
	}
	if !currencyCode.MatchString(s.Currency) {
		bad("currency", "must be an upper-case ISO 4217 code such as EUR, got %q", s.Currency)
	}
	for _, name := range sortedKeys(s.Attributes) {
		for v, share := range s.Attributes[name] {
			if !(share > 0) || math.IsInf(share, 0) {
				bad("attributes."+name+"."+v, "must be a positive share, got %v", share)
			}
		}
		if len(s.Attributes[name]) == 0 {
			bad("attributes."+name, "must list at least one value")
		}
	}
	skus := map[string]bool{}
	var weight float64
	for i, p := range s.Catalog {
		f := fmt.Sprintf("catalog[%d]", i)
		switch {
		case p.SKU == "":
			bad(f+".sku", "is required")
		case skus[p.SKU]:
			bad(f+".sku", "%q appears twice", p.SKU)
		}
		skus[p.SKU] = true
		if p.Price <= 0 {
			bad(f+".price", "must be a positive amount in minor units, got %d", p.Price)
		}
		if !(p.Weight >= 0) || math.IsInf(p.Weight, 0) {
			bad(f+".weight", "must be 0 or more, got %v", p.Weight)
		}
		weight += p.Weight
	}
	if len(s.Catalog) == 0 {
		bad("catalog", "must list at least one product")
	} else if weight <= 0 {
		bad("catalog", "at least one product needs a positive weight")
	}
	for i, p := range s.Catalog {
		for _, sku := range sortedKeys(p.GoesWith) {
			f := fmt.Sprintf("catalog[%d].goes_with.%s", i, sku)
			if !skus[sku] {
				bad(f, "is not in the catalog")
			}
			if sku == p.SKU {
				bad(f, "a product cannot go with itself")
			}
			prob(f, p.GoesWith[sku])
		}
	}
	prob("shopper.conversion", s.Shopper.Conversion)
	prob("shopper.refund", s.Shopper.Refund)
	if s.Shopper.OrderValue.Median <= 0 {
		bad("shopper.order_value.median", "must be a positive amount in minor units, got %d", s.Shopper.OrderValue.Median)
	}
	if !(s.Shopper.OrderValue.Sigma > 0 && s.Shopper.OrderValue.Sigma < 5) {
		bad("shopper.order_value.sigma", "must be between 0 and 5, got %v", s.Shopper.OrderValue.Sigma)
	}
	if s.Shopper.MaxItems < 1 || s.Shopper.MaxItems > 100 {
		bad("shopper.max_items", "must be between 1 and 100, got %d", s.Shopper.MaxItems)
	}
	for _, n := range slices.Sorted(maps.Keys(s.Shopper.Visits)) {
		share := s.Shopper.Visits[n]
		if n < 1 || n > MaxVisits {
			bad(fmt.Sprintf("shopper.visits.%d", n), "must be a number of visits between 1 and %d", MaxVisits)
		}
		if !(share > 0) || math.IsInf(share, 0) {
			bad(fmt.Sprintf("shopper.visits.%d", n), "must be a positive share, got %v", share)
		}
	}
	if a := s.Annoyance; a != nil {
		if a.After < 0 {
			bad("annoyance.after", "must be 0 or more offers, got %d", a.After)
		}
		if !(a.Conversion >= -1 && a.Conversion <= 0) {
			bad("annoyance.conversion", "must be a relative change between -1 and 0, got %v", a.Conversion)
		}
	}
	for _, k := range sortedKeys(s.Effects) {
		e := s.Effects[k]
		for name, v := range map[string]float64{"cross_sell": e.CrossSell, "conversion": e.Conversion, "refund": e.Refund} {
			if !(v >= -1) || math.IsInf(v, 0) {
				bad("effects."+k+"."+name, "must be a relative change of -1 (none left) or more, got %v", v)
			}
		}
	}
	if s.Experiment != nil {
		if key, _ := s.Experiment["key"].(string); key == "" {
			bad("experiment.key", "is required when the scenario defines the experiment")
		}
	}
	return errors.Join(errs...)
}

// EffectFor is the planted effect of a variant with the given strategy type: by variant key
// first, then by strategy type, else none.
func (s *Scenario) EffectFor(variant, strategyType string) Effect {
	if e, ok := s.Effects[variant]; ok {
		return e
	}
	return s.Effects[strategyType]
}

// Definition is the scenario's experiment, with its key replaced when key is not empty. A
// field the API does not know is an error here, as the server would make it.
func (s *Scenario) Definition(key string) (client.Definition, error) {
	var def client.Definition
	if s.Experiment == nil {
		return def, errors.New("the scenario defines no experiment to create")
	}
	body := make(map[string]any, len(s.Experiment))
	for k, v := range s.Experiment {
		body[k] = v
	}
	if key != "" {
		body["key"] = key
	}
	b, err := json.Marshal(body)
	if err != nil {
		return def, fmt.Errorf("experiment: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&def); err != nil {
		return def, fmt.Errorf("experiment: %w", err)
	}
	return def, nil
}

// ExperimentKey is the key of the scenario's experiment, or "" when it defines none.
func (s *Scenario) ExperimentKey() string {
	k, _ := s.Experiment["key"].(string)
	return strings.TrimSpace(k)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
