package experiments

import (
	"errors"
	"strconv"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/money"
)

// Caps and budgets of an experiment's offers (SPEC §2a): how often a shopper may be given an
// offer, and how much the offers may cost. docs/offers.md explains the rules.

// Window is the rolling window of a frequency cap or a per-shopper limit.
type Window string

// The periods a cap or a limit may count over.
const (
	PeriodDay   Window = "24h"
	PeriodWeek  Window = "7d"
	PeriodMonth Window = "30d"
)

// Windows are the windows, shortest first.
var Windows = []Window{PeriodDay, PeriodWeek, PeriodMonth}

// index is the window's place in Windows; an unknown period counts as the longest.
func (p Window) index() int {
	switch p {
	case PeriodDay:
		return 0
	case PeriodWeek:
		return 1
	}
	return 2
}

// Duration is the length of the window; zero for an unknown period.
func (p Window) Duration() time.Duration {
	switch p {
	case PeriodDay:
		return 24 * time.Hour
	case PeriodWeek:
		return 7 * 24 * time.Hour
	case PeriodMonth:
		return 30 * 24 * time.Hour
	}
	return 0
}

// Limits of caps and budgets.
const (
	// MaxCapOffers bounds a frequency cap: the counters keep each counted opportunity in the
	// window, so the cap bounds their memory per shopper.
	MaxCapOffers = 1000
	// MaxBudgetPoints bounds a points budget.
	MaxBudgetPoints int64 = 1_000_000_000_000
	// MaxAcceptedOffers bounds a per-shopper limit of accepted offers.
	MaxAcceptedOffers = 1000
)

// FrequencyCap limits how often a shopper is given an offer: at most Offers opportunities in
// any window of length Per. On an experiment it counts the shopper's answers in every arm; on
// a variant it is part of that arm's treatment (docs/offers.md).
type FrequencyCap struct {
	Offers int    `json:"offers"`
	Per    Window `json:"per"`
}

// window is the cap's window, zero for no cap.
func (c *FrequencyCap) window() time.Duration {
	if c == nil {
		return 0
	}
	return c.Per.Duration()
}

// Amount is money: integer minor units of an ISO 4217 currency.
type Amount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Budget bounds what an experiment's, or one variant's, offers may cost: the discounts of the
// orders they won and the bonus points credited for them, in total and per shopper.
type Budget struct {
	Discount   *Amount       `json:"discount,omitempty"`
	Points     *int64        `json:"points,omitempty"`
	PerShopper *ShopperLimit `json:"per_shopper,omitempty"`
}

// ShopperLimit bounds one shopper's take of a budget over a rolling period: the offers they
// accept (orders with a discount or a bonus) and the discount they get, in the budget's
// discount currency.
type ShopperLimit struct {
	AcceptedOffers *int   `json:"accepted_offers,omitempty"`
	Discount       *int64 `json:"discount,omitempty"`
	Per            Window `json:"per"`
}

// Check reports the cap's problems at path.
func (c *FrequencyCap) Check(p *apperr.Problems, path string) {
	if c.Offers < 1 || c.Offers > MaxCapOffers {
		p.Add(path+".offers", "out_of_range", "must be a whole number in [1, %d], got %d", MaxCapOffers, c.Offers)
	}
	checkPeriod(p, path+".per", c.Per)
}

func checkPeriod(p *apperr.Problems, path string, per Window) {
	switch {
	case per == "":
		p.Add(path, "required", "must be one of 24h, 7d, 30d")
	case per.Duration() == 0:
		p.Add(path, "not_allowed", "must be one of 24h, 7d, 30d, got %q", per)
	}
}

// budgetScope is what a budget may be spent on: the strategies of the variants it covers.
type budgetScope struct {
	discounts bool     // a bundle is in scope
	points    bool     // a loyalty_points strategy is in scope
	offers    bool     // some variant in scope makes an offer
	currency  []string // currencies of the fixed-amount bundles in scope
}

func scopeOf(vs ...Variant) budgetScope {
	var s budgetScope
	for _, v := range vs {
		switch v.Strategy.Type {
		case StrategyBundle:
			s.discounts, s.offers = true, true
			if v.Strategy.Currency != "" {
				s.currency = append(s.currency, v.Strategy.Currency)
			}
		case StrategyLoyaltyPoints:
			s.points, s.offers = true, true
		case StrategySuggestion:
			s.offers = true
		}
	}
	return s
}

// validate checks a budget against the variants it covers: a discount budget needs a bundle
// (nothing else gives discounts) in the bundles' currency, a points budget a loyalty_points
// strategy.
func (b *Budget) validate(p *apperr.Problems, path string, scope budgetScope) {
	if b.Discount == nil && b.Points == nil && b.PerShopper == nil {
		p.Add(path, "required", "give discount, points or per_shopper")
		return
	}
	if !scope.offers {
		p.Add(path, "not_allowed", "covers no variant that makes an offer: nothing could spend it")
		return
	}
	if d := b.Discount; d != nil {
		if !scope.discounts {
			p.Add(path+".discount", "not_allowed", "covers no bundle: only bundles give discounts")
		}
		if d.Amount <= 0 || d.Amount > money.MaxAmount {
			p.Add(path+".discount.amount", "out_of_range", "must be a positive amount in minor units, at most %d, got %d", money.MaxAmount, d.Amount)
		}
		if checkCurrency(p, path+".discount.currency", d.Currency) {
			for _, c := range scope.currency {
				if c != d.Currency {
					p.Add(path+".discount.currency", "currency_mismatch", "is %s but a bundle it covers gives its discount in %s", d.Currency, c)
					break
				}
			}
		}
	}
	if n := b.Points; n != nil {
		if !scope.points {
			p.Add(path+".points", "not_allowed", "covers no loyalty_points strategy: only they credit bonus points")
		}
		if *n <= 0 || *n > MaxBudgetPoints {
			p.Add(path+".points", "out_of_range", "must be a whole number of points in [1, %d], got %d", MaxBudgetPoints, *n)
		}
	}
	if l := b.PerShopper; l != nil {
		l.validate(p, path+".per_shopper", b.Discount)
	}
}

func (l *ShopperLimit) validate(p *apperr.Problems, path string, discount *Amount) {
	if l.AcceptedOffers == nil && l.Discount == nil {
		p.Add(path, "required", "give accepted_offers or discount")
	}
	if n := l.AcceptedOffers; n != nil && (*n < 1 || *n > MaxAcceptedOffers) {
		p.Add(path+".accepted_offers", "out_of_range", "must be a whole number in [1, %d], got %d", MaxAcceptedOffers, *n)
	}
	if d := l.Discount; d != nil {
		switch {
		case *d <= 0 || *d > money.MaxAmount:
			p.Add(path+".discount", "out_of_range", "must be a positive amount in minor units, at most %d, got %d", money.MaxAmount, *d)
		case discount == nil:
			p.Add(path+".discount", "required_with", "needs the budget's discount, whose currency it is counted in")
		}
	}
	checkPeriod(p, path+".per", l.Per)
}

// checkCurrency reports a currency that is missing or not ISO 4217; true when it is fine.
func checkCurrency(p *apperr.Problems, path, code string) bool {
	switch _, err := money.Parse(code); {
	case code == "":
		p.Add(path, "required", "needs an ISO 4217 currency such as EUR")
	case errors.Is(err, money.ErrFormat):
		p.Add(path, "invalid_format", "%s", money.ErrFormat)
	case err != nil:
		p.Add(path, "not_allowed", "%q %s", code, money.ErrUnknown)
	default:
		return true
	}
	return false
}

// validateLimits checks the experiment's and its variants' caps and budgets.
func (d *Definition) validateLimits(p *apperr.Problems) {
	if d.FrequencyCap != nil {
		d.FrequencyCap.Check(p, "frequency_cap")
	}
	if d.Budget != nil {
		d.Budget.validate(p, "budget", scopeOf(d.Variants...))
	}
	for i, v := range d.Variants {
		path := "variants[" + strconv.Itoa(i) + "]"
		if v.FrequencyCap != nil {
			if v.Control {
				p.Add(path+".frequency_cap", "not_allowed", "the control makes no offer to cap; cap the experiment to cap every arm alike")
			} else {
				v.FrequencyCap.Check(p, path+".frequency_cap")
			}
		}
		if v.Budget != nil {
			v.Budget.validate(p, path+".budget", scopeOf(v))
		}
	}
}

// Limited reports whether the experiment has a cap, a budget or a per-shopper limit anywhere.
func (d *Definition) Limited() bool {
	if d.FrequencyCap != nil || d.Budget != nil {
		return true
	}
	for _, v := range d.Variants {
		if v.FrequencyCap != nil || v.Budget != nil {
			return true
		}
	}
	return false
}
