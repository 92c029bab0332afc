package experiments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// NotifyChannel is the Postgres channel on which every committed change names its experiment,
// so that each server's assignment cache reloads it.
const NotifyChannel = "xsell_experiments"

// Actor is who made a change, for the audit log: the API key's role and name, never its secret.
type Actor struct {
	Role string
	Name string
}

// Store keeps experiments in Postgres. Every write runs in one transaction with its audit
// entry and a change notification.
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

// row is the experiments table.
type row struct {
	Key            string       `db:"key"`
	Name           string       `db:"name"`
	Hypothesis     string       `db:"hypothesis"`
	Status         string       `db:"status"`
	Phase          int          `db:"phase"`
	Seed           string       `db:"seed"`
	HashAttribute  string       `db:"hash_attribute"`
	Coverage       float64      `db:"coverage"`
	Variants       []byte       `db:"variants"`
	Targeting      []byte       `db:"targeting"`
	Layer          []byte       `db:"layer"`
	TargetProducts []byte       `db:"target_products"`
	Metrics        []byte       `db:"metrics"`
	Forced         []byte       `db:"forced"`
	FrequencyCap   []byte       `db:"frequency_cap"`
	Budget         []byte       `db:"budget"`
	Allocation     []byte       `db:"allocation"`
	Version        int          `db:"version"`
	CreatedAt      time.Time    `db:"created_at"`
	UpdatedAt      time.Time    `db:"updated_at"`
	StartedAt      sql.NullTime `db:"started_at"`
	StoppedAt      sql.NullTime `db:"stopped_at"`
}

const columns = `key, name, hypothesis, status, phase, seed, hash_attribute, coverage, variants,
	targeting, layer, target_products, metrics, forced, frequency_cap, budget, allocation, version, created_at,
	updated_at, started_at, stopped_at`

func (r *row) experiment() (*Experiment, error) {
	e := &Experiment{
		Definition: Definition{
			Key: r.Key, Name: r.Name, Hypothesis: r.Hypothesis, Seed: r.Seed,
			HashAttribute: r.HashAttribute, Coverage: &r.Coverage,
		},
		Status: Status(r.Status), Phase: r.Phase, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.StartedAt.Valid {
		t := r.StartedAt.Time.UTC()
		e.StartedAt = &t
	}
	if r.StoppedAt.Valid {
		t := r.StoppedAt.Time.UTC()
		e.StoppedAt = &t
	}
	if len(r.Targeting) > 0 {
		e.Targeting = json.RawMessage(r.Targeting)
	}
	for _, f := range []struct {
		b   []byte
		dst any
	}{{r.Variants, &e.Variants}, {r.Layer, &e.Layer}, {r.TargetProducts, &e.TargetProducts}, {r.Metrics, &e.Metrics}, {r.Forced, &e.Forced},
		{r.FrequencyCap, &e.FrequencyCap}, {r.Budget, &e.Budget}, {r.Allocation, &e.Allocation}} {
		if len(f.b) == 0 {
			continue
		}
		if err := json.Unmarshal(f.b, f.dst); err != nil {
			return nil, fmt.Errorf("experiment %s: decoding a stored column: %w", r.Key, err)
		}
	}
	return e, nil
}

func jsonb(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types reach here
	}
	if string(b) == "null" {
		return nil
	}
	return b
}

func nullableJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return []byte(raw)
}

// tx runs fn in a transaction (database.Transact), committing when it returns nil; what
// names the work in the error.
func (s *Store) tx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	err := database.Transact(ctx, s.db, nil, func(tx *database.Tx) error { return fn(tx.Tx) })
	return database.Wrap(err, "%s", what)
}

func notFound(key string) error { return apperr.New(apperr.NotFound, "no experiment %q", key) }

// get reads one experiment, locking its row when inside a write.
func get(ctx context.Context, q sqlx.QueryerContext, key string, lock bool) (*Experiment, error) {
	query := `SELECT ` + columns + ` FROM experiments WHERE key = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	var r row
	if err := sqlx.GetContext(ctx, q, &r, query, key); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound(key)
		}
		return nil, database.Wrap(err, "reading experiment %q", key)
	}
	e, err := r.experiment()
	if err != nil {
		return nil, err
	}
	return e, database.Wrap(attachBandit(ctx, q, []*Experiment{e}), "reading experiment %q", key)
}

// Get returns the experiment with the given key.
func (s *Store) Get(ctx context.Context, key string) (*Experiment, error) {
	return get(ctx, s.db, key, false)
}

// ListFilter selects a page of experiments.
type ListFilter struct {
	Status Status // empty: any
	After  string // keys after this one (the previous page's cursor)
	Limit  int
	// Search keeps the experiments whose key or name holds it, ignoring case; empty: all.
	Search string
}

// List returns experiments in key order and the cursor of the next page ("" when none).
func (s *Store) List(ctx context.Context, f ListFilter) ([]*Experiment, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var rows []row
	like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Search) + "%"
	err := sqlx.SelectContext(ctx, s.db, &rows, `SELECT `+columns+` FROM experiments
		WHERE ($1 = '' OR status = $1) AND key > $2 AND ($4 = '%%' OR key ILIKE $4 OR name ILIKE $4)
		ORDER BY key LIMIT $3`, string(f.Status), f.After, f.Limit+1, like)
	if err != nil {
		return nil, "", database.Wrap(err, "listing experiments")
	}
	next := ""
	if len(rows) > f.Limit {
		rows = rows[:f.Limit]
		next = rows[len(rows)-1].Key
	}
	out := make([]*Experiment, 0, len(rows))
	for i := range rows {
		e, err := rows[i].experiment()
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, next, database.Wrap(attachBandit(ctx, s.db, out), "listing experiments")
}

// All returns every experiment, in key order, for the assignment cache.
func (s *Store) All(ctx context.Context) ([]*Experiment, error) {
	return s.selectAll(ctx, "loading experiments", ``)
}

// selectAll reads the experiments a condition selects (all for ""), in key order, with their
// bandit states; what names the work in the error.
func (s *Store) selectAll(ctx context.Context, what, where string) ([]*Experiment, error) {
	var rows []row
	if err := sqlx.SelectContext(ctx, s.db, &rows, `SELECT `+columns+` FROM experiments `+where+` ORDER BY key`); err != nil {
		return nil, database.Wrap(err, "%s", what)
	}
	out := make([]*Experiment, 0, len(rows))
	for i := range rows {
		e, err := rows[i].experiment()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, database.Wrap(attachBandit(ctx, s.db, out), "%s", what)
}

// Create stores a new draft.
func (s *Store) Create(ctx context.Context, actor Actor, def Definition) (*Experiment, error) {
	def.Normalize()
	if err := def.Validate(); err != nil {
		return nil, err
	}
	var out *Experiment
	err := s.tx(ctx, "creating experiment "+strconv.Quote(def.Key), func(tx *sqlx.Tx) error {
		now := s.now().UTC()
		_, err := tx.ExecContext(ctx, `INSERT INTO experiments (key, name, hypothesis, status, phase, seed,
			hash_attribute, coverage, variants, targeting, layer, target_products, metrics, forced, allocation, version,
			created_at, updated_at, frequency_cap, budget) VALUES ($1,$2,$3,'draft',1,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14,1,$13,$13,$15,$16)`,
			def.Key, def.Name, def.Hypothesis, def.Seed, def.HashAttribute, *def.Coverage, jsonb(def.Variants),
			nullableJSON(def.Targeting), jsonb(def.Layer), jsonb(nonNil(def.TargetProducts)), jsonb(def.Metrics),
			jsonb(nonNilMap(def.Forced)), now, jsonb(def.Allocation), jsonb(def.FrequencyCap), jsonb(def.Budget))
		if isUniqueViolation(err) {
			return apperr.New(apperr.AlreadyExists, "an experiment with key %q exists", def.Key)
		}
		if err != nil {
			return err
		}
		if out, err = get(ctx, tx, def.Key, false); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, out, "create", map[string]any{"definition": out.Definition})
	})
	return out, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}

// checkVersion enforces optimistic concurrency: want nil means the caller did not say.
func checkVersion(e *Experiment, want *int) error {
	if want != nil && *want != e.Version {
		return &apperr.Error{Code: apperr.VersionConflict,
			Message: fmt.Sprintf("experiment %q is at version %d, not %d: read it again and reapply your change", e.Key, e.Version, *want)}
	}
	return nil
}

// edit runs fn in a transaction on the experiment, locked and read, after checking that it is
// still at the version the caller read (when the caller said).
func (s *Store) edit(ctx context.Context, key string, version *int, fn func(tx *sqlx.Tx, cur *Experiment) error) error {
	return s.tx(ctx, "changing experiment "+strconv.Quote(key), func(tx *sqlx.Tx) error {
		cur, err := get(ctx, tx, key, true)
		if err != nil {
			return err
		}
		if err := checkVersion(cur, version); err != nil {
			return err
		}
		return fn(tx, cur)
	})
}

// Update replaces an experiment's definition. version must match the stored one; read holds
// the server's fields as the client sent them back, which must match the stored ones.
func (s *Store) Update(ctx context.Context, actor Actor, key string, def Definition, read ReadOnly, version *int) (*Experiment, error) {
	if version == nil {
		return nil, apperr.New(apperr.PreconditionRequired, "updating needs the version you read: send If-Match: \"<version>\" or a \"version\" field")
	}
	if def.Key == "" {
		def.Key = key
	}
	if def.Key != key {
		e := apperr.New(apperr.Invalid, "key: an experiment's key cannot change (path says %q)", key)
		e.Details = []apperr.Detail{{Field: "key", Code: "immutable", Message: "must equal the key in the path"}}
		return nil, e
	}
	var out *Experiment
	err := s.edit(ctx, key, version, func(tx *sqlx.Tx, cur *Experiment) error {
		var err error
		if err := read.check(cur); err != nil {
			return err
		}
		if cur.Status.Started() && def.Seed == "" {
			def.Seed = cur.Seed // the stored seed may be key:phase, not the default
		}
		def.Normalize()
		if err := def.Validate(); err != nil {
			return err
		}
		changes := diff(cur.Definition, def)
		if len(changes) == 0 {
			out = cur
			return nil
		}
		if err := editable(cur.Status, changes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE experiments SET name=$2, hypothesis=$3, seed=$4, hash_attribute=$5,
			coverage=$6, variants=$7, targeting=$8, layer=$9, target_products=$10, metrics=$11, forced=$12,
			allocation=$14, version=version+1, updated_at=$13, frequency_cap=$15, budget=$16 WHERE key=$1`,
			key, def.Name, def.Hypothesis, def.Seed, def.HashAttribute, *def.Coverage, jsonb(def.Variants),
			nullableJSON(def.Targeting), jsonb(def.Layer), jsonb(nonNil(def.TargetProducts)), jsonb(def.Metrics),
			jsonb(nonNilMap(def.Forced)), s.now().UTC(), jsonb(def.Allocation), jsonb(def.FrequencyCap), jsonb(def.Budget)); err != nil {
			return err
		}
		if out, err = get(ctx, tx, key, false); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, out, "update", changes)
	})
	return out, err
}

// Delete removes a draft; started experiments are kept for their data.
func (s *Store) Delete(ctx context.Context, actor Actor, key string, version *int) error {
	return s.edit(ctx, key, version, func(tx *sqlx.Tx, cur *Experiment) error {
		if cur.Status != StatusDraft {
			return apperr.New(apperr.InvalidTransition, "only drafts can be deleted; experiment %q is %s (stop it instead)", key, cur.Status)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM experiments WHERE key = $1`, key); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, cur, "delete", map[string]any{})
	})
}

// Transition applies a lifecycle action.
func (s *Store) Transition(ctx context.Context, actor Actor, key string, a Action, version *int) (*Experiment, error) {
	var out *Experiment
	err := s.edit(ctx, key, version, func(tx *sqlx.Tx, cur *Experiment) error {
		var err error
		next, ok := cur.Status.Next(a)
		if !ok {
			return apperr.New(apperr.InvalidTransition, "cannot %s experiment %q: it is %s", a, key, cur.Status)
		}
		now := s.now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE experiments SET status=$2, version=version+1, updated_at=$3,
			started_at = CASE WHEN $4 THEN $3 ELSE started_at END,
			stopped_at = CASE WHEN $5 THEN $3 ELSE stopped_at END WHERE key=$1`,
			key, string(next), now, a == ActionStart, a == ActionStop); err != nil {
			return err
		}
		switch a {
		case ActionStart:
			if err := insertPhase(ctx, tx, cur, now); err != nil {
				return err
			}
		case ActionStop:
			if _, err := tx.ExecContext(ctx, `UPDATE experiment_phases SET ended_at=$3
				WHERE experiment_key=$1 AND phase=$2`, key, cur.Phase, now); err != nil {
				return err
			}
		}
		if out, err = get(ctx, tx, key, false); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, out, string(a), map[string]any{"status": map[string]Status{"from": cur.Status, "to": next}})
	})
	return out, err
}

func insertPhase(ctx context.Context, tx *sqlx.Tx, e *Experiment, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at)
		VALUES ($1,$2,$3,$4,$5,$6)`, e.Key, e.Phase, e.Seed, *e.Coverage, jsonb(e.Variants), at)
	return err
}

// PhaseChange is a new allocation: the variants (with weights) and coverage of the new phase;
// what is left out stays as it was.
type PhaseChange struct {
	Variants []Variant `json:"variants,omitempty"`
	Coverage *float64  `json:"coverage,omitempty"`
	// Allocation, when given, replaces the allocation (a bandit restarts at the new phase's
	// weights with its burn-in).
	Allocation *Allocation `json:"allocation,omitempty"`
}

// NewPhase closes the current phase and starts the next with a new allocation and the seed
// key:phase, so that shoppers are re-randomised and analysis starts a fresh window.
func (s *Store) NewPhase(ctx context.Context, actor Actor, key string, change PhaseChange, version *int) (*Experiment, error) {
	var out *Experiment
	err := s.edit(ctx, key, version, func(tx *sqlx.Tx, cur *Experiment) error {
		var err error
		if cur.Status != StatusRunning && cur.Status != StatusPaused {
			return apperr.New(apperr.InvalidTransition, "a new phase needs a running or paused experiment; %q is %s", key, cur.Status)
		}
		def := cur.Definition
		if change.Variants != nil {
			def.Variants = change.Variants
		}
		if change.Coverage != nil {
			def.Coverage = change.Coverage
		}
		if change.Allocation != nil {
			def.Allocation = change.Allocation
		}
		phase := cur.Phase + 1
		def.Seed = key + ":" + strconv.Itoa(phase)
		def.Normalize()
		if err := def.Validate(); err != nil {
			return err
		}
		now := s.now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE experiment_phases SET ended_at=$3 WHERE experiment_key=$1 AND phase=$2`,
			key, cur.Phase, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE experiments SET phase=$2, seed=$3, coverage=$4, variants=$5,
			allocation=$7, version=version+1, updated_at=$6 WHERE key=$1`, key, phase, def.Seed, *def.Coverage, jsonb(def.Variants), now,
			jsonb(def.Allocation)); err != nil {
			return err
		}
		if out, err = get(ctx, tx, key, false); err != nil {
			return err
		}
		if err := insertPhase(ctx, tx, out, now); err != nil {
			return err
		}
		changes := diff(cur.Definition, out.Definition)
		changes["phase"] = map[string]int{"from": cur.Phase, "to": phase}
		return s.audit(ctx, tx, actor, out, "new_phase", changes)
	})
	return out, err
}
