package offers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/validate"
)

// Settings are the program's offer settings (PUT /v1/offers/settings): one frequency cap over
// every experiment's opportunities, or none.
type Settings struct {
	GlobalCap *experiments.FrequencyCap `json:"global_cap"`
	Version   int                       `json:"version"`
	UpdatedAt time.Time                 `json:"updated_at"`
}

// Holdout is the program's holdout (PUT /v1/holdout): Percent of shoppers, chosen by hashing
// their shopper id with Seed, see no offer of any experiment. Generation grows with each
// change of either, and numbers the holdout's analysis windows.
type Holdout struct {
	Percent    float64   `json:"percent"`
	Seed       string    `json:"seed"`
	Generation int       `json:"generation"`
	Version    int       `json:"version"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// MaxHoldoutPercent bounds the holdout: it is the smaller group, whose only job is to be
// compared with everyone else.
const MaxHoldoutPercent = 50

// Actor is who changed a setting, for the audit log.
type Actor = experiments.Actor

// Store keeps the program's offer settings, with their history.
type Store struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewStore returns the settings kept in db; now is the clock (time.Now when nil).
func NewStore(db *sqlx.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

type settingsRow struct {
	GlobalCap  []byte    `db:"global_cap"`
	Percent    float64   `db:"holdout_percent"`
	Seed       string    `db:"holdout_seed"`
	Generation int       `db:"holdout_generation"`
	Version    int       `db:"version"`
	UpdatedAt  time.Time `db:"updated_at"`
}

func readSettings(ctx context.Context, q sqlx.QueryerContext, lock bool) (settingsRow, error) {
	var r settingsRow
	query := `SELECT global_cap, holdout_percent, holdout_seed, holdout_generation, version, updated_at FROM offer_settings`
	if lock {
		query += ` FOR UPDATE`
	}
	err := sqlx.GetContext(ctx, q, &r, query)
	r.UpdatedAt = r.UpdatedAt.UTC()
	return r, err
}

func (r settingsRow) settings() (Settings, error) {
	s := Settings{Version: r.Version, UpdatedAt: r.UpdatedAt}
	return s, unmarshalOptional(r.GlobalCap, &s.GlobalCap)
}

func (r settingsRow) holdout() Holdout {
	return Holdout{Percent: r.Percent, Seed: r.Seed, Generation: r.Generation, Version: r.Version, UpdatedAt: r.UpdatedAt}
}

// unmarshalOptional decodes a nullable JSON column.
func unmarshalOptional(b []byte, dst any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decoding a stored column: %w", err)
	}
	return nil
}

// Settings returns the program's offer settings.
func (s *Store) Settings(ctx context.Context) (Settings, error) {
	r, err := readSettings(ctx, s.db, false)
	if err != nil {
		return Settings{}, database.Wrap(err, "reading the offer settings")
	}
	out, err := r.settings()
	return out, database.Wrap(err, "reading the offer settings")
}

// Holdout returns the program's holdout.
func (s *Store) Holdout(ctx context.Context) (Holdout, error) {
	r, err := readSettings(ctx, s.db, false)
	return r.holdout(), database.Wrap(err, "reading the holdout")
}

// ValidateCap reports the problems of a global cap; nil is no cap.
func ValidateCap(c *experiments.FrequencyCap) error {
	var p apperr.Problems
	if c != nil {
		c.Check(&p, "global_cap")
	}
	return p.Err()
}

// SetSettings replaces the program's offer settings; every server's assignment cache reloads
// them (NOTIFY at commit). The change is audited.
//
// version, when not nil, must be the version the caller read.
func (s *Store) SetSettings(ctx context.Context, actor Actor, version *int, cap *experiments.FrequencyCap) (Settings, error) {
	if err := ValidateCap(cap); err != nil {
		return Settings{}, err
	}
	var out Settings
	err := s.change(ctx, actor, "settings", version, func(tx *sqlx.Tx, cur settingsRow) (map[string]any, error) {
		old, err := cur.settings()
		if err != nil {
			return nil, err
		}
		if sameJSON(old.GlobalCap, cap) {
			return nil, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offer_settings SET global_cap = $1`, jsonOrNull(cap)); err != nil {
			return nil, err
		}
		return map[string]any{"global_cap": map[string]any{"from": old.GlobalCap, "to": cap}}, nil
	}, func(r settingsRow) error {
		var err error
		out, err = r.settings()
		return err
	})
	return out, database.Wrap(err, "changing the offer settings")
}

// ValidateHoldout reports the problems of a holdout.
func ValidateHoldout(percent float64, seed string) error {
	var p apperr.Problems
	if math.IsNaN(percent) || percent < 0 || percent > MaxHoldoutPercent {
		p.Add("percent", "out_of_range", "must be in [0, %d], got %v", MaxHoldoutPercent, percent)
	}
	switch {
	case seed == "" && percent > 0:
		p.Add("seed", "required", "a holdout needs a seed, such as holdout-2026: it decides who is held out")
	case !validate.Text(&p, "seed", seed):
	case len(seed) > experiments.MaxNameLen:
		p.Add("seed", "too_long", "must be at most %d bytes, got %d", experiments.MaxNameLen, len(seed))
	}
	return p.Err()
}

// SetHoldout replaces the program's holdout; a change of percent or seed starts a new
// generation. Every server's assignment cache reloads it; the change is audited.
//
// version, when not nil, must be the version the caller read.
func (s *Store) SetHoldout(ctx context.Context, actor Actor, version *int, percent float64, seed string) (Holdout, error) {
	if err := ValidateHoldout(percent, seed); err != nil {
		return Holdout{}, err
	}
	var out Holdout
	err := s.change(ctx, actor, "holdout", version, func(tx *sqlx.Tx, cur settingsRow) (map[string]any, error) {
		if cur.Percent == percent && cur.Seed == seed {
			return nil, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offer_settings SET holdout_percent = $1, holdout_seed = $2,
			holdout_generation = holdout_generation + 1`, percent, seed); err != nil {
			return nil, err
		}
		return map[string]any{
			"percent":    map[string]any{"from": cur.Percent, "to": percent},
			"seed":       map[string]any{"from": cur.Seed, "to": seed},
			"generation": map[string]any{"from": cur.Generation, "to": cur.Generation + 1},
		}, nil
	}, func(r settingsRow) error {
		out = r.holdout()
		return nil
	})
	return out, database.Wrap(err, "changing the holdout")
}

// change runs edit on the locked settings row; when it reports changes, the version moves,
// the change is audited and the caches are told. read receives the row as it ends.
func (s *Store) change(ctx context.Context, actor Actor, action string, version *int,
	edit func(tx *sqlx.Tx, cur settingsRow) (map[string]any, error), read func(settingsRow) error) error {
	return database.Transact(ctx, s.db, nil, func(dtx *database.Tx) error {
		tx := dtx.Tx
		cur, err := readSettings(ctx, tx, true)
		if err != nil {
			return err
		}
		if version != nil && *version != cur.Version {
			return apperr.New(apperr.VersionConflict, "the offer settings are at version %d, not %d: read them again and reapply your change", cur.Version, *version)
		}
		changes, err := edit(tx, cur)
		if err != nil {
			return err
		}
		if changes != nil {
			now := s.now().UTC()
			if _, err := tx.ExecContext(ctx, `UPDATE offer_settings SET version = version + 1, updated_at = $1`, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO offer_settings_audit (at, action, actor_role, actor_name, version, changes)
				VALUES ($1, $2, $3, $4, $5, $6)`, now, action, actor.Role, actor.Name, cur.Version+1, jsonOrNull(changes)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, experiments.NotifyChannel); err != nil {
				return err
			}
		}
		r, err := readSettings(ctx, tx, false)
		if err != nil {
			return err
		}
		return read(r)
	})
}

// AuditEntry is one change of the program's offer settings: the same record as an
// experiment's history.
type AuditEntry = experiments.AuditEntry

// History returns every change of the settings and the holdout, oldest first.
func (s *Store) History(ctx context.Context) ([]AuditEntry, error) {
	out := []AuditEntry{}
	err := s.db.SelectContext(ctx, &out, `SELECT id, at, action, actor_role, actor_name, version, changes
		FROM offer_settings_audit ORDER BY id`)
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, database.Wrap(err, "reading the history of the offer settings")
}

func jsonOrNull(v any) any {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
