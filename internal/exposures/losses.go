package exposures

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/database"
)

// Why an exposure was not kept, as exposure_losses and xsell_exposures_lost_total name it.
const (
	reasonQueueFull   = "queue_full"  // the in-memory queue was full: the database fell behind
	reasonShutdown    = "shutdown"    // still queued when the shutdown's drain time ran out
	reasonQuarantined = "quarantined" // the database refused the row; it is in exposure_quarantine
)

// lossKey is one row of exposure_losses.
type lossKey struct {
	experiment string
	phase      int
	variant    string
	hour       int64 // Unix seconds of the exposure's hour
	reason     string
}

// lossCount is what one key of exposure_losses lost: exposures (lost) and offered products
// (offers_lost).
type lossCount struct{ exposures, offers int64 }

// losses counts the exposures that were not kept until they are written to exposure_losses,
// and remembers what to log: the request path only adds to a map under a lock, and only when
// it drops, so that keeping the record costs nothing while nothing is lost.
type losses struct {
	mu       sync.Mutex
	pending  map[lossKey]lossCount
	unlogged map[string]int64 // by reason, since the last log line
	// unloggedOffers are the offers lost since the last log line.
	unloggedOffers int64
	offersLost     prometheus.Counter
	lastShed       atomic.Int64 // Unix nanoseconds of the last drop for want of room
	counters       map[string]prometheus.Counter
}

func newLosses(lost *prometheus.CounterVec, offersLost prometheus.Counter) *losses {
	l := &losses{pending: map[lossKey]lossCount{}, unlogged: map[string]int64{}, counters: map[string]prometheus.Counter{},
		offersLost: offersLost}
	for _, r := range []string{reasonQueueFull, reasonShutdown, reasonQuarantined} {
		l.counters[r] = lost.WithLabelValues(r)
	}
	return l
}

// add counts each exposure and offer, made at, as lost for reason.
func (l *losses) add(at time.Time, exposures []Exposure, offers []Offer, reason string) {
	hour := at.UTC().Truncate(time.Hour).Unix()
	l.mu.Lock()
	// The keys come from the server's own snapshot, or from a row the database held: they
	// are storable, but nothing that reaches this table may ever stop its writer.
	for _, e := range exposures {
		k := lossKey{storable(e.Experiment), e.Phase, storable(e.Variant), hour, reason}
		c := l.pending[k]
		c.exposures++
		l.pending[k] = c
	}
	for _, o := range offers {
		k := lossKey{storable(o.Experiment), o.Phase, storable(o.Variant), hour, reason}
		c := l.pending[k]
		c.offers++
		l.pending[k] = c
	}
	l.unlogged[reason] += int64(len(exposures))
	l.unloggedOffers += int64(len(offers))
	l.mu.Unlock()
	l.counters[reason].Add(float64(len(exposures)))
	if len(offers) > 0 {
		l.offersLost.Add(float64(len(offers)))
	}
	if reason != reasonQuarantined {
		l.lastShed.Store(time.Now().UnixNano())
	}
}

// storable is s as a text column can hold it: valid UTF-8 without NUL.
func storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// shedding reports whether an exposure was dropped for want of room within the last window.
func (l *losses) shedding(now time.Time, window time.Duration) (bool, time.Time) {
	last := l.lastShed.Load()
	if last == 0 {
		return false, time.Time{}
	}
	at := time.Unix(0, last)
	return now.Sub(at) < window, at
}

// logDrops writes one line for what was lost since the last one, if anything: drops come by
// the thousand when the database falls behind, and a line each would flood the log.
func (l *losses) logDrops(log *slog.Logger, queued int64) {
	l.mu.Lock()
	if len(l.unlogged) == 0 && l.unloggedOffers == 0 {
		l.mu.Unlock()
		return
	}
	counts, offers := l.unlogged, l.unloggedOffers
	l.unlogged, l.unloggedOffers = map[string]int64{}, 0
	l.mu.Unlock()
	var total int64
	var parts []string
	for reason, n := range counts {
		total += n
		parts = append(parts, fmt.Sprintf("%s=%d", reason, n))
	}
	sort.Strings(parts)
	log.Error("exposures lost", "count", total, "reasons", strings.Join(parts, " "), "offers", offers, "queued", queued,
		"see", "exposure_losses; analyze report warns about them")
}

// flush adds the counts so far to exposure_losses in one statement. On failure they stay in
// memory, to be added by a later flush; a count the database refuses (a key it cannot store)
// is logged and left out, so that one bad key never keeps the others off the record.
func (l *losses) flush(ctx context.Context, db *sqlx.DB, log *slog.Logger) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = map[lossKey]lossCount{}
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := writeLosses(ctx, db, batch)
	if err == nil {
		return nil
	}
	if database.Refused(err) {
		// Each count on its own: those written or refused leave the batch, the rest stay.
		err = nil
		for k, c := range batch {
			e := writeLosses(ctx, db, map[lossKey]lossCount{k: c})
			if database.Refused(e) {
				log.Error("a loss count the database refuses is left out", "key", fmt.Sprintf("%+v", k), "lost", c, "error", e)
			} else if e != nil {
				err = e
				continue
			}
			delete(batch, k)
		}
		if err == nil {
			return nil
		}
	}
	l.mu.Lock()
	for k, c := range batch {
		p := l.pending[k]
		l.pending[k] = lossCount{p.exposures + c.exposures, p.offers + c.offers}
	}
	l.mu.Unlock()
	return fmt.Errorf("writing %d loss counts: %w", len(batch), err)
}

// writeLosses adds counts to exposure_losses in one statement.
func writeLosses(ctx context.Context, db *sqlx.DB, batch map[lossKey]lossCount) error {
	n := len(batch)
	exps, variants, hours, reasons := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	phases, counts, offers := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for k, c := range batch {
		exps, variants, reasons = append(exps, k.experiment), append(variants, k.variant), append(reasons, k.reason)
		phases, counts, offers = append(phases, int64(k.phase)), append(counts, c.exposures), append(offers, c.offers)
		hours = append(hours, time.Unix(k.hour, 0).UTC().Format(time.RFC3339))
	}
	_, err := db.ExecContext(ctx, `INSERT INTO exposure_losses AS l (experiment_key, phase, variant, hour, reason, lost, offers_lost)
		SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[], $7::bigint[])
		ON CONFLICT (experiment_key, phase, variant, hour, reason)
		DO UPDATE SET lost = l.lost + EXCLUDED.lost, offers_lost = l.offers_lost + EXCLUDED.offers_lost`,
		pq.Array(exps), pq.Array(phases), pq.Array(variants), pq.Array(hours), pq.Array(reasons), pq.Array(counts), pq.Array(offers))
	return err
}

// pendingTotal is the number of lost exposures and offers not written to exposure_losses yet.
func (l *losses) pendingTotal() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, c := range l.pending {
		n += c.exposures + c.offers
	}
	return n
}
