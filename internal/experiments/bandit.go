package experiments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// A bandit's weights change within a phase: each scheduled update that moves them starts a new
// period of the same phase (period 0 is the burn-in at the definition's weights), stored in
// bandit_updates. Shoppers keep their variant across periods (sticky.go); analysis compares the
// arms period by period (internal/analysis, periods.go). docs/bandits.md has the whole story.

// BanditState is where a bandit allocation stands in the experiment's current phase.
type BanditState struct {
	// Period is the current period: 0 during the burn-in, then one more per update that
	// changed the weights.
	Period int `json:"period"`
	// Since is when the current period started.
	Since time.Time `json:"since"`
	// Weights are the shares of traffic in force, by variant key.
	Weights map[string]float64 `json:"weights"`
	// LastUpdate is the last scheduled update, whether it moved the weights or held them.
	LastUpdate *time.Time `json:"last_update,omitempty"`
	// NextUpdate is when the next update is due, while the experiment runs.
	NextUpdate *time.Time `json:"next_update,omitempty"`
	// phaseStart is when the current phase started.
	phaseStart time.Time
}

// CurrentWeights are the weights assignment uses, in variant order: the bandit's current
// period's, or the definition's.
func (e *Experiment) CurrentWeights() []float64 {
	w := e.Weights()
	if e.Bandit == nil || e.Bandit.Period == 0 {
		return w
	}
	for i, v := range e.Variants {
		w[i] = e.Bandit.Weights[v.Key]
	}
	return w
}

// Due reports whether a bandit's scheduled update is due at now.
func (e *Experiment) Due(now time.Time) bool {
	return e.Status == StatusRunning && e.Bandit != nil && e.Bandit.NextUpdate != nil && !now.Before(*e.Bandit.NextUpdate)
}

// banditStateSQL reads, for the bandit experiments named in $1, the start of the current phase,
// the last update and the last one that changed the weights.
const banditStateSQL = `
SELECT e.key, ph.started_at, last.at AS last_at, cur.period, cur.at AS period_at, cur.weights
FROM experiments e
JOIN experiment_phases ph ON ph.experiment_key = e.key AND ph.phase = e.phase
LEFT JOIN LATERAL (SELECT max(b.at) AS at FROM bandit_updates b
                   WHERE b.experiment_key = e.key AND b.phase = e.phase) last ON true
LEFT JOIN LATERAL (SELECT b.period, b.at, b.weights FROM bandit_updates b
                   WHERE b.experiment_key = e.key AND b.phase = e.phase AND b.period IS NOT NULL
                   ORDER BY b.period DESC LIMIT 1) cur ON true
WHERE e.key = ANY($1)`

// attachBandit fills the bandit state of the started bandit experiments in list.
func attachBandit(ctx context.Context, q sqlx.QueryerContext, list []*Experiment) error {
	byKey := map[string]*Experiment{}
	var keys []string
	for _, e := range list {
		if e.Allocation.IsBandit() && e.Status.Started() {
			byKey[e.Key] = e
			keys = append(keys, e.Key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var rows []struct {
		Key       string        `db:"key"`
		StartedAt time.Time     `db:"started_at"`
		LastAt    sql.NullTime  `db:"last_at"`
		Period    sql.NullInt64 `db:"period"`
		PeriodAt  sql.NullTime  `db:"period_at"`
		Weights   []byte        `db:"weights"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, banditStateSQL, pq.Array(keys)); err != nil {
		return fmt.Errorf("reading bandit states: %w", err)
	}
	for _, r := range rows {
		e := byKey[r.Key]
		st := &BanditState{Since: r.StartedAt.UTC(), phaseStart: r.StartedAt.UTC(), Weights: map[string]float64{}}
		for _, v := range e.Variants {
			st.Weights[v.Key] = v.Weight
		}
		if r.Period.Valid {
			st.Period, st.Since = int(r.Period.Int64), r.PeriodAt.Time.UTC()
			if err := json.Unmarshal(r.Weights, &st.Weights); err != nil {
				return fmt.Errorf("experiment %s: decoding bandit weights: %w", r.Key, err)
			}
		}
		next := st.phaseStart.Add(e.Allocation.BurnInDuration())
		if r.LastAt.Valid {
			t := r.LastAt.Time.UTC()
			st.LastUpdate = &t
			next = maxTime(next, t.Add(e.Allocation.UpdateEveryDuration()))
		}
		if e.Status == StatusRunning {
			st.NextUpdate = &next
		}
		e.Bandit = st
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// BanditUpdate is one scheduled recomputation of a bandit's weights, as stored and listed.
type BanditUpdate struct {
	ID    int64     `json:"id"`
	Phase int       `json:"phase"`
	At    time.Time `json:"at"`
	// Period is the period the update started; nil when it held the weights (Note says why).
	Period *int `json:"period"`
	// Weights are the shares in force after the update, by variant key.
	Weights map[string]float64 `json:"weights"`
	// Arms is the posterior summary per arm the weights came from (bandit.Summary).
	Arms json.RawMessage `json:"arms"`
	Note string          `json:"note,omitempty"`
}

// banditLockClass is the first key of the advisory locks that make one server of the fleet
// update a bandit at a time; the second is the hash of the experiment's key.
const banditLockClass = 0x62616e64 // "band"

// UpdateBandit runs one scheduled update of a bandit experiment, on one server of the fleet: it
// takes the experiment's advisory lock (another server holding it is updating: nothing to do),
// checks that the update is still due at now, and calls decide with the experiment and its
// bandit state. decide returns the update to store, or nil to store nothing. The update is
// stored with an audit entry (action "reweight", or "reweight_held" when the weights stay)
// whose commit notifies every server's cache. It returns the stored update, or nil.
func (s *Store) UpdateBandit(ctx context.Context, key string, now time.Time, decide func(*Experiment) (*BanditUpdate, error)) (*BanditUpdate, error) {
	return s.updateBandit(ctx, key, now, nil, decide)
}

// UpdateBanditNow runs an update that an admin asked for, whether or not it is due: at is when
// it takes effect (the caller's now, or an earlier time for simulated or back-filled traffic),
// which must fall after the current period's start (the burn-in's end may fall anywhere). It
// waits for an update in progress.
func (s *Store) UpdateBanditNow(ctx context.Context, actor Actor, key string, at time.Time, decide func(*Experiment) (*BanditUpdate, error)) (*BanditUpdate, error) {
	return s.updateBandit(ctx, key, at, &actor, decide)
}

// updateBandit is UpdateBandit on schedule (actor nil) or on demand.
func (s *Store) updateBandit(ctx context.Context, key string, now time.Time, actor *Actor, decide func(*Experiment) (*BanditUpdate, error)) (*BanditUpdate, error) {
	var out *BanditUpdate
	err := s.tx(ctx, "updating the bandit of "+key, func(tx *sqlx.Tx) error {
		out = nil
		lock := `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`
		if actor != nil {
			lock = `SELECT true FROM (SELECT pg_advisory_xact_lock($1, hashtext($2))) l`
		}
		var locked bool
		if err := tx.GetContext(ctx, &locked, lock, banditLockClass, key); err != nil || !locked {
			return err
		}
		e, err := get(ctx, tx, key, false)
		if err != nil {
			return err
		}
		if actor == nil && (!e.Allocation.IsBandit() || !e.Due(now)) {
			return nil
		}
		if actor != nil {
			if err := onDemand(e, now); err != nil {
				return err
			}
		}
		u, err := decide(e)
		if err != nil || u == nil {
			return err
		}
		// The decision took a while; the experiment must still be in the phase and running.
		var cur struct {
			Phase  int    `db:"phase"`
			Status string `db:"status"`
		}
		if err := tx.GetContext(ctx, &cur, `SELECT phase, status FROM experiments WHERE key = $1 FOR SHARE`, key); err != nil {
			return err
		}
		if cur.Phase != e.Phase || Status(cur.Status) != StatusRunning {
			return nil
		}
		u.Phase, u.At = e.Phase, now.UTC()
		if err := tx.GetContext(ctx, &u.ID, `INSERT INTO bandit_updates (experiment_key, phase, period, at, weights, arms, note)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, key, u.Phase, u.Period, u.At, jsonb(u.Weights), []byte(u.Arms), u.Note); err != nil {
			return err
		}
		action, changes := "reweight_held", map[string]any{"note": u.Note}
		if u.Period != nil {
			action = "reweight"
			changes = map[string]any{"period": map[string]int{"from": e.Bandit.Period, "to": *u.Period},
				"weights": map[string]any{"from": e.Bandit.Weights, "to": u.Weights}}
		}
		changes["arms"] = u.Arms
		out = u
		by := Actor{Role: "system", Name: "bandit"}
		if actor != nil {
			by = *actor
		}
		return s.audit(ctx, tx, by, e, action, changes)
	})
	return out, err
}

// onDemand says why an update cannot be run now at at, or nil.
func onDemand(e *Experiment, at time.Time) error {
	switch {
	case !e.Allocation.IsBandit():
		return apperr.New(apperr.Conflict, "experiment %q has a fixed allocation: only a bandit's weights are updated", e.Key)
	case e.Status != StatusRunning:
		return apperr.New(apperr.InvalidTransition, "experiment %q is %s: a bandit is updated while it runs", e.Key, e.Status)
	case e.Bandit == nil:
		return apperr.New(apperr.Conflict, "experiment %q has no bandit state yet", e.Key)
	// The burn-in may end at any time, even before the phase started, for traffic back-dated
	// into it; after that, periods follow each other.
	case e.Bandit.Period > 0 && !at.After(e.Bandit.Since):
		return apperr.New(apperr.Conflict, "an update at %s would not follow the current period, which started at %s",
			at.UTC().Format(time.RFC3339Nano), e.Bandit.Since.Format(time.RFC3339Nano))
	}
	return nil
}

// RunningBandits returns the running bandit experiments with their bandit state, for the
// scheduler to see which are due.
func (s *Store) RunningBandits(ctx context.Context) ([]*Experiment, error) {
	return s.selectAll(ctx, "listing running bandits", `WHERE status = 'running' AND allocation ->> 'type' = 'bandit'`)
}

// BanditUpdates returns a bandit experiment's updates, oldest first, every phase.
func (s *Store) BanditUpdates(ctx context.Context, key string) ([]BanditUpdate, error) {
	var rows []struct {
		ID      int64         `db:"id"`
		Phase   int           `db:"phase"`
		At      time.Time     `db:"at"`
		Period  sql.NullInt64 `db:"period"`
		Weights []byte        `db:"weights"`
		Arms    []byte        `db:"arms"`
		Note    string        `db:"note"`
	}
	if err := sqlx.SelectContext(ctx, s.db, &rows, `SELECT id, phase, at, period, weights, arms, note
		FROM bandit_updates WHERE experiment_key = $1 ORDER BY id`, key); err != nil {
		return nil, database.Wrap(err, "reading the bandit updates of %q", key)
	}
	out := make([]BanditUpdate, 0, len(rows))
	for _, r := range rows {
		u := BanditUpdate{ID: r.ID, Phase: r.Phase, At: r.At.UTC(), Arms: r.Arms, Note: r.Note}
		if r.Period.Valid {
			u.Period = ptrTo(int(r.Period.Int64))
		}
		if err := json.Unmarshal(r.Weights, &u.Weights); err != nil {
			return nil, fmt.Errorf("bandit update %d of %s: decoding weights: %w", r.ID, key, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// Period is a stretch of a phase with constant weights: the burn-in (Index 0) or the time
// after an update that changed them.
type Period struct {
	Index int
	Start time.Time
	// Weights are the shares of traffic, in the order of the phase's variants.
	Weights []float64
}

// Periods returns the periods of an experiment's phase in order; a phase that is not a
// bandit's has one period, the whole phase. variants are the phase's.
func Periods(ctx context.Context, q sqlx.QueryerContext, key string, phase int, start time.Time, variants []Variant) ([]Period, error) {
	base := make([]float64, len(variants))
	for i, v := range variants {
		base[i] = v.Weight
	}
	out := []Period{{Index: 0, Start: start, Weights: base}}
	var rows []struct {
		Period  int       `db:"period"`
		At      time.Time `db:"at"`
		Weights []byte    `db:"weights"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT period, at, weights FROM bandit_updates
		WHERE experiment_key = $1 AND phase = $2 AND period IS NOT NULL ORDER BY period`, key, phase); err != nil {
		return nil, fmt.Errorf("reading the periods of %s phase %d: %w", key, phase, err)
	}
	for _, r := range rows {
		var byKey map[string]float64
		if err := json.Unmarshal(r.Weights, &byKey); err != nil {
			return nil, fmt.Errorf("period %d of %s: decoding weights: %w", r.Period, key, err)
		}
		p := Period{Index: r.Period, Start: r.At.UTC(), Weights: make([]float64, len(variants))}
		for i, v := range variants {
			w, ok := byKey[v.Key]
			if !ok {
				return nil, errors.New("period " + fmt.Sprint(r.Period) + " of " + key + " has no weight for variant " + v.Key)
			}
			p.Weights[i] = w
		}
		out = append(out, p)
	}
	return out, nil
}
