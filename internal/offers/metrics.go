package offers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the offers' figures on /metrics: the counters' size and traffic, and every
// budget's state.
type Metrics struct {
	written, read prometheus.Counter
	feedErrors    *prometheus.CounterVec
	shoppers      prometheus.Gauge
	marks         prometheus.Gauge
	dropped       prometheus.Gauge
}

// NewMetrics registers the offers' metrics with reg (none when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "xsell_offer_opportunities_written_total",
			Help: "Opportunities counted by this server against frequency caps and written to the feed."}),
		read: prometheus.NewCounter(prometheus.CounterOpts{Name: "xsell_offer_opportunities_read_total",
			Help: "Opportunities and closures read from the feed (other servers' counts, per-shopper limits)."}),
		feedErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xsell_offer_feed_errors_total",
			Help: "Failed writes, reads and prunes of the offer feed; while they fail, caps lag other servers' counts."}, []string{"op"}),
		shoppers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xsell_offer_counter_shoppers",
			Help: "Shoppers the frequency counters hold, at the last sweep."}),
		marks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xsell_offer_counter_marks",
			Help: "Opportunities and closures the frequency counters hold, at the last sweep."}),
		dropped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xsell_offer_opportunities_dropped_total",
			Help: "Opportunities counted here but never written for other servers, the queue being full (the database away)."}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.read, m.feedErrors, m.shoppers, m.marks, m.dropped)
	}
	return m
}

func (m *Metrics) observeCounter(shoppers, marks int, dropped int64) {
	m.shoppers.Set(float64(shoppers))
	m.marks.Set(float64(marks))
	m.dropped.Set(float64(dropped))
}

// budgetCollector exports every budget's limit, spent and state, read from the database at
// each scrape (a few rows), so that /metrics shows a spend as soon as it commits.
type budgetCollector struct {
	b                              *Budgets
	budget, spent, left, exhausted *prometheus.Desc
	overspent                      *prometheus.Desc
}

// RegisterBudgets exports the budgets of b on reg.
func RegisterBudgets(reg prometheus.Registerer, b *Budgets) {
	labels := []string{"experiment", "variant", "kind"}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("xsell_offer_budget_"+name, help, labels, nil)
	}
	reg.MustRegister(&budgetCollector{b: b,
		budget:    desc("limit", "An offer budget: minor units of its currency (kind discount) or points; variant \"\" is the experiment's own."),
		spent:     desc("spent", "What the budget has spent, refunds given back."),
		left:      desc("left", "What the budget has left."),
		overspent: desc("overspent", "What orders took beyond the budget (offers shown before it closed)."),
		exhausted: desc("exhausted", "1 when the budget is spent: its variants answer offer budget_exhausted."),
	})
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.budget, c.spent, c.left, c.overspent, c.exhausted} {
		ch <- d
	}
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := c.b.AllStatus(ctx)
	if err != nil {
		return // the database is away: /readyz says so; the scrape goes on without budgets
	}
	for _, e := range all {
		for _, s := range e.Budgets {
			l := []string{e.Experiment, s.Variant, string(s.Kind)}
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
			}
			gauge(c.budget, float64(s.Budget))
			gauge(c.spent, float64(s.Spent))
			gauge(c.left, float64(s.Left))
			gauge(c.overspent, float64(s.Overspent))
			x := 0.0
			if s.Exhausted {
				x = 1
			}
			gauge(c.exhausted, x)
		}
	}
}
