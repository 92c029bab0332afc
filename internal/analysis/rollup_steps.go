package analysis

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The steps of a pass of the rollup job (rollup.go), each one statement or a few.

// noteBuyers records shoppers with an order, refund or bonus read, whose exposures need their
// events read from now on.
func noteBuyers(ctx context.Context, tx *sqlx.Tx, shoppers []string) error {
	if len(shoppers) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_shoppers (shopper_id)
		SELECT DISTINCT s FROM unnest($1::text[]) s ON CONFLICT DO NOTHING`, pq.StringArray(shoppers))
	if err != nil {
		return fmt.Errorf("noting the buyers: %w", err)
	}
	return nil
}

// syncPointValue makes cost and net follow the loyalty program's point value: when it changed
// since they were computed, every row with bonus points gets them again and the groups are
// summed again. Reports meanwhile read events (their point value differs from the state's).
func syncPointValue(ctx context.Context, tx *sqlx.Tx) error {
	var pv struct {
		Current int64         `db:"current"`
		Used    sql.NullInt64 `db:"used"`
	}
	if err := tx.GetContext(ctx, &pv, `SELECT COALESCE((SELECT point_value FROM loyalty_program LIMIT 1), 0)::bigint AS current,
		(SELECT point_value FROM analysis_rollup_state) AS used`); err != nil {
		return fmt.Errorf("reading the point value: %w", err)
	}
	if pv.Used.Valid && pv.Used.Int64 == pv.Current {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollups SET cost = discount + bonus_points * $1,
		net = revenue - discount - bonus_points * $1 WHERE bonus_points <> 0`, pv.Current); err != nil {
		return fmt.Errorf("costing bonus points at the new point value: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM analysis_rollup_groups`); err != nil {
		return fmt.Errorf("emptying the groups: %w", err)
	}
	if _, err := tx.ExecContext(ctx, rebuildGroupsSQL); err != nil {
		return fmt.Errorf("summing the groups again: %w", err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET point_value = $1`, pv.Current)
	return err
}

// queueBatch is how many queue rows (one per writer's statement) one transaction reads.
const queueBatch = 200

// readQueue takes queue rows and returns the shoppers whose rows to compute again: the
// shoppers of new or flagged exposures, and of bonus entries and reversals, who become buyers.
func readQueue(ctx context.Context, tx *sqlx.Tx) ([]string, int, error) {
	var rows []struct {
		Source   string         `db:"source"`
		Shoppers pq.StringArray `db:"shoppers"`
	}
	if err := tx.SelectContext(ctx, &rows, `DELETE FROM analysis_rollup_queue WHERE id IN
		(SELECT id FROM analysis_rollup_queue ORDER BY id LIMIT $1) RETURNING source, shoppers`, queueBatch); err != nil {
		return nil, 0, fmt.Errorf("reading the queue: %w", err)
	}
	var all, ledger []string
	for _, r := range rows {
		all = append(all, r.Shoppers...)
		if r.Source == "loyalty" {
			ledger = append(ledger, r.Shoppers...)
		}
	}
	return all, len(rows), noteBuyers(ctx, tx, ledger)
}

// sealPhases finds the phases that ended since their rows were last clipped, records their
// end, and returns the shoppers whose rows count past it or were first exposed after it. The
// rows are computed again in a later statement, which sees at least these ends.
func sealPhases(ctx context.Context, tx *sqlx.Tx) ([]string, int, error) {
	var ended []struct {
		Experiment string    `db:"experiment_key"`
		Phase      int       `db:"phase"`
		EndedAt    time.Time `db:"ended_at"`
	}
	if err := tx.SelectContext(ctx, &ended, `SELECT p.experiment_key, p.phase, p.ended_at
		FROM experiment_phases p LEFT JOIN analysis_rollup_phases s USING (experiment_key, phase)
		WHERE p.ended_at IS NOT NULL AND p.ended_at IS DISTINCT FROM s.ended_at`); err != nil {
		return nil, 0, fmt.Errorf("reading the phases' ends: %w", err)
	}
	var shoppers []string
	for _, ph := range ended {
		var past []string
		if err := tx.SelectContext(ctx, &past, `SELECT shopper_id FROM analysis_rollups
			WHERE experiment_key = $1 AND phase = $2 AND (last_at >= $3 OR first_seen >= $3)`,
			ph.Experiment, ph.Phase, ph.EndedAt); err != nil {
			return nil, 0, fmt.Errorf("finding the rows past the end of %s phase %d: %w", ph.Experiment, ph.Phase, err)
		}
		shoppers = append(shoppers, past...)
		if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_phases (experiment_key, phase, ended_at)
			VALUES ($1, $2, $3) ON CONFLICT (experiment_key, phase) DO UPDATE SET ended_at = EXCLUDED.ended_at`,
			ph.Experiment, ph.Phase, ph.EndedAt); err != nil {
			return nil, 0, fmt.Errorf("recording the end of %s phase %d: %w", ph.Experiment, ph.Phase, err)
		}
	}
	return shoppers, len(ended), nil
}

// rebuild computes every row from scratch when the job first runs on a database that holds
// events already (a new installation, a migration, a bulk load): one set-based statement is
// far cheaper than reading the history in batches. It reports whether it did.
func rebuild(ctx context.Context, tx *sqlx.Tx, p *RollupProgress) (bool, error) {
	var last int64
	if err := tx.GetContext(ctx, &last, `SELECT COALESCE(max(seq), 0) FROM events`); err != nil {
		return false, fmt.Errorf("reading the last event: %w", err)
	}
	if last == 0 {
		return false, nil
	}
	// Each statement below sees at least what the ones before it saw: the buyers up to the
	// cursor, the queue rows taken (their exposures and entries are in the rebuild), the phase
	// ends recorded (the rebuild clips at them or at later ones). It reads everything once, so
	// it may take minutes on a large database.
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_shoppers (shopper_id)
		SELECT shopper_id FROM events WHERE seq <= $1 AND type IN ('order_completed', 'order_refunded')
		UNION SELECT shopper_id FROM loyalty_entries WHERE experiment IS NOT NULL OR reverses IS NOT NULL
		ON CONFLICT DO NOTHING`, last); err != nil {
		return false, fmt.Errorf("noting the buyers: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM analysis_rollup_queue`); err != nil {
		return false, fmt.Errorf("emptying the queue: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO analysis_rollup_phases (experiment_key, phase, ended_at)
		SELECT experiment_key, phase, ended_at FROM experiment_phases WHERE ended_at IS NOT NULL
		ON CONFLICT (experiment_key, phase) DO UPDATE SET ended_at = EXCLUDED.ended_at`); err != nil {
		return false, fmt.Errorf("recording the phases' ends: %w", err)
	}
	if err := recompute(ctx, tx, recomputeAllSQL, CUPEDLookback.Seconds()); err != nil {
		return false, fmt.Errorf("computing every row: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE analysis_rollup_state SET seq = $1`, last); err != nil {
		return false, fmt.Errorf("moving the cursor: %w", err)
	}
	// The planner needs the new rows' statistics at once, not when autovacuum comes by.
	if _, err := tx.ExecContext(ctx, `ANALYZE analysis_rollups, analysis_rollup_groups`); err != nil {
		return false, fmt.Errorf("analysing the rollups: %w", err)
	}
	p.Rebuilt, p.Cursor = true, last
	return true, nil
}
