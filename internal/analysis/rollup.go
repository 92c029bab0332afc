package analysis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/database"
)

// The rollup job keeps the report rollups (migrations/00013_rollups.sql): per exposure, the
// shopper's figures (analysis_rollups), and per experiment, phase, variant and day, their exact
// sums (analysis_rollup_groups), so that a report reads a few sums per variant and day instead
// of every event (statement.go, groups.go).
//
// A row is never adjusted by the difference an event makes: the job finds the shoppers whose
// figures something may have changed and computes their rows again, whole, from the events,
// order lines, ledger and exposures (figuresSQL, the text reports use too), then moves the
// group sums by the difference between the old and new rows, in the same statement. Every
// step is idempotent, so out-of-order events, late exposures, refunds before their order, a
// job interrupted mid-way or two servers running it cannot leave a wrong row behind. What
// changes a shopper's figures, and how the job learns of it:
//
//   - an order or refund: the events outbox, read by seq with a cursor that moves in the same
//     transaction as the rows, as loyalty's crediting does;
//   - an exposure (a new experiment for the shopper, one written after their orders, a second
//     variant seen) or a ledger entry of a bonus or a reversal: analysis_rollup_queue, which
//     statement triggers fill in the writer's own transaction;
//   - the end of a phase: rows that counted past the new end are computed again, clipped;
//   - a new point value: cost and net of rows with bonus points, and every group sum, again.
//
// A report trusts a row only when none of these is pending for its shopper (staleSQL), and
// computes the others from events; so a report is exact at any moment, and fast once the job
// has caught up.

// DefaultRollupEvery is the server's pause between passes of the rollup job once caught up:
// reports then read rows at most about this much behind, and compute the rest from events.
const DefaultRollupEvery = time.Second

// RollupOptions tune the rollup job; zero values take the defaults.
type RollupOptions struct {
	// Every is the pause between passes once caught up (1 s).
	Every time.Duration
	// Batch is the most order events one transaction reads (5,000).
	Batch int
	// Log receives failed passes and quarantined shoppers (nil: nowhere).
	Log *slog.Logger
	// Quarantine records the shoppers whose rows the database refuses (nil: only logged).
	Quarantine *database.Quarantine
	// Registerer gets the job's metrics (nil: none).
	Registerer prometheus.Registerer
}

// RollupConsumer is the rollup job's name in the quarantine table and xsell_quarantined_total;
// its keys are shopper ids.
const RollupConsumer = "analysis_rollups"

// Rollups is the background job that keeps analysis_rollups up to date.
type Rollups struct {
	db         *sqlx.DB
	every      time.Duration
	batch      int
	log        *slog.Logger
	quarantine *database.Quarantine
	lag        prometheus.Gauge
	events     prometheus.Counter
}

// NewRollups returns the rollup job on db.
func NewRollups(db *sqlx.DB, o RollupOptions) *Rollups {
	if o.Every <= 0 {
		o.Every = DefaultRollupEvery
	}
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Quarantine == nil {
		o.Quarantine = database.NewQuarantine(nil, o.Log)
	}
	r := &Rollups{db: db, every: o.Every, batch: o.Batch, log: o.Log, quarantine: o.Quarantine,
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xsell_analysis_rollup_lag_seconds",
			Help: "How long ago the oldest order or refund the report rollups have not read was received (0: caught up), after the job's last pass.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_analysis_rollup_events_total",
			Help: "Orders and refunds the report rollups have read.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.lag, r.events)
	}
	return r
}

// Run advances the rollups until ctx ends, pausing Every between passes once caught up. A
// failed pass is logged and tried again at the next tick; Run returns nil when ctx ends.
func (r *Rollups) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		if _, err := r.Advance(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("analysis rollups: a pass failed; trying again", "error", err)
		}
		if lag, err := r.Lag(ctx); err == nil {
			r.lag.Set(lag.Seconds())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RollupProgress is what one call of Advance did.
type RollupProgress struct {
	Events   int   // order and refund events read
	Shoppers int   // shoppers whose rows were computed again
	Cursor   int64 // the last event read (events.seq)
	Rebuilt  bool  // every row was computed from scratch (the first run on a database with events)
	Queue    int   // queue rows (statements of other writers) read
	Sealed   int   // phases whose end clipped rows
	Poisoned int   // shoppers whose rows the database refused, left to be read from events
	// Analysed lists the tables whose planner statistics the call renewed (analyseStale).
	Analysed []string
	Duration time.Duration
}

// Advance brings the rollups up to date with everything committed when it started, in
// transactions of at most Batch order events, and says what it did.
func (r *Rollups) Advance(ctx context.Context) (RollupProgress, error) {
	start := time.Now()
	checked := start
	var total RollupProgress
	for {
		p, more, err := r.pass(ctx)
		total.Events += p.Events
		total.Shoppers += p.Shoppers
		total.Queue += p.Queue
		total.Sealed += p.Sealed
		total.Poisoned += p.Poisoned
		total.Rebuilt = total.Rebuilt || p.Rebuilt
		if p.Cursor > 0 {
			total.Cursor = p.Cursor
		}
		if err != nil {
			return total, fmt.Errorf("advancing the analysis rollups: %w", err)
		}
		if !more || ctx.Err() != nil {
			if (total.Rebuilt || total.Events+total.Queue+total.Sealed > 0) && ctx.Err() == nil {
				total.Analysed = append(total.Analysed, r.freshenStatistics(ctx)...)
			}
			total.Duration = time.Since(start)
			return total, ctx.Err()
		}
		// A backlog takes many passes: the tables' growth meanwhile counts too.
		if time.Since(checked) >= statisticsEvery {
			total.Analysed = append(total.Analysed, r.freshenStatistics(ctx)...)
			checked = time.Now()
		}
	}
}

// statisticsEvery is how often a long Advance (a backlog) checks its tables' statistics
// between passes; a check that finds nothing stale reads only the statistics views.
const statisticsEvery = 10 * time.Second

// rollupTables are the tables the job fills, whose statistics its own statements and reports
// plan with; the job keeps the report's tables' statistics fresh too, since a report on a
// standby cannot.
var rollupTables = append([]string{"analysis_rollups", "analysis_rollup_groups", "analysis_rollup_shoppers",
	"analysis_rollup_due"}, reportTables...)

// freshenStatistics analyses the tables the job writes and reads when they changed a lot
// since their last analysis: a server that starts on a fresh database, or after a bulk load,
// would otherwise plan its passes and the reports on guesses until autovacuum comes by (a
// minute or more; never for the partitioned events). A failure is logged: the rows are right
// either way, only slower to compute.
func (r *Rollups) freshenStatistics(ctx context.Context) []string {
	done, err := analyseStale(ctx, r.db, rollupTables)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("analysis rollups: renewing planner statistics", "error", err)
	}
	return done
}

// Lag is how long ago the oldest order or refund the rollups have not read was received; 0
// when they have read every one.
func (r *Rollups) Lag(ctx context.Context) (time.Duration, error) {
	var secs float64
	err := r.db.GetContext(ctx, &secs, `SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - (
		SELECT received_at FROM events WHERE seq > (SELECT seq FROM analysis_rollup_state)
		  AND type IN ('order_completed', 'order_refunded') ORDER BY seq LIMIT 1)), 0)::float8`)
	if err != nil {
		return 0, database.Wrap(err, "reading the rollups' lag")
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// passTimeout bounds each statement of a pass (the pool's own bound is for requests); the
// first pass on a database with history computes every row in one statement, unbounded.
const passTimeout = "5min"

// pass runs one transaction and reports whether there is more to read.
func (r *Rollups) pass(ctx context.Context) (p RollupProgress, more bool, err error) {
	err = database.Transact(ctx, r.db, nil, func(dtx *database.Tx) error {
		tx := dtx.Tx
		p, more = RollupProgress{}, false
		if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = '`+passTimeout+`'`); err != nil {
			return err
		}
		var cursor int64
		// Servers running the job queue on this row; the rows are theirs while they hold it.
		if err := tx.GetContext(ctx, &cursor, `SELECT seq FROM analysis_rollup_state FOR UPDATE`); err != nil {
			return fmt.Errorf("locking the job's state: %w", err)
		}
		p.Cursor = cursor
		if err := syncPointValue(ctx, tx); err != nil {
			return err
		}
		if cursor == 0 {
			built, err := rebuild(ctx, tx, &p)
			if err != nil || built {
				more = built // what was written during the rebuild comes next
				return err
			}
		}
		// A pass's statement is long (some hundred expressions) and its cost estimate large
		// whenever the planner overrates a few thousand shoppers' events; compiling it then
		// took longer than running it, every pass (docs/benchmarks.md, "Crediting and the
		// rollups under the events load"). The rebuild above, over every row, keeps the default.
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		var evs []struct {
			Seq       int64  `db:"seq"`
			ShopperID string `db:"shopper_id"`
		}
		// internal/events makes rows visible in seq order, so nothing appears later below the cursor.
		if err := tx.SelectContext(ctx, &evs, `SELECT seq, shopper_id FROM events
			WHERE seq > $1 AND type IN ('order_completed', 'order_refunded') ORDER BY seq LIMIT $2`, cursor, r.batch); err != nil {
			return fmt.Errorf("reading order events: %w", err)
		}
		var buyers []string
		for _, e := range evs {
			buyers = append(buyers, e.ShopperID)
		}
		if err := noteBuyers(ctx, tx, buyers); err != nil {
			return err
		}
		queued, n, err := readQueue(ctx, tx)
		if err != nil {
			return err
		}
		p.Queue = n
		sealed, phases, err := sealPhases(ctx, tx)
		if err != nil {
			return err
		}
		p.Sealed = phases
		shoppers := slices.Concat(buyers, queued, sealed)
		slices.Sort(shoppers)
		shoppers = slices.Compact(shoppers)
		if p.Poisoned, err = r.recomputeSafely(ctx, dtx, shoppers); err != nil {
			return err
		}
		p.Events, p.Shoppers = len(evs), len(shoppers)
		if len(evs) > 0 {
			p.Cursor = evs[len(evs)-1].Seq
			if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET seq = $1`, p.Cursor); err != nil {
				return fmt.Errorf("moving the cursor: %w", err)
			}
		}
		more = len(evs) == r.batch || n == queueBatch
		if len(shoppers) > 0 {
			// This pass's writes count in the tables' statistics as soon as it commits (not up
			// to a second later), so that freshenStatistics at the end of Advance sees them.
			if _, err := tx.ExecContext(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
				return fmt.Errorf("flushing the pass's table statistics: %w", err)
			}
		}
		dtx.OnCommit(func() { r.events.Add(float64(len(evs))) })
		return nil
	})
	return p, more, database.Wrap(err, "a pass of the analysis rollups")
}
