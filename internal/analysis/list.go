package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ListItem is one experiment as `analyze list` shows it.
type ListItem struct {
	Key         string     `json:"key" db:"key"`
	Name        string     `json:"name" db:"name"`
	Status      string     `json:"status" db:"status"`
	Phase       int        `json:"phase" db:"phase"`
	StartedAt   *time.Time `json:"started_at" db:"started_at"`
	StoppedAt   *time.Time `json:"stopped_at,omitempty" db:"stopped_at"`
	DaysRunning *int       `json:"days_running"`         // whole days from start to stop (or now); null for a draft
	Exposed     int64      `json:"exposed" db:"exposed"` // shoppers exposed in the current phase, two-variant shoppers left out
}

// List returns every experiment with its status, phase, days running and exposed shoppers.
func (s *Source) List(ctx context.Context) ([]ListItem, error) {
	var items []ListItem
	err := sqlx.SelectContext(ctx, s.db, &items, `
		SELECT e.key, e.name, e.status, e.phase, e.started_at, e.stopped_at, COALESCE(x.n, 0) AS exposed
		FROM experiments e
		LEFT JOIN (SELECT experiment_key, phase, count(*) AS n FROM exposures
		           WHERE NOT multiple_variants GROUP BY experiment_key, phase) x
		  ON x.experiment_key = e.key AND x.phase = e.phase
		ORDER BY e.key`)
	if err != nil {
		return nil, fmt.Errorf("listing experiments: %w", err)
	}
	now := s.now()
	for i := range items {
		it := &items[i]
		if it.StartedAt == nil {
			continue
		}
		end := now
		if it.StoppedAt != nil {
			end = *it.StoppedAt
		}
		d := int(end.Sub(*it.StartedAt) / (24 * time.Hour))
		it.DaysRunning = &d
	}
	if items == nil {
		items = []ListItem{}
	}
	return items, nil
}
