package exposures

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
)

// mergeSQL moves staged rows into exposures in one statement, so that a row is merged exactly
// once even with several servers merging (SKIP LOCKED shares the rows out). %s picks the rows.
// Within the statement, a shopper's repeats are folded as ON CONFLICT requires — the earliest
// exposure wins and a second variant flags the shopper — and rows go in key order, the order of
// the primary key's index. Against a stored row, the first one stays; another variant flags
// the shopper, whom analysis then leaves out. Offers are folded into exposure_offers (offersSQL).
var mergeSQL = `
WITH taken AS (
    DELETE FROM exposure_log WHERE id IN (%s)
    RETURNING shopper_id, at, attributes, experiments, phases, variants, offer_experiments, offer_phases, offer_skus
), x AS (
    SELECT u.experiment_key, u.phase, t.shopper_id, u.variant, t.attributes, t.at,
           min(u.variant) OVER w <> max(u.variant) OVER w AS multi,
           row_number() OVER w AS n
    FROM taken t, unnest(t.experiments, t.phases, t.variants) AS u(experiment_key, phase, variant)
    WINDOW w AS (PARTITION BY u.experiment_key, u.phase, t.shopper_id ORDER BY t.at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), ins AS (
    INSERT INTO exposures AS e (experiment_key, phase, shopper_id, variant, attributes, first_seen, multiple_variants)
    SELECT experiment_key, phase, shopper_id, variant, attributes, at, multi FROM x WHERE n = 1
    ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET multiple_variants = true
    WHERE NOT e.multiple_variants AND (e.variant <> EXCLUDED.variant OR EXCLUDED.multiple_variants)
),` + offersSQL + `
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM x)`

// MaxOffered is the most products exposure_offers keeps per shopper and experiment phase: the
// first offered (ties by SKU), whatever the order the rows are merged in. A learned answer
// offers at most 20; a shopper who keeps coming back with new carts is offered more, and the
// cross-sell of the first fifty is what the report can judge.
const MaxOffered = 50

// offersSQL folds the taken rows' offers into exposure_offers: each product once per shopper
// and experiment phase, with the earliest time it was offered, the first MaxOffered kept. A
// stored row is updated only when an offer adds a product or an earlier time to what it keeps,
// so that a returning shopper's repeated offers do not rewrite it.
var offersSQL = strings.ReplaceAll(`
o AS (
    SELECT f.experiment_key, f.phase, t.shopper_id, f.sku, min(t.at) AS at
    FROM taken t, unnest(t.offer_experiments, t.offer_phases, t.offer_skus) AS f(experiment_key, phase, sku)
    GROUP BY 1, 2, 3, 4
), og AS (
    SELECT experiment_key, phase, shopper_id,
           (array_agg(sku ORDER BY at, sku))[1:MAX] AS skus, (array_agg(at ORDER BY at, sku))[1:MAX] AS offered_at
    FROM o GROUP BY 1, 2, 3
), offered AS (
    INSERT INTO exposure_offers AS s (experiment_key, phase, shopper_id, skus, offered_at)
    SELECT * FROM og ORDER BY experiment_key, phase, shopper_id
    ON CONFLICT (experiment_key, phase, shopper_id) DO UPDATE SET (skus, offered_at) = (
        SELECT (array_agg(sku ORDER BY at, sku))[1:MAX], (array_agg(at ORDER BY at, sku))[1:MAX]
        FROM (SELECT sku, min(at) AS at FROM unnest(s.skus || EXCLUDED.skus, s.offered_at || EXCLUDED.offered_at) AS m(sku, at)
              GROUP BY sku) m)
    WHERE EXISTS (
        SELECT 1 FROM unnest(EXCLUDED.skus, EXCLUDED.offered_at) AS n(sku, at)
        WHERE NOT EXISTS (SELECT 1 FROM unnest(s.skus, s.offered_at) AS k(sku, at) WHERE k.sku = n.sku AND k.at <= n.at)
          AND (cardinality(s.skus) < MAX
               OR (n.at, n.sku) < (s.offered_at[cardinality(s.skus)], s.skus[cardinality(s.skus)])))
)`, "MAX", strconv.Itoa(MaxOffered))

var (
	mergeNextSQL = fmt.Sprintf(mergeSQL, `SELECT id FROM exposure_log ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`)
	mergeIDsSQL  = fmt.Sprintf(mergeSQL, `SELECT id FROM exposure_log WHERE id = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED`)
	// mergeDrainSQL is the shutdown drain's: it waits for rows another transaction holds
	// instead of skipping them. The merge loop's last transaction, cancelled as the server
	// stops, may still hold its rows for a moment on the database's side after the client
	// has given up on it; skipping them would leave them staged until the next start.
	mergeDrainSQL = fmt.Sprintf(mergeSQL, `SELECT id FROM exposure_log ORDER BY id LIMIT $1 FOR UPDATE`)
)

// mergeTimeout bounds a merge statement. The pool's statement timeout is for requests, which
// must not wait; a merge is background work whose batch may take seconds on a loaded database,
// and one that timed out would be tried again, and time out again, for ever.
const mergeTimeout = 5 * time.Minute

// merge runs one merge statement and counts what it wrote.
func (r *Recorder) merge(ctx context.Context, query string, arg any) (taken int, err error) {
	var exposures int64
	err = database.Transact(ctx, r.db, nil, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d`, mergeTimeout.Milliseconds())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, query, arg).Scan(&taken, &exposures)
	})
	if err != nil {
		return 0, err
	}
	r.metrics.written.Add(float64(exposures))
	return taken, nil
}

// mergeNext merges the next batch of staged rows and returns how many it took. A row the
// merge cannot write (the database refuses it) is found by halving the batch and quarantined,
// and the rest of the batch is merged.
func (r *Recorder) mergeNext(ctx context.Context) (int, error) {
	return r.mergeFrom(ctx, mergeNextSQL)
}

// mergeFrom is mergeNext with the statement that picks the batch: mergeNextSQL while
// running, mergeDrainSQL at shutdown.
func (r *Recorder) mergeFrom(ctx context.Context, query string) (int, error) {
	taken, err := r.merge(ctx, query, r.cfg.MergeBatch)
	if !database.Refused(err) {
		return taken, database.Wrap(err, "merging staged exposures")
	}
	var ids []int64
	if err := r.db.SelectContext(ctx, &ids, `SELECT id FROM exposure_log ORDER BY id LIMIT $1`, r.cfg.MergeBatch); err != nil {
		return 0, database.Wrap(err, "reading the ids of staged exposures")
	}
	return len(ids), r.mergeIDs(ctx, ids)
}

func (r *Recorder) mergeIDs(ctx context.Context, ids []int64) error {
	_, err := r.merge(ctx, mergeIDsSQL, pq.Array(ids))
	switch {
	case !database.Refused(err):
		return database.Wrap(err, "merging %d staged rows", len(ids))
	case len(ids) > 1:
		mid := len(ids) / 2
		if err := r.mergeIDs(ctx, ids[:mid]); err != nil {
			return err
		}
		return r.mergeIDs(ctx, ids[mid:])
	}
	return r.quarantineStaged(ctx, ids[0], err)
}

// quarantineStaged moves one staged row the merge cannot write to the quarantine, with the
// database's reason.
func (r *Recorder) quarantineStaged(ctx context.Context, id int64, cause error) error {
	var (
		found   bool
		shopper string
		at      time.Time
		exps    []Exposure
		offers  []Offer
	)
	err := database.Transact(ctx, r.db, nil, func(tx *database.Tx) error {
		var row struct {
			Shopper     string    `db:"shopper_id"`
			At          time.Time `db:"at"`
			Payload     string    `db:"payload"`
			Experiments string    `db:"experiments"`
			Phases      string    `db:"phases"`
			Variants    string    `db:"variants"`
			Offers      string    `db:"offers"`
		}
		err := tx.GetContext(ctx, &row, `SELECT shopper_id, at, row_to_json(l)::text AS payload,
				array_to_json(experiments)::text AS experiments, array_to_json(phases)::text AS phases,
				array_to_json(variants)::text AS variants,
				json_build_array(offer_experiments, offer_phases, offer_skus)::text AS offers
			FROM exposure_log l WHERE id = $1 FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			found = false // another server merged or quarantined it meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		found, shopper, at = true, row.Shopper, row.At
		exps = stagedExposures(row.Experiments, row.Phases, row.Variants)
		offers = stagedOffers(row.Offers, exps)
		key := "exposure_log row " + strconv.FormatInt(id, 10)
		if err := r.quarantine.Put(ctx, tx, MergeConsumer, key, json.RawMessage(row.Payload), cause); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM exposure_log WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return database.Wrap(err, "quarantining staged row %d", id)
	}
	if found {
		// Counted as setAside counts a queued item, from the row's lists (no longer queued).
		r.variantsOfOffers(ctx, shopper, offers)
		r.losses.add(at, exps, offers, reasonQuarantined)
	}
	return nil
}

// variantsOfOffers gives the refused row's offers that its own exposures do not explain (a
// returning shopper's request stages offers alone) the variant the shopper was exposed to, so
// that they are counted lost under their arm. Best effort: the row is already quarantined, and
// an offer whose variant cannot be read stays counted under "".
func (r *Recorder) variantsOfOffers(ctx context.Context, shopper string, offers []Offer) {
	var pairs []Pair
	for _, o := range offers {
		if o.Variant == "" {
			pairs = append(pairs, Pair{Experiment: o.Experiment, ShopperID: shopper})
		}
	}
	if len(pairs) == 0 {
		return
	}
	vs, err := VariantsOf(ctx, r.db, pairs)
	if err != nil {
		r.log.Warn("reading the variants of a quarantined row's offers", "shopper_id", shopper, "err", err)
		return
	}
	for i := range offers {
		for _, v := range vs {
			if offers[i].Variant == "" && v.Experiment == offers[i].Experiment && v.Phase == offers[i].Phase {
				offers[i].Variant = v.Variant
			}
		}
	}
}

// stagedExposures pairs a staged row's arrays (as JSON) into exposures, however mismatched
// or null their elements: they are what a refused row is counted as lost under.
func stagedExposures(exps, phases, variants string) []Exposure {
	var e, v []*string
	var p []*int
	_ = json.Unmarshal([]byte(exps), &e)
	_ = json.Unmarshal([]byte(phases), &p)
	_ = json.Unmarshal([]byte(variants), &v)
	out := make([]Exposure, max(len(e), len(p), len(v)))
	for i := range out {
		if i < len(e) && e[i] != nil {
			out[i].Experiment = *e[i]
		}
		if i < len(p) && p[i] != nil {
			out[i].Phase = *p[i]
		}
		if i < len(v) && v[i] != nil {
			out[i].Variant = *v[i]
		}
	}
	return out
}

// stagedOffers pairs a staged row's offer arrays (as one JSON array of the three) into offers,
// however mismatched or null, each with the variant of the row's exposure to its experiment
// and phase ("" when the row has none, for variantsOfOffers to find): what a refused row's
// offers are counted as lost under.
func stagedOffers(arrays string, exps []Exposure) []Offer {
	var cols struct {
		e, s []*string
		p    []*int
	}
	var raw []json.RawMessage
	_ = json.Unmarshal([]byte(arrays), &raw)
	if len(raw) == 3 {
		_ = json.Unmarshal(raw[0], &cols.e)
		_ = json.Unmarshal(raw[1], &cols.p)
		_ = json.Unmarshal(raw[2], &cols.s)
	}
	out := make([]Offer, max(len(cols.e), len(cols.p), len(cols.s)))
	for i := range out {
		o := &out[i]
		if i < len(cols.e) && cols.e[i] != nil {
			o.Experiment = *cols.e[i]
		}
		if i < len(cols.p) && cols.p[i] != nil {
			o.Phase = *cols.p[i]
		}
		if i < len(cols.s) && cols.s[i] != nil {
			o.SKU = *cols.s[i]
		}
		for _, e := range exps {
			if e.Experiment == o.Experiment && e.Phase == o.Phase {
				o.Variant = e.Variant
				break
			}
		}
	}
	return out
}
