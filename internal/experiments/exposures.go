package experiments

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
)

// RecorderConfig sizes the exposure recorder.
type RecorderConfig struct {
	// QueueSize bounds the exposures waiting to be written, in memory, while the database is
	// slow or down; beyond it new exposures are dropped and counted.
	QueueSize int
	// BatchSize is the most rows one INSERT writes.
	BatchSize int
	// FlushInterval is the longest an exposure waits before a write is attempted.
	FlushInterval time.Duration
	// SeenSize is the number of slots of the in-memory de-duplication table (rounded up to a
	// power of two, 8 bytes each). Two exposures sharing a slot evict each other, which costs
	// only a redundant write that the database ignores. Requests remembered as recorded get a
	// table a quarter of this size.
	SeenSize int
}

func (c *RecorderConfig) defaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 100_000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.SeenSize <= 0 {
		c.SeenSize = 1 << 20
	}
}

// Recorder writes exposures off the request path: Record only de-duplicates and queues; a
// single writer goroutine batches the queue into multi-row inserts and retries while the
// database is down.
type Recorder struct {
	db    *sqlx.DB
	cfg   RecorderConfig
	log   *slog.Logger
	queue chan Exposure
	seed  maphash.Seed
	seen  []atomic.Uint64 // direct-mapped digests of exposures already queued
	// requests holds digests of whole requests whose exposures are all queued. A table of
	// its own, so that returning shoppers' requests and exposures do not evict each other.
	requests []atomic.Uint64
	dropped  prometheus.Counter
	written  prometheus.Counter
	pending  prometheus.GaugeFunc
	done     chan struct{}
	now      func() time.Time
}

// NewRecorder returns a Recorder writing to db, with its metrics registered on reg.
func NewRecorder(db *sqlx.DB, cfg RecorderConfig, reg prometheus.Registerer, log *slog.Logger) *Recorder {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		db: db, cfg: cfg, log: log, queue: make(chan Exposure, cfg.QueueSize), seed: maphash.MakeSeed(),
		done: make(chan struct{}), now: time.Now,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposures_dropped_total",
			Help: "Exposures lost because the queue was full or the database stayed down through shutdown.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xsell_exposures_written_total",
			Help: "Exposure rows sent to the database (duplicates included; the database keeps the first).",
		}),
	}
	r.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xsell_exposures_queued",
		Help: "Exposures waiting in memory to be written.",
	}, func() float64 { return float64(len(r.queue)) })
	size := 1
	for size < cfg.SeenSize {
		size <<= 1
	}
	r.seen = make([]atomic.Uint64, size)
	r.requests = make([]atomic.Uint64, max(size/4, 1))
	if reg != nil {
		reg.MustRegister(r.dropped, r.written, r.pending)
	}
	return r
}

// Record queues an exposure unless this process has queued the same one already. It never
// blocks: a full queue drops the exposure, counts it, logs it and returns false.
func (r *Recorder) Record(e Exposure) bool {
	// A 64-bit digest stands for (experiment, phase, shopper, variant): comparing four strings
	// cost more than the rest of assignment. A collision (odds ~n²/2⁶⁴) would only skip a
	// redundant write; the database still keeps one row per shopper.
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(e.Experiment)
	h.WriteByte(0)
	h.WriteString(e.ShopperID)
	h.WriteByte(0)
	h.WriteString(e.Variant)
	h.WriteByte(byte(e.Phase))
	h.WriteByte(byte(e.Phase >> 8))
	k := h.Sum64() | 1 // never 0, the empty slot
	slot := &r.seen[k&uint64(len(r.seen)-1)]
	// A lossy, lock-free table rather than a locked map: one probe per exposure, bounded
	// memory, and a shopper evicted by another is at worst written twice.
	if slot.Load() == k {
		return true
	}
	slot.Store(k)
	if e.At.IsZero() {
		e.At = r.now()
	}
	select {
	case r.queue <- e:
		return true
	default:
		r.drop(1, "exposure queue full")
		// Forget it, so that the shopper's next request tries again.
		slot.CompareAndSwap(k, 0)
		return false
	}
}

// Recorded reports whether every exposure of a request with this digest has been queued
// already: a returning shopper's identical request under the same snapshot gives the same
// answers, so the request needs one probe instead of one per experiment.
func (r *Recorder) Recorded(digest uint64) bool {
	digest |= 1
	return r.requests[digest&uint64(len(r.requests)-1)].Load() == digest
}

// MarkRecorded notes that every exposure of a request with this digest has been queued.
func (r *Recorder) MarkRecorded(digest uint64) {
	digest |= 1
	r.requests[digest&uint64(len(r.requests)-1)].Store(digest)
}

func (r *Recorder) drop(n int, why string) {
	r.dropped.Add(float64(n))
	r.log.Error("exposures dropped", "count", n, "reason", why)
}

// Run writes queued exposures until ctx ends, then flushes what is queued, trying for at most
// drain, and counts whatever it could not write as dropped.
func (r *Recorder) Run(ctx context.Context, drain time.Duration) {
	defer close(r.done)
	batch := make([]Exposure, 0, r.cfg.BatchSize)
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	var retryAt time.Time
	flush := func(wctx context.Context) {
		if len(batch) == 0 || time.Now().Before(retryAt) {
			return
		}
		if err := r.write(wctx, batch); err != nil {
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			retryAt = time.Now().Add(backoff)
			r.log.Warn("writing exposures failed; keeping them and retrying", "rows", len(batch), "retry_in", backoff.String(), "error", err)
			return
		}
		backoff, retryAt = 0, time.Time{}
		batch = batch[:0]
	}
	for {
		// While a batch waits for the database, the queue keeps absorbing new exposures.
		var in chan Exposure
		if len(batch) < r.cfg.BatchSize {
			in = r.queue
		}
		select {
		case e := <-in:
			batch = append(batch, e)
			if len(batch) >= r.cfg.BatchSize {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			r.drain(batch, drain)
			return
		}
	}
}

// drain writes the batch and the rest of the queue before shutdown.
func (r *Recorder) drain(batch []Exposure, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
	fill:
		for len(batch) < r.cfg.BatchSize {
			select {
			case e := <-r.queue:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		for r.write(ctx, batch) != nil {
			select {
			case <-ctx.Done():
				r.drop(len(batch)+len(r.queue), "database unavailable at shutdown")
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		batch = batch[:0]
	}
}

// Done is closed when Run has returned, after the final flush.
func (r *Recorder) Done() <-chan struct{} { return r.done }

// write inserts a batch in one statement. The first row per (experiment, phase, shopper) wins;
// a later row with another variant flags the shopper, whom analysis then leaves out.
func (r *Recorder) write(ctx context.Context, batch []Exposure) error {
	type key struct {
		experiment string
		phase      int
		shopper    string
	}
	idx := make(map[key]int, len(batch))
	var (
		exps, shoppers, variants []string
		phases                   []int64
		attrs                    []string
		ats                      []string
		multi                    []bool
	)
	for _, e := range batch {
		k := key{e.Experiment, e.Phase, e.ShopperID}
		if i, ok := idx[k]; ok {
			// ON CONFLICT cannot touch a row twice in one statement: fold repeats here.
			if variants[i] != e.Variant {
				multi[i] = true
			}
			continue
		}
		idx[k] = len(exps)
		a, err := json.Marshal(e.Attributes)
		if err != nil || string(a) == "null" {
			a = []byte("{}")
		}
		exps, shoppers, variants = append(exps, e.Experiment), append(shoppers, e.ShopperID), append(variants, e.Variant)
		phases, attrs, ats, multi = append(phases, int64(e.Phase)), append(attrs, string(a)), append(ats, e.At.UTC().Format(time.RFC3339Nano)), append(multi, false)
	}
	_, err := r.db.ExecContext(ctx, `INSERT INTO exposures AS x
			(experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
		SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[], $7::bool[])
		ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET multiple_variants = true
		WHERE NOT x.multiple_variants AND (x.variant <> EXCLUDED.variant OR EXCLUDED.multiple_variants)`,
		pq.Array(exps), pq.Array(phases), pq.Array(shoppers), pq.Array(variants), pq.Array(attrs), pq.Array(ats), pq.Array(multi))
	if err == nil {
		r.written.Add(float64(len(exps)))
	}
	return err
}
