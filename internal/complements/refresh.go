package complements

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// DefaultRefresh is how often the model is rebuilt unless XSELL_COMPLEMENTS_REFRESH says
// otherwise.
const DefaultRefresh = time.Hour

// Refresher rebuilds the model on a schedule and on request. Every server runs one; the build
// lock and the age of the newest snapshot make one of them build per period, whichever comes
// first.
type Refresher struct {
	Builder *Builder
	// Every is how old the newest snapshot may grow before a rebuild; 0 turns scheduled builds
	// off on this server (it still builds on request).
	Every time.Duration
	// Check is how often the age is looked at (a minute, or Every when shorter): a rebuild
	// comes at most this late.
	Check time.Duration
	Log   *slog.Logger
	// Checked, when set, is told the outcome of every check: the snapshot built (nil when
	// none was due) or the error (ErrBusy while another server builds).
	Checked func(*Snapshot, error)

	trigger  chan struct{}
	building atomic.Bool
}

// NewRefresher returns a refresher that builds with b every period (0: only on request).
func NewRefresher(b *Builder, every time.Duration, log *slog.Logger) *Refresher {
	return &Refresher{Builder: b, Every: every, Log: log, trigger: make(chan struct{}, 1)}
}

// Trigger asks for a build now, whatever the age of the newest snapshot; it returns at once.
// Triggers that come while one waits are one build.
func (r *Refresher) Trigger() {
	select {
	case r.triggers() <- struct{}{}:
	default:
	}
}

// Building reports whether this server is building, or has a build requested.
func (r *Refresher) Building() bool { return r.building.Load() || len(r.triggers()) > 0 }

func (r *Refresher) triggers() chan struct{} {
	if r.trigger == nil {
		panic("complements: a Refresher is made with NewRefresher")
	}
	return r.trigger
}

// Run builds until ctx ends, and returns nil once it has stopped. A failed build is logged
// and tried again at the next check; the servers keep serving the last snapshot.
func (r *Refresher) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if r.Every > 0 {
		check := r.Check
		if check <= 0 {
			check = min(r.Every, time.Minute)
		}
		t := time.NewTicker(check)
		defer t.Stop()
		tick = t.C
		r.check(ctx, r.Every)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			r.check(ctx, r.Every)
		case <-r.triggers():
			r.check(ctx, 0)
		}
	}
}

// check builds when the newest snapshot is at least olderThan old (0: in any case).
func (r *Refresher) check(ctx context.Context, olderThan time.Duration) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.building.Store(true)
	snap, err := r.Builder.Build(ctx, olderThan)
	r.building.Store(false)
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, ErrBusy):
	case err != nil:
		log.Error("complements build failed; serving the last snapshot", "error", err)
	case snap != nil:
		log.Info("complements snapshot built", "version", snap.Version, "orders", snap.Orders,
			"skipped_orders", snap.SkippedOrders, "catalog", snap.Catalog, "products", snap.Products,
			"pairs", snap.Pairs, "build_ms", snap.BuildMillis)
	}
	if r.Checked != nil {
		r.Checked(snap, err)
	}
}
