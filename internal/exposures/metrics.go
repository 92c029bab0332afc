package exposures

import "github.com/prometheus/client_golang/prometheus"

// metrics are the recorder's series on /metrics. Exposures are counted one per experiment a
// request exposed the shopper to; the rows it quarantines are counted by the quarantine, in
// xsell_quarantined_total{consumer="exposures_staging"|"exposures_merge"}.
type metrics struct {
	recorded prometheus.Counter
	lost     *prometheus.CounterVec
	// offersLost counts offered products not kept (whatever the reason).
	offersLost prometheus.Counter
	staged     prometheus.Counter
	written    prometheus.Counter
	queued     prometheus.GaugeFunc
}

func newMetrics(r *Recorder) metrics {
	return metrics{
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposures_recorded_total",
			Help: "Exposures queued to be written (after in-memory de-duplication).",
		}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsell_exposures_lost_total",
			Help: "Exposures not kept, by reason (queue_full, shutdown, quarantined); each is also counted in exposure_losses.",
		}, []string{"reason"}),
		offersLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposure_offers_lost_total",
			Help: "Products offered by learned strategies whose record was not kept; each is also counted in exposure_losses.offers_lost.",
		}),
		staged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposures_staged_total",
			Help: "Exposures committed to exposure_log, the staging table, by this server.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposures_written_total",
			Help: "Exposures merged from exposure_log into exposures by this server (duplicates included; the first row per shopper wins).",
		}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xsell_exposures_queued",
			Help: "Exposures waiting in memory to be staged.",
		}, func() float64 { return float64(r.queued.Load()) }),
	}
}

func (m metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.recorded, m.lost, m.offersLost, m.staged, m.written, m.queued)
}
