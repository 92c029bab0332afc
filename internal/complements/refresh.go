package complements

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultRefresh is how often the model is rebuilt unless XSELL_COMPLEMENTS_REFRESH says
// otherwise.
const DefaultRefresh = time.Hour

// Refresher rebuilds the model on a schedule. Every server runs one; the build lock and the
// age of the newest snapshot make one of them build per period, whichever comes first.
type Refresher struct {
	Builder *Builder
	// Every is how old the newest snapshot may grow before a rebuild.
	Every time.Duration
	// Check is how often the age is looked at (a minute, or Every when shorter): a rebuild
	// comes at most this late.
	Check time.Duration
	Log   *slog.Logger
	// Checked, when set, is told the outcome of every check: the snapshot built (nil when
	// none was due) or the error (ErrBusy while another server builds).
	Checked func(*Snapshot, error)
}

// Run rebuilds until ctx ends, and returns nil once it has stopped. A failed build is logged
// and tried again at the next check; the servers keep serving the last snapshot.
func (r *Refresher) Run(ctx context.Context) error {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	every := r.Every
	if every <= 0 {
		every = DefaultRefresh
	}
	check := r.Check
	if check <= 0 {
		check = min(every, time.Minute)
	}
	tick := time.NewTicker(check)
	defer tick.Stop()
	for {
		snap, err := r.Builder.Build(ctx, every)
		switch {
		case ctx.Err() != nil:
			return nil
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
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
