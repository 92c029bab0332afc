package complements

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/pglisten"
)

// Cache holds the newest snapshot of the model in memory on every server, so that
// suggestions never wait on the database and keep coming while it is down. A new snapshot
// reaches it by NOTIFY within moments of its build's commit.
type Cache struct {
	db      *sqlx.DB
	url     string
	reload  time.Duration
	log     *slog.Logger
	current atomic.Pointer[Model]
	// healthy is false after a failed load, until a load succeeds.
	healthy atomic.Bool

	mu sync.Mutex
	// changed is closed, and replaced, whenever a new model is swapped in.
	changed chan struct{}
}

// NewCache returns a cache of the model stored in db; url is the database to LISTEN on, reload
// the period of the check that backs up notifications.
func NewCache(db *sqlx.DB, url string, reload time.Duration, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{db: db, url: url, reload: reload, log: log, changed: make(chan struct{})}
	c.current.Store(emptyModel)
	return c
}

// Model is the snapshot as last loaded; before the first build it is empty (Built false).
func (c *Cache) Model() *Model { return c.current.Load() }

// Healthy reports whether the last load succeeded.
func (c *Cache) Healthy() bool { return c.healthy.Load() }

// Load reads the newest snapshot, unless it is the one held already, and swaps it in.
func (c *Cache) Load(ctx context.Context) error {
	snap, err := Latest(ctx, c.db)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	if snap == nil || snap.Version == c.current.Load().Version {
		c.healthy.Store(true)
		return nil
	}
	m, err := LoadModel(ctx, c.db, snap)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	c.set(m)
	c.healthy.Store(true)
	c.log.Info("complements snapshot loaded", "version", m.Version, "products", m.Products, "orders", m.Orders)
	return nil
}

// set swaps m in, unless a newer model is held (two loads may race), and wakes the waiters.
func (c *Cache) set(m *Model) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.current.Load(); cur.Version >= m.Version {
		return
	}
	c.current.Store(m)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Set swaps in a model built elsewhere, for benchmarks and tools that need no database.
func (c *Cache) Set(m *Model) { c.set(m) }

// WaitFor blocks until the cache holds version or a newer one, or ctx ends.
func (c *Cache) WaitFor(ctx context.Context, version int64) error {
	for {
		c.mu.Lock()
		ch, v := c.changed, c.current.Load().Version
		c.mu.Unlock()
		if v >= version {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run keeps the cache current until ctx ends: it reloads on every build's notification, when
// the listener reconnects, and every reload period. It returns nil once it has stopped.
func (c *Cache) Run(ctx context.Context) error {
	return pglisten.Follower{
		URL: c.url, Channel: NotifyChannel, Every: c.reload, Timeout: time.Minute,
		What: "complements cache", Log: c.log, Reload: c.Load,
	}.Run(ctx)
}
