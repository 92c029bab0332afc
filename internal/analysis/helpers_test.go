package analysis_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// variant is one arm of a test experiment.
type variant struct {
	Key     string  `json:"key"`
	Name    string  `json:"name"`
	Weight  float64 `json:"weight"`
	Control bool    `json:"control,omitempty"`
	Strat   any     `json:"strategy"`
}

func arms(kw ...any) []variant {
	var out []variant
	for i := 0; i < len(kw); i += 2 {
		out = append(out, variant{Key: kw[i].(string), Name: kw[i].(string), Weight: kw[i+1].(float64), Strat: map[string]string{"type": "none"}})
	}
	return out
}

// phase is one phase of a test experiment.
type phase struct {
	variants []variant
	start    time.Time
	end      *time.Time
}

// seedExperiment stores an experiment and its phases directly, with the timestamps a test needs.
func seedExperiment(t *testing.T, db *sqlx.DB, key, status string, targets []string, metrics string, phases ...phase) {
	t.Helper()
	cur := phases[len(phases)-1]
	vj, _ := json.Marshal(cur.variants)
	tj, _ := json.Marshal(targets)
	var started any
	if len(phases) > 0 && status != "draft" {
		started = phases[0].start
	}
	if metrics == "" {
		metrics = `{"primary":"cross_sell_rate"}`
	}
	mustExec(t, db, `INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants,
		target_products, metrics, started_at, stopped_at) VALUES ($1,$1,$2,$3,$1,'shopper_id',1,$4,$5,$6,$7,$8)`,
		key, status, len(phases), vj, tj, metrics, started, cur.end)
	if status == "draft" {
		return
	}
	for i, p := range phases {
		pj, _ := json.Marshal(p.variants)
		mustExec(t, db, `INSERT INTO experiment_phases (experiment_key, phase, seed, coverage, variants, started_at, ended_at)
			VALUES ($1,$2,$1,1,$3,$4,$5)`, key, i+1, pj, p.start, p.end)
	}
}

func mustExec(t *testing.T, db *sqlx.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
}

func expose(t *testing.T, db *sqlx.DB, key string, ph int, shopper, v string, at time.Time, device string, multiple bool) {
	t.Helper()
	attrs := `{}`
	if device != "" {
		attrs = `{"device":"` + device + `"}`
	}
	mustExec(t, db, `INSERT INTO exposures (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, key, ph, shopper, v, attrs, at, multiple)
}

var eventSeq int

// event stores one outcome event (and its order lines for an order).
func event(t *testing.T, db *sqlx.DB, typ, shopper string, at time.Time, order string, amount, discount int64, skus ...string) {
	t.Helper()
	eventSeq++
	id := "ev" + strconv.Itoa(eventSeq)
	mustExec(t, db, `INSERT INTO events (id, type, shopper_id, occurred_at, order_id, amount, discount, currency)
		VALUES ($1,$2,$3,$4,$5,$6,$7,'EUR')`, id, typ, shopper, at, order, amount, discount)
	for i, s := range skus {
		mustExec(t, db, `INSERT INTO order_items (event_id, line, occurred_at, order_id, shopper_id, sku, quantity, unit_price)
			VALUES ($1,$2,$3,$4,$5,$6,1,100)`, id, i, at, order, shopper, s)
	}
}

// readCSV returns a testdata CSV's rows as maps from column to value.
func readCSV(t *testing.T, name string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// near compares with a relative tolerance (absolute near zero).
func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	tol := 1e-6 * math.Max(1, math.Abs(want))
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g", what, got, want)
	}
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
