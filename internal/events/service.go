package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/periodic"
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
	// (3 and 3 when both are zero); older or later events go to the DEFAULT partition.
	MonthsBack, MonthsAhead int
	// PartitionEvery is how often Run makes next months' partitions again (12 h).
	PartitionEvery time.Duration
	// WriteTimeout bounds each look-up and commit of a group (10 s); the server sets it to its
	// request deadline, after which no caller waits for the answer any more.
	WriteTimeout time.Duration
}

// Result is what one batch did: events stored, and events whose id was already stored (by an
// earlier batch, a concurrent one, or earlier in the same batch).
type Result struct {
	Accepted   int
	Duplicates int
}

// Service validates batches and stores them through a group committer (Run): concurrent
// batches share one transaction, and each caller returns only once its transaction has
// committed.
type Service struct {
	db   *sqlx.DB
	opts Options
	log  *slog.Logger

	in      chan *pending
	stopped chan struct{} // closed when Run has returned: batches are refused from then on
	metrics *metrics
	took    chan struct{} // poked when the committer takes a batch, for tests
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

// NewService returns a Service whose batches wait for Run to commit them.
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
	opts.MonthsBack, opts.MonthsAhead = max(opts.MonthsBack, 0), max(opts.MonthsAhead, 0)
	if opts.MonthsBack == 0 && opts.MonthsAhead == 0 {
		opts.MonthsBack, opts.MonthsAhead = 3, 3
	}
	if opts.PartitionEvery <= 0 {
		opts.PartitionEvery = 12 * time.Hour
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	return &Service{
		db: db, opts: opts, log: opts.Log,
		in:      make(chan *pending),
		stopped: make(chan struct{}),
		metrics: newMetrics(opts.Registerer),
		took:    make(chan struct{}, 1),
	}
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

// errClosed answers batches that arrive after Run has returned.
var errClosed = apperr.New(apperr.Unavailable, "the server is shutting down; retry on another instance")

func (s *Service) store(ctx context.Context, evs []Event) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, database.Wrap(err, "storing %d events", len(evs))
	}
	p := &pending{events: evs, done: make(chan outcome, 1)}
	select {
	case s.in <- p:
	case <-s.stopped:
		return Result{}, errClosed
	case <-ctx.Done():
		return Result{}, database.Wrap(ctx.Err(), "waiting for the events committer")
	}
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		// The batch may still commit; the client's retry is then counted as duplicates.
		return Result{}, database.Wrap(ctx.Err(), "waiting for %d events to commit", len(evs))
	}
}

// Run is the committer and the partition keeper. It commits batches until ctx ends, then
// commits the batches it has taken (each write bounded by WriteTimeout), refuses the rest and
// returns; meanwhile it makes next months' partitions every PartitionEvery. Stop it after the
// HTTP server has drained and before the database closes.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.stopped)
	var wg sync.WaitGroup
	wg.Go(func() { s.maintainPartitions(ctx) })
	s.commit(ctx)
	wg.Wait()
	return nil
}

// commit is the committer, in two stages: while one group is being written (under the commit
// lock, serially), the next one forms and is prepared — its ids looked up, its COPY text
// built — and keeps growing with every batch that arrives until the writer is free, so that
// the serial part is only the COPYs and the commit, and the group size follows the load.
// Writes run on ctx's values but not its end: what was taken when ctx ends is still
// committed.
func (s *Service) commit(ctx context.Context) {
	wctx := context.WithoutCancel(ctx)
	prepared := make(chan *groupWrite) // unbuffered: the writer takes a group when it is free
	written := make(chan struct{})
	go func() {
		defer close(written)
		for g := range prepared {
			s.write(wctx, g)
		}
	}()
	defer func() {
		close(prepared)
		<-written
	}()
	var next *groupWrite
	for {
		// While the writer is busy, arriving batches join the group waiting for it.
		var in <-chan *pending = s.in
		var out chan<- *groupWrite
		if next != nil {
			out = prepared
			if len(next.rows) >= s.opts.MaxRows {
				in = nil
			}
		}
		select {
		case p := <-in:
			next = s.prepare(wctx, next, s.collect(ctx, p))
		case out <- next:
			next = nil
		case <-ctx.Done():
			for {
				select {
				case p := <-s.in:
					next = s.prepare(wctx, next, s.collect(ctx, p))
				default:
					if next != nil {
						prepared <- next
					}
					return
				}
			}
		}
	}
}

// collect gathers batches for up to MaxWait after the first, or until MaxRows or ctx's end.
func (s *Service) collect(ctx context.Context, first *pending) []*pending {
	s.noteTaken()
	group := []*pending{first}
	rows := len(first.events)
	timer := time.NewTimer(s.opts.MaxWait)
	defer timer.Stop()
	for rows < s.opts.MaxRows {
		select {
		case p := <-s.in:
			s.noteTaken()
			group = append(group, p)
			rows += len(p.events)
		case <-timer.C:
			return group
		case <-ctx.Done():
			return group
		}
	}
	return group
}

// groupWrite is a group on its way to the database.
type groupWrite struct {
	group []*pending
	owned [][]string // ids each batch is first to bring in this group
	rows  []*Event   // the group's events, each id once
	seen  map[string]bool
	fresh map[string]bool
	text  groupText
	err   error // a look-up failed; the group is written the careful way
}

func newGroupWrite() *groupWrite {
	return &groupWrite{seen: map[string]bool{}, fresh: map[string]bool{}}
}

// take adds batches to the group: each id's first event in the group becomes a row, owned by
// the batch that brought it; a later one is that batch's duplicate.
func (g *groupWrite) take(batches []*pending) {
	for _, p := range batches {
		var owned []string
		for i := range p.events {
			e := &p.events[i]
			if g.seen[e.ID] {
				continue
			}
			g.seen[e.ID] = true
			g.rows = append(g.rows, e)
			owned = append(owned, e.ID)
		}
		g.group = append(g.group, p)
		g.owned = append(g.owned, owned)
	}
}

// prepare adds batches to g (a new group when g is nil): it finds which of their ids are new
// and builds the COPY text of those rows, outside the commit lock. Another server's group may
// store one of those ids before this group's COPY; the primary key then fails this group,
// which write retries the careful way.
func (s *Service) prepare(ctx context.Context, g *groupWrite, batches []*pending) *groupWrite {
	if g == nil {
		g = newGroupWrite()
	}
	first := len(g.rows)
	g.take(batches)
	if g.err != nil {
		return g
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	fresh, err := lookUpNew(ctx, s.db, g.rows[first:])
	if err != nil {
		g.err = err
		return g
	}
	for id := range fresh {
		g.fresh[id] = true
	}
	g.text.add(g.rows[first:], fresh)
	return g
}

// write stores a prepared group in one transaction and answers each batch with its own
// counts. When that fails, each batch of the group is written on its own with its ids looked
// up under the commit lock, so that a race on an id or whatever else made the group fail
// fails only the batch that caused it. An outage fails the whole group at once: writing its
// batches one by one would only wait for the database once per batch.
func (s *Service) write(ctx context.Context, g *groupWrite) {
	start := time.Now()
	err := g.err
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
		err = copyGroup(wctx, s.db, g.text)
		cancel()
	}
	if err != nil {
		if database.IsUnavailable(err) || (len(g.group) == 1 && g.err != nil) {
			s.metrics.failures.Add(float64(len(g.group)))
			for _, p := range g.group {
				p.done <- outcome{err: database.Wrap(err, "storing %d events", len(p.events))}
			}
			return
		}
		s.log.Warn("events: group commit failed; writing its batches one by one", "batches", len(g.group), "error", err)
		for _, p := range g.group {
			s.commitCarefully(ctx, p)
		}
		return
	}
	s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	s.metrics.groupEvents.Observe(float64(len(g.rows)))
	s.answer(g.group, g.owned, g.fresh)
}

// commitCarefully writes one batch with its ids looked up under the commit lock, where no
// other writer can race it.
func (s *Service) commitCarefully(ctx context.Context, p *pending) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	g := newGroupWrite()
	g.take([]*pending{p})
	fresh, err := insert(ctx, s.db, g.rows)
	if err != nil {
		s.metrics.failures.Inc()
		p.done <- outcome{err: database.Wrap(err, "storing %d events", len(p.events))}
		return
	}
	s.answer(g.group, g.owned, fresh)
}

// answer tells each batch of a committed group what it stored.
func (s *Service) answer(group []*pending, owned [][]string, fresh map[string]bool) {
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

// noteTaken tells a test waiting on took that the committer has a batch.
func (s *Service) noteTaken() {
	select {
	case s.took <- struct{}{}:
	default:
	}
}

// EnsurePartitions creates the monthly partitions around the clock's current month.
func (s *Service) EnsurePartitions(ctx context.Context) error {
	skipped, err := ensurePartitions(ctx, s.db, s.opts.Clock(), s.opts.MonthsBack, s.opts.MonthsAhead)
	if len(skipped) > 0 {
		s.log.Warn("events: partitions not created because the DEFAULT partition holds rows of their month; those rows stay there",
			"partitions", skipped)
	}
	return err
}

// maintainPartitions calls EnsurePartitions every PartitionEvery until ctx ends, so that next
// months' partitions exist long before their first event.
func (s *Service) maintainPartitions(ctx context.Context) {
	periodic.Run(ctx, s.opts.PartitionEvery, func(ctx context.Context) {
		if err := s.EnsurePartitions(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("events: creating partitions ahead", "error", err)
		}
	})
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
