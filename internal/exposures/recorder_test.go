package exposures

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/dbtest"
)

// running is a recorder whose Run goes until stop, which waits for the final flush.
type running struct {
	*Recorder
	stop func()
}

func start(t *testing.T, r *Recorder) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return running{r, stop}
}

func newRecorder(t *testing.T, db *sqlx.DB, cfg Config) *Recorder {
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	return New(db, cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
}

// testWriter sends a recorder's log to the test's, shown when the test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func req(shopper string, attrs map[string]any, exps ...Exposure) Request {
	return Request{ShopperID: shopper, Attributes: attrs, Exposures: exps}
}

func exp(key string, phase int, variant string) Exposure {
	return Exposure{Experiment: key, Phase: phase, Variant: variant}
}

type row struct {
	Experiment string    `db:"experiment_key"`
	Phase      int       `db:"phase"`
	Shopper    string    `db:"shopper_id"`
	Variant    string    `db:"variant"`
	Attributes string    `db:"attributes"`
	Seen       time.Time `db:"first_seen"`
	Multi      bool      `db:"multiple_variants"`
}

func exposureRows(t *testing.T, db *sqlx.DB) []row {
	t.Helper()
	var rows []row
	if err := db.Select(&rows, `SELECT experiment_key, phase, shopper_id, variant, attributes::text AS attributes,
			first_seen, multiple_variants FROM exposures ORDER BY experiment_key, phase, shopper_id`); err != nil {
		t.Fatal(err)
	}
	return rows
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetCounter().GetValue()
	}
	return sum
}

func TestOneExposureRowPerShopperAfterManyCalls(t *testing.T) {
	db := dbtest.New(t)
	r := start(t, newRecorder(t, db, Config{}))
	for range 50 {
		for _, id := range []string{"s-1", "s-2", "s-3"} {
			r.Record(req(id, map[string]any{"device": "mobile", "shopper_id": id}, exp("a", 1, "v1"), exp("b", 1, "v2")))
		}
	}
	r.stop()
	rows := exposureRows(t, db)
	if len(rows) != 6 || rows[0].Shopper != "s-1" || rows[0].Experiment != "a" || rows[5].Variant != "v2" ||
		rows[2].Attributes != `{"device": "mobile", "shopper_id": "s-3"}` {
		t.Fatalf("exposure rows = %+v, want one per shopper and experiment, with attributes", rows)
	}
	if got := counterValue(t, r.metrics.staged); got != 6 {
		t.Fatalf("exposures staged = %v, want 6: in-memory de-duplication failed", got)
	}
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposure_log`); n != 0 {
		t.Fatalf("%d rows left staged after a clean stop", n)
	}
}

// TestAttributesGivenAsJSONAreStoredAsTheMapEncoded records shoppers once with attributes as a
// map, which the recorder encodes, and once with the same attributes as the caller's JSON
// (AttributesJSON, the request body's own bytes): Postgres keeps the same attributes for
// both. JSON the database refuses is quarantined, and the rest written.
func TestAttributesGivenAsJSONAreStoredAsTheMapEncoded(t *testing.T) {
	db := dbtest.New(t)
	r := start(t, newRecorder(t, db, Config{}))
	cases := []struct {
		attrs map[string]any
		json  string
	}{
		{map[string]any{"country": "IT", "device": "mobile", "visits": 5.0, "shopper_id": "s"},
			`{"country":"IT","device":"mobile","visits":5,"shopper_id":"s"}`},
		{map[string]any{"city": "Köln", "tag": "<b>&</b>", "x": 2.5, "neg": -0.001, "t": true, "f": false, "z": nil},
			"{ \"z\" : null ,\n\t\"f\":false,\"t\":true,\"neg\":-0.001,\"x\":2.5,\"tag\":\"<b>&</b>\",\"city\":\"Köln\"}"},
		{map[string]any{"shopper_id": "s"}, `{"shopper_id":"s"}`},
		{map[string]any{"back\\slash": "a\\b"}, `{"back\\slash":"a\\b"}`},
	}
	for i, c := range cases {
		r.Record(req(fmt.Sprintf("map-%d", i), c.attrs, exp("e", 1, "a")))
		r.Record(Request{ShopperID: fmt.Sprintf("json-%d", i), Attributes: c.attrs, AttributesJSON: c.json,
			Exposures: []Exposure{exp("e", 1, "a")}})
	}
	r.Record(Request{ShopperID: "broken", AttributesJSON: `{"a":`, Exposures: []Exposure{exp("e", 1, "a")}})
	r.stop()
	for i := range cases {
		var m, j string
		if err := db.Get(&m, `SELECT attributes::text FROM exposures WHERE shopper_id = $1`, fmt.Sprintf("map-%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := db.Get(&j, `SELECT attributes::text FROM exposures WHERE shopper_id = $1`, fmt.Sprintf("json-%d", i)); err != nil {
			t.Fatal(err)
		}
		if m != j {
			t.Errorf("case %d: attributes stored %s from the JSON, %s from the map", i, j, m)
		}
	}
	if q := quarantinedRows(t, db, StagingConsumer); len(q) != 1 || !strings.Contains(fmt.Sprint(q), `"broken"`) {
		t.Errorf("quarantine = %v, want the row with broken JSON", q)
	}
}

func TestFirstExposureWinsAndASecondVariantFlagsTheShopper(t *testing.T) {
	db := dbtest.New(t)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	at := func(r Request, d time.Duration) Request { r.At = t0.Add(d); return r }
	r := start(t, newRecorder(t, db, Config{}))
	// In one merge: s-1 seen in a, then b; s-2 twice in a.
	r.Record(at(req("s-1", nil, exp("e", 1, "a")), 0))
	r.Record(at(req("s-1", nil, exp("e", 1, "b")), time.Hour))
	r.Record(at(req("s-2", nil, exp("e", 1, "a")), 0))
	r.Record(at(req("s-1", nil, exp("e", 2, "b")), 0))
	r.stop()
	// Across merges: s-2 later in b, s-3 in a again, each against a stored row.
	r2 := start(t, newRecorder(t, db, Config{}))
	r2.Record(at(req("s-2", nil, exp("e", 1, "b")), 2*time.Hour))
	r2.Record(at(req("s-1", nil, exp("e", 2, "b")), 2*time.Hour))
	r2.stop()
	rows := exposureRows(t, db)
	if len(rows) != 3 {
		t.Fatalf("rows = %+v", rows)
	}
	if r := rows[0]; r.Shopper != "s-1" || r.Variant != "a" || !r.Seen.Equal(t0) || !r.Multi {
		t.Fatalf("s-1 phase 1 = %+v, want first variant a at %v, flagged as seen in two", r, t0)
	}
	if r := rows[1]; r.Shopper != "s-2" || r.Variant != "a" || !r.Multi {
		t.Fatalf("s-2 phase 1 = %+v, want a, flagged by the later b", r)
	}
	if r := rows[2]; r.Shopper != "s-1" || r.Phase != 2 || r.Multi || !r.Seen.Equal(t0) {
		t.Fatalf("s-1 phase 2 = %+v, want b from the first sighting, not flagged", r)
	}
}

func TestAFullQueueDropsCountsAndSaysSo(t *testing.T) {
	var log bytes.Buffer
	r := New(nil, Config{QueueSize: 2}, prometheus.NewRegistry(), slog.New(slog.NewJSONHandler(&log, nil)))
	for _, id := range []string{"a", "b", "c", "d"} {
		r.Record(req(id, nil, exp("e", 1, "v"), exp("f", 1, "w")))
	}
	if got := counterValue(t, r.metrics.lost); got != 4 {
		t.Fatalf("lost = %v, want 4 (a queue of 2 requests, 4 requests of 2 exposures, no writer running)", got)
	}
	line, shedding := r.Status()
	if !shedding || !strings.HasPrefix(line, "shedding:") {
		t.Fatalf("Status() = %q, %v; want shedding", line, shedding)
	}
	// The drops are logged once, with their count, not once each.
	r.losses.logDrops(r.log, r.queued.Load())
	r.losses.logDrops(r.log, r.queued.Load())
	if n := strings.Count(log.String(), `"msg":"exposures lost"`); n != 1 || !strings.Contains(log.String(), `"count":4`) {
		t.Fatalf("log:\n%s\nwant one line with count 4", log.String())
	}
}

func TestLossCountsAreKeptPerVariantAndAddUpAcrossRestarts(t *testing.T) {
	db := dbtest.New(t)
	at := time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC)
	for restart := range 2 {
		r := newRecorder(t, db, Config{QueueSize: 1})
		// Not running yet: the first request fills the queue, the next three are dropped.
		for i, v := range []string{"a", "b", "b", "a"} {
			q := req(fmt.Sprintf("s-%d-%d", restart, i), nil, exp("e", 1, v), exp("f", 2, "x"))
			q.At = at
			r.Record(q)
		}
		start(t, r).stop() // stages the queued request and writes the loss counts
	}
	var got []struct {
		Experiment string    `db:"experiment_key"`
		Phase      int       `db:"phase"`
		Variant    string    `db:"variant"`
		Hour       time.Time `db:"hour"`
		Reason     string    `db:"reason"`
		Lost       int       `db:"lost"`
	}
	if err := db.Select(&got, `SELECT experiment_key, phase, variant, hour, reason, lost FROM exposure_losses
		ORDER BY experiment_key, variant`); err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	want := []struct {
		exp     string
		phase   int
		variant string
		lost    int
	}{{"e", 1, "a", 2}, {"e", 1, "b", 4}, {"f", 2, "x", 6}}
	if len(got) != len(want) {
		t.Fatalf("exposure_losses = %+v, want %v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Experiment != w.exp || g.Phase != w.phase || g.Variant != w.variant || g.Lost != w.lost ||
			g.Reason != "queue_full" || !g.Hour.Equal(hour) {
			t.Fatalf("exposure_losses row %d = %+v, want %+v in the hour %v, queue_full", i, g, w, hour)
		}
	}
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposures`); n != 4 {
		t.Fatalf("%d exposures written, want the 4 of the two queued requests", n)
	}
}

// TestPoisonIsQuarantinedAndTheRestWritten injects what the database cannot store straight
// into the recorder, past the edge's validation: each bad request is set aside with its
// error, and every other exposure, before and after it, is written.
func TestPoisonIsQuarantinedAndTheRestWritten(t *testing.T) {
	db := dbtest.New(t)
	var log bytes.Buffer
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewJSONHandler(&log, nil))
	r := start(t, New(db, Config{DrainTimeout: 10 * time.Second, Quarantine: database.NewQuarantine(reg, logger)}, reg, logger))
	good := func(i int) Request {
		return req(fmt.Sprintf("good-%d", i), map[string]any{"n": float64(i)}, exp("e", 1, "a"))
	}
	for i := range 50 {
		r.Record(good(i))
	}
	r.Record(req("evil\x00x", nil, exp("e", 1, "a")))                                            // 22021 in a text column
	r.Record(req("bad-\xff", nil, exp("e", 1, "a")))                                             // invalid UTF-8
	r.Record(req("nul-attrs", map[string]any{"k\x00": "v\x00", "ok": "\xff"}, exp("e", 1, "b"))) // 22P05 in jsonb
	r.Record(req("huge-phase", nil, exp("e", 1, "a"), exp("e", 1<<40, "a")))                     // 22003: refused by the database itself
	for i := 50; i < 100; i++ {
		r.Record(good(i))
	}
	r.stop()

	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposures WHERE shopper_id LIKE 'good-%'`); n != 100 {
		t.Fatalf("%d of the 100 good exposures written", n)
	}
	var attrs string
	if err := db.Get(&attrs, `SELECT attributes::text FROM exposures WHERE shopper_id = 'nul-attrs'`); err != nil ||
		attrs != "{\"ok\": \"\uFFFD\", \"k\uFFFD\": \"v\uFFFD\"}" {
		t.Fatalf("nul-attrs stored with attributes %s (%v), want NUL and the bad byte replaced by U+FFFD", attrs, err)
	}
	byKey := quarantinedRows(t, db, StagingConsumer)
	if len(byKey) != 3 {
		t.Fatalf("quarantine = %v, want the three refused requests", byKey)
	}
	for key, want := range map[string]string{
		`exposures of shopper "evil\x00x": "e/1/a"`:                    "shopper_id holds a NUL byte []",
		`exposures of shopper "bad-\xff": "e/1/a"`:                     "shopper_id is not valid UTF-8 []",
		`exposures of shopper "huge-phase": "e/1/a e/1099511627776/a"`: "[22003]",
	} {
		if got, ok := byKey[key]; !ok || !strings.HasSuffix(got, want) {
			t.Errorf("quarantine of %s: %q, want it ending %q (all: %v)", key, got, want, byKey)
		}
	}
	// Counted as lost, where a report will find them; the key Postgres cannot hold is left out.
	if n := dbtest.Count(t, db, `SELECT COALESCE(sum(lost), 0) FROM exposure_losses WHERE reason = 'quarantined' AND experiment_key = 'e' AND phase = 1`); n != 3 {
		t.Errorf("quarantined exposures of e/1 on the loss record: %d, want 3", n)
	}
	if n := strings.Count(log.String(), `"msg":"quarantined a row the database refused; the consumer goes on without it"`); n != 3 {
		t.Errorf("%d quarantine log lines, want one per row:\n%s", n, log.String())
	}
}

// quarantinedRows is consumer's quarantine, its error and SQLSTATE by key.
func quarantinedRows(t *testing.T, db *sqlx.DB, consumer string) map[string]string {
	t.Helper()
	var rows []struct{ Key, Error, SQLState string }
	if err := db.Select(&rows, `SELECT key, error, sqlstate FROM quarantine WHERE consumer = $1`, consumer); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Key] = r.Error + " [" + r.SQLState + "]"
	}
	return out
}

// TestAStagedRowTheMergeRefusesIsQuarantined: a staged row that cannot become exposures (its
// arrays disagree in length, so a variant is null) is set aside, and the rows around it merge.
func TestAStagedRowTheMergeRefusesIsQuarantined(t *testing.T) {
	db := dbtest.New(t)
	if _, err := db.Exec(`INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
		SELECT 's-' || i, now(), '{}', '{e,f}', '{1,1}', CASE WHEN i = 7 THEN '{a}'::text[] ELSE '{a,b}' END
		FROM generate_series(1, 20) i`); err != nil {
		t.Fatal(err)
	}
	r := start(t, newRecorder(t, db, Config{MergeBatch: 8}))
	r.stop()
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposures`); n != 38 {
		t.Fatalf("%d exposures merged, want the 38 of the 19 good rows", n)
	}
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposure_log`); n != 0 {
		t.Fatalf("%d rows still staged", n)
	}
	var key, payload, state string
	if err := db.QueryRow(`SELECT key, payload, sqlstate FROM quarantine WHERE consumer = $1`, MergeConsumer).Scan(&key, &payload, &state); err != nil ||
		!strings.HasPrefix(key, "exposure_log row ") || !strings.Contains(payload, `"shopper_id":"s-7"`) || state != "23502" {
		t.Fatalf("quarantined %q %s [%s] (%v), want s-7's row refused for a null variant (23502)", key, payload, state, err)
	}
	if n := dbtest.Count(t, db, `SELECT sum(lost) FROM exposure_losses WHERE reason = 'quarantined'`); n != 2 {
		t.Fatalf("%d exposures of the refused row on the loss record, want 2", n)
	}
}

func TestRecordingAfterStopIsCountedAsLost(t *testing.T) {
	db := dbtest.New(t)
	r := start(t, newRecorder(t, db, Config{}))
	r.stop()
	if queued, _ := r.Record(req("late", nil, exp("e", 1, "a"))); queued {
		t.Fatal("a recorder that has stopped queued an exposure nobody will write")
	}
	if got := counterValue(t, r.metrics.lost); got != 1 {
		t.Fatalf("lost = %v, want 1", got)
	}
}
