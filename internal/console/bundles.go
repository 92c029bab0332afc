package console

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/results"
)

// bundlesView is the data of the bundle ideas page.
type bundlesView struct {
	Snapshot *results.AffinitySnapshot
	Pending  *time.Time
	Filter   bundleFilter
	Pairs    []analysis.Pair
	Total    int // pairs stored, before the filters
	Request  analysis.AffinityRequest
}

// bundleFilter is the thresholds of the page, as typed and as numbers.
type bundleFilter struct {
	MinOrders, MinSupport, MinConfidence, MinLift string
	Problems                                      map[string]string

	orders                    int64
	support, confidence, lift float64
}

// Err returns the problem of one threshold, for the "fielderror" template.
func (f bundleFilter) Err(field string) *fieldErr {
	if m, ok := f.Problems[field]; ok {
		return &fieldErr{ID: fieldID(field), Messages: []string{m}}
	}
	return nil
}

// parseBundleFilter reads the thresholds: orders a whole number, support and confidence in
// percent, lift a ratio; empty means no threshold.
func parseBundleFilter(get func(string) string) bundleFilter {
	f := bundleFilter{MinOrders: get("min_orders"), MinSupport: get("min_support"), MinConfidence: get("min_confidence"),
		MinLift: get("min_lift"), Problems: map[string]string{}}
	if f.MinOrders != "" {
		n, err := strconv.ParseInt(f.MinOrders, 10, 64)
		if err != nil || n < 0 {
			f.Problems["min_orders"] = "must be a whole number of orders, such as 20"
		}
		f.orders = n
	}
	num := func(field, s string, dst *float64, scale float64) {
		if s == "" {
			return
		}
		x, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || x < 0 {
			f.Problems[field] = "must be a number of at least 0"
			return
		}
		*dst = x / scale
	}
	num("min_support", f.MinSupport, &f.support, 100)
	num("min_confidence", f.MinConfidence, &f.confidence, 100)
	num("min_lift", f.MinLift, &f.lift, 1)
	return f
}

// keep reports whether a pair passes the thresholds; confidence counts in either direction.
func (f bundleFilter) keep(p analysis.Pair) bool {
	return p.Orders >= f.orders && p.Support >= f.support && max(p.ConfidenceAB, p.ConfidenceBA) >= f.confidence && p.Lift >= f.lift
}

func (c *Console) bundles(q *request) error {
	store := c.deps.Results.Store()
	snap, err := store.LatestAffinity(q.ctx())
	if err != nil {
		return err
	}
	pending, err := store.PendingAffinity(q.ctx())
	if err != nil {
		return err
	}
	v := bundlesView{Snapshot: snap, Pending: pending, Filter: parseBundleFilter(q.r.URL.Query().Get), Request: results.AffinityRequest}
	status := http.StatusOK
	if len(v.Filter.Problems) > 0 {
		status = http.StatusBadRequest
	} else if snap != nil && snap.Result != nil {
		v.Total = len(snap.Result.Pairs)
		for _, p := range snap.Result.Pairs {
			if v.Filter.keep(p) {
				v.Pairs = append(v.Pairs, p)
			}
		}
	}
	vw := view{Title: "Bundle ideas", Nav: "bundles", Data: v}
	if pending != nil || snap == nil {
		vw.Refresh = 3
	}
	c.renderView(q, status, "bundles", vw)
	return nil
}

func (c *Console) refreshBundles(q *request) error {
	if err := c.deps.Results.RefreshAffinity(q.ctx(), q.sess.KeyName); err != nil {
		return err
	}
	return q.redirect(Base + "bundles?done=ideas")
}

var notSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slug makes a lowercase key part of a SKU.
func slug(s string) string {
	return strings.Trim(notSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// bundleForm is the new-experiment form for a bundle idea: offer one product to the buyers of
// the other, against no offer, as a bundle with a discount and as bonus points.
func bundleForm(trigger, offer string) *expForm {
	key := "xsell-" + slug(trigger) + "-" + slug(offer)
	if len(key) > 64 {
		key = strings.TrimRight(key[:64], "-")
	}
	f := newForm()
	f.Key = key
	f.Name = "Offer " + offer + " to buyers of " + trigger
	f.Hypothesis = "Shoppers who buy " + trigger + " take " + offer + " more often with a bundle discount or bonus points than with no offer, net of what the offer costs."
	f.TargetProducts = offer
	f.Variants = []variantForm{
		{Key: "control", Name: "No offer", Weight: "0.34", Type: string(experiments.StrategyNone)},
		{Key: "bundle10", Name: "Bundle: 10% off " + offer, Weight: "0.33", Type: string(experiments.StrategyBundle),
			Products: offer, TriggerProducts: trigger, DiscountPercent: "10", Timing: string(experiments.TimingCart)},
		{Key: "points100", Name: "100 bonus points for " + offer, Weight: "0.33", Type: string(experiments.StrategyLoyaltyPoints),
			Products: offer, TriggerProducts: trigger, BonusPoints: "100", Timing: string(experiments.TimingCheckout)},
	}
	f.Secondary = []string{"conversion", "revenue", "offer_cost", "net_revenue"}
	for i := range f.Guardrails {
		if f.Guardrails[i].Metric == "refund_rate" {
			f.Guardrails[i].On = true
		}
	}
	return f
}
