package results

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/database"
)

// DefaultRefresh is how old a running experiment's newest snapshot may get before the
// scheduler computes another (XSELL_RESULTS_REFRESH).
const DefaultRefresh = time.Hour

// Keep is how long every snapshot is kept; older ones are thinned to the last of each day.
const Keep = 7 * 24 * time.Hour

// Config tunes a Scheduler.
type Config struct {
	// Refresh is the age at which a running or paused experiment's results are recomputed
	// (DefaultRefresh when zero).
	Refresh time.Duration
	Log     *slog.Logger
	Clock   func() time.Time
	// Stored, when set, is called after each snapshot is committed with its experiment's key
	// (or "/affinity"), for tests that wait for one.
	Stored func(key string)
}

// Scheduler computes the snapshots that are due, on a timer and when asked: for each started
// experiment, when it has none for its current phase, when the newest is older than Refresh
// (running or paused), when it stopped after the newest, or when someone asked since; and the
// product affinity when it is older than Refresh or was asked for. Several servers may run one
// each: a Postgres advisory lock makes sure one computes each snapshot.
type Scheduler struct {
	db       *sqlx.DB // locks and stores
	store    *Store
	source   *analysis.Source
	refresh  time.Duration
	log      *slog.Logger
	now      func() time.Time
	wake     chan struct{}
	lastTrim time.Time
	stored   func(string)
}

// NewScheduler returns a scheduler that stores in db and reads the data of reports through
// analysisDB, a pool whose statements may run as long as a report takes.
func NewScheduler(db, analysisDB *sqlx.DB, cfg Config) *Scheduler {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Scheduler{
		db: db, store: NewStore(db, cfg.Clock), source: analysis.NewSource(analysisDB, cfg.Clock),
		refresh: cfg.Refresh, log: cfg.Log, now: cfg.Clock, wake: make(chan struct{}, 1), stored: cfg.Stored,
	}
}

// Store is where the scheduler keeps its snapshots.
func (s *Scheduler) Store() *Store { return s.store }

// Refresh asks for fresh results of an experiment, which this server's scheduler starts
// computing at once (or after the computation in progress).
func (s *Scheduler) Refresh(ctx context.Context, key, by string) error {
	if err := s.store.Request(ctx, key, by); err != nil {
		return err
	}
	s.poke()
	return nil
}

// RefreshAffinity asks for fresh bundle ideas.
func (s *Scheduler) RefreshAffinity(ctx context.Context, by string) error {
	return s.Refresh(ctx, affinityKey, by)
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run computes what is due until ctx ends, checking at least every minute (or every Refresh,
// when shorter) and whenever Refresh is called. A failure is logged and retried at the next
// check: it never stops the loop.
func (s *Scheduler) Run(ctx context.Context) error {
	every := min(s.refresh, time.Minute)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("results: computing due snapshots", "error", err)
		}
		if s.now().Sub(s.lastTrim) > time.Hour {
			if err := s.Trim(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("results: trimming old snapshots", "error", err)
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(every)
	}
}

// dueSQL lists the started experiments whose results are due, those asked for first; $1 is
// the newest computed_at that is stale, $2 narrows to one experiment (” for all).
const dueSQL = `
SELECT e.key, e.phase,
       (r.requested_at IS NOT NULL AND (l.computed_at IS NULL OR r.requested_at > l.computed_at)) AS asked
FROM experiments e
LEFT JOIN LATERAL (SELECT computed_at, phase FROM results_snapshots s
                   WHERE s.experiment_key = e.key ORDER BY computed_at DESC LIMIT 1) l ON true
LEFT JOIN results_requests r ON r.experiment_key = e.key
WHERE e.status <> 'draft' AND ($2 = '' OR e.key = $2) AND (
      l.computed_at IS NULL OR l.phase <> e.phase
   OR r.requested_at > l.computed_at
   OR (e.status IN ('running', 'paused') AND l.computed_at <= $1)
   OR (e.status = 'stopped' AND l.computed_at < e.stopped_at))
ORDER BY asked DESC, l.computed_at NULLS FIRST, e.key`

type due struct {
	Key   string `db:"key"`
	Phase int    `db:"phase"`
	Asked bool   `db:"asked"`
}

// RunDue computes every snapshot that is due now and returns how many it stored. Asked-for
// ones go first; one that another server is computing is left to it.
func (s *Scheduler) RunDue(ctx context.Context) (int, error) {
	var list []due
	if err := s.db.SelectContext(ctx, &list, dueSQL, s.now().Add(-s.refresh).UTC(), ""); err != nil {
		return 0, database.Wrap(err, "listing due results")
	}
	n := 0
	var errs []error
	for _, d := range list {
		done, err := s.computeLocked(ctx, d.Key)
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		if done {
			n++
		}
	}
	done, err := s.affinityLocked(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if done {
		n++
	}
	return n, errors.Join(errs...)
}

// withLock runs fn in a transaction holding the advisory lock of name, when no other session
// holds it; false when one does, or when fn found nothing to do.
func (s *Scheduler) withLock(ctx context.Context, name string, fn func(tx *sqlx.Tx) (bool, error)) (bool, error) {
	var done bool
	err := database.Transact(ctx, s.db, nil, func(tx *database.Tx) error {
		done = false
		var got bool
		if err := tx.GetContext(ctx, &got, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, "xsell.results:"+name); err != nil || !got {
			return err
		}
		var err error
		if done, err = fn(tx.Tx); err == nil && done && s.stored != nil {
			tx.OnCommit(func() { s.stored(name) })
		}
		return err
	})
	if err != nil {
		return false, database.Wrap(err, "results: computing %s", name)
	}
	return done, nil
}

// computeLocked computes and stores one experiment's snapshot if it is still due once its
// lock is held.
func (s *Scheduler) computeLocked(ctx context.Context, key string) (bool, error) {
	return s.withLock(ctx, key, func(tx *sqlx.Tx) (bool, error) {
		var still []due
		if err := tx.SelectContext(ctx, &still, dueSQL, s.now().Add(-s.refresh).UTC(), key); err != nil {
			return false, database.Wrap(err, "results: checking %q", key)
		}
		if len(still) == 0 {
			return false, nil // another server has just computed it
		}
		snap, err := s.Compute(ctx, key, still[0].Phase)
		if err != nil {
			return false, err
		}
		if _, err := s.store.Save(ctx, tx, snap); err != nil {
			return false, err
		}
		s.log.Info("results: snapshot stored", "experiment", key, "phase", snap.Phase,
			"duration_ms", snap.Duration.Milliseconds(), "error", snap.Error)
		return true, nil
	})
}

// Compute builds one experiment's snapshot of the current phase, as `analyze report` would
// report it with the default options. A report that cannot be built (no exposures yet) is a
// snapshot holding the reason; only a cancelled ctx is an error.
func (s *Scheduler) Compute(ctx context.Context, key string, phase int) (*Snapshot, error) {
	start := s.now()
	rep, err := s.source.Report(ctx, analysis.ReportRequest{Experiment: key, Options: analysis.DefaultOptions})
	snap := &Snapshot{Experiment: key, Phase: phase, ComputedAt: start, Duration: s.now().Sub(start)}
	switch {
	case err == nil:
		snap.Report, snap.Phase, snap.Summary = rep, rep.Phase, Summarise(rep)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		snap.Error = err.Error()
	}
	return snap, nil
}

// Trim deletes the snapshots older than Keep that are not the last of their (UTC) day.
func (s *Scheduler) Trim(ctx context.Context) error {
	cutoff := s.now().Add(-Keep).UTC()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM results_snapshots s WHERE s.computed_at < $1
		AND EXISTS (SELECT 1 FROM results_snapshots t WHERE t.experiment_key = s.experiment_key
			AND t.computed_at > s.computed_at
			AND date_trunc('day', t.computed_at AT TIME ZONE 'UTC') = date_trunc('day', s.computed_at AT TIME ZONE 'UTC'))`,
		cutoff); err != nil {
		return database.Wrap(err, "trimming results snapshots")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM affinity_snapshots s WHERE s.computed_at < $1
		AND EXISTS (SELECT 1 FROM affinity_snapshots t WHERE t.computed_at > s.computed_at
			AND date_trunc('day', t.computed_at AT TIME ZONE 'UTC') = date_trunc('day', s.computed_at AT TIME ZONE 'UTC'))`,
		cutoff); err != nil {
		return database.Wrap(err, "trimming affinity snapshots")
	}
	s.lastTrim = s.now()
	return nil
}

// Every is how old running experiments' results may get before they are computed again.
func (s *Scheduler) Every() time.Duration { return s.refresh }
