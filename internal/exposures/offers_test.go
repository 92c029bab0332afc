package exposures

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/dbtest"
)

func offer(key string, phase int, variant, sku string) Offer {
	return Offer{Experiment: key, Phase: phase, Variant: variant, SKU: sku}
}

type offeredRow struct {
	Experiment string         `db:"experiment_key"`
	Phase      int            `db:"phase"`
	Shopper    string         `db:"shopper_id"`
	SKUs       pq.StringArray `db:"skus"`
	At         pq.StringArray `db:"offered_at"`
}

func offeredRows(t *testing.T, db *sqlx.DB) []offeredRow {
	t.Helper()
	var rows []offeredRow
	if err := db.Select(&rows, `SELECT experiment_key, phase, shopper_id, skus,
			ARRAY(SELECT to_char(a AT TIME ZONE 'UTC', 'HH24:MI') FROM unnest(offered_at) a) AS offered_at
		FROM exposure_offers ORDER BY experiment_key, phase, shopper_id`); err != nil {
		t.Fatal(err)
	}
	return rows
}

// A shopper offered different products across requests keeps every distinct one, each with
// the time it was first offered, whatever order the requests are merged in.
func TestEveryDistinctOfferIsKeptWithItsFirstTime(t *testing.T) {
	db := dbtest.New(t)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	at := func(r Request, h int) Request { r.At = t0.Add(time.Duration(h) * time.Hour); return r }
	withOffers := func(r Request, o ...Offer) Request { r.Offers = o; return r }
	r := start(t, newRecorder(t, db, Config{}))
	r.Record(at(withOffers(req("s-1", nil, exp("e", 1, "learned")), offer("e", 1, "learned", "A"), offer("e", 1, "learned", "B")), 0))
	// The exposure is not new; the offers of C are.
	r.Record(at(withOffers(req("s-1", nil, exp("e", 1, "learned")), offer("e", 1, "learned", "B"), offer("e", 1, "learned", "C")), 1))
	r.Record(at(withOffers(req("s-2", nil, exp("e", 1, "learned")), offer("e", 1, "learned", "A")), 3))
	r.stop()
	// Another server, with no memory of them: a later offer of A changes nothing, an earlier
	// one of C moves its time, and D is new.
	r2 := start(t, newRecorder(t, db, Config{}))
	r2.Record(at(withOffers(req("s-1", nil), offer("e", 1, "learned", "A"), offer("e", 1, "learned", "D")), 2))
	r2.Record(at(withOffers(req("s-1", nil), offer("e", 1, "learned", "C")), 0))
	r2.stop()
	rows := offeredRows(t, db)
	want := []offeredRow{
		{"e", 1, "s-1", pq.StringArray{"A", "B", "C", "D"}, pq.StringArray{"10:00", "10:00", "10:00", "12:00"}},
		{"e", 1, "s-2", pq.StringArray{"A"}, pq.StringArray{"13:00"}},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("exposure_offers =\n%+v\nwant\n%+v", rows, want)
	}
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposures`); n != 2 {
		t.Fatalf("%d exposures, want 2: offers add no exposure", n)
	}
}

// Offers are de-duplicated in memory like exposures: a request that offers a shopper the list
// already recorded for them queues nothing; another list is queued whole (the merge keeps each
// product once, TestEveryDistinctOfferIsKeptWithItsFirstTime).
func TestRepeatedOffersQueueNothing(t *testing.T) {
	r := newRecorder(t, nil, Config{}) // not running: the queue holds what Record queued
	q := Request{ShopperID: "s-1", Exposures: []Exposure{exp("e", 1, "learned")}, Offers: []Offer{offer("e", 1, "learned", "A")}}
	for range 3 {
		if queued, _ := r.Record(q); !queued {
			t.Fatal("not queued")
		}
	}
	if len(r.queue) != 1 {
		t.Fatalf("%d rows queued for three identical requests, want 1", len(r.queue))
	}
	q.Offers = []Offer{offer("e", 1, "learned", "A"), offer("e", 1, "learned", "B")}
	r.Record(q)
	if len(r.queue) != 2 {
		t.Fatalf("%d rows queued, want 2: A and B is a new list", len(r.queue))
	}
	// The same products in another experiment are other offers.
	q.Offers = []Offer{offer("f", 1, "learned", "A"), offer("f", 1, "learned", "B")}
	r.Record(q)
	r.Record(q)
	if len(r.queue) != 3 {
		t.Fatalf("%d rows queued, want 3: experiment f's offers are new, once", len(r.queue))
	}
	it := <-r.queue
	if exps, offers := it.lists(); len(offers) != 1 || len(exps) != 1 || it.exposures != 1 {
		t.Fatalf("first row holds %d exposures and %d offers, want 1 and 1", len(exps), len(offers))
	}
	it = <-r.queue
	if exps, offers := it.lists(); fmt.Sprint(offers) != fmt.Sprint([]Offer{offer("e", 1, "learned", "A"), offer("e", 1, "learned", "B")}) || len(exps) != 0 {
		t.Fatalf("second row = %+v %+v, want the offers of A and B in e, no exposure", exps, offers)
	}
	it = <-r.queue
	if exps, offers := it.lists(); len(offers) != 2 || offers[0].Experiment != "f" || len(exps) != 0 {
		t.Fatalf("third row = %+v %+v, want the offers of A and B in f, no exposure", exps, offers)
	}
}

// A shopper is kept at most MaxOffered products per experiment phase: the first offered, the
// same whichever are merged first.
func TestOffersPerShopperAreBoundedToTheFirst(t *testing.T) {
	db := dbtest.New(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := MaxOffered + 10
	// The later half first, then the earlier half, each request one product a minute apart.
	for _, half := range [][2]int{{n / 2, n}, {0, n / 2}} {
		r := start(t, newRecorder(t, db, Config{}))
		for i := half[0]; i < half[1]; i++ {
			r.Record(Request{ShopperID: "s-1", At: t0.Add(time.Duration(i) * time.Minute),
				Offers: []Offer{offer("e", 1, "learned", fmt.Sprintf("sku-%02d", i))}})
		}
		r.stop()
	}
	rows := offeredRows(t, db)
	if len(rows) != 1 || len(rows[0].SKUs) != MaxOffered || rows[0].SKUs[0] != "sku-00" || rows[0].SKUs[MaxOffered-1] != fmt.Sprintf("sku-%02d", MaxOffered-1) {
		t.Fatalf("exposure_offers = %+v, want sku-00 … sku-%02d", rows, MaxOffered-1)
	}
}

// Offers dropped for want of room are counted in exposure_losses (offers_lost), and a later
// request offers them again.
func TestDroppedOffersAreCountedAndRetried(t *testing.T) {
	db := dbtest.New(t)
	at := time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC)
	r := newRecorder(t, db, Config{QueueSize: 1})
	fill := Request{ShopperID: "other", At: at, Exposures: []Exposure{exp("e", 1, "fixed")}}
	r.Record(fill)
	q := Request{ShopperID: "s-1", At: at, Offers: []Offer{offer("e", 1, "learned", "A"), offer("e", 1, "learned", "B")}}
	if queued, _ := r.Record(q); queued {
		t.Fatal("queued into a full queue")
	}
	// Room again (the stager would take the row); the shopper's next request offers them again.
	<-r.queue
	r.queued.Add(-1)
	if queued, _ := r.Record(q); !queued {
		t.Fatal("the retry was not queued: the dropped offers were remembered as recorded")
	}
	start(t, r).stop()
	var lost struct {
		Lost   int `db:"lost"`
		Offers int `db:"offers_lost"`
	}
	if err := db.Get(&lost, `SELECT sum(lost) AS lost, sum(offers_lost) AS offers_lost FROM exposure_losses
		WHERE experiment_key = 'e' AND variant = 'learned' AND reason = 'queue_full'`); err != nil {
		t.Fatal(err)
	}
	if lost.Lost != 0 || lost.Offers != 2 {
		t.Fatalf("losses = %+v, want 2 offers lost and no exposure", lost)
	}
	if rows := offeredRows(t, db); len(rows) != 1 || len(rows[0].SKUs) != 2 {
		t.Fatalf("exposure_offers = %+v, want A and B from the retry", rows)
	}
}

// A request the database cannot store is quarantined with the products it offered, and its
// offers are counted as lost under their experiment, phase and variant.
func TestARefusedRequestsOffersAreQuarantinedAndCounted(t *testing.T) {
	db := dbtest.New(t)
	r := start(t, newRecorder(t, db, Config{}))
	r.Record(Request{ShopperID: "evil\x00x", Exposures: []Exposure{exp("e", 1, "learned")},
		Offers: []Offer{offer("e", 1, "learned", "sku-A"), offer("e", 1, "learned", "sku-B"), offer("f", 2, "other", "sku-C")}})
	r.stop()
	byKey := quarantinedRows(t, db, StagingConsumer)
	key := `exposures of shopper "evil\x00x": "e/1/learned e/1 offered sku-A e/1 offered sku-B f/2 offered sku-C"`
	if _, ok := byKey[key]; !ok || len(byKey) != 1 {
		t.Fatalf("quarantine = %v, want the request under %s", byKey, key)
	}
	var payload string
	if err := db.Get(&payload, `SELECT payload::text FROM quarantine WHERE consumer = $1`, StagingConsumer); err != nil ||
		!strings.Contains(payload, `"offers":[{"Experiment":"e","Phase":1,"Variant":"learned","SKU":"sku-A"},`) {
		t.Fatalf("quarantined payload %s (%v), want the offers listed", payload, err)
	}
	var lost []struct {
		Key     string `db:"experiment_key"`
		Phase   int    `db:"phase"`
		Variant string `db:"variant"`
		Lost    int    `db:"lost"`
		Offers  int    `db:"offers_lost"`
	}
	if err := db.Select(&lost, `SELECT experiment_key, phase, variant, lost, offers_lost FROM exposure_losses
		WHERE reason = 'quarantined' ORDER BY experiment_key`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lost) != "[{e 1 learned 1 2} {f 2 other 0 1}]" {
		t.Fatalf("losses = %v, want e/1/learned's exposure and 2 offers, f/2/other's offer", lost)
	}
}

// A returning shopper's request stages offers without exposures; when the merge refuses such a
// row, its offers are counted lost under the variant the shopper was exposed to, not under "".
func TestARefusedRowOfOffersAloneIsCountedUnderTheShoppersVariant(t *testing.T) {
	db := dbtest.New(t)
	if _, err := db.Exec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ('e', 'e', 'running', 1, 'e', 'shopper_id', 1, '[]')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen)
		VALUES ('e', 1, 's-1', 'learned', now())`); err != nil {
		t.Fatal(err)
	}
	// The offer arrays disagree in length: the second offer's phase is null, which
	// exposure_offers refuses.
	if _, err := db.Exec(`INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants,
			offer_experiments, offer_phases, offer_skus)
		VALUES ('s-1', now(), '{}', '{}', '{}', '{}', '{e,e}', '{1}', '{sku-A,sku-B}')`); err != nil {
		t.Fatal(err)
	}
	r := start(t, newRecorder(t, db, Config{}))
	r.stop()
	if q := quarantinedRows(t, db, MergeConsumer); len(q) != 1 {
		t.Fatalf("quarantine = %v, want the row of offers", q)
	}
	var lost []string
	if err := db.Select(&lost, `SELECT experiment_key || '/' || phase || '/' || variant || ': ' || offers_lost
		FROM exposure_losses WHERE reason = 'quarantined' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lost) != "[e/0/: 1 e/1/learned: 1]" {
		t.Fatalf("offers lost %v, want sku-A under e/1/learned (and sku-B, whose phase is gone, under e/0)", lost)
	}
}

// Keys, variants and SKUs are stored as they were given, whatever array literals and COPY text
// make of their quotes, backslashes, tabs and newlines.
func TestStringsThatAskForEscapesAreStoredAsGiven(t *testing.T) {
	db := dbtest.New(t)
	r := start(t, newRecorder(t, db, Config{}))
	odd := []string{`a"b`, `c\d`, "e\tf", "g\nh\ri", "j\rk", "\r", "null", `\"`}
	for i, s := range odd {
		r.Record(Request{ShopperID: fmt.Sprintf("s-%d", i), Exposures: []Exposure{exp("k"+s, 1, "v"+s), exp("plain", 1, "a")},
			Offers: []Offer{offer("k"+s, 1, "v"+s, "sku"+s), offer("k"+s, 1, "v"+s, "plain")}})
	}
	r.stop()
	var got []string
	for _, row := range exposureRows(t, db) {
		if row.Experiment != "plain" {
			got = append(got, row.Shopper+" "+row.Experiment+" "+row.Variant)
		}
	}
	var offered []string
	for _, row := range offeredRows(t, db) {
		offered = append(offered, row.Shopper+" "+row.Experiment+" "+strings.Join(slices.Sorted(slices.Values(row.SKUs)), "|"))
	}
	var want, wantOffered []string
	for i, s := range odd {
		want = append(want, fmt.Sprintf("s-%d k%s v%s", i, s, s))
		wantOffered = append(wantOffered, fmt.Sprintf("s-%d k%s plain|sku%s", i, s, s))
	}
	slices.Sort(got)
	slices.Sort(want)
	slices.Sort(offered)
	slices.Sort(wantOffered)
	if !slices.Equal(got, want) || !slices.Equal(offered, wantOffered) {
		t.Fatalf("stored\n%q\n%q\nwant\n%q\n%q", got, offered, want, wantOffered)
	}
}
