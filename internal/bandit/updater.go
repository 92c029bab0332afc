package bandit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/analysis"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/periodic"
	"github.com/xsell/xsell/internal/stats"
)

// DefaultTick is how often every server looks for bandits whose update is due.
const DefaultTick = 5 * time.Second

// Updater recomputes the weights of running bandits on their schedule. Every server runs one;
// an advisory lock per experiment makes one of them do each update (experiments.UpdateBandit),
// and the commit's notification carries the new weights to every server's assignment cache.
type Updater struct {
	db     *sqlx.DB
	store  *experiments.Store
	source *analysis.Source
	now    func() time.Time
	tick   time.Duration
	log    *slog.Logger
	// updated, when set, is told of every stored update, for tests to wait on.
	updated func(key string, u *experiments.BanditUpdate)
}

// Options configure an Updater; zero values take the defaults.
type Options struct {
	Tick  time.Duration    // how often due updates are looked for (DefaultTick)
	Clock func() time.Time // time.Now
	Log   *slog.Logger
	// Updated is told of every update this server stored.
	Updated func(key string, u *experiments.BanditUpdate)
}

// NewUpdater returns an updater that stores updates on db and reads the experiments' data on
// analysisDB, a pool whose statement timeout lets a report's aggregate finish; it starts nothing.
func NewUpdater(db, analysisDB *sqlx.DB, store *experiments.Store, o Options) *Updater {
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Updater{db: analysisDB, store: store, source: analysis.NewSource(analysisDB, o.Clock), now: o.Clock, tick: o.Tick, log: o.Log, updated: o.Updated}
}

// Run updates due bandits every tick until ctx ends. A failed update (the database away) is
// logged and tried again at the next tick: the weights in force stay meanwhile.
func (u *Updater) Run(ctx context.Context) error {
	periodic.Run(ctx, u.tick, func(ctx context.Context) {
		if _, err := u.UpdateDue(ctx); err != nil && ctx.Err() == nil {
			u.log.Warn("bandit updates failed; the weights in force stay until the next try", "error", err)
		}
	})
	return nil
}

// UpdateDue runs every update that is due now and returns those this server stored.
func (u *Updater) UpdateDue(ctx context.Context) ([]*experiments.BanditUpdate, error) {
	list, err := u.store.RunningBandits(ctx)
	if err != nil {
		return nil, err
	}
	now := u.now()
	var out []*experiments.BanditUpdate
	var errs []error
	for _, e := range list {
		if !e.Due(now) {
			continue
		}
		up, err := u.store.UpdateBandit(ctx, e.Key, now, func(e *experiments.Experiment) (*experiments.BanditUpdate, error) {
			return u.decide(ctx, u.source, e)
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if up != nil {
			out = append(out, up)
			u.log.Info("bandit updated", "experiment", e.Key, "phase", up.Phase, "period", up.Period, "weights", up.Weights, "note", up.Note)
			if u.updated != nil {
				u.updated(e.Key, up)
			}
		}
	}
	return out, errors.Join(errs...)
}

// UpdateNow runs an update an admin asked for, whether or not one is due, on the data up to
// at — now when nil, or an earlier time for simulated or back-filled traffic — and stores it as
// taking effect then.
func (u *Updater) UpdateNow(ctx context.Context, actor experiments.Actor, key string, when *time.Time) (*experiments.BanditUpdate, error) {
	at := u.now()
	if when != nil {
		at = *when
	}
	source := analysis.NewSource(u.db, func() time.Time { return at })
	up, err := u.store.UpdateBanditNow(ctx, actor, key, at, func(e *experiments.Experiment) (*experiments.BanditUpdate, error) {
		return u.decide(ctx, source, e)
	})
	if err == nil && up != nil {
		u.log.Info("bandit updated on demand", "experiment", key, "phase", up.Phase, "period", up.Period, "weights", up.Weights, "note", up.Note)
		if u.updated != nil {
			u.updated(key, up)
		}
	}
	return up, err
}

// decide reads the experiment's metric by period and arm, up to the source's now, and
// computes its update.
func (u *Updater) decide(ctx context.Context, source *analysis.Source, e *experiments.Experiment) (*experiments.BanditUpdate, error) {
	data, err := source.ByPeriod(ctx, e.Key, e.Allocation.Metric)
	if errors.Is(err, analysis.ErrNoExposures) {
		return hold(e, nil, "not enough data: no exposures yet"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s by period: %w", e.Key, err)
	}
	periods := make([][]Estimate, len(data.Arms))
	for p, arms := range data.Arms {
		periods[p] = make([]Estimate, len(arms))
		for a, s := range arms {
			if data.Metric.Kind == analysis.Ratio {
				periods[p][a] = FromRatio(s.Ratio)
			} else {
				periods[p][a] = FromMoments(s.Moments)
			}
		}
	}
	rules := RulesOf(e.Allocation, data.Metric.Direction == stats.LowerIsBetter)
	d, err := Decide(data.Variants, periods, rules, rand.New(rand.NewPCG(seedOf(e), uint64(e.Bandit.Period))))
	if err != nil {
		return nil, fmt.Errorf("deciding the weights of %s: %w", e.Key, err)
	}
	if d.Hold != "" {
		return hold(e, d.Arms, d.Hold), nil
	}
	arms, err := json.Marshal(d.Arms)
	if err != nil {
		return nil, err
	}
	up := &experiments.BanditUpdate{Period: ptr(e.Bandit.Period + 1), Weights: map[string]float64{}, Arms: arms}
	for i, v := range data.Variants {
		up.Weights[v] = d.Weights[i]
	}
	return up, nil
}

// hold is an update that keeps the weights in force, saying why.
func hold(e *experiments.Experiment, arms []ArmSummary, why string) *experiments.BanditUpdate {
	b, _ := json.Marshal(arms)
	if arms == nil {
		b = []byte("[]")
	}
	return &experiments.BanditUpdate{Weights: e.Bandit.Weights, Arms: b, Note: why}
}

// seedOf makes an update's posterior samples reproducible from its experiment and phase.
func seedOf(e *experiments.Experiment) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s:%d", e.Key, e.Phase)
	return h.Sum64()
}

func ptr[T any](v T) *T { return &v }
