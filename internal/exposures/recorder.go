// Package exposures records which shopper was put in which variant (and which products learned
// strategies offered them), off the request path and durably, and puts whatever it cannot keep on the record where reports read it: assignment
// must never wait on a database write, and analysis must never lose its denominators silently.
package exposures

import (
	"hash/maphash"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/hashmix"
)

// Exposure is one experiment's answer that put a shopper in a variant by randomisation.
type Exposure struct {
	Experiment string
	Phase      int
	Variant    string
}

// Offer is a product that a learned strategy (SPEC §2, learned complements) offered the
// shopper in an experiment's phase, in the variant they are exposed to: analysis counts such a
// shopper as cross-sold when an order holds a product they were offered.
type Offer struct {
	Experiment string
	Phase      int
	Variant    string // for counting the offer if it is lost; the exposure says the variant
	SKU        string
}

// Request is what one assignment request exposed the shopper to.
type Request struct {
	ShopperID string
	// Attributes are the request's attributes, kept with each exposure for segmentation. The
	// recorder owns the map once Record queued it.
	Attributes map[string]any
	// AttributesJSON, when not empty, is Attributes as a JSON object that Postgres stores as
	// the same jsonb value as Attributes encoded: the request body's own bytes, which the
	// caller has checked (strings without escapes or control characters, valid UTF-8, each
	// number spelt as the encoder spells it, no repeated names). The row is then written
	// without encoding the map again. Record does not keep it.
	AttributesJSON string
	// At is when the shopper was exposed; zero means now.
	At        time.Time
	Exposures []Exposure
	// Offers are the products learned strategies offered in this request, whether or not the
	// exposure is new: a returning shopper may be offered other products. They are recorded
	// as a list: all of them unless the same list was recorded for the shopper already.
	// Record keeps none of the slice, so the caller may reuse it.
	Offers []Offer
}

// Config sizes the recorder; zero values take the defaults in parentheses.
type Config struct {
	// QueueSize bounds the requests waiting in memory to be staged (50,000): what a crash
	// can lose, and what absorbs a slow or unreachable database before exposures are dropped.
	QueueSize int
	// BatchSize is the most requests one COPY stages (2,000, or QueueSize if smaller): with
	// the queue, what a crash can lose.
	BatchSize int
	// FlushInterval is the longest a request waits in memory before it is staged (100 ms).
	FlushInterval time.Duration
	// MergeBatch is the most staged requests one statement merges into exposures (1,000),
	// small enough for the statement's sort to stay in the default work_mem.
	MergeBatch int
	// MergeInterval is how often the merger looks for staged rows when nothing nudged it (1 s).
	MergeInterval time.Duration
	// MergeShare is the most of the time the merge may work while requests are being staged
	// (0.25; 1 for no limit): merging a burst of new shoppers costs the database more than
	// answering them costs the server, and on shared cores it would take their CPU. The
	// backlog waits, durably, in exposure_log, and is merged at full speed once the burst ends.
	MergeShare float64
	// MergeBurst is how long a backlog is merged at MergeShare (1 min): past it, new shoppers
	// come steadily faster than a paced merge writes them, and the merge goes at full speed
	// so that the backlog stays bounded.
	MergeBurst time.Duration
	// LossInterval is how often loss counts are written to exposure_losses and drops are
	// logged (1 s).
	LossInterval time.Duration
	// DrainTimeout bounds the work at shutdown: staging what is queued, merging what is
	// staged and writing the loss counts (30 s).
	DrainTimeout time.Duration
	// Quarantine takes the rows the database refuses (one of its own, counting nowhere, when
	// nil).
	Quarantine *database.Quarantine
	// SeenSize is the number of slots of the in-memory de-duplication table (1<<20, rounded
	// up to a power of two, 8 bytes each), in buckets of 32: a shopper's exposures share the
	// bucket their shopper id picks. An exposure evicted from a full bucket costs only a
	// redundant write that the database ignores. Requests remembered as recorded get a table
	// a quarter of this size.
	SeenSize int
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.QueueSize, 50_000)
	def(&c.BatchSize, min(2_000, c.QueueSize))
	def(&c.MergeBatch, 1_000)
	def(&c.SeenSize, 1<<20)
	defDur(&c.FlushInterval, 100*time.Millisecond)
	defDur(&c.MergeInterval, time.Second)
	defDur(&c.LossInterval, time.Second)
	defDur(&c.DrainTimeout, 30*time.Second)
	defDur(&c.MergeBurst, time.Minute)
	if c.MergeShare <= 0 || c.MergeShare > 1 {
		c.MergeShare = 0.25
	}
}

// Recorder writes exposures off the request path. Record only de-duplicates and queues the
// request; Run stages queued requests into exposure_log with COPY, merges staged rows into
// exposures, and keeps the loss counts in exposure_losses.
type Recorder struct {
	db    *sqlx.DB
	cfg   Config
	log   *slog.Logger
	queue chan item
	seed  maphash.Seed
	seen  []atomic.Uint64 // digests of exposures already queued, in buckets (see bucketOf)
	// requests holds digests of whole requests whose exposures are all queued. A table of
	// its own, so that returning shoppers' requests and exposures do not evict each other.
	requests []atomic.Uint64
	// offered holds digests of requests' offers already queued (offersDigest), in buckets
	// like seen: a table of its own, so that a shopper's offers and exposures do not evict
	// each other.
	offered []atomic.Uint64
	queued  atomic.Int64 // exposures in the queue
	losses  *losses
	merged  chan struct{} // nudges the merger after a COPY
	// filling nudges the stager when the queue holds fillingAt requests before its next
	// FlushInterval: the stager does not wait on the queue itself (see stageLoop).
	filling   chan struct{}
	fillingAt int
	metrics   metrics
	now       func() time.Time
	// failingSince is when staging started failing (Unix nanoseconds), 0 while it works.
	failingSince atomic.Int64
	// lastStaged is when the stager last wrote (Unix nanoseconds), for the merge's pace.
	lastStaged atomic.Int64
	// stopped is set when Run starts its last reading of the queue; Record then counts what
	// it is given as lost. closing makes the check and the send one step.
	stopped    atomic.Bool
	closing    sync.RWMutex
	failingLog rate.Sometimes
	quarantine *database.Quarantine
}

// New returns a Recorder writing to db, with its metrics registered on reg (when not nil).
func New(db *sqlx.DB, cfg Config, reg prometheus.Registerer, log *slog.Logger) *Recorder {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Quarantine == nil {
		cfg.Quarantine = database.NewQuarantine(nil, log)
	}
	r := &Recorder{
		db: db, cfg: cfg, log: log, queue: make(chan item, cfg.QueueSize), seed: maphash.MakeSeed(),
		merged: make(chan struct{}, 1), filling: make(chan struct{}, 1), fillingAt: max(min(cfg.BatchSize, cfg.QueueSize/4), 1),
		now: time.Now, failingLog: rate.Sometimes{Interval: time.Second}, quarantine: cfg.Quarantine,
	}
	size := bucketSlots
	for size < cfg.SeenSize {
		size <<= 1
	}
	r.seen = make([]atomic.Uint64, size)
	r.requests = make([]atomic.Uint64, max(size/4, 1))
	r.offered = make([]atomic.Uint64, max(size/4, bucketSlots))
	r.metrics = newMetrics(r)
	r.losses = newLosses(r.metrics.lost, r.metrics.offersLost)
	if reg != nil {
		r.metrics.register(reg)
	}
	return r
}

// digest is a 64-bit stand-in for (experiment, phase, shopper, variant), from the shopper id's
// hash (shopperHash, also the bucket's): comparing four strings cost more than the rest of
// assignment. Each string is hashed on its own and the hashes mixed, rather than the four
// written into one maphash.Hash, which cost twice as much for a new shopper's sixteen
// (docs/benchmarks.md). A collision (odds ~n²/2⁶⁴) would only skip a redundant write; the
// database still keeps one row per shopper.
func (r *Recorder) digest(shopper uint64, e *Exposure) uint64 {
	x := shopper ^ maphash.String(r.seed, e.Experiment)*0x9e3779b97f4a7c15 ^
		bits.RotateLeft64(maphash.String(r.seed, e.Variant), 29) ^ uint64(e.Phase)*0xbf58476d1ce4e5b9
	return hashmix.Mix(x) | 1 // never 0, the empty slot
}

// shopperHash is the hash of a shopper id that picks their bucket and enters their digests.
func (r *Recorder) shopperHash(shopper string) uint64 { return maphash.String(r.seed, shopper) }

// offersDigest is a 64-bit stand-in for a request's offers to a shopper: the experiments'
// phases and the SKUs each offered, in order — in effect one digest per (shopper, context),
// since a context's products are chosen the same for every request under the same model.
// One digest for the request rather than one per (experiment, SKU), which cost a new cart a
// hash of four strings per product offered (docs/benchmarks.md); a request that offers one
// product more than an earlier one records its whole list again, and the merge keeps each
// product once per shopper and experiment phase (offersSQL). Strings are hashed on their own
// and mixed, as in digest; an experiment is hashed once for its products.
func (r *Recorder) offersDigest(shopper uint64, offers []Offer) uint64 {
	x := hashmix.Mix(shopper ^ 0x6a09e667f3bcc908) // not an exposure's digest, were the tables ever shared
	for i := range offers {
		o := &offers[i]
		if i == 0 || o.Experiment != offers[i-1].Experiment || o.Phase != offers[i-1].Phase {
			x = hashmix.Mix(x ^ maphash.String(r.seed, o.Experiment) ^ uint64(o.Phase)*0xbf58476d1ce4e5b9)
		}
		x = hashmix.Mix(x ^ bits.RotateLeft64(maphash.String(r.seed, o.SKU), 17))
	}
	return x | 1 // never 0, the empty slot
}

// bucketSlots is the size of a bucket of seen: 32 digests, four adjacent cache lines.
const bucketSlots = 32

// bucketOf is the bucket of seen that holds the shopper's exposures. One bucket per shopper,
// rather than a slot per exposure anywhere in the table, because the table is far larger than
// the CPU's caches: checking a new shopper's twenty exposures read twenty scattered lines of
// memory, each a wait, which a profile under all-new load put at a third of recording. A
// lossy, lock-free table rather than a locked map: bounded memory, and an exposure evicted
// (by a shopper sharing the bucket) is at worst written twice.
func (r *Recorder) bucketOf(shopper uint64) []atomic.Uint64 {
	return bucketIn(r.seen, shopper)
}

// offerBucketOf is the bucket of offered that holds the shopper's offers.
func (r *Recorder) offerBucketOf(shopper uint64) []atomic.Uint64 {
	return bucketIn(r.offered, shopper)
}

// bucketIn is the bucket of table that hash h picks.
func bucketIn(table []atomic.Uint64, h uint64) []atomic.Uint64 {
	i := h & uint64(len(table)/bucketSlots-1)
	return table[i*bucketSlots : (i+1)*bucketSlots]
}

// probe returns the slot of bucket b that holds k, or else the one to put k in: the first
// empty one from k's home slot on, or, with the bucket full, the home slot itself.
func probe(b []atomic.Uint64, k uint64) (slot *atomic.Uint64, found bool) {
	home := int(k % bucketSlots)
	for j := range bucketSlots {
		s := &b[(home+j)%bucketSlots]
		switch s.Load() {
		case k:
			return s, true
		case 0:
			return s, false
		}
	}
	return &b[home], false
}

// Record queues the request's exposures that this process has not queued already, and its
// offers unless this process queued the same list for the shopper already, encoded as one row
// to stage. It never blocks: with the queue full it drops them, counts each
// as lost for its experiment, phase and variant, and reports queued false. kept reports
// whether the recorder holds on to req.Attributes (the caller must then not reuse the map):
// only for a request it will quarantine.
func (r *Recorder) Record(req Request) (queued, kept bool) {
	hs := r.shopperHash(req.ShopperID)
	b := r.bucketOf(hs)
	// The exposures not queued yet, on the stack for a usual request: the item keeps them
	// as bytes (encode), not this list.
	var room [24]Exposure
	fresh := room[:0]
	for i := range req.Exposures {
		e := &req.Exposures[i]
		k := r.digest(hs, e)
		slot, found := probe(b, k)
		if found {
			continue
		}
		slot.Store(k)
		fresh = append(fresh, *e)
	}
	var offers []Offer
	var offersKey uint64
	if len(req.Offers) > 0 {
		offersKey = r.offersDigest(hs, req.Offers)
		if slot, found := probe(r.offerBucketOf(hs), offersKey); !found {
			slot.Store(offersKey)
			offers = req.Offers
		}
	}
	if len(fresh) == 0 && len(offers) == 0 {
		return true, false
	}
	if req.At.IsZero() {
		req.At = r.now()
	}
	it := encode(req, fresh, offers)
	reason := reasonShutdown
	r.closing.RLock()
	if !r.stopped.Load() {
		select {
		case r.queue <- it:
			r.closing.RUnlock()
			r.queued.Add(int64(len(fresh)))
			r.metrics.recorded.Add(float64(len(fresh)))
			if len(r.queue) >= r.fillingAt {
				select {
				case r.filling <- struct{}{}:
				default:
				}
			}
			return true, it.attrs != nil
		default:
			reason = reasonQueueFull
		}
	}
	r.closing.RUnlock()
	r.losses.add(req.At, fresh, offers, reason)
	// Forget them, so that the shopper's next request tries again.
	for i := range fresh {
		k := r.digest(hs, &fresh[i])
		if slot, found := probe(b, k); found {
			slot.CompareAndSwap(k, 0)
		}
	}
	if len(offers) > 0 {
		if slot, found := probe(r.offerBucketOf(hs), offersKey); found {
			slot.CompareAndSwap(offersKey, 0)
		}
	}
	return false, false
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
