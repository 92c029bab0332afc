package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/apperr"
)

// Options tune a Service; zero values take the defaults.
type Options struct {
	// Clock gives "now" for default occurred_at, the future rule and partition months.
	Clock func() time.Time
	Log   *slog.Logger
	// Registerer receives the group-commit metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxWait is how long a group stays open for more batches after its first one (1 ms):
	// long enough for concurrent requests to join, short against a commit.
	MaxWait time.Duration
	// MaxRows closes a group early once it holds this many events (5000).
	MaxRows int
	// MonthsBack and MonthsAhead are the monthly partitions kept around the current month
	// (3 and 3); older or later events go to the DEFAULT partition.
	MonthsBack, MonthsAhead int
	// PartitionEvery is how often MaintainPartitions looks ahead again (12 h).
	PartitionEvery time.Duration
}

// Result is what one batch did: events stored, and events whose id was already stored (by an
// earlier batch, a concurrent one, or earlier in the same batch).
type Result struct {
	Accepted   int
	Duplicates int
}

// Service validates batches and stores them through a group committer: concurrent batches
// share one transaction, and each caller returns only once its transaction has committed.
type Service struct {
	db   *sqlx.DB
	opts Options
	log  *slog.Logger

	in        chan *pending
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	metrics   *metrics
	taken     atomic.Int64 // batches the committer has received, for tests of Close
}

// pending is one batch waiting for its group's commit.
type pending struct {
	events []Event
	done   chan outcome // buffered, so the committer never waits for a caller that gave up
}

type outcome struct {
	res Result
	err error
}

// NewService starts the group committer; Close stops it.
func NewService(db *sqlx.DB, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = time.Millisecond
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 5000
	}
	if opts.MonthsBack == 0 {
		opts.MonthsBack = 3
	}
	if opts.MonthsAhead == 0 {
		opts.MonthsAhead = 3
	}
	if opts.PartitionEvery <= 0 {
		opts.PartitionEvery = 12 * time.Hour
	}
	s := &Service{
		db: db, opts: opts, log: opts.Log,
		in:      make(chan *pending),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		metrics: newMetrics(opts.Registerer),
	}
	go s.run()
	return s
}

// Ingest validates a batch decoded into its types and stores it; it returns once the batch is
// committed. A batch with any invalid event is refused whole, with every problem listed.
func (s *Service) Ingest(ctx context.Context, in []*Input) (Result, error) {
	evs, err := Validate(in, s.opts.Clock())
	if err != nil {
		return Result{}, err
	}
	return s.store(ctx, evs)
}

// IngestJSON is Ingest for events as raw JSON values, decoded field by field (see Parse).
func (s *Service) IngestJSON(ctx context.Context, raw []json.RawMessage) (Result, error) {
	evs, err := Parse(raw, s.opts.Clock())
	if err != nil {
		return Result{}, err
	}
	return s.store(ctx, evs)
}

// Explain returns every problem of a batch of raw JSON events, or nil; it stores nothing. It
// serves callers whose typed decode failed on the first wrong type and who owe their client
// the full list.
func (s *Service) Explain(raw []json.RawMessage) error {
	_, err := Parse(raw, s.opts.Clock())
	return err
}

// errClosed answers batches that arrive after Close.
var errClosed = apperr.New(apperr.Unavailable, "the server is shutting down; retry on another instance")

func (s *Service) store(ctx context.Context, evs []Event) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	p := &pending{events: evs, done: make(chan outcome, 1)}
	select {
	case s.in <- p:
	case <-s.closing:
		return Result{}, errClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		// The batch may still commit; the client's retry is then counted as duplicates.
		return Result{}, ctx.Err()
	}
}

// Close stops taking batches, commits those already taken and waits for the committer to end
// (or for ctx). Call it after the HTTP server has drained and before the database closes.
func (s *Service) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("events: committer still busy at shutdown: %w", ctx.Err())
	}
}

// run is the committer: one group at a time, so that a group forms while the previous one
// commits and the group size follows the load.
func (s *Service) run() {
	defer close(s.stopped)
	for {
		select {
		case p := <-s.in:
			s.commit(s.collect(p))
		case <-s.closing:
			for {
				select {
				case p := <-s.in:
					s.commit(s.collect(p))
				default:
					return
				}
			}
		}
	}
}

// collect gathers batches for up to MaxWait after the first, or until MaxRows.
func (s *Service) collect(first *pending) []*pending {
	s.taken.Add(1)
	group := []*pending{first}
	rows := len(first.events)
	timer := time.NewTimer(s.opts.MaxWait)
	defer timer.Stop()
	for rows < s.opts.MaxRows {
		select {
		case p := <-s.in:
			s.taken.Add(1)
			group = append(group, p)
			rows += len(p.events)
		case <-timer.C:
			return group
		case <-s.closing:
			return group
		}
	}
	return group
}

// commit writes a group in one transaction and answers each batch with its own counts. When
// the transaction fails, each batch of the group is retried on its own, so that whatever made
// it fail fails only the batch that caused it.
func (s *Service) commit(group []*pending) {
	seen := make(map[string]bool)
	var rows []*Event
	owned := make([][]string, len(group)) // ids each batch is first to bring in this group
	for gi, p := range group {
		for i := range p.events {
			e := &p.events[i]
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			rows = append(rows, e)
			owned[gi] = append(owned[gi], e.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	fresh, err := insert(ctx, s.db, rows)
	if err != nil {
		if len(group) > 1 {
			s.log.Warn("events: group commit failed; retrying its batches one by one", "batches", len(group), "error", err)
			for _, p := range group {
				s.commit([]*pending{p})
			}
			return
		}
		s.metrics.failures.Inc()
		group[0].done <- outcome{err: fmt.Errorf("storing %d events: %w", len(group[0].events), err)}
		return
	}
	s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	s.metrics.groupEvents.Observe(float64(len(rows)))
	for gi, p := range group {
		accepted := 0
		for _, id := range owned[gi] {
			if fresh[id] {
				accepted++
			}
		}
		res := Result{Accepted: accepted, Duplicates: len(p.events) - accepted}
		s.metrics.accepted.Add(float64(res.Accepted))
		s.metrics.duplicates.Add(float64(res.Duplicates))
		p.done <- outcome{res: res}
	}
}

func (s *Service) takenBatches() int64 { return s.taken.Load() }

// EnsurePartitions creates the monthly partitions around the clock's current month.
func (s *Service) EnsurePartitions(ctx context.Context) error {
	skipped, err := ensurePartitions(ctx, s.db, s.opts.Clock(), s.opts.MonthsBack, s.opts.MonthsAhead)
	if len(skipped) > 0 {
		s.log.Warn("events: partitions not created because the DEFAULT partition holds rows of their month; those rows stay there",
			"partitions", skipped)
	}
	return err
}

// MaintainPartitions calls EnsurePartitions every PartitionEvery until ctx ends, so that next
// months' partitions exist long before their first event.
func (s *Service) MaintainPartitions(ctx context.Context) {
	tick := time.NewTicker(s.opts.PartitionEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.EnsurePartitions(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("events: creating partitions ahead", "error", err)
			}
		}
	}
}

// metrics show how the group commit behaves under load.
type metrics struct {
	accepted, duplicates, failures prometheus.Counter
	groupEvents, commitSeconds     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "xsell_events_accepted_total", Help: "Events stored."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "xsell_events_duplicates_total", Help: "Events whose id was already stored."}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "xsell_events_commit_failures_total", Help: "Batches whose transaction failed."}),
		groupEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "xsell_events_group_events", Help: "Events per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "xsell_events_commit_seconds", Help: "Duration of group-commit transactions.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.duplicates, m.failures, m.groupEvents, m.commitSeconds)
	}
	return m
}
