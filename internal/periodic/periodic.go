// Package periodic runs a background component's work on a timer: the one loop the
// components that wake every so often (exposure loss counts, event partitions, bandit
// updates, offer budget spends) share, so that each says only what it does on a tick.
package periodic

import (
	"context"
	"time"
)

// Run calls fn every interval until ctx ends, and returns then. fn gets ctx and handles its
// own failures (a component logs and tries again at the next tick: a failure never stops the
// loop). A tick that comes while fn runs is dropped, as time.Ticker drops it.
func Run(ctx context.Context, every time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
