package offers

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"golang.org/x/time/rate"

	"github.com/xsell/xsell/internal/database"
)

// feedLockKey is the transaction-level advisory lock every writer of offer_feed takes just
// before inserting and holds until it commits, so that rows become visible in id order and a
// reader of "id > cursor" never misses one committed later with a smaller id. The value is the
// first 8 bytes of sha256("xsell.offers.feed").
const feedLockKey int64 = 0x5b2e0c7d41a9f386

// FeedBound is the delay within which a server applies what another counted, with the default
// periods and a database that answers: at most a flush period (500 ms) before the count is
// written, a poll period (250 ms) before it is read, and the time of both statements, with
// room for a loaded machine (docs/offers.md).
const FeedBound = 2 * time.Second

// FeedConfig times the feed; zero values take the defaults in parentheses.
type FeedConfig struct {
	// Flush is how often the marks counted here are written (500 ms).
	Flush time.Duration
	// Poll is how often the marks of other servers are read (250 ms). Flush + Poll, plus a
	// write and a read, is how late a server can learn of another's count (docs/offers.md).
	Poll time.Duration
	// Sweep is how often the counter forgets what no window needs any more (1 min), and how
	// often the feed's old rows are deleted.
	Sweep time.Duration
	// Retention is how long the feed keeps opportunities (31 days: the longest period and a
	// day), what a restarting server reads back.
	Retention time.Duration
	// DrainTimeout bounds the last write when Run stops (5 s).
	DrainTimeout time.Duration
}

func (c *FeedConfig) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Flush, 500*time.Millisecond)
	def(&c.Poll, 250*time.Millisecond)
	def(&c.Sweep, time.Minute)
	def(&c.Retention, 31*24*time.Hour)
	def(&c.DrainTimeout, 5*time.Second)
}

// Feed shares the counter's marks among the servers of a fleet through Postgres: every Flush
// it appends the opportunities counted here to offer_feed, and every Poll it applies the rows
// that other servers (and the spend consumer's closures) added since its cursor. Load reads
// back what the feed holds, so that a restarted server knows every count.
type Feed struct {
	db      *sqlx.DB
	c       *Counter
	cfg     FeedConfig
	log     *slog.Logger
	server  string // this process's name in the feed, so that it skips its own rows
	cursor  int64  // the largest id applied
	metrics *Metrics
	// pulled is poked after every read that applied rows, so that a test can wait for one.
	pulled  chan struct{}
	failLog rate.Sometimes
}

// NewFeed returns the feed of counter c over db.
func NewFeed(db *sqlx.DB, c *Counter, cfg FeedConfig, m *Metrics, log *slog.Logger) *Feed {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Feed{db: db, c: c, cfg: cfg, log: log, server: hex.EncodeToString(b), metrics: m,
		pulled: make(chan struct{}, 1), failLog: rate.Sometimes{Interval: 10 * time.Second}}
}

// Pulled is poked after each read of the feed that applied rows.
func (f *Feed) Pulled() <-chan struct{} { return f.pulled }

// feedRow is a row of offer_feed.
type feedRow struct {
	ID          int64          `db:"id"`
	Server      string         `db:"server"`
	Kind        string         `db:"kind"`
	ShopperID   string         `db:"shopper_id"`
	Experiments pq.StringArray `db:"experiments"`
	At          int64          `db:"at"`
	Until       sql.NullInt64  `db:"until"`
}

const feedColumns = `id, server, kind, shopper_id, experiments, extract(epoch FROM at)::bigint AS at,
	extract(epoch FROM until)::bigint AS until`

// Load reads what the feed holds that a window may still count — opportunities within the
// retention, closures not yet over — and sets the cursor after it. The server runs it before
// it serves, so that a restart loses no count.
func (f *Feed) Load(ctx context.Context) error {
	err := database.Transact(ctx, f.db, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(tx *database.Tx) error {
		var top sql.NullInt64
		if err := tx.GetContext(ctx, &top, `SELECT max(id) FROM offer_feed`); err != nil {
			return err
		}
		after := int64(0)
		for {
			var rows []feedRow
			if err := tx.SelectContext(ctx, &rows, `SELECT `+feedColumns+` FROM offer_feed
				WHERE id > $1 AND id <= $2 AND ((kind = 'opportunity' AND at > now() - make_interval(secs => $3))
					OR (kind = 'closed' AND until > now()))
				ORDER BY id LIMIT 10000`, after, top.Int64, f.cfg.Retention.Seconds()); err != nil {
				return err
			}
			for _, r := range rows {
				f.applyRow(r, true)
			}
			if len(rows) < 10000 {
				break
			}
			after = rows[len(rows)-1].ID
		}
		f.cursor = top.Int64
		return nil
	})
	return database.Wrap(err, "loading the offer counters")
}

// Run flushes and polls until ctx ends, then writes what is left (for up to DrainTimeout).
// A failed write keeps its marks for the next; a failed read is tried again at the next poll.
func (f *Feed) Run(ctx context.Context) error {
	flush := time.NewTicker(f.cfg.Flush)
	defer flush.Stop()
	poll := time.NewTicker(f.cfg.Poll)
	defer poll.Stop()
	sweep := time.NewTicker(f.cfg.Sweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.DrainTimeout)
			defer cancel()
			if err := f.flush(dctx); err != nil {
				n := f.c.pending.Load()
				f.log.Error("offer opportunities not written at shutdown: the fleet's caps will miss them", "marks", n, "error", err)
			}
			return nil
		case <-flush.C:
			f.report("writing", f.flush(ctx))
		case <-poll.C:
			f.report("reading", f.pull(ctx))
		case now := <-sweep.C:
			shoppers, marks := f.c.sweep(now)
			f.metrics.observeCounter(shoppers, marks, f.c.dropped.Load())
			_, err := f.db.ExecContext(ctx, `DELETE FROM offer_feed WHERE (kind = 'opportunity' AND at < now() - make_interval(secs => $1))
				OR (kind = 'closed' AND until < now())`, f.cfg.Retention.Seconds())
			f.report("pruning", err)
		}
	}
}

func (f *Feed) report(what string, err error) {
	if err == nil {
		return
	}
	f.metrics.feedErrors.WithLabelValues(what).Inc()
	f.failLog.Do(func() {
		f.log.Warn("offer feed: "+what+" failed; caps of other servers' counts lag until it works", "error", err)
	})
}

// flush writes the marks counted here since the last flush, one row per shopper and second.
func (f *Feed) flush(ctx context.Context) error {
	rows := f.c.take()
	if len(rows) == 0 {
		return nil
	}
	slices.SortStableFunc(rows, func(a, b outRow) int {
		if c := strings.Compare(a.shopper, b.shopper); c != 0 {
			return c
		}
		return int(a.at) - int(b.at)
	})
	var shoppers, exps []string
	var ats []int64
	var keys []string
	for i, r := range rows {
		for _, id := range r.ids {
			keys = append(keys, f.c.ids.key(id))
		}
		if i+1 < len(rows) && rows[i+1].shopper == r.shopper && rows[i+1].at == r.at {
			continue
		}
		shoppers, exps, ats = append(shoppers, r.shopper), append(exps, strings.Join(keys, ",")), append(ats, int64(r.at))
		keys = keys[:0]
	}
	n := marksIn(rows)
	err := database.Transact(ctx, f.db, nil, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, feedLockKey)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO offer_feed (server, kind, shopper_id, experiments, at)
			SELECT $1, 'opportunity', s, string_to_array(e, ','), to_timestamp(a)
			FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(s, e, a)`,
			f.server, pq.StringArray(shoppers), pq.StringArray(exps), pq.Int64Array(ats))
		return err
	})
	if err != nil {
		f.c.giveBack(rows)
		return database.Wrap(err, "writing %d offer opportunities", n)
	}
	f.c.pending.Add(-int64(n))
	f.metrics.written.Add(float64(n))
	return nil
}

// pull applies the rows added since the cursor by other writers.
func (f *Feed) pull(ctx context.Context) error {
	applied := false
	for {
		var rows []feedRow
		if err := f.db.SelectContext(ctx, &rows, `SELECT `+feedColumns+` FROM offer_feed WHERE id > $1 ORDER BY id LIMIT 10000`, f.cursor); err != nil {
			return database.Wrap(err, "reading the offer feed")
		}
		for _, r := range rows {
			f.applyRow(r, false)
		}
		if len(rows) > 0 {
			f.cursor = rows[len(rows)-1].ID
			applied = true
		}
		if len(rows) < 10000 {
			break
		}
	}
	if applied {
		select {
		case f.pulled <- struct{}{}:
		default:
		}
	}
	return nil
}

// applyRow adds a row's marks to the counter; on loading, this server's own rows too (they
// are a previous run's).
func (f *Feed) applyRow(r feedRow, loading bool) {
	if r.Kind == "opportunity" && r.Server == f.server && !loading {
		return
	}
	at := r.At
	if r.Kind == "closed" {
		at = r.Until.Int64
	}
	ids := make([]uint32, 0, len(r.Experiments))
	for _, key := range r.Experiments {
		id, ok := f.c.ids.lookup(key)
		if !ok {
			// An experiment this server's cache has not compiled yet: keep its marks until it does.
			id = f.c.ids.id(key, maxHorizon*time.Second)
		}
		ids = append(ids, id&idMask)
	}
	f.c.apply(r.ShopperID, ids, uint32(max(at, 0)), r.Kind == "closed")
	f.metrics.read.Add(float64(len(ids)))
}
