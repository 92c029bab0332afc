package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/xsell/xsell/internal/periodic"
)

// gcPercent is the server's GOGC unless the operator sets one: each assignment allocates a few
// kilobytes that die at once, so collecting at 5× rather than 2× the live heap cuts the
// collector's work (docs/benchmarks.md).
const gcPercent = 400

// maxGCPercent bounds what the heap floor may ask of a tiny live heap.
const maxGCPercent = 100_000

// gcPercentFor is the GOGC that puts the heap goal, live × (1 + GOGC/100), at floor bytes or
// above, and never below base: a floor matters only while the live heap is small, and a large
// one is collected exactly as at base.
func gcPercentFor(live, floor uint64, base int) int {
	if live == 0 || floor <= live {
		return base
	}
	p := (floor - live) * 100 / live
	if (floor-live)*100%live != 0 {
		p++ // the goal must reach the floor, not stop short of it by a rounding
	}
	if p > maxGCPercent {
		return maxGCPercent
	}
	return max(int(p), base)
}

// tuneGC sets the collector's target unless the operator set GOGC, and while ctx lasts keeps
// the heap goal at floor bytes or more (none when floor is 0). A small live heap collected at
// 5× its size is collected about once a second under load, and requests caught in a cycle's
// mark wait longer; a floor of a few hundred megabytes makes cycles several times rarer for
// that memory, and costs nothing once the live heap is a fifth of the floor or more.
func tuneGC(ctx context.Context, floor uint64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	if floor == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := gcPercent
	adjust := func(context.Context) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if p := gcPercentFor(sample[0].Value.Uint64(), floor, gcPercent); p != current {
			debug.SetGCPercent(p)
			current = p
		}
	}
	adjust(ctx)
	// The live heap is known after each cycle, and cycles are a second or more apart.
	go periodic.Run(ctx, time.Second, adjust)
}
