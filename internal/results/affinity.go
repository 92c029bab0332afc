package results

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/database"
)

// affinityKey names the bundle ideas in results_requests and in the advisory lock: a slash
// cannot start an experiment key, so it never meets one.
const affinityKey = "/affinity"

// AffinityRequest is what the stored bundle ideas are mined with: the orders of the last 90
// days and pairs bought together in at least 5 of them, as `analyze affinity` does by default;
// the console filters the stored pairs further.
var AffinityRequest = analysis.AffinityRequest{Since: 90 * 24 * time.Hour, MinOrders: 5, Top: 1000}

// AffinitySnapshot is one stored run of the product affinity.
type AffinitySnapshot struct {
	ID         int64
	ComputedAt time.Time
	Duration   time.Duration
	Result     *analysis.Affinity // nil when Error is set
	Error      string
}

// LatestAffinity returns the newest bundle ideas, or nil when none were computed yet.
func (s *Store) LatestAffinity(ctx context.Context) (*AffinitySnapshot, error) {
	var r struct {
		ID         int64          `db:"id"`
		ComputedAt time.Time      `db:"computed_at"`
		DurationMS int            `db:"duration_ms"`
		Result     []byte         `db:"result"`
		Error      sql.NullString `db:"error"`
	}
	err := s.db.GetContext(ctx, &r, `SELECT id, computed_at, duration_ms, result, error
		FROM affinity_snapshots ORDER BY computed_at DESC, id DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, database.Wrap(err, "reading bundle ideas")
	}
	out := &AffinitySnapshot{ID: r.ID, ComputedAt: r.ComputedAt.UTC(), Duration: time.Duration(r.DurationMS) * time.Millisecond, Error: r.Error.String}
	if len(r.Result) > 0 {
		out.Result = &analysis.Affinity{}
		if err := json.Unmarshal(r.Result, out.Result); err != nil {
			return nil, fmt.Errorf("affinity snapshot %d: decoding it: %w", r.ID, err)
		}
	}
	return out, nil
}

// PendingAffinity returns when fresh bundle ideas were asked for, if none started since.
func (s *Store) PendingAffinity(ctx context.Context) (*time.Time, error) {
	var at []time.Time
	err := s.db.SelectContext(ctx, &at, `SELECT r.requested_at FROM results_requests r
		WHERE r.experiment_key = $1 AND NOT EXISTS (SELECT 1 FROM affinity_snapshots s
			WHERE s.computed_at >= r.requested_at)`, affinityKey)
	if err != nil {
		return nil, database.Wrap(err, "reading the bundle ideas request")
	}
	if len(at) == 0 {
		return nil, nil
	}
	t := at[0].UTC()
	return &t, nil
}

// affinityDueSQL is true when the bundle ideas are missing, older than $1, or asked for since.
const affinityDueSQL = `
SELECT l.computed_at IS NULL OR l.computed_at <= $1 OR COALESCE(r.requested_at > l.computed_at, false)
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT computed_at FROM affinity_snapshots ORDER BY computed_at DESC LIMIT 1) l ON true
LEFT JOIN results_requests r ON r.experiment_key = '` + affinityKey + `'`

// affinityLocked computes and stores the bundle ideas when they are due and no other server
// is computing them.
func (s *Scheduler) affinityLocked(ctx context.Context) (bool, error) {
	var isDue bool
	if err := s.db.GetContext(ctx, &isDue, affinityDueSQL, s.now().Add(-s.refresh).UTC()); err != nil {
		return false, database.Wrap(err, "results: checking bundle ideas")
	}
	if !isDue {
		return false, nil
	}
	return s.withLock(ctx, affinityKey, func(tx *sqlx.Tx) (bool, error) {
		if err := tx.GetContext(ctx, &isDue, affinityDueSQL, s.now().Add(-s.refresh).UTC()); err != nil || !isDue {
			return false, err
		}
		start := s.now()
		aff, err := s.source.Affinity(ctx, AffinityRequest)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		var result, errText any
		if err != nil {
			errText = err.Error()
		} else if result, err = json.Marshal(aff); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO affinity_snapshots (computed_at, duration_ms, result, error)
			VALUES ($1, $2, $3, $4)`, start.UTC(), s.now().Sub(start).Milliseconds(), result, errText); err != nil {
			return false, database.Wrap(err, "storing bundle ideas")
		}
		return true, nil
	})
}
