package experiments

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xsell/xsell/internal/pglisten"
)

// Cache keeps every experiment compiled in memory so that assignment never waits on the
// database, and keeps answering from the last good snapshot while the database is down.
type Cache struct {
	store   *Store
	url     string
	log     *slog.Logger
	reload  time.Duration
	current atomic.Pointer[Snapshot]
	sticky  *Sticky
	checked atomic.Int64 // when the database last confirmed the snapshot, in Unix nanoseconds
	// healthy is false after a failed load, until a load succeeds: /readyz says degraded.
	healthy atomic.Bool
	// reloaded is signalled after every successful load, so that a test can wait for one
	// instead of polling; at most one signal waits, so a load never blocks on it.
	reloaded chan struct{}
	// offers and limiter feed the offer pipeline (UseOffers); nil: no caps, budgets, holdout.
	offers  OfferSource
	limiter Limiter
	// loading serialises Load: handlers reload after a write while Run reloads on the
	// write's notification, and an older read stored after a newer one would take the
	// change back (a started experiment answering not_running until the next reload).
	loading sync.Mutex
}

// UseOffers makes every snapshot compile in the offers' state read from src, and rule on
// per-shopper limits with lim; call it before the first Load.
func (c *Cache) UseOffers(src OfferSource, lim Limiter) { c.offers, c.limiter = src, lim }

// NewCache returns a cache over store; url is the database to LISTEN on for changes, and
// reload the period of the full reload that backs up notifications.
func NewCache(store *Store, url string, reload time.Duration, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reload <= 0 {
		reload = 30 * time.Second
	}
	c := &Cache{store: store, url: url, log: log, reload: reload, reloaded: make(chan struct{}, 1), sticky: NewSticky(0, log)}
	empty, _ := NewSnapshot(nil, time.Time{})
	c.current.Store(empty)
	return c
}

// LimitSticky bounds the shoppers the cache remembers for bandits (DefaultStickyLimit when
// n ≤ 0); for the wiring, before the cache is used.
func (c *Cache) LimitSticky(n int) { c.sticky = NewSticky(n, c.log) }

// Snapshot is the experiments as last loaded.
func (c *Cache) Snapshot() *Snapshot { return c.current.Load() }

// Set swaps in a snapshot built elsewhere, for benchmarks and tools that need no database.
func (c *Cache) Set(s *Snapshot) { c.current.Store(s) }

// Checked is when the snapshot was last confirmed against the database: loaded, or reloaded
// and found unchanged. Zero before the first load.
func (c *Cache) Checked() time.Time {
	if n := c.checked.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// WaitFor waits until the snapshot satisfies ok, through the cache's reloads, or ctx ends: for
// tests and tools that must see a change reach this server.
func (c *Cache) WaitFor(ctx context.Context, ok func(*Snapshot) bool) error {
	for !ok(c.Snapshot()) {
		select {
		case <-c.reloaded:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the assignment cache: %w", ctx.Err())
		}
	}
	return nil
}

// Healthy reports whether the last load succeeded.
func (c *Cache) Healthy() bool { return c.healthy.Load() }

// Load reads every experiment and swaps in the new snapshot.
func (c *Cache) Load(ctx context.Context) error {
	c.loading.Lock()
	defer c.loading.Unlock()
	list, err := c.store.All(ctx)
	var state OfferState
	if err == nil && c.offers != nil {
		state, err = c.offers.OfferState(ctx)
	}
	if err != nil {
		c.healthy.Store(false)
		return fmt.Errorf("loading experiments: %w", err)
	}
	// A reload that finds nothing changed keeps the current snapshot: its generation is part
	// of the key under which returning shoppers' requests are remembered as recorded, and
	// the periodic backstop would otherwise send every one of them down the full path twice
	// a minute.
	// Of the budgets only what closes an offer counts: every spend changes what they spent.
	exhausted := make([][]bool, len(list))
	for i, e := range list {
		exhausted[i] = e.exhausted(state.Budgets)
	}
	text, err := json.Marshal(struct {
		List      []*Experiment
		Holdout   Holdout
		GlobalCap *FrequencyCap
		Exhausted [][]bool
	}{list, state.Holdout, state.GlobalCap, exhausted})
	if err != nil {
		return fmt.Errorf("fingerprinting experiments: %w", err)
	}
	fingerprint := sha256.Sum256(text)
	// A bandit's shoppers must be remembered before its new weights are used (sticky.go).
	if err := c.sticky.sync(ctx, c.store.db, list, time.Now()); err != nil {
		c.healthy.Store(false)
		return err
	}
	if cur := c.current.Load(); cur.fingerprint != fingerprint || cur.Loaded.IsZero() {
		snap, err := NewSnapshotWith(list, time.Now(), SnapshotOptions{State: state, Limiter: c.limiter, Sticky: c.sticky})
		if err != nil {
			c.healthy.Store(false)
			return err
		}
		snap.fingerprint = fingerprint
		c.current.Store(snap)
	}
	c.checked.Store(time.Now().UnixNano())
	c.healthy.Store(true)
	select {
	case c.reloaded <- struct{}{}:
	default:
	}
	return nil
}

// Run keeps the cache current until ctx ends, then returns nil once everything it started
// has stopped: it reloads on every change notification (each write to experiments sends one
// at commit), after the listener reconnects (changes may have been missed meanwhile), and
// every reload period as a backstop. A failed reload is logged; the cache keeps answering
// from its last snapshot.
func (c *Cache) Run(ctx context.Context) error {
	return pglisten.Follower{
		URL: c.url, Channel: NotifyChannel, Every: c.reload, Timeout: 5 * time.Second,
		What: "experiment cache", Log: c.log,
		Reload: func(ctx context.Context) error {
			if err := c.Load(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("experiment cache reload failed; still answering from the last snapshot", "error", err,
					"snapshot_age", time.Since(c.Checked()).Round(time.Millisecond).String())
			}
			return nil
		},
		// A bandit's weights changed: its shoppers' exposures are read once more a little later.
		Next: c.sticky.nextCatchUp,
	}.Run(ctx)
}
