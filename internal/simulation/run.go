package simulation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/xsell/xsell/client"
)

// Config says which server to drive and how hard.
type Config struct {
	BaseURL     string // e.g. http://127.0.0.1:8080
	AdminKey    string // assigns back-dated (only admins may) and reads the experiment
	CheckoutKey string // reports events, as checkout does
	Experiment  string // key of a running experiment
	// Prefix starts every shopper, event and order id; the experiment key by default, so that
	// runs against different experiments on one database do not collide.
	Prefix      string
	Concurrency int // clients sending at once; 8 by default
	BatchSize   int // events per POST /v1/events; 500 by default
	// WaitLoyalty is how long to wait at the end for the server to credit the points of every
	// order (bonuses are part of a strategy's cost); 0 means 3 minutes, negative: do not wait.
	WaitLoyalty time.Duration
	// Now is the end of the simulated days; time.Now by default.
	Now  func() time.Time
	HTTP *http.Client // a client with keep-alive for Concurrency connections by default
}

// Progress is the state of a run, updated atomically while it runs, for a progress display.
type Progress struct {
	Shoppers atomic.Int64 // shoppers whose events are all sent
	Assigned atomic.Int64
	Events   atomic.Int64
	Total    atomic.Int64 // shoppers in the run
	stage    atomic.Value // stage
}

// stage is what a run is doing and since when.
type stage struct {
	name  string
	since time.Time
}

func (p *Progress) setStage(s string) { p.stage.Store(stage{s, time.Now()}) }

// Stage is what the run is doing now and how long it has been doing it.
func (p *Progress) Stage() (string, time.Duration) {
	s, _ := p.stage.Load().(stage)
	if s.since.IsZero() {
		return "starting", 0
	}
	return s.name, time.Since(s.since)
}

// Summary is what a run sent and what it planted, per arm.
type Summary struct {
	Experiment   string
	Phase        int
	Shoppers     int
	Days         int
	From, To     time.Time // first and last simulated arrival window
	Currency     string
	Targets      []string
	Arms         []ArmSummary // the experiment's variants in order, then the shoppers left out
	Events       int64        // accepted by the server
	Duplicates   int64        // already stored (a retried batch, or a run repeated)
	Requests     int64
	Retries      int64
	LoyaltyReady bool         // every order's points were credited before the run ended
	Warning      string       // what the run could not make sure of, if anything
	Bandit       []BanditStep // the updates of a bandit's weights, day by day
	Annoyance    *Annoyance   // the scenario's planted harm of too many offers, if any
	Budgets      []BudgetDay  // the experiment's budgets that ran out, and on which day
	Elapsed      time.Duration
}

// ArmSummary is what the shoppers of one variant did. Money is in minor units.
type ArmSummary struct {
	Variant   string // "" for shoppers not in the experiment
	Strategy  string
	Effect    Effect
	Shoppers  int64
	Visits    int64 // answers: one a visit
	Shown     int64 // answers that showed the variant's offer
	HeldBack  int64 // answers that held it back: "capped" or "budget_exhausted"
	Exhausted int64 // of them, "budget_exhausted"
	Viewed    int64
	Accepted  int64
	Orders    int64
	CrossSell int64 // orders holding a target product
	Revenue   int64
	Discount  int64
	Refunds   int64
	Refunded  int64
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Prefix == "" {
		c.Prefix = c.Experiment
	}
	if c.WaitLoyalty == 0 {
		c.WaitLoyalty = 3 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTP == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.Concurrency * 2
		c.HTTP = &http.Client{Transport: t, Timeout: time.Minute}
	}
}

// WaitReady polls GET /readyz until it answers 200 or the timeout passes.
func WaitReady(ctx context.Context, cfg Config, timeout time.Duration) error {
	cfg.defaults()
	c, err := newAPI(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.admin.Ready(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/readyz did not answer 200 within %s", cfg.BaseURL, timeout)
		case <-tick.C:
		}
	}
}

// CreateExperiment creates the scenario's experiment under cfg.Experiment (its own key when
// that is empty) and starts it, as a growth team would.
func CreateExperiment(ctx context.Context, sc *Scenario, cfg Config) error {
	cfg.defaults()
	c, err := newAPI(cfg)
	if err != nil {
		return err
	}
	def, err := sc.Definition(cfg.Experiment)
	if err != nil {
		return err
	}
	x, err := c.admin.CreateExperiment(ctx, def)
	if err != nil {
		return fmt.Errorf("creating the experiment: %w", err)
	}
	if _, err := c.admin.StartExperiment(ctx, x.Key, x.Version); err != nil {
		return fmt.Errorf("starting the experiment: %w", err)
	}
	return nil
}

// Run simulates the scenario's shoppers against a running experiment and returns what it
// sent. Day by day, it assigns the day's shoppers, waits until the server has written their
// exposures, then reports the day's events: the server credits a loyalty bonus only to a
// shopper whose exposure is stored, and writes exposures off the request path, so an order
// reported a millisecond after its assignment — which compressed time makes common and real
// shoppers never do — could otherwise miss its bonus.
func Run(ctx context.Context, sc *Scenario, cfg Config, prog *Progress) (*Summary, error) {
	cfg.defaults()
	if prog == nil {
		prog = &Progress{}
	}
	if cfg.Experiment == "" {
		return nil, errors.New("no experiment to simulate")
	}
	began := time.Now()
	c, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	prog.setStage("reading the experiment")
	x, err := c.admin.GetExperiment(ctx, cfg.Experiment)
	if err != nil {
		return nil, err
	}
	if x.Status != "running" {
		return nil, fmt.Errorf("experiment %s is %s, not running: start it first (or use --create)", x.Key, x.Status)
	}
	now := cfg.Now()
	m := newModel(sc, x.Key, cfg.Prefix, targets(x), now)
	if len(m.pick) == 0 {
		return nil, errors.New("the catalog needs a product with a weight that is not one of the experiment's target products: shoppers come for something else")
	}
	sum := &Summary{Experiment: x.Key, Phase: x.Phase, Shoppers: sc.Shoppers, Days: sc.Days,
		From: m.start, To: m.start.Add(m.span), Currency: sc.Currency, Targets: targets(x), Annoyance: sc.Annoyance}
	arms := map[string]*ArmSummary{}
	for _, v := range x.Variants {
		a := &ArmSummary{Variant: v.Key, Strategy: v.Strategy.Type, Effect: sc.EffectFor(v.Key, v.Strategy.Type)}
		if a.Strategy == "none" {
			a.Effect = Effect{}
		}
		arms[v.Key] = a
		sum.Arms = append(sum.Arms, *a)
	}
	arms[""] = &ArmSummary{}
	prog.Total.Store(int64(sc.Shoppers))

	// The count of written exposures before this run's first: each day waits for it to grow
	// by the day's shoppers in the experiment.
	written, err := c.metric(ctx, "xsell_exposures_written_total")
	exposuresVisible := err == nil

	// The server's assignment cache learns of a just-started experiment a moment after the
	// start commits. Ask for the first shopper until the experiment answers, with track
	// false, as a checkout prefetches: nothing is recorded until the shopper is asked below.
	prog.setStage("waiting for the server to assign in the experiment")
	first := m.shopper(0)
	if err := poll(ctx, 15*time.Second, 50*time.Millisecond, func() (bool, error) {
		a, err := c.assign(ctx, x.Key, first, false)
		return err == nil && a.Reason != "not_running" && a.Reason != "unknown_experiment", err
	}, func() string { return "experiment " + x.Key + " is running but the server does not assign in it" }); err != nil {
		return nil, err
	}

	var inExperiment int64
	schedule, isBandit, err := scheduleOf(x)
	if err != nil {
		return nil, err
	}

	// charged is what each variant's orders so far spend of discount budgets; with budgets,
	// each day waits until the server has charged them, as it would within a second live.
	charged := map[string]int64{}
	budgeted := hasBudget(x, "discount")

	var lastOrder Event // the last order with points to earn, sent after every other event
	for day := 0; day < sc.Days; day++ {
		lo, hi := dayRange(sc, day)
		if lo == hi {
			continue
		}
		prog.setStage(fmt.Sprintf("day %d of %d: assigning", day+1, sc.Days))
		evs := make([][]Event, hi-lo)
		outs := make([]outcome, hi-lo)
		err := parallel(ctx, cfg.Concurrency, hi-lo, func(k int) error {
			var err error
			evs[k], outs[k], err = m.visit(ctx, c, x.Key, m.shopper(lo+k))
			prog.Assigned.Add(1)
			return err
		})
		if err != nil {
			return nil, err
		}
		var flat []Event
		for k, o := range outs {
			arm := arms[o.variant]
			if arm == nil {
				arm = &ArmSummary{Variant: o.variant}
				arms[o.variant] = arm
			}
			arm.add(o)
			if o.variant != "" {
				inExperiment++
				charged[o.variant] += o.charged
			}
			flat = append(flat, evs[k]...)
		}
		if exposuresVisible {
			prog.setStage(fmt.Sprintf("day %d of %d: waiting for exposures to be written", day+1, sc.Days))
			if err := waitMetric(ctx, c, "xsell_exposures_written_total", written+float64(inExperiment), time.Minute); err != nil {
				sum.Warning = "exposures: " + err.Error()
				exposuresVisible = false
			}
		}
		prog.setStage(fmt.Sprintf("day %d of %d: reporting events", day+1, sc.Days))
		head, tail := flat, []Event(nil)
		if day == sc.Days-1 || hi == sc.Shoppers {
			// Hold back the last order that earns points (and what follows it), to send it
			// alone once every other event is stored: the server credits orders in the order
			// it stored them, so when this one is credited, all are.
			if i := lastCreditable(flat); i >= 0 {
				head, tail = flat[:i], flat[i:]
				lastOrder = flat[i]
			}
		}
		if err := sendAll(ctx, c, cfg, head, sum, prog); err != nil {
			return nil, err
		}
		for len(tail) > 0 {
			n := min(len(tail), cfg.BatchSize)
			if err := sendAll(ctx, c, cfg, tail[:n], sum, prog); err != nil {
				return nil, err
			}
			tail = tail[n:]
		}
		if budgeted {
			prog.setStage(fmt.Sprintf("day %d of %d: waiting for the discounts to be charged to budgets", day+1, sc.Days))
			if err := waitCharged(ctx, c, x.Key, charged, time.Minute); err != nil {
				sum.Warning = joinWarning(sum.Warning, "budgets: "+err.Error())
				budgeted = false
			}
		}
		prog.Shoppers.Add(int64(hi - lo))
		if isBandit && day+1 < sc.Days && schedule.due(day+1) {
			prog.setStage(fmt.Sprintf("day %d of %d: updating the bandit's weights", day+1, sc.Days))
			step, err := updateBandit(ctx, c, x.Key, day+1, m.start.Add(time.Duration(day+1)*24*time.Hour))
			if err != nil {
				return nil, err
			}
			sum.Bandit = append(sum.Bandit, step)
		}
	}
	if lastOrder.ID != "" && cfg.WaitLoyalty > 0 {
		prog.setStage("waiting for the server to credit loyalty points")
		err := waitCredited(ctx, c, lastOrder.ShopperID, cfg.WaitLoyalty)
		if err != nil {
			sum.Warning = joinWarning(sum.Warning, "loyalty: "+err.Error())
		} else {
			sum.LoyaltyReady = true
		}
	}
	for i := range sum.Arms {
		sum.Arms[i] = *arms[sum.Arms[i].Variant]
		delete(arms, sum.Arms[i].Variant)
	}
	for _, k := range sortedKeys(arms) {
		if a := arms[k]; a.Shoppers > 0 {
			sum.Arms = append(sum.Arms, *a)
		}
	}
	if hasBudget(x, "discount") || hasBudget(x, "points") {
		if sum.Budgets, err = budgetDays(ctx, c, x.Key, m.start); err != nil {
			return nil, err
		}
	}
	sum.Requests, sum.Retries = c.requests.Load(), c.retries.Load()
	sum.Elapsed = time.Since(began)
	prog.setStage("done")
	return sum, nil
}

// visit runs a shopper's visits of their day in order, each an assignment and what the
// shopper does with its answer (the next visit's answer depends on this one's: caps count
// them), and returns all their events and the sum of the outcomes.
func (m *model) visit(ctx context.Context, c *api, experiment string, s *shopper) ([]Event, outcome, error) {
	var evs []Event
	var sum outcome
	for {
		a, err := c.assign(ctx, experiment, s, true)
		if err != nil {
			return nil, sum, err
		}
		if a.Reason == "not_running" || a.Reason == "unknown_experiment" {
			return nil, sum, fmt.Errorf("experiment %s: assignment answered %q", experiment, a.Reason)
		}
		e, o := m.behave(s, a)
		evs = append(evs, e...)
		o.visits = 1
		switch a.Offer {
		case client.OfferCapped:
			o.heldBack = 1
		case client.OfferBudgetExhausted:
			o.heldBack, o.exhausted = 1, 1
		}
		sum.merge(o)
		if !s.next(m.end()) {
			return evs, sum, nil
		}
	}
}

// merge adds the outcome of another visit of the same shopper.
func (o *outcome) merge(v outcome) {
	o.variant = v.variant // a shopper keeps their variant
	o.visits += v.visits
	o.shown += v.shown
	o.heldBack += v.heldBack
	o.exhausted += v.exhausted
	o.viewed += v.viewed
	o.accepted += v.accepted
	o.orders += v.orders
	o.crossSell += v.crossSell
	o.revenue += v.revenue
	o.discount += v.discount
	o.refunds += v.refunds
	o.refunded += v.refunded
	o.charged += v.charged
}

func joinWarning(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (a *ArmSummary) add(o outcome) {
	a.Shoppers++
	a.Visits += o.visits
	a.Shown += o.shown
	a.HeldBack += o.heldBack
	a.Exhausted += o.exhausted
	a.Viewed += o.viewed
	a.Accepted += o.accepted
	a.Orders += o.orders
	a.CrossSell += o.crossSell
	a.Revenue += o.revenue
	a.Discount += o.discount
	a.Refunds += o.refunds
	a.Refunded += o.refunded
}

// dayRange is the shoppers [lo, hi) who arrive on a day.
func dayRange(sc *Scenario, day int) (int, int) {
	first := func(d int) int { return (d*sc.Shoppers + sc.Days - 1) / sc.Days } // smallest i with i*Days/Shoppers >= d
	return first(day), min(first(day+1), sc.Shoppers)
}

// lastCreditable is the index of the last order that earns at least one point at any earn
// rate of a point per major unit, or -1.
func lastCreditable(evs []Event) int {
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Type != orderCompleted {
			continue
		}
		paid := *e.Amount
		if e.Discount != nil {
			paid -= *e.Discount
		}
		if paid >= 100 {
			return i
		}
	}
	return -1
}

// sendAll sends events in batches from Concurrency clients at once.
func sendAll(ctx context.Context, c *api, cfg Config, evs []Event, sum *Summary, prog *Progress) error {
	n := (len(evs) + cfg.BatchSize - 1) / cfg.BatchSize
	var mu sync.Mutex
	return parallel(ctx, cfg.Concurrency, n, func(k int) error {
		batch := evs[k*cfg.BatchSize : min((k+1)*cfg.BatchSize, len(evs))]
		r, err := c.checkout.SendEvents(ctx, batch)
		if err != nil {
			return err
		}
		mu.Lock()
		sum.Events += int64(r.Accepted)
		sum.Duplicates += int64(r.Duplicates)
		mu.Unlock()
		prog.Events.Add(int64(len(batch)))
		return nil
	})
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the first error, after
// which no new work starts.
func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for k := 0; k < n && gctx.Err() == nil; k++ {
		g.Go(func() error { return f(k) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// waitMetric polls /metrics until the counter reaches want.
func waitMetric(ctx context.Context, c *api, name string, want float64, timeout time.Duration) error {
	return poll(ctx, timeout, 50*time.Millisecond, func() (bool, error) {
		v, err := c.metric(ctx, name)
		return v >= want, err
	}, func() string { return fmt.Sprintf("%s did not reach %.0f within %s", name, want, timeout) })
}

// hasBudget says whether the experiment or a variant has a budget of the kind.
func hasBudget(x *client.Experiment, kind string) bool {
	has := func(b *client.Budget) bool {
		return b != nil && ((kind == "discount" && b.Discount != nil) || (kind == "points" && b.Points != nil))
	}
	if has(x.Budget) {
		return true
	}
	for _, v := range x.Variants {
		if has(v.Budget) {
			return true
		}
	}
	return false
}

// BudgetDay is a budget that ran out during the run: on which simulated day (1 = the first)
// and when.
type BudgetDay struct {
	Variant string // "" for the experiment's own
	Kind    string
	Day     int
	At      time.Time
}

// budgetDays reads which of the experiment's budgets are spent, and on which day since start.
func budgetDays(ctx context.Context, c *api, key string, start time.Time) ([]BudgetDay, error) {
	x, err := c.admin.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	var out []BudgetDay
	for _, b := range x.BudgetStatus {
		if b.ExhaustedAt != nil {
			out = append(out, BudgetDay{Variant: b.Variant, Kind: b.Kind, At: *b.ExhaustedAt,
				Day: int(b.ExhaustedAt.Sub(start)/(24*time.Hour)) + 1})
		}
	}
	return out, nil
}

// waitCharged polls the experiment until each discount budget has charged what the orders
// sent so far spend of it (charged, by variant): a simulated day takes a second, and the next
// day's answers must see the budget a real shop's would, the spender a second behind.
func waitCharged(ctx context.Context, c *api, key string, charged map[string]int64, timeout time.Duration) error {
	var total int64
	for _, v := range charged {
		total += v
	}
	return poll(ctx, timeout, 50*time.Millisecond, func() (bool, error) {
		x, err := c.admin.GetExperiment(ctx, key)
		if err != nil {
			return false, err
		}
		for _, b := range x.BudgetStatus {
			want := total
			if b.Variant != "" {
				want = charged[b.Variant]
			}
			if b.Kind == "discount" && b.Spent < want {
				return false, nil
			}
		}
		return true, nil
	}, func() string {
		return "the order discounts sent were not all charged to the budgets within " + timeout.String()
	})
}

// waitCredited polls the shopper's loyalty account until it has earned points.
func waitCredited(ctx context.Context, c *api, shopperID string, timeout time.Duration) error {
	return poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		n, err := c.lifetimeEarned(ctx, shopperID)
		if client.StatusOf(err) == http.StatusNotFound {
			return false, nil // no account yet: not credited yet
		}
		return n > 0, err
	}, func() string {
		return fmt.Sprintf("the last order (shopper %s) was not credited within %s; the report may miss some bonus points", shopperID, timeout)
	})
}

// poll calls done until it reports true or the timeout passes; a 4xx answer ends it at once,
// anything else (the server busy, a metric not there yet) is tried again.
func poll(ctx context.Context, timeout, every time.Duration, done func() (bool, error), msg func() string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := done()
		if ok {
			return nil
		}
		if st := client.StatusOf(err); st >= 400 && st < 500 {
			return err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%s: %v", msg(), err)
			}
			return errors.New(msg())
		case <-tick.C:
		}
	}
}
