package analysis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/experiments"
)

// The holdout's comparison (SPEC §2b, docs/offers.md): the shoppers the program holdout kept
// from every cross-sell offer against everyone else who had an offer opportunity, in one
// generation of the holdout. Membership is recorded as exposures of
// experiments.HoldoutExperiment (phase = generation, variants holdout and rest), so the
// comparison is a report like an experiment's: the same statement (events form), the same
// statistics, the holdout as control.

// HoldoutRequest is what `analyze holdout` asks for.
type HoldoutRequest struct {
	Generation int // 0: the current generation
	// Since counts only the shoppers first exposed this long before the window's end (and
	// not before the generation's start); 0: the generation's whole life.
	Since   time.Duration
	Window  time.Duration // conversion window after first exposure; 0: to the window's end
	Segment string        // attribute recorded with the exposure to break results down by
	Options Options
	// Stage, when set, is told what the report is doing, for progress output.
	Stage func(string)
}

// HoldoutMetrics are the metrics the holdout is compared on, the primary first: what the
// programme earns after its cost, what it sells, how often it cross-sells, and what it costs.
var HoldoutMetrics = []string{"net_revenue", "revenue", "cross_sell_rate", "offer_cost"}

// HoldoutSection says which holdout a report compared, and what its figures mean.
type HoldoutSection struct {
	Percent    float64 `json:"percent"`
	Seed       string  `json:"seed"`
	Generation int     `json:"generation"`
	// GenerationStart and GenerationEnd bound the generation (GenerationEnd nil while it is
	// the current one); Since is the earliest first exposure counted, when --since cut it.
	// Exposures carry their generation, so an assignment an admin back-dated before the
	// generation's start still counts in it.
	GenerationStart time.Time  `json:"generation_start"`
	GenerationEnd   *time.Time `json:"generation_end,omitempty"`
	Since           *time.Time `json:"since,omitempty"`
	// TargetProducts are the SKUs whose purchase is a cross-sell: those of every experiment
	// that ran in the window.
	TargetProducts []string `json:"target_products"`
	// Meaning says in a sentence what the differences are.
	Meaning string `json:"meaning"`
	// Totals scale each per-shopper difference to the shoppers who had the programme.
	Totals []HoldoutTotal `json:"totals"`
}

// HoldoutTotal is one metric's per-shopper difference (rest − holdout) times the shoppers who
// had the programme: what the programme added in all (extra cross-selling shoppers for
// cross_sell_rate). The interval is the difference's, scaled.
type HoldoutTotal struct {
	Metric   string      `json:"metric"`
	Shoppers int64       `json:"shoppers"`
	Total    float64     `json:"total"`
	TotalCI  *[2]float64 `json:"total_ci"`
	Currency string      `json:"currency,omitempty"`
}

// ErrNoHoldout is returned (wrapped) when there is no holdout to compare.
var ErrNoHoldout = errors.New("no holdout")

// holdoutGeneration is one generation of the holdout as its history recorded it.
type holdoutGeneration struct {
	Generation int             `db:"generation"`
	Start      time.Time       `db:"start"`
	End        sql.NullTime    `db:"end"`
	Percent    sql.NullFloat64 `db:"percent"`
	Seed       sql.NullString  `db:"seed"`
}

// generation reads generation g of the holdout (0: the current one) from its audit log, where
// every change of percent or seed is recorded with the generation it started.
func generation(ctx context.Context, q sqlx.QueryerContext, g int) (holdoutGeneration, error) {
	var cur int
	if err := sqlx.GetContext(ctx, q, &cur, `SELECT holdout_generation FROM offer_settings`); err != nil {
		return holdoutGeneration{}, fmt.Errorf("reading the holdout: %w", err)
	}
	switch {
	case cur == 0:
		return holdoutGeneration{}, fmt.Errorf("%w: none has been set yet (PUT /v1/holdout)", ErrNoHoldout)
	case g == 0:
		g = cur
	case g > cur:
		return holdoutGeneration{}, fmt.Errorf("the holdout has no generation %d (it is in generation %d)", g, cur)
	}
	var gen holdoutGeneration
	err := sqlx.GetContext(ctx, q, &gen, `
		WITH h AS (
		    SELECT id, at, (changes -> 'generation' ->> 'to')::int AS generation,
		           (changes -> 'percent' ->> 'to')::float8 AS percent, changes -> 'seed' ->> 'to' AS seed
		    FROM offer_settings_audit WHERE action = 'holdout' AND changes ? 'generation'
		)
		SELECT generation, at AS start, percent, seed,
		       (SELECT min(n.at) FROM h n WHERE n.generation > h.generation) AS "end"
		FROM h WHERE generation = $1 ORDER BY id LIMIT 1`, g)
	if errors.Is(err, sql.ErrNoRows) {
		return gen, fmt.Errorf("generation %d of the holdout has no entry in its history (GET /v1/offers/history)", g)
	}
	if err != nil {
		return gen, fmt.Errorf("reading generation %d of the holdout: %w", g, err)
	}
	if !gen.Percent.Valid || gen.Percent.Float64 <= 0 {
		return gen, fmt.Errorf("%w in generation %d: it was switched off (percent 0), so nobody was held out", ErrNoHoldout, g)
	}
	return gen, nil
}

// holdoutTargets are the target SKUs of every experiment with a phase in [start, end).
func holdoutTargets(ctx context.Context, q sqlx.QueryerContext, start, end time.Time) ([]string, error) {
	targets := []string{}
	err := sqlx.SelectContext(ctx, q, &targets, `SELECT DISTINCT sku
		FROM experiments e JOIN experiment_phases p ON p.experiment_key = e.key,
		     jsonb_array_elements_text(e.target_products) AS sku
		WHERE p.started_at < $2 AND (p.ended_at IS NULL OR p.ended_at > $1)
		ORDER BY sku`, start, end)
	if err != nil {
		return nil, fmt.Errorf("reading the experiments' target products: %w", err)
	}
	return targets, nil
}

// PrepareHoldout resolves the request into the holdout's aggregate statement.
func (s *Source) PrepareHoldout(ctx context.Context, req HoldoutRequest) (*Prepared, error) {
	return s.prepareHoldout(ctx, s.db, req)
}

func (s *Source) prepareHoldout(ctx context.Context, q sqlx.QueryerContext, req HoldoutRequest) (*Prepared, error) {
	if err := req.Options.Validate(); err != nil {
		return nil, err
	}
	if req.Generation < 0 || req.Since < 0 || req.Window < 0 {
		return nil, fmt.Errorf("generation, since and window must not be negative")
	}
	gen, err := generation(ctx, q, req.Generation)
	if err != nil {
		return nil, err
	}
	end := s.now()
	if gen.End.Valid {
		end = gen.End.Time
	}
	from := gen.Start
	sec := &HoldoutSection{Percent: gen.Percent.Float64, Seed: gen.Seed.String, Generation: gen.Generation, GenerationStart: gen.Start.UTC()}
	if gen.End.Valid {
		sec.GenerationEnd = ptr(gen.End.Time.UTC())
	}
	var since any // NULL: every exposure of the generation
	if req.Since > 0 && end.Add(-req.Since).After(from) {
		from = end.Add(-req.Since)
		since, sec.Since = from, ptr(from.UTC())
	}
	if sec.TargetProducts, err = holdoutTargets(ctx, q, from, end); err != nil {
		return nil, err
	}
	w := sec.Percent / 100
	in := Input{
		Experiment: experiments.HoldoutExperiment, Name: "programme holdout", Phase: gen.Generation,
		Variants:         []VariantSpec{{Key: experiments.HoldoutVariant, Weight: w}, {Key: experiments.RestVariant, Weight: 1 - w}},
		SegmentAttribute: req.Segment, Options: req.Options,
	}
	for _, name := range HoldoutMetrics {
		m, _ := standardMetric(name)
		in.Metrics = append(in.Metrics, MetricSpec{Metric: m})
	}
	var winSecs, capQ any
	if req.Window > 0 {
		winSecs = req.Window.Seconds()
	}
	if req.Options.Cap > 0 {
		capQ = req.Options.Cap
	}
	pre := 0.0
	if req.Options.CUPED {
		pre = CUPEDLookback.Seconds()
	}
	return &Prepared{
		SQL: holdoutAggregateSQL,
		Args: []any{experiments.HoldoutExperiment, gen.Generation, end, winSecs, pq.StringArray(sec.TargetProducts),
			req.Segment, pre, capQ, since},
		Source: DataSource{Form: FormEvents, Reason: reasonHoldout},
		input:  in, start: from, end: end, win: req.Window, holdout: sec,
	}, nil
}

// reasonHoldout is why the holdout's comparison reads events.
const reasonHoldout = "the rollup job keeps no rows for the holdout, whose offer cost is every experiment's"

// HoldoutReport compares the holdout with everyone else, as Report does an experiment's arms.
func (s *Source) HoldoutReport(ctx context.Context, req HoldoutRequest) (*Report, error) {
	stage := req.Stage
	if stage == nil {
		stage = func(string) {}
	}
	stage("refreshing planner statistics")
	s.freshenStatistics(ctx)
	stage("reading the holdout")
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the holdout: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	p, err := s.prepareHoldout(ctx, tx, req)
	if err != nil {
		return nil, err
	}
	stage("aggregating exposures and events")
	var rows []aggRow
	if err := tx.SelectContext(ctx, &rows, p.SQL, p.Args...); err != nil {
		return nil, fmt.Errorf("aggregating the holdout: %w", err)
	}
	if !anyUnits(rows) {
		what := "before " + p.end.UTC().Format(time.RFC3339)
		if p.holdout.Since != nil {
			what = "between " + p.holdout.Since.Format(time.RFC3339) + " and " + p.end.UTC().Format(time.RFC3339)
		}
		return nil, fmt.Errorf("%w in generation %d of the holdout: no shopper had an offer opportunity %s",
			ErrNoExposures, p.input.Phase, what)
	}
	stage("computing statistics")
	rep, err := p.build(rows)
	if err != nil {
		return nil, err
	}
	rep.Holdout = p.holdout
	rep.Holdout.Meaning = holdoutMeaning(rep)
	rep.Holdout.Totals = holdoutTotals(rep)
	warnings, err := exposureWarnings(ctx, s.db, p.input.Experiment, p.input.Phase, p.end, rep)
	if err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	return rep, nil
}

// holdoutMeaning says what the report's differences are.
func holdoutMeaning(r *Report) string {
	h := r.Holdout
	return fmt.Sprintf("The holdout (%g%% of shoppers, seed %q, generation %d) saw no cross-sell offer; "+
		"everyone else (%q) saw the whole programme. Each difference is %s minus %s per shopper who had an "+
		"offer opportunity: the whole programme's incremental effect per shopper, all experiments and offers "+
		"together; the totals scale it to the %d shoppers who had the programme. offer_cost is the loyalty "+
		"cost: order discounts plus every experiment's bonus points at the program's point value.",
		h.Percent, h.Seed, h.Generation, experiments.RestVariant, experiments.RestVariant, experiments.HoldoutVariant, restUnits(r))
}

// anyUnits reports whether the aggregate found a shopper to compare.
func anyUnits(rows []aggRow) bool {
	for _, r := range rows {
		if !r.Excluded && r.Units > 0 {
			return true
		}
	}
	return false
}

// restUnits is the number of shoppers who had the programme.
func restUnits(r *Report) int64 {
	for _, v := range r.Variants {
		if v.Key == experiments.RestVariant {
			return v.Units
		}
	}
	return 0
}

// holdoutTotals scales the overall differences to the shoppers who had the programme.
func holdoutTotals(r *Report) []HoldoutTotal {
	n := restUnits(r)
	out := []HoldoutTotal{}
	for _, res := range r.Results {
		t := HoldoutTotal{Metric: res.Metric, Shoppers: n, Total: res.Diff * float64(n), Currency: res.Currency}
		if res.DiffCI != nil {
			t.TotalCI = &[2]float64{res.DiffCI[0] * float64(n), res.DiffCI[1] * float64(n)}
		}
		out = append(out, t)
	}
	return out
}
