package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/targeting"
)

// Stickiness of bandits (SPEC §3a): a shopper keeps the variant of their first exposure when a
// bandit's weights change. Bucketing alone cannot do it — the same hash falls in another range
// once the weights move — so each server remembers, per running bandit phase, the variant every
// shopper it knows of was first put in, and answers from that memory before hashing:
//
//   - fed at assignment: the first recorded answer of a shopper on this server is remembered at
//     once, in memory, on the request path (where exposures are de-duplicated);
//   - fed from the database: when the cache first sees a bandit phase (at start, or a new
//     phase) it loads every exposure of the phase; when the bandit's period changes (new
//     weights), it loads the exposures first seen since its last load (less StickyOverlap, for
//     exposures that reach the table late) before it answers with the new weights, and again
//     StickyCatchUp later, for the exposures other servers had still in flight at the change.
//
// Within a period every server buckets a new shopper alike, so what another server did only
// matters once the weights change; docs/bandits.md derives the window in which a shopper can
// still be re-bucketed (first seen on another server within the exposure pipeline's lag before
// a change, back on this one before the catch-up) and what happens then: the exposures table
// flags the shopper as seen in two variants and analysis leaves them out, counted.

// StickyOverlap is how far before its last load a server reads exposures again: the longest
// an exposure may take from assignment to the exposures table and still be picked up.
const StickyOverlap = 5 * time.Minute

// StickyCatchUp is how long after a change of weights a server reads exposures once more.
const StickyCatchUp = 10 * time.Second

// DefaultStickyLimit bounds the shoppers remembered over all bandit phases of a server (about
// 36 bytes each: docs/benchmarks.md).
const DefaultStickyLimit = 2_000_000

// stickyShards spreads one phase's shoppers over separately locked maps, so that concurrent
// requests rarely wait on each other.
const stickyShards = 64

// stickyTable is one bandit phase's shoppers: the digest of the shopper's hash identifier →
// the index of their variant.
type stickyTable struct {
	owner  *Sticky
	shards [stickyShards]struct {
		sync.RWMutex
		m map[uint64]uint8
	}
	// Where the database load stands; guarded by owner.syncMu.
	period    int       // the bandit period the table was last loaded for
	loadedAt  time.Time // database time at the start of the last load
	catchUpAt time.Time // when to read the exposures once more; zero when done
}

func (t *stickyTable) shard(d uint64) *struct {
	sync.RWMutex
	m map[uint64]uint8
} {
	return &t.shards[d%stickyShards]
}

// get returns the variant the shopper with this identifier was first put in.
func (t *stickyTable) get(id string) (int, bool) {
	d := t.owner.digest(id)
	s := t.shard(d)
	s.RLock()
	v, ok := s.m[d]
	s.RUnlock()
	return int(v), ok
}

// put remembers variant i for the shopper unless they have one already, and returns the one in
// force. When the server's limit is reached it remembers nothing and returns i.
func (t *stickyTable) put(id string, i int) int {
	d := t.owner.digest(id)
	s := t.shard(d)
	s.Lock()
	defer s.Unlock()
	if v, ok := s.m[d]; ok {
		return int(v)
	}
	if !t.owner.reserve() {
		return i
	}
	if s.m == nil {
		s.m = map[uint64]uint8{}
	}
	s.m[d] = uint8(i)
	return i
}

// len is the number of shoppers remembered.
func (t *stickyTable) len() int {
	n := 0
	for i := range t.shards {
		t.shards[i].RLock()
		n += len(t.shards[i].m)
		t.shards[i].RUnlock()
	}
	return n
}

type stickyKey struct {
	experiment string
	phase      int
}

// Sticky is a server's memory of the variants bandit shoppers were first put in, one table per
// running bandit phase; it outlives snapshots.
type Sticky struct {
	seed   maphash.Seed
	limit  int64
	count  atomic.Int64
	full   atomic.Bool
	log    *slog.Logger
	mu     sync.Mutex // guards tables
	tables map[stickyKey]*stickyTable
	// syncMu makes database loads one at a time: a reload after a write and the cache's own
	// can run together.
	syncMu sync.Mutex
}

// NewSticky returns an empty memory that holds at most limit shoppers (DefaultStickyLimit when
// limit ≤ 0).
func NewSticky(limit int, log *slog.Logger) *Sticky {
	if limit <= 0 {
		limit = DefaultStickyLimit
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sticky{seed: maphash.MakeSeed(), limit: int64(limit), log: log, tables: map[stickyKey]*stickyTable{}}
}

// digest stands for a shopper's identifier: 8 bytes per shopper instead of the string. Two
// shoppers sharing one (odds ~n²/2⁶⁴) would share a variant, which biases nothing.
func (s *Sticky) digest(id string) uint64 { return maphash.String(s.seed, id) }

// reserve counts one more shopper, or reports that the limit is reached (logged once).
func (s *Sticky) reserve() bool {
	if s.count.Add(1) <= s.limit {
		return true
	}
	s.count.Add(-1)
	if !s.full.Swap(true) {
		s.log.Error("sticky bandit memory is full: new shoppers may change variant when a bandit's weights change",
			"limit", s.limit)
	}
	return false
}

// Len is the number of shoppers remembered over all bandit phases.
func (s *Sticky) Len() int { return int(s.count.Load()) }

// table returns the table of a bandit phase, made when first asked for.
func (s *Sticky) table(key string, phase int) (t *stickyTable, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := stickyKey{key, phase}
	if t := s.tables[k]; t != nil {
		return t, false
	}
	t = &stickyTable{owner: s, period: -1}
	s.tables[k] = t
	return t, true
}

// retain forgets the tables of phases not in keep: stopped experiments and past phases.
func (s *Sticky) retain(keep map[stickyKey]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tables {
		if !keep[k] {
			s.count.Add(-int64(t.len()))
			delete(s.tables, k)
		}
	}
}

// nextCatchUp is the earliest pending catch-up over all tables; zero when none.
func (s *Sticky) nextCatchUp() time.Time {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, t := range s.tables {
		if !t.catchUpAt.IsZero() && (next.IsZero() || t.catchUpAt.Before(next)) {
			next = t.catchUpAt
		}
	}
	return next
}

// sync brings the tables of the bandit experiments in list up to date with the database
// before a snapshot with their current weights is built; see the comment at the top.
func (s *Sticky) sync(ctx context.Context, db *sqlx.DB, list []*Experiment, now time.Time) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	keep := map[stickyKey]bool{}
	for _, e := range list {
		if !e.Allocation.IsBandit() || (e.Status != StatusRunning && e.Status != StatusPaused) || e.Bandit == nil {
			continue
		}
		keep[stickyKey{e.Key, e.Phase}] = true
		t, _ := s.table(e.Key, e.Phase)
		var since *time.Time
		switch {
		case t.period < 0: // never loaded: the whole phase
		case t.period != e.Bandit.Period:
			since = ptrTo(t.loadedAt.Add(-StickyOverlap))
		case !t.catchUpAt.IsZero() && !now.Before(t.catchUpAt):
			since = ptrTo(t.loadedAt.Add(-StickyOverlap))
		default:
			continue
		}
		changed := t.period >= 0 && t.period != e.Bandit.Period
		if err := s.load(ctx, db, t, e, since); err != nil {
			return fmt.Errorf("loading the first variants of bandit %s: %w", e.Key, err)
		}
		t.period = e.Bandit.Period
		t.catchUpAt = time.Time{}
		if changed {
			t.catchUpAt = now.Add(StickyCatchUp)
		}
	}
	s.retain(keep)
	return nil
}

// stickyLoadSQL reads the identifier each exposure of a phase was hashed on (the shopper id,
// or the recorded attribute) and its variant: those in exposures first seen since $3 (all
// when NULL), and every one still staged in exposure_log. The staged ones are read whatever
// their time because the background merge may trail assignment by more than StickyOverlap
// under load, and a row merged after a load with an old first_seen would otherwise be missed
// by every later one. One statement, one snapshot: a row the merge moves meanwhile is seen in
// exactly one of the two tables.
const stickyLoadSQL = `
SELECT CASE WHEN $4 = 'shopper_id' THEN to_jsonb(shopper_id) ELSE attributes -> $4 END, variant
FROM exposures WHERE experiment_key = $1 AND phase = $2 AND ($3::timestamptz IS NULL OR first_seen >= $3)
UNION ALL
SELECT CASE WHEN $4 = 'shopper_id' THEN to_jsonb(l.shopper_id) ELSE l.attributes -> $4 END, u.variant
FROM exposure_log l, unnest(l.experiments, l.phases, l.variants) AS u(experiment_key, phase, variant)
WHERE u.experiment_key = $1 AND u.phase = $2`

// load reads the phase's exposures first seen since since (all when nil), and those still
// staged, into the table.
func (s *Sticky) load(ctx context.Context, db *sqlx.DB, t *stickyTable, e *Experiment, since *time.Time) error {
	var at time.Time
	if err := db.GetContext(ctx, &at, `SELECT now()`); err != nil {
		return err
	}
	index := make(map[string]int, len(e.Variants))
	for i, v := range e.Variants {
		index[v.Key] = i
	}
	rows, err := db.QueryContext(ctx, stickyLoadSQL, e.Key, e.Phase, since, e.HashAttribute)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		var variant string
		if err := rows.Scan(&raw, &variant); err != nil {
			return err
		}
		i, ok := index[variant]
		var v any
		if !ok || raw == nil || json.Unmarshal(raw, &v) != nil {
			continue
		}
		if id, ok := targeting.HashValue(v); ok {
			t.put(id, i)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	t.loadedAt = at
	return nil
}
