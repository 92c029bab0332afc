package exposures_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/exposures"
)

// experimentRow writes an experiment in the given status and phase.
func experimentRow(t *testing.T, db *sqlx.DB, key, status string, phase int) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO experiments (key, name, status, phase, seed, hash_attribute, coverage, variants)
		VALUES ($1, $1, $2, $3, $1, 'shopper_id', 1, '[]')`, key, status, phase); err != nil {
		t.Fatal(err)
	}
}

// merged writes an exposure straight into exposures, as the merge leaves it.
func merged(t *testing.T, db *sqlx.DB, key string, phase int, shopper, variant string, multiple bool) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO exposures (experiment_key, phase, shopper_id, variant, first_seen, multiple_variants)
		VALUES ($1, $2, $3, $4, now(), $5)`, key, phase, shopper, variant, multiple); err != nil {
		t.Fatal(err)
	}
}

// staged writes one assignment request's row into exposure_log, as the recorder's COPY does,
// not merged yet.
func staged(t *testing.T, db *sqlx.DB, shopper string, exps ...exposures.Exposure) {
	t.Helper()
	var keys, variants []string
	var phases []int64
	for _, e := range exps {
		keys, phases, variants = append(keys, e.Experiment), append(phases, int64(e.Phase)), append(variants, e.Variant)
	}
	if _, err := db.Exec(`INSERT INTO exposure_log (shopper_id, at, attributes, experiments, phases, variants)
		VALUES ($1, now(), '{}', $2, $3, $4)`, shopper, pq.StringArray(keys), pq.Int64Array(phases), pq.StringArray(variants)); err != nil {
		t.Fatal(err)
	}
}

// mergeAll runs the recorder's merge: a Run whose context has ended only drains, and merges
// what is staged before it returns.
func mergeAll(t *testing.T, db *sqlx.DB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := exposures.New(db, exposures.Config{QueueSize: 1, SeenSize: 1}, nil, nil).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposure_log`); n != 0 {
		t.Fatalf("%d rows still staged after the merge", n)
	}
}

func describe(vs []exposures.Variant) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s/%d %s=%s", v.Experiment, v.Phase, v.ShopperID, v.Variant))
	}
	return out
}

// TestVariantsReadMergedAndStagedExposuresAlike: a shopper's variant is the same whether their
// exposures are merged, staged or some of each, before and after the merge runs; a shopper
// seen in two variants of a phase, in either table or across both, is in none; exposures of a
// past phase count for nothing; RunningVariants reads every running experiment and VariantsOf
// just the pairs asked for, whatever the status.
func TestVariantsReadMergedAndStagedExposuresAlike(t *testing.T) {
	db := dbtest.New(t)
	experimentRow(t, db, "a", "running", 2)
	experimentRow(t, db, "b", "running", 1)
	experimentRow(t, db, "p", "paused", 1)
	x := func(key string, phase int, variant string) exposures.Exposure {
		return exposures.Exposure{Experiment: key, Phase: phase, Variant: variant}
	}
	merged(t, db, "a", 2, "s-merged", "v1", false)
	staged(t, db, "s-staged", x("a", 2, "v2"), x("b", 1, "v1"), x("p", 1, "v1"))
	merged(t, db, "a", 2, "s-both", "v1", false)
	staged(t, db, "s-both", x("a", 2, "v1"))
	merged(t, db, "a", 2, "s-across", "v1", false)
	staged(t, db, "s-across", x("a", 2, "v2"))
	staged(t, db, "s-twice", x("a", 2, "v1"))
	staged(t, db, "s-twice", x("a", 2, "v2"))
	merged(t, db, "a", 2, "s-flagged", "v1", true)
	merged(t, db, "a", 1, "s-old", "v1", false)
	staged(t, db, "s-old", x("a", 1, "v2"), x("b", 1, "v2"))
	staged(t, db, "s-other", x("a", 2, "v1"))

	shoppers := []string{"s-merged", "s-staged", "s-both", "s-across", "s-twice", "s-flagged", "s-old"}
	wantRunning := "[a/2 s-both=v1 a/2 s-merged=v1 b/1 s-old=v2 a/2 s-staged=v2 b/1 s-staged=v1]"
	pairs := []exposures.Pair{{Experiment: "p", ShopperID: "s-staged"}, {Experiment: "a", ShopperID: "s-merged"},
		{Experiment: "a", ShopperID: "s-old"}, {Experiment: "a", ShopperID: "s-across"}, {Experiment: "a", ShopperID: "s-merged"}}
	wantPairs := "[a/2 s-merged=v1 p/1 s-staged=v1]"
	check := func(when string) {
		t.Helper()
		ctx := context.Background()
		running, err := exposures.RunningVariants(ctx, db, shoppers)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(describe(running)); got != wantRunning {
			t.Errorf("%s: RunningVariants = %s, want %s", when, got, wantRunning)
		}
		of, err := exposures.VariantsOf(ctx, db, pairs)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(describe(of)); got != wantPairs {
			t.Errorf("%s: VariantsOf = %s, want %s", when, got, wantPairs)
		}
	}
	check("staged")
	mergeAll(t, db)
	if n := dbtest.Count(t, db, `SELECT count(*) FROM exposures WHERE shopper_id = 's-staged'`); n != 3 {
		t.Fatalf("s-staged has %d merged exposures, want 3", n)
	}
	check("merged")
}
