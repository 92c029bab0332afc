package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/dbtest"
)

// newService is a running Service over a fresh database whose clock reads testNow unless
// opts says otherwise; it stops when the test ends.
func newService(t *testing.T, opts Options) (*Service, *sqlx.DB) {
	t.Helper()
	db := dbtest.New(t)
	if opts.Clock == nil {
		opts.Clock = func() time.Time { return testNow }
	}
	s := NewService(db, opts)
	stop := run(s)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return s, db
}

// run starts s.Run; the returned func stops it and returns what Run returned. Calling it
// again returns the same.
func run(s *Service) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
}

func viewed(id, shopper string) string {
	return fmt.Sprintf(`{"id":%q,"type":"offer_viewed","shopper_id":%q}`, id, shopper)
}

func ingest(t *testing.T, s *Service, events ...string) Result {
	t.Helper()
	res, err := s.IngestJSON(context.Background(), raws(events...))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func count(t *testing.T, db *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestStoresEveryFieldAndOrderLines(t *testing.T) {
	s, db := newService(t, Options{})
	res := ingest(t, s,
		`{"id":"o-ev","type":"order_completed","shopper_id":"s-1","order_id":"o-1","amount":4990,"discount":500,"currency":"EUR",
		  "experiment":"pdp-bundle","occurred_at":"2026-11-25T13:00:00.123456Z",
		  "items":[{"sku":"cam-1","quantity":1,"unit_price":3990},{"sku":"sd-64","quantity":2,"unit_price":500}]}`,
		viewed("v-ev", "s-1"))
	if res != (Result{Accepted: 2}) {
		t.Fatalf("result = %+v, want 2 accepted", res)
	}
	var row struct {
		Type, ShopperID, Experiment, OrderID, Currency string
		Amount, Discount                               int64
		OccurredAt                                     time.Time `db:"occurred_at"`
	}
	err := db.Get(&row, `SELECT type, shopper_id AS shopperid, experiment, order_id AS orderid, currency, amount, discount, occurred_at
		FROM events WHERE id = 'o-ev'`)
	if err != nil {
		t.Fatal(err)
	}
	if row.Type != "order_completed" || row.ShopperID != "s-1" || row.Experiment != "pdp-bundle" || row.OrderID != "o-1" ||
		row.Currency != "EUR" || row.Amount != 4990 || row.Discount != 500 ||
		!row.OccurredAt.Equal(time.Date(2026, 11, 25, 13, 0, 0, 123456000, time.UTC)) {
		t.Fatalf("stored order = %+v", row)
	}
	var viewedAt time.Time
	if err := db.Get(&viewedAt, `SELECT occurred_at FROM events WHERE id = 'v-ev' AND amount IS NULL AND order_id IS NULL AND experiment IS NULL`); err != nil {
		t.Fatalf("the offer view with its absent fields as NULL: %v", err)
	}
	if !viewedAt.Equal(testNow) {
		t.Fatalf("default occurred_at = %v, want the clock's %v", viewedAt, testNow)
	}
	var lines []string
	if err := db.Select(&lines, `SELECT format('%s %s %s x%s @%s', line, order_id, sku, quantity, unit_price) FROM order_items
		WHERE event_id = 'o-ev' AND shopper_id = 's-1' ORDER BY line`); err != nil {
		t.Fatal(err)
	}
	if want := "[0 o-1 cam-1 x1 @3990 1 o-1 sd-64 x2 @500]"; fmt.Sprint(lines) != want {
		t.Fatalf("order lines = %v, want %s", lines, want)
	}
}

func TestInvalidBatchStoresNothing(t *testing.T) {
	s, db := newService(t, Options{})
	_, err := s.IngestJSON(context.Background(), raws(viewed("good", "s-1"), `{"id":"bad","type":"order_refunded","shopper_id":"s-1","amount":1,"currency":"EUR"}`))
	if apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("error = %v, want invalid_request", err)
	}
	if n := count(t, db, `SELECT count(*) FROM events`) + count(t, db, `SELECT count(*) FROM event_ids`); n != 0 {
		t.Fatalf("%d rows stored from a refused batch", n)
	}
}

func TestDuplicatesWithinAndAcrossBatchesFirstWriteWins(t *testing.T) {
	s, db := newService(t, Options{})
	res := ingest(t, s, viewed("e1", "first"), viewed("e2", "x"), viewed("e1", "second"), viewed("e1", "third"))
	if res != (Result{Accepted: 2, Duplicates: 2}) {
		t.Fatalf("within a batch: %+v, want 2 accepted 2 duplicates", res)
	}
	res = ingest(t, s, viewed("e2", "later"), viewed("e3", "y"))
	if res != (Result{Accepted: 1, Duplicates: 1}) {
		t.Fatalf("across batches: %+v, want 1 accepted 1 duplicate", res)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 3 {
		t.Fatalf("%d events stored, want 3", n)
	}
	var shoppers []string
	if err := db.Select(&shoppers, `SELECT shopper_id FROM events WHERE id IN ('e1', 'e2') ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(shoppers) != "[first x]" {
		t.Fatalf("stored shoppers = %v, want the first writes [first x]", shoppers)
	}
}

func TestConcurrentDuplicatesAreStoredOnce(t *testing.T) {
	// MaxWait 0-ish groups little, so that the batches race in separate transactions as well
	// as in shared ones.
	for _, wait := range []time.Duration{time.Nanosecond, 5 * time.Millisecond} {
		t.Run(wait.String(), func(t *testing.T) {
			s, db := newService(t, Options{MaxWait: wait})
			const clients, ids = 16, 40
			var wg sync.WaitGroup
			results := make([]Result, clients)
			errs := make([]error, clients)
			for c := range clients {
				wg.Go(func() {
					batch := make([]string, ids)
					for i := range ids {
						batch[i] = viewed(fmt.Sprintf("same-%d", (i+c)%ids), fmt.Sprintf("client-%d", c))
					}
					results[c], errs[c] = s.IngestJSON(context.Background(), raws(batch...))
				})
			}
			wg.Wait()
			accepted, dups := 0, 0
			for c := range clients {
				if errs[c] != nil {
					t.Fatal(errs[c])
				}
				accepted += results[c].Accepted
				dups += results[c].Duplicates
			}
			if accepted != ids || dups != clients*ids-ids {
				t.Fatalf("accepted %d duplicates %d, want %d and %d", accepted, dups, ids, clients*ids-ids)
			}
			if n := count(t, db, `SELECT count(*) FROM events`); n != ids {
				t.Fatalf("%d events stored, want %d", n, ids)
			}
		})
	}
}

func TestConcurrentBatchesShareOneTransaction(t *testing.T) {
	// The group closes when it holds MaxRows events, so the 8 batches of 10 share a group
	// without the test waiting on a timer.
	s, db := newService(t, Options{MaxWait: time.Minute, MaxRows: 80})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for c := range 8 {
		wg.Go(func() {
			batch := make([]string, 10)
			for i := range batch {
				batch[i] = viewed(fmt.Sprintf("c%d-%d", c, i), "s")
			}
			var res Result
			res, errs[c] = s.IngestJSON(context.Background(), raws(batch...))
			if errs[c] == nil && res != (Result{Accepted: 10}) {
				errs[c] = fmt.Errorf("client %d: %+v", c, res)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(DISTINCT xmin::text) FROM events`); n != 1 {
		t.Fatalf("80 events from 8 concurrent batches written by %d transactions, want 1", n)
	}
}

func TestFailingBatchDoesNotFailItsGroup(t *testing.T) {
	s, db := newService(t, Options{MaxWait: time.Minute, MaxRows: 2})
	good := []Event{{ID: "good", Type: OfferViewed, ShopperID: "s", OccurredAt: testNow}}
	// Past validation nothing should fail in the database; a type the CHECK refuses stands in
	// for whatever might.
	poison := []Event{{ID: "poison", Type: "bogus", ShopperID: "s", OccurredAt: testNow}}
	var wg sync.WaitGroup
	var goodRes Result
	var goodErr, poisonErr error
	wg.Go(func() { goodRes, goodErr = s.store(context.Background(), good) })
	wg.Go(func() { _, poisonErr = s.store(context.Background(), poison) })
	wg.Wait()
	if goodErr != nil || goodRes != (Result{Accepted: 1}) {
		t.Fatalf("the good batch: %+v %v, want 1 accepted", goodRes, goodErr)
	}
	if poisonErr == nil {
		t.Fatal("the poison batch was acknowledged")
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE id = 'good'`) + count(t, db, `SELECT count(*) FROM event_ids`); n != 2 {
		t.Fatalf("rows = %d, want the good event in events and event_ids only", n)
	}
}

func TestStopCommitsWhatItTookThenRefuses(t *testing.T) {
	db := dbtest.New(t)
	s := NewService(db, Options{Clock: func() time.Time { return testNow }, MaxWait: time.Hour})
	stop := run(s)
	done := make(chan error, 1)
	go func() {
		res, err := s.IngestJSON(context.Background(), raws(viewed("before-stop", "s")))
		if err == nil && res.Accepted != 1 {
			err = fmt.Errorf("result %+v", res)
		}
		done <- err
	}()
	// The batch sits in a group that would stay open for an hour; stopping must commit it now.
	<-s.took
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the batch taken before the stop: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE id = 'before-stop'`); n != 1 {
		t.Fatal("the batch answered before the stop is not stored")
	}
	_, err := s.IngestJSON(context.Background(), raws(viewed("after-stop", "s")))
	if apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("after the stop: %v, want unavailable", err)
	}
}

func TestPartitionsByMonthWithDefault(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)
	s, db := newService(t, Options{Clock: func() time.Time { return now }})
	ctx := context.Background()
	if err := s.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsurePartitions(ctx); err != nil {
		t.Fatalf("a second EnsurePartitions: %v", err)
	}
	var parts []string
	if err := db.Select(&parts, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	want := "[events_default events_y2026m09 events_y2026m10 events_y2026m11 events_y2026m12 events_y2027m01 events_y2027m02 events_y2027m03]"
	if fmt.Sprint(parts) != want {
		t.Fatalf("partitions = %v\nwant %s", parts, want)
	}
	ingest(t, s,
		`{"id":"nov","type":"order_completed","shopper_id":"s","order_id":"o","amount":1,"currency":"EUR","occurred_at":"2026-11-30T23:59:59Z","items":[{"sku":"a","quantity":1,"unit_price":1}]}`,
		`{"id":"dec-start","type":"offer_viewed","shopper_id":"s","occurred_at":"2026-11-30T23:00:00-01:00"}`,
		`{"id":"old","type":"order_completed","shopper_id":"s","order_id":"p","amount":1,"currency":"EUR","occurred_at":"2019-03-01T00:00:00Z","items":[{"sku":"b","quantity":1,"unit_price":1}]}`)
	where := func(table, id string) string {
		var p string
		if err := db.Get(&p, fmt.Sprintf(`SELECT tableoid::regclass::text FROM %s WHERE %s = $1`, table, map[string]string{"events": "id", "order_items": "event_id"}[table]), id); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range [][3]string{
		{"events", "nov", "events_y2026m11"}, {"order_items", "nov", "order_items_y2026m11"},
		{"events", "dec-start", "events_y2026m12"},
		{"events", "old", "events_default"}, {"order_items", "old", "order_items_default"},
	} {
		if got := where(c[0], c[1]); got != c[2] {
			t.Errorf("%s %s is in %s, want %s", c[0], c[1], got, c[2])
		}
	}
}

func TestPartitionSkippedWhenDefaultHoldsItsMonth(t *testing.T) {
	now := time.Date(2027, 6, 10, 0, 0, 0, 0, time.UTC)
	s, db := newService(t, Options{Clock: func() time.Time { return now }})
	// Stored before any partition exists: it lands in DEFAULT, and June 2027 cannot be made.
	ingest(t, s, viewed("early", "s"))
	if err := s.EnsurePartitions(context.Background()); err != nil {
		t.Fatalf("EnsurePartitions with June's rows in DEFAULT: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM pg_class WHERE relname IN ('events_y2027m06', 'events_y2027m07')`); n != 1 {
		t.Fatalf("%d of June (skipped) and July (created) partitions exist, want 1", n)
	}
	ingest(t, s, viewed("later", "s"))
	if n := count(t, db, `SELECT count(*) FROM events_default`); n != 2 {
		t.Fatalf("DEFAULT holds %d events of June, want 2", n)
	}
}

func TestIngestRespectsTheCallersContext(t *testing.T) {
	s, _ := newService(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.IngestJSON(ctx, raws(viewed("x", "s"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v", err)
	}
}

func TestIngestKeepsAwkwardTextExactly(t *testing.T) {
	s, db := newService(t, Options{})
	// What COPY's text format must escape, and what looks like its NULL marker.
	awkward := "a\\b\tc\nd\re \\N \\. ü 🛒"
	body, _ := json.Marshal(map[string]any{
		"id": awkward, "type": "order_completed", "shopper_id": awkward, "order_id": awkward,
		"experiment": `\N`, "amount": 1, "currency": "EUR",
		"items": []map[string]any{{"sku": awkward, "quantity": 1, "unit_price": 1}},
	})
	if res := ingest(t, s, string(body)); res.Accepted != 1 {
		t.Fatalf("result %+v", res)
	}
	var got struct{ ID, Shopper, Order, Experiment, SKU string }
	if err := db.Get(&got, `SELECT e.id, e.shopper_id AS shopper, e.order_id AS order, e.experiment, i.sku
		FROM events e JOIN order_items i ON i.event_id = e.id`); err != nil {
		t.Fatal(err)
	}
	if got.ID != awkward || got.Shopper != awkward || got.Order != awkward || got.SKU != awkward || got.Experiment != `\N` {
		t.Fatalf("stored %q, want %q everywhere and experiment \\N", got, awkward)
	}
	if res := ingest(t, s, string(body)); res != (Result{Duplicates: 1}) {
		t.Fatalf("the same id again: %+v, want a duplicate", res)
	}
}

// TestAGroupGrownWhileWaitingCountsEachBatch builds a group the way the committer does while
// the writer is busy — a first batch, then a second prepared into the same group — and checks
// what each batch is told: the second's repeat of the first's id and of an id stored earlier
// are duplicates, and the group is one transaction.
func TestAGroupGrownWhileWaitingCountsEachBatch(t *testing.T) {
	s, db := newService(t, Options{})
	ingest(t, s, viewed("stored-before", "s"))
	batch := func(ids ...string) *pending {
		p := &pending{done: make(chan outcome, 1)}
		for _, id := range ids {
			p.events = append(p.events, Event{ID: id, Type: OfferViewed, ShopperID: "s", OccurredAt: testNow})
		}
		return p
	}
	first, second := batch("a", "b"), batch("b", "stored-before", "c", "c")
	g := s.prepare(context.Background(), nil, []*pending{first})
	g = s.prepare(context.Background(), g, []*pending{second})
	s.write(context.Background(), g)
	for _, c := range []struct {
		name string
		p    *pending
		want Result
	}{{"first", first, Result{Accepted: 2}}, {"second", second, Result{Accepted: 1, Duplicates: 3}}} {
		if o := <-c.p.done; o.err != nil || o.res != c.want {
			t.Errorf("%s batch: %+v %v, want %+v", c.name, o.res, o.err, c.want)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 4 {
		t.Fatalf("%d events stored, want 4 (stored-before, a, b, c)", n)
	}
	if n := count(t, db, `SELECT count(DISTINCT xmin::text) FROM events WHERE id <> 'stored-before'`); n != 1 {
		t.Fatalf("the grown group was written by %d transactions, want 1", n)
	}
}

// TestAnIDStoredBetweenLookUpAndCopy: the look-up runs outside the commit lock, so another
// writer may store one of the group's ids before the group's COPY. The group then fails on
// the primary key and each batch is written again with its ids looked up under the lock:
// the id counts as a duplicate, the rest is stored, nothing twice.
func TestAnIDStoredBetweenLookUpAndCopy(t *testing.T) {
	s, db := newService(t, Options{})
	p := &pending{done: make(chan outcome, 1)}
	for _, id := range []string{"raced", "mine"} {
		p.events = append(p.events, Event{ID: id, Type: OfferViewed, ShopperID: "s", OccurredAt: testNow})
	}
	g := s.prepare(context.Background(), nil, []*pending{p})
	if !g.fresh["raced"] {
		t.Fatal("the look-up already saw the id")
	}
	ingest(t, s, viewed("raced", "someone else")) // commits between the look-up and the COPY
	s.write(context.Background(), g)
	if o := <-p.done; o.err != nil || o.res != (Result{Accepted: 1, Duplicates: 1}) {
		t.Fatalf("batch: %+v %v, want 1 accepted and 1 duplicate", o.res, o.err)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE id = 'raced' AND shopper_id = 'someone else'`); n != 1 {
		t.Fatal("the first write of the raced id did not win")
	}
}
