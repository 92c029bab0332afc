// Package results keeps experiment reports and product affinity computed in the background
// and stored in Postgres, so that the console shows them at once whatever the data size.
package results

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// Snapshot is one stored report of an experiment: the report as `analyze report` builds it,
// or the reason there is none (no exposures yet).
type Snapshot struct {
	ID         int64
	Experiment string
	Phase      int
	// ComputedAt is when the computation started: the report counts the data of that moment.
	ComputedAt time.Time
	Duration   time.Duration
	Summary    Summary
	Report     *analysis.Report // nil when Error is set
	Error      string
}

// Info is a snapshot without its report, for lists.
type Info struct {
	ID         int64     `db:"id"`
	Experiment string    `db:"experiment_key"`
	Phase      int       `db:"phase"`
	ComputedAt time.Time `db:"computed_at"`
	Error      string    `db:"error"`
	Summary    Summary   `db:"-"`
}

// Store reads and writes snapshots and refresh requests.
type Store struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewStore returns a Store on db; now is the clock (time.Now when nil).
func NewStore(db *sqlx.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// snapshotRow is the results_snapshots table.
type snapshotRow struct {
	ID         int64          `db:"id"`
	Experiment string         `db:"experiment_key"`
	Phase      int            `db:"phase"`
	ComputedAt time.Time      `db:"computed_at"`
	DurationMS int            `db:"duration_ms"`
	Summary    []byte         `db:"summary"`
	Report     []byte         `db:"report"`
	Error      sql.NullString `db:"error"`
}

func (r *snapshotRow) snapshot() (*Snapshot, error) {
	s := &Snapshot{ID: r.ID, Experiment: r.Experiment, Phase: r.Phase, ComputedAt: r.ComputedAt.UTC(),
		Duration: time.Duration(r.DurationMS) * time.Millisecond, Error: r.Error.String}
	if err := json.Unmarshal(r.Summary, &s.Summary); err != nil {
		return nil, fmt.Errorf("snapshot %d: decoding its summary: %w", r.ID, err)
	}
	if len(r.Report) > 0 {
		s.Report = &analysis.Report{}
		if err := json.Unmarshal(r.Report, s.Report); err != nil {
			return nil, fmt.Errorf("snapshot %d: decoding its report: %w", r.ID, err)
		}
	}
	return s, nil
}

// Save stores a snapshot and returns its id.
func (s *Store) Save(ctx context.Context, q sqlx.QueryerContext, snap *Snapshot) (int64, error) {
	summary, err := json.Marshal(snap.Summary)
	if err != nil {
		return 0, err
	}
	var report, errText any
	if snap.Report != nil {
		b, err := json.Marshal(snap.Report)
		if err != nil {
			return 0, fmt.Errorf("encoding the report of %q: %w", snap.Experiment, err)
		}
		report = b
	} else {
		errText = snap.Error
	}
	var id int64
	err = sqlx.GetContext(ctx, q, &id, `INSERT INTO results_snapshots
		(experiment_key, phase, computed_at, duration_ms, summary, report, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		snap.Experiment, snap.Phase, snap.ComputedAt.UTC(), snap.Duration.Milliseconds(), summary, report, errText)
	if err != nil {
		return 0, database.Wrap(err, "storing the results of %q", snap.Experiment)
	}
	return id, nil
}

const snapshotColumns = `id, experiment_key, phase, computed_at, duration_ms, summary, report, error`

// Latest returns the newest snapshot of an experiment, or nil when it has none.
func (s *Store) Latest(ctx context.Context, key string) (*Snapshot, error) {
	var r snapshotRow
	err := s.db.GetContext(ctx, &r, `SELECT `+snapshotColumns+` FROM results_snapshots
		WHERE experiment_key = $1 ORDER BY computed_at DESC, id DESC LIMIT 1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, database.Wrap(err, "reading the results of %q", key)
	}
	return r.snapshot()
}

// Get returns one snapshot of an experiment.
func (s *Store) Get(ctx context.Context, key string, id int64) (*Snapshot, error) {
	var r snapshotRow
	err := s.db.GetContext(ctx, &r, `SELECT `+snapshotColumns+` FROM results_snapshots
		WHERE experiment_key = $1 AND id = $2`, key, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "experiment %q has no results snapshot %d", key, id)
	}
	if err != nil {
		return nil, database.Wrap(err, "reading results snapshot %d", id)
	}
	return r.snapshot()
}

// List returns an experiment's snapshots, newest first, at most limit of them.
func (s *Store) List(ctx context.Context, key string, limit int) ([]Info, error) {
	var out []Info
	err := s.db.SelectContext(ctx, &out, `SELECT id, experiment_key, phase, computed_at, COALESCE(error, '') AS error
		FROM results_snapshots WHERE experiment_key = $1 ORDER BY computed_at DESC, id DESC LIMIT $2`, key, limit)
	if err != nil {
		return nil, database.Wrap(err, "listing the results of %q", key)
	}
	for i := range out {
		out[i].ComputedAt = out[i].ComputedAt.UTC()
	}
	return out, nil
}

// Summaries returns the newest snapshot's summary of each of the experiments that has one.
func (s *Store) Summaries(ctx context.Context, keys []string) (map[string]Info, error) {
	var rows []struct {
		Info
		Raw []byte `db:"summary"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT l.id, k AS experiment_key, l.phase, l.computed_at,
			COALESCE(l.error, '') AS error, l.summary
		FROM unnest($1::text[]) AS k
		CROSS JOIN LATERAL (SELECT id, phase, computed_at, error, summary FROM results_snapshots
			WHERE experiment_key = k ORDER BY computed_at DESC, id DESC LIMIT 1) l`, pq.Array(keys))
	if err != nil {
		return nil, database.Wrap(err, "reading results summaries")
	}
	out := make(map[string]Info, len(rows))
	for _, r := range rows {
		info := r.Info
		info.ComputedAt = info.ComputedAt.UTC()
		if err := json.Unmarshal(r.Raw, &info.Summary); err != nil {
			return nil, fmt.Errorf("snapshot %d: decoding its summary: %w", r.ID, err)
		}
		out[info.Experiment] = info
	}
	return out, nil
}

// Request records that someone asked for fresh results of an experiment now.
func (s *Store) Request(ctx context.Context, key, by string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO results_requests (experiment_key, requested_at, requested_by)
		VALUES ($1, $2, $3) ON CONFLICT (experiment_key) DO UPDATE
		SET requested_at = excluded.requested_at, requested_by = excluded.requested_by`, key, s.now().UTC(), by)
	if err != nil {
		return database.Wrap(err, "requesting results of %q", key)
	}
	return nil
}

// Pending returns when fresh results of key were asked for, if no snapshot has started since.
func (s *Store) Pending(ctx context.Context, key string) (*time.Time, error) {
	var at []time.Time
	err := s.db.SelectContext(ctx, &at, `SELECT r.requested_at FROM results_requests r
		WHERE r.experiment_key = $1 AND NOT EXISTS (SELECT 1 FROM results_snapshots s
			WHERE s.experiment_key = r.experiment_key AND s.computed_at >= r.requested_at)`, key)
	if err != nil {
		return nil, database.Wrap(err, "reading the refresh request of %q", key)
	}
	if len(at) == 0 {
		return nil, nil
	}
	t := at[0].UTC()
	return &t, nil
}
