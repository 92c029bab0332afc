package simulation

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/xsell/xsell/client"
)

// The event types of SPEC §5.
const (
	offerViewed    = "offer_viewed"
	offerAccepted  = "offer_accepted"
	orderCompleted = "order_completed"
	orderRefunded  = "order_refunded"
)

// Strategy, Assignment, Event and Item are the public client's: the simulator is a checkout
// like any other.
type (
	Strategy   = client.Strategy
	Assignment = client.Assignment
	Event      = client.Event
	Item       = client.Item
)

// model is a scenario prepared for drawing shoppers: everything that does not depend on the
// shopper is worked out once.
type model struct {
	sc         *Scenario
	experiment string
	prefix     string
	start      time.Time // first possible arrival
	span       time.Duration
	now        time.Time // nothing may happen after it
	prices     map[string]int64
	goesWith   map[string][]affinity // sorted by SKU, so that draws do not depend on map order
	// primary and filler products: the catalog without the experiment's target products, which
	// enter a basket only as complements, so that the planted effect is all of the difference.
	pick    []string
	pickCum []float64
	attrs   []attribute
	// visits and visitsCum are the numbers of visits a shopper may make and their cumulative
	// shares; empty: one each.
	visits    []int
	visitsCum []float64
	// targets are the SKUs whose purchase counts as a cross-sell, for the summary.
	targets []string
}

type affinity struct {
	sku string
	p   float64
}

type attribute struct {
	name   string
	values []string
	cum    []float64
}

// shopper is one simulated shopper before assignment.
type shopper struct {
	index   int
	id      string
	arrival time.Time
	attrs   map[string]any
	rng     *rand.Rand
	// primary is the product the shopper came for: the context of their assignment, for
	// strategies that choose their products from it (learned complements).
	primary string
	// visits is how many visits the shopper makes; visit (0-based) is the one under way, and
	// arrival its start. shown is how many offers they have been shown so far.
	visits, visit, shown int
}

// tag names the visit under way in event and order ids: the shopper id on the first visit,
// so that a one-visit scenario's ids are what they always were.
func (s *shopper) tag() string {
	if s.visit == 0 {
		return s.id
	}
	return fmt.Sprintf("%s-v%d", s.id, s.visit+1)
}

// next moves the shopper to their next visit, 20 to 90 minutes after the last began; false
// when they make no more, or it would start after end.
func (s *shopper) next(end time.Time) bool {
	if s.visit+1 >= s.visits {
		return false
	}
	at := s.arrival.Add(between(s.rng, 20*time.Minute, 90*time.Minute))
	if !at.Before(end) {
		return false
	}
	s.visit++
	s.arrival = at
	return true
}

// outcome is what one shopper sent, for the summary.
type outcome struct {
	variant   string // "" when not in the experiment
	visits    int64
	shown     int64 // visits whose answer showed the variant's offer
	heldBack  int64 // visits whose answer held the offer back: capped or budget spent
	exhausted int64 // of them, for a spent budget
	// charged is what the orders' discounts spend of a budget once the refunds sent with
	// them gave back their share (docs/offers.md's rule).
	charged   int64
	viewed    int64
	accepted  int64
	orders    int64
	crossSell int64 // orders holding a target product
	revenue   int64
	discount  int64
	refunds   int64
	refunded  int64
}

func newModel(sc *Scenario, experiment, prefix string, targets []string, now time.Time) *model {
	m := &model{
		sc: sc, experiment: experiment, prefix: prefix, now: now,
		prices: map[string]int64{}, goesWith: map[string][]affinity{}, targets: targets,
	}
	// Arrivals end an hour before now, so that every session (at most ~45 minutes) is over.
	end := now.Add(-time.Hour)
	m.span = time.Duration(sc.Days) * 24 * time.Hour
	m.start = end.Add(-m.span)
	total := 0.0
	for _, p := range sc.Catalog {
		m.prices[p.SKU] = p.Price
		for _, sku := range sortedKeys(p.GoesWith) {
			m.goesWith[p.SKU] = append(m.goesWith[p.SKU], affinity{sku, p.GoesWith[sku]})
		}
		if p.Weight > 0 && !slices.Contains(targets, p.SKU) {
			total += p.Weight
			m.pick = append(m.pick, p.SKU)
			m.pickCum = append(m.pickCum, total)
		}
	}
	cum := 0.0
	for _, n := range slices.Sorted(maps.Keys(sc.Shopper.Visits)) {
		cum += sc.Shopper.Visits[n]
		m.visits = append(m.visits, n)
		m.visitsCum = append(m.visitsCum, cum)
	}
	for _, name := range sortedKeys(sc.Attributes) {
		a := attribute{name: name}
		t := 0.0
		for _, v := range sortedKeys(sc.Attributes[name]) {
			t += sc.Attributes[name][v]
			a.values = append(a.values, v)
			a.cum = append(a.cum, t)
		}
		m.attrs = append(m.attrs, a)
	}
	return m
}

// shopper draws shopper i: who they are and when they arrive. Shoppers are spread evenly over
// the days in index order; the time within the day is random.
func (m *model) shopper(i int) *shopper {
	rng := rand.New(rand.NewPCG(m.sc.Seed, uint64(i)))
	day := time.Duration(i * m.sc.Days / m.sc.Shoppers)
	at := m.start.Add(day*24*time.Hour + time.Duration(rng.Int64N(int64(24*time.Hour))))
	s := &shopper{index: i, id: fmt.Sprintf("%s-%06d", m.prefix, i), arrival: at.Truncate(time.Millisecond), rng: rng}
	s.attrs = make(map[string]any, len(m.attrs))
	for _, a := range m.attrs {
		s.attrs[a.name] = a.values[pickIndex(a.cum, rng)]
	}
	s.primary = m.pick[pickIndex(m.pickCum, rng)]
	s.visits = 1
	if len(m.visits) > 0 {
		s.visits = m.visits[pickIndex(m.visitsCum, rng)]
	}
	return s
}

// end is when the last visit may start: an hour before now, so that every session (at most
// ~45 minutes) is over.
func (m *model) end() time.Time { return m.start.Add(m.span) }

// dayOf is the simulated day (0-based) of shopper i.
func (m *model) dayOf(i int) int { return i * m.sc.Days / m.sc.Shoppers }

// pickIndex draws an index with probability proportional to the steps of cum.
func pickIndex(cum []float64, rng *rand.Rand) int {
	u := rng.Float64() * cum[len(cum)-1]
	i, _ := slices.BinarySearch(cum, u)
	return min(i, len(cum)-1)
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

func chance(rng *rand.Rand, p float64) bool { return rng.Float64() < p }

// behave is what shopper s does given the experiment's answer: the events checkout reports.
//
// The session: the product page 20–90 s after arrival, the cart at 2–6 min, checkout at
// 6–10 min, the order at 11–15 min, a post-purchase page a minute or two after it. The offer is
// viewed at the moment its timing names (product page: every shopper; cart and checkout: the
// shoppers who order; post-purchase: after the order). Seeing it before ordering multiplies the
// chance of buying an offered complement of the primary product by 1 + cross_sell; after the
// order, it brings a follow-up order with exactly the chance that makes the same multiple.
func (m *model) behave(s *shopper, a Assignment) ([]Event, outcome) {
	rng := s.rng
	var out outcome
	var eff Effect
	st := a.Strategy
	if a.InExperiment && a.Variant != nil {
		out.variant = *a.Variant
		eff = m.sc.EffectFor(*a.Variant, st.Type)
	}
	var evs []Event
	n := 0
	add := func(e Event) {
		n++
		e.ID = fmt.Sprintf("%s-e%d", s.tag(), n)
		e.ShopperID = s.id
		e.OccurredAt = e.OccurredAt.Truncate(time.Millisecond)
		if a.InExperiment {
			e.Experiment = m.experiment
		}
		evs = append(evs, e)
	}

	primary := s.primary
	// A shopper told to hold the offer back (capped, budget spent, holdout) sees the
	// control's experience while staying in the variant.
	offered := a.ShowsOffer() && st.Type != "" && st.Type != "none" && len(st.Products) > 0 &&
		(len(st.TriggerProducts) == 0 || slices.Contains(st.TriggerProducts, primary))
	timing := st.Timing
	if timing == "" {
		timing = "cart"
	}
	before := offered && timing != "post_purchase"
	if !offered {
		eff = Effect{}
	}
	if offered {
		s.shown++
	}
	out.shown = int64(btoi(offered))
	conversion := m.sc.Shopper.Conversion * (1 + eff.Conversion) * m.annoyance(s)

	t0 := s.arrival
	var viewAt time.Time
	switch timing {
	case "product_page":
		viewAt = t0.Add(between(rng, 20*time.Second, 90*time.Second))
	case "checkout":
		viewAt = t0.Add(between(rng, 6*time.Minute, 10*time.Minute))
	default:
		viewAt = t0.Add(between(rng, 2*time.Minute, 6*time.Minute))
	}
	orderAt := t0.Add(between(rng, 11*time.Minute, 15*time.Minute))
	if offered && timing == "product_page" {
		add(Event{Type: offerViewed, OccurredAt: viewAt})
		out.viewed++
	}
	if !chance(rng, clamp01(conversion)) {
		return evs, out
	}
	if before && timing != "product_page" {
		add(Event{Type: offerViewed, OccurredAt: viewAt})
		out.viewed++
	}

	// The basket: what the shopper came for, its complements, then everyday products until
	// the basket is worth the log-normal amount this shopper meant to spend.
	var lines []Item
	put := func(sku string, qty int64) {
		for i := range lines {
			if lines[i].SKU == sku {
				lines[i].Quantity += qty
				return
			}
		}
		lines = append(lines, Item{SKU: sku, Quantity: qty, UnitPrice: m.prices[sku]})
	}
	put(primary, 1+int64(btoi(chance(rng, 0.1))))
	for _, c := range m.goesWith[primary] {
		p := c.p
		if before && slices.Contains(st.Products, c.sku) {
			p *= 1 + eff.CrossSell
		}
		if chance(rng, clamp01(p)) {
			put(c.sku, 1)
		}
	}
	o := m.sc.Shopper.OrderValue
	want := int64(float64(o.Median) * math.Exp(o.Sigma*rng.NormFloat64()))
	for total(lines) < want && len(lines) < m.sc.Shopper.MaxItems {
		put(m.pick[pickIndex(m.pickCum, rng)], 1)
	}
	accepted := before && holdsAny(lines, st.Products)
	if accepted {
		add(Event{Type: offerAccepted, OccurredAt: viewAt.Add(between(rng, 5*time.Second, 30*time.Second))})
		out.accepted++
	}
	m.order(s, rng, &out, add, lines, orderAt, st, accepted, eff, 1)

	if offered && timing == "post_purchase" {
		postAt := orderAt.Add(between(rng, 30*time.Second, 2*time.Minute))
		add(Event{Type: offerViewed, OccurredAt: postAt})
		out.viewed++
		// Without the offer, a shopper buys an offered complement with chance a (it is then
		// in the first basket); the follow-up chance a·lift/(1−a) among the rest makes the
		// total a·(1+lift).
		if !holdsAny(lines, st.Products) {
			var sku string
			var a float64
			for _, c := range m.goesWith[primary] {
				if slices.Contains(st.Products, c.sku) && c.p > a {
					sku, a = c.sku, c.p
				}
			}
			if sku != "" && a < 1 && chance(rng, clamp01(a*eff.CrossSell/(1-a))) {
				acceptAt := postAt.Add(between(rng, 5*time.Second, 30*time.Second))
				add(Event{Type: offerAccepted, OccurredAt: acceptAt})
				out.accepted++
				follow := []Item{{SKU: sku, Quantity: 1, UnitPrice: m.prices[sku]}}
				m.order(s, rng, &out, add, follow, acceptAt.Add(between(rng, time.Minute, 10*time.Minute)), st, true, eff, 2)
			}
		}
	}
	return evs, out
}

// annoyance is what the offers shown so far do to the shopper's chance of ordering
// (Annoyance): a factor of 1 + Conversion for each beyond the first After.
func (m *model) annoyance(s *shopper) float64 {
	a := m.sc.Annoyance
	if a == nil || s.shown <= a.After {
		return 1
	}
	return math.Pow(1+a.Conversion, float64(s.shown-a.After))
}

// order reports an order and perhaps, days later, its refund.
func (m *model) order(s *shopper, rng *rand.Rand, out *outcome, add func(Event), lines []Item,
	at time.Time, st Strategy, accepted bool, eff Effect, n int) {
	amount := total(lines)
	var discount int64
	if accepted && st.Type == "bundle" {
		discount = bundleDiscount(lines, st, m.sc.Currency)
	}
	id := fmt.Sprintf("%s-o%d", s.tag(), n)
	ev := Event{Type: orderCompleted, OccurredAt: at, OrderID: id, Amount: &amount, Currency: m.sc.Currency, Items: lines}
	if discount > 0 {
		ev.Discount = &discount
	}
	add(ev)
	out.orders++
	out.revenue += amount
	out.discount += discount
	if holdsAny(lines, m.targets) {
		out.crossSell++
	}
	// Draw every number whether or not it is used, so that a refund too recent to have
	// happened does not shift the draws of what follows.
	refund := chance(rng, clamp01(m.sc.Shopper.Refund*(1+eff.Refund)))
	whole := chance(rng, 0.7)
	line := lines[rng.IntN(len(lines))]
	refundAt := at.Add(between(rng, 24*time.Hour, 10*24*time.Hour))
	out.charged += discount
	if !refund || !refundAt.Before(m.now) {
		return
	}
	paid := amount - discount
	back := paid
	if !whole {
		back = min(line.UnitPrice*line.Quantity, paid)
	}
	if discount > 0 {
		out.charged -= discount * back / amount // back < amount: never the whole order
	}
	add(Event{Type: orderRefunded, OccurredAt: refundAt, OrderID: id, Amount: &back, Currency: m.sc.Currency})
	out.refunds++
	out.refunded += back
}

// bundleDiscount is what the bundle takes off the offered products in the basket.
func bundleDiscount(lines []Item, st Strategy, currency string) int64 {
	var offered int64
	for _, l := range lines {
		if slices.Contains(st.Products, l.SKU) {
			offered += l.UnitPrice * l.Quantity
		}
	}
	switch {
	case st.DiscountPercent != nil:
		// The percentage is a float in the API; the discount itself is whole minor units.
		return int64(math.Round(float64(offered) * *st.DiscountPercent / 100))
	case st.DiscountAmount != nil && (st.Currency == "" || st.Currency == currency):
		return min(*st.DiscountAmount, offered)
	}
	return 0
}

func total(lines []Item) int64 {
	var t int64
	for _, l := range lines {
		t += l.UnitPrice * l.Quantity
	}
	return t
}

func holdsAny(lines []Item, skus []string) bool {
	return slices.ContainsFunc(lines, func(l Item) bool { return slices.Contains(skus, l.SKU) })
}

func clamp01(p float64) float64 { return min(max(p, 0), 1) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
