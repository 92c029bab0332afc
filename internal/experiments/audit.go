package experiments

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
)

// AuditEntry is one change in an experiment's history.
type AuditEntry struct {
	ID      int64           `json:"id" db:"id"`
	At      time.Time       `json:"at" db:"at"`
	Action  string          `json:"action" db:"action"`
	Role    string          `json:"role" db:"actor_role"`
	KeyName string          `json:"key_name" db:"actor_name"`
	Version int             `json:"version" db:"version"`
	Changes json.RawMessage `json:"changes" db:"changes"`
}

func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, actor Actor, e *Experiment, action string, changes map[string]any) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO experiment_audit (experiment_key, at, action, actor_role, actor_name, version, changes)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, e.Key, s.now().UTC(), action, actor.Role, actor.Name, e.Version, jsonb(changes)); err != nil {
		return err
	}
	// Delivered at commit, to every server's assignment cache.
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, e.Key)
	return err
}

// History returns an experiment's audit log, oldest first; it outlives a deleted draft.
func (s *Store) History(ctx context.Context, key string) ([]AuditEntry, error) {
	var out []AuditEntry
	if err := sqlx.SelectContext(ctx, s.db, &out, `SELECT id, at, action, actor_role, actor_name, version, changes
		FROM experiment_audit WHERE experiment_key = $1 ORDER BY id`, key); err != nil {
		return nil, database.Wrap(err, "reading the history of experiment %q", key)
	}
	if len(out) == 0 {
		return nil, notFound(key)
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}
