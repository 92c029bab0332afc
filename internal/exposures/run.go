package exposures

import (
	"context"
	"fmt"
	"time"

	"github.com/xsell/xsell/internal/periodic"
)

// Run stages queued requests, merges staged rows into exposures and keeps the loss record,
// until ctx ends. Then, for at most DrainTimeout, it stages what is still queued (counting
// what it cannot stage in time as lost), writes the last loss counts, and merges what is
// staged; rows left unmerged stay staged for the next start, or another server, to merge.
// An unreachable database is waited out, not returned: Run returns nil once it has stopped.
func (r *Recorder) Run(ctx context.Context) error {
	mergeDone := make(chan struct{})
	go func() { defer close(mergeDone); r.mergeLoop(ctx) }()
	lossCtx, stopLoss := context.WithCancel(context.Background())
	lossDone := make(chan struct{})
	go func() { defer close(lossDone); r.lossLoop(lossCtx) }()

	b := r.stageLoop(ctx)
	<-mergeDone
	dctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	defer cancel()
	r.stageRest(dctx, b)
	stopLoss()
	<-lossDone
	r.finalLosses(dctx)
	for {
		n, err := r.mergeFrom(dctx, mergeDrainSQL)
		if err != nil {
			r.log.Warn("merging staged exposures at shutdown failed; they stay staged for the next start", "error", err)
			break
		}
		if n < r.cfg.MergeBatch {
			break
		}
	}
	r.finalLosses(dctx) // rows the merge quarantined
	return nil
}

// stageLoop stages the queue every FlushInterval, or as soon as Record finds a batch queued,
// in COPYs of at most BatchSize requests, retrying with back-off while the database is
// unreachable (the queue absorbs meanwhile). It returns the unwritten batch when ctx ends.
//
// It takes the queue as it is when it wakes rather than each request as it comes: a stager
// waiting on the queue was woken by every new shopper's request, a wake-up that cost the
// request path more than handing over the row (docs/benchmarks.md).
func (r *Recorder) stageLoop(ctx context.Context) *batch {
	b := &batch{}
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	var backoff time.Duration
	var retryAt time.Time
	flush := func() bool {
		if time.Now().Before(retryAt) {
			return false
		}
		if err := r.write(ctx, b); err != nil {
			if ctx.Err() != nil {
				return false
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			retryAt = time.Now().Add(backoff)
			r.failingSince.CompareAndSwap(0, time.Now().UnixNano())
			r.log.Warn("staging exposures failed; keeping them and retrying", "rows", b.len()-b.next,
				"retry_in", backoff.String(), "error", err)
			return false
		}
		r.failingSince.Store(0)
		backoff, retryAt = 0, time.Time{}
		b.reset()
		return true
	}
	for {
		select {
		case <-tick.C:
		case <-r.filling:
		case <-ctx.Done():
			return b
		}
		for {
			r.fill(b)
			if b.len() == 0 || !flush() || len(r.queue) == 0 {
				break
			}
		}
	}
}

// fill moves queued requests into the batch, up to BatchSize, without waiting.
func (r *Recorder) fill(b *batch) {
	for b.len() < r.cfg.BatchSize {
		select {
		case it := <-r.queue:
			b.add(it)
		default:
			return
		}
	}
}

// mergeLoop merges staged rows whenever the stager nudges it (after each COPY) or every
// MergeInterval (rows other servers staged, or left from before a restart), batch after
// batch while there are more — paced to MergeShare of the time while requests are being
// staged, for the first MergeBurst of a backlog (see Config.MergeShare).
func (r *Recorder) mergeLoop(ctx context.Context) {
	tick := time.NewTicker(r.cfg.MergeInterval)
	defer tick.Stop()
	var backoff time.Duration
	var backlogSince time.Time // since when every merge has found a full batch
	for {
		began := time.Now()
		n, err := r.mergeNext(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			r.log.Warn("merging staged exposures failed; retrying", "retry_in", backoff.String(), "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		case n >= r.cfg.MergeBatch:
			backoff = 0
			if backlogSince.IsZero() {
				backlogSince = began
			}
			if pause := r.mergePause(time.Since(began), time.Since(backlogSince)); pause > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(pause):
				}
			}
			continue // more are waiting
		}
		backoff, backlogSince = 0, time.Time{}
		select {
		case <-ctx.Done():
			return
		case <-r.merged:
		case <-tick.C:
		}
	}
}

// mergePause is how long to wait after a merge that took d, so that the merge takes at most
// MergeShare of the time while the stager is busy (it staged within the last second): the
// merge is most of the database's work per new shopper, and the assignments of a burst need
// the CPU more. With the stager idle, or a backlog older than MergeBurst (new shoppers
// arriving steadily faster than a paced merge writes them), the merge goes at full speed.
func (r *Recorder) mergePause(d, backlog time.Duration) time.Duration {
	share := r.cfg.MergeShare
	if share >= 1 || backlog > r.cfg.MergeBurst || time.Since(time.Unix(0, r.lastStaged.Load())) > time.Second {
		return 0
	}
	return time.Duration(float64(d) * (1 - share) / share)
}

// lossLoop writes the loss counts to exposure_losses and logs what was lost, every
// LossInterval.
func (r *Recorder) lossLoop(ctx context.Context) {
	periodic.Run(ctx, r.cfg.LossInterval, func(ctx context.Context) {
		r.losses.logDrops(r.log, r.queued.Load())
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := r.losses.flush(fctx, r.db, r.log); err != nil && ctx.Err() == nil {
			r.log.Warn("writing exposure loss counts failed; keeping them and retrying", "error", err)
		}
	})
}

// stageRest stages the batch and the queue until ctx's deadline, and stops the recorder
// taking more: whatever it could not stage is counted as lost.
func (r *Recorder) stageRest(ctx context.Context, b *batch) {
	// Once stopped is set under the lock, no Record is between its check and its send: the
	// queue holds all there will be.
	r.closing.Lock()
	r.stopped.Store(true)
	r.closing.Unlock()
	for {
		r.fill(b)
		if b.len() == 0 {
			return
		}
		for {
			err := r.write(ctx, b)
			if err == nil {
				break
			}
			r.failingLog.Do(func() { r.log.Warn("staging exposures at shutdown failed; retrying", "error", err) })
			select {
			case <-ctx.Done():
				r.dropAtShutdown(b)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		b.reset()
	}
}

// dropAtShutdown counts what is left of the batch and the queue as lost.
func (r *Recorder) dropAtShutdown(b *batch) {
	lost := func(it item) {
		r.queued.Add(-int64(it.exposures))
		exposures, offers := it.lists()
		r.losses.add(it.at, exposures, offers, reasonShutdown)
	}
	for _, it := range b.items[b.next:] {
		lost(it)
	}
	for _, it := range b.refused {
		lost(it)
	}
	for {
		select {
		case it := <-r.queue:
			lost(it)
		default:
			return
		}
	}
}

// finalLosses writes the last loss counts, retrying until ctx's deadline.
func (r *Recorder) finalLosses(ctx context.Context) {
	r.losses.logDrops(r.log, r.queued.Load())
	for {
		err := r.losses.flush(ctx, r.db, r.log)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			r.log.Error("exposure loss counts could not be written before shutdown; they are only in this log",
				"error", err, "counts", fmt.Sprint(r.losses.pendingTotal()))
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Status says in a line how recording goes, for /readyz, and whether the recorder is
// shedding: dropping exposures because the database does not keep up.
func (r *Recorder) Status() (line string, shedding bool) {
	now := r.now()
	queued := r.queued.Load()
	if shed, at := r.losses.shedding(now, shedWindow); shed {
		return fmt.Sprintf("shedding: exposures dropped %s ago for want of room (%d queued); counted in exposure_losses",
			now.Sub(at).Round(time.Millisecond), queued), true
	}
	if since := r.failingSince.Load(); since != 0 {
		return fmt.Sprintf("retrying: staging exposures has failed for %s; %d queued",
			now.Sub(time.Unix(0, since)).Round(time.Millisecond), queued), false
	}
	return fmt.Sprintf("recording: %d queued", queued), false
}

// shedWindow is how long after a drop Status still says the recorder is shedding.
const shedWindow = 10 * time.Second
