package analysis

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/stats"
)

// CUPEDLookback is how far before first exposure the CUPED covariate (revenue) is summed.
const CUPEDLookback = 14 * 24 * time.Hour

// aggRow is one group of aggregateSQL's result.
type aggRow struct {
	Excluded      bool            `db:"excluded"`
	Variant       string          `db:"variant"`
	Segment       string          `db:"segment"`
	Day           sql.NullTime    `db:"day"`
	Period        int             `db:"period"`
	Units         int64           `db:"units"`
	FromEvents    int64           `db:"from_events"`
	CrossSell     int64           `db:"cross_sell"`
	Converted     int64           `db:"converted"`
	Refunded      int64           `db:"refunded"`
	Orders        int64           `db:"orders"`
	OrdersSq      float64         `db:"orders_sq"`
	Revenue       float64         `db:"revenue"`
	RevenueSq     float64         `db:"revenue_sq"`
	RevenueCu     float64         `db:"revenue_cu"`
	RevenueNZ     int64           `db:"revenue_nz"`
	RevenueCapped int64           `db:"revenue_capped"`
	RevenueOrders float64         `db:"revenue_orders"`
	Cost          float64         `db:"cost"`
	CostSq        float64         `db:"cost_sq"`
	CostCu        float64         `db:"cost_cu"`
	CostNZ        int64           `db:"cost_nz"`
	CostCapped    int64           `db:"cost_capped"`
	Net           float64         `db:"net"`
	NetSq         float64         `db:"net_sq"`
	NetCu         float64         `db:"net_cu"`
	NetNZ         int64           `db:"net_nz"`
	NetCapped     int64           `db:"net_capped"`
	Pre           float64         `db:"pre"`
	PreSq         float64         `db:"pre_sq"`
	PreCapped     int64           `db:"pre_capped"`
	RevenuePre    float64         `db:"revenue_pre"`
	CostPre       float64         `db:"cost_pre"`
	NetPre        float64         `db:"net_pre"`
	CurMin        string          `db:"cur_min"`
	CurMax        string          `db:"cur_max"`
	CapRevenue    pq.Float64Array `db:"cap_revenue"`
	CapCost       pq.Float64Array `db:"cap_cost"`
	CapNet        pq.Float64Array `db:"cap_net"`
	CapPre        pq.Float64Array `db:"cap_pre"`
}

// suff returns the sufficient statistics of one standard metric in this group.
func (r aggRow) suff(name string) Suff {
	n := float64(r.Units)
	prop := func(k int64) Suff { return Suff{Moments: stats.ProportionMoments(n, float64(k))} }
	mean := func(sum, sq, cu float64, nz int64, cross float64) Suff {
		return Suff{HasCovariate: true,
			Moments: stats.Moments{N: n, Sum: sum, SumSq: sq, SumCu: cu, NonZero: float64(nz)},
			CUPED:   stats.CUPEDMoments{N: n, SumY: sum, SumYY: sq, SumX: r.Pre, SumXX: r.PreSq, SumXY: cross}}
	}
	switch name {
	case "cross_sell_rate":
		return prop(r.CrossSell)
	case "conversion":
		return prop(r.Converted)
	case "refund_rate":
		return prop(r.Refunded)
	case "revenue":
		return mean(r.Revenue, r.RevenueSq, r.RevenueCu, r.RevenueNZ, r.RevenuePre)
	case "offer_cost":
		return mean(r.Cost, r.CostSq, r.CostCu, r.CostNZ, r.CostPre)
	case "net_revenue":
		return mean(r.Net, r.NetSq, r.NetCu, r.NetNZ, r.NetPre)
	case "aov":
		return Suff{Ratio: stats.RatioMoments{N: n, SumNum: r.Revenue, SumNumSq: r.RevenueSq,
			SumDen: float64(r.Orders), SumDenSq: r.OrdersSq, SumNumDen: r.RevenueOrders}}
	}
	return Suff{}
}

// caps lists the bounds the statement applied, with the units each changed in this group.
func (r aggRow) caps(q float64) []Cap {
	var out []Cap
	for _, c := range []struct {
		metric string
		bounds pq.Float64Array
		capped int64
	}{{"revenue", r.CapRevenue, r.RevenueCapped}, {"offer_cost", r.CapCost, r.CostCapped},
		{"net_revenue", r.CapNet, r.NetCapped}, {"pre_exposure_revenue", r.CapPre, r.PreCapped}} {
		if len(c.bounds) == 2 {
			out = append(out, Cap{Metric: c.metric, Quantile: q, Lower: c.bounds[0], Upper: c.bounds[1], Capped: c.capped})
		}
	}
	return out
}

// Source reads experiments, exposures and events from Postgres for analysis.
type Source struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewSource returns a Source on db; now is the clock that closes a running phase's window.
func NewSource(db *sqlx.DB, now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{db: db, now: now}
}

// ReportRequest is what `analyze report` asks for.
type ReportRequest struct {
	Experiment string
	Phase      int           // 0: the experiment's current phase
	Segment    string        // attribute recorded at assignment to break results down by; "" for none
	Window     time.Duration // conversion window after first exposure; 0: to the end of the phase
	// FromEvents computes every shopper's figures from events even where the rollups could
	// answer: the reference the rollups are checked against.
	FromEvents bool
	Options    Options
	// Stage, when set, is told what the report is doing, for progress output.
	Stage func(string)
}

// ErrNotFound is returned (wrapped) when the experiment does not exist.
var ErrNotFound = errors.New("unknown experiment")

// ErrNoExposures is returned (wrapped) when the phase has no exposed shopper yet.
var ErrNoExposures = errors.New("no exposures yet")

// phaseRow is the analysed phase of an experiment.
type phaseRow struct {
	Phase     int          `db:"phase"`
	Variants  []byte       `db:"variants"`
	StartedAt time.Time    `db:"started_at"`
	EndedAt   sql.NullTime `db:"ended_at"`
}

// Prepared is a report request resolved against the experiment: the SQL with its arguments
// and what is needed to turn its rows into a report.
type Prepared struct {
	SQL  string
	Args []any
	// Source says where the statement reads each shopper's figures from, and why.
	Source           DataSource
	input            Input
	start            time.Time
	end              time.Time
	win              time.Duration
	strategyCurrency string
	// crossSellNote warns that cross_sell_rate counts other products in learned arms than in
	// the rest (learned.go); "" when the arms count alike.
	crossSellNote string
	banditMetric  string // what a bandit optimised, for its report
	holdout       *HoldoutSection
}

// Prepare loads the experiment and its phase and resolves the request into the aggregate
// query; it fails on an unknown experiment or phase.
func (s *Source) Prepare(ctx context.Context, req ReportRequest) (*Prepared, error) {
	return s.prepare(ctx, s.db, req)
}

// prepare is Prepare reading through q, the report's transaction when it runs one.
func (s *Source) prepare(ctx context.Context, q sqlx.QueryerContext, req ReportRequest) (*Prepared, error) {
	if err := req.Options.Validate(); err != nil {
		return nil, err
	}
	if req.Window < 0 {
		return nil, fmt.Errorf("window must be positive, got %v", req.Window)
	}
	e, err := experiments.NewStore(s.db, s.now).Get(ctx, req.Experiment)
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code == apperr.NotFound {
			return nil, fmt.Errorf("%w %q (analyze list shows the experiments)", ErrNotFound, req.Experiment)
		}
		return nil, fmt.Errorf("reading experiment %q: %w", req.Experiment, err)
	}
	phase := req.Phase
	if phase == 0 {
		phase = e.Phase
	}
	var ph phaseRow
	err = sqlx.GetContext(ctx, q, &ph, `SELECT phase, variants, started_at, ended_at
		FROM experiment_phases WHERE experiment_key = $1 AND phase = $2`, e.Key, phase)
	if errors.Is(err, sql.ErrNoRows) {
		if e.Status == experiments.StatusDraft {
			return nil, fmt.Errorf("%w: experiment %q is a draft and has not started", ErrNoExposures, e.Key)
		}
		return nil, fmt.Errorf("experiment %q has no phase %d (it is in phase %d)", e.Key, phase, e.Phase)
	}
	if err != nil {
		return nil, fmt.Errorf("reading phase %d of %q: %w", phase, e.Key, err)
	}
	var variants []experiments.Variant
	if err := json.Unmarshal(ph.Variants, &variants); err != nil {
		return nil, fmt.Errorf("phase %d of %q: unreadable variants: %w", phase, e.Key, err)
	}
	in := Input{Experiment: e.Key, Name: e.Name, Phase: phase, SegmentAttribute: req.Segment, Options: req.Options}
	for i, v := range variants {
		in.Variants = append(in.Variants, VariantSpec{Key: v.Key, Weight: v.Weight})
		if v.Control {
			in.Control = i
		}
	}
	in.Metrics = metricsOf(e.Metrics)
	end := s.now()
	if ph.EndedAt.Valid {
		end = ph.EndedAt.Time
	}
	p := &Prepared{input: in, start: ph.StartedAt, end: end, win: req.Window}
	var winSecs any
	if req.Window > 0 {
		winSecs = req.Window.Seconds()
	}
	pre := 0.0
	if req.Options.CUPED {
		pre = CUPEDLookback.Seconds()
	}
	targets := e.TargetProducts
	if targets == nil {
		targets = []string{}
	}
	var capQ any
	if req.Options.Cap > 0 {
		capQ = req.Options.Cap
	}
	periods, err := s.periods(ctx, e, phase, ph.StartedAt, end, variants)
	if err != nil {
		return nil, err
	}
	p.input.Periods = periods
	if periods != nil && e.Allocation.IsBandit() {
		p.banditMetric = e.Allocation.Metric
	}
	p.Args = []any{e.Key, phase, end, winSecs, pq.StringArray(targets), req.Segment, pre, capQ}
	p.strategyCurrency = strategyCurrency(variants)
	p.crossSellNote = crossSellNote(variants, targets)
	if p.Source, err = chooseSource(ctx, q, req, e.Key, phase, ph.EndedAt, end, periods != nil); err != nil {
		return nil, err
	}
	if p.Source.Form == FormEvents {
		p.SQL = eventsAggregateSQL
		p.Args = append(p.Args, periodStarts(periods))
		return p, nil
	}
	p.SQL = groupsAggregateSQL
	if p.Source.Form == FormRollupRows {
		p.SQL = rowsAggregateSQL
	}
	extra, err := groupArgs(ctx, q, e.Key, phase, end, p.Source.RollupSeq, req.Options.Cap)
	if err != nil {
		return nil, err
	}
	p.Args = append(append(p.Args, p.Source.RollupSeq), extra...)
	return p, nil
}

// strategyCurrency is the currency a variant's strategy names (a fixed discount amount), or "".
func strategyCurrency(vs []experiments.Variant) string {
	for _, v := range vs {
		if v.Strategy.Currency != "" {
			return v.Strategy.Currency
		}
	}
	return ""
}

// metricsOf orders the standard metrics as the experiment names them: primary, secondary,
// guardrails (with their margins), then the rest.
func metricsOf(m *experiments.Metrics) []MetricSpec {
	var out []MetricSpec
	has := map[string]int{}
	addName := func(name string) {
		std, ok := standardMetric(name)
		if _, dup := has[name]; ok && !dup {
			has[name] = len(out)
			out = append(out, MetricSpec{Metric: std})
		}
	}
	if m != nil {
		addName(m.Primary)
		for _, s := range m.Secondary {
			addName(s)
		}
		for _, g := range m.Guardrails {
			addName(g.Metric)
			if i, ok := has[g.Metric]; ok {
				out[i].Guardrail = &stats.Margin{Value: g.Margin, Relative: g.Relative}
			}
		}
	}
	for _, std := range StandardMetrics {
		addName(std.Name)
	}
	return out
}

// Report runs the aggregate query and builds the report.
func (s *Source) Report(ctx context.Context, req ReportRequest) (*Report, error) {
	stage := req.Stage
	if stage == nil {
		stage = func(string) {}
	}
	stage("refreshing planner statistics")
	s.freshenStatistics(ctx)
	stage("reading the experiment")
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", req.Experiment, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	p, err := s.prepare(ctx, tx, req)
	if err != nil {
		return nil, err
	}
	stage("aggregating exposures and events")
	rows, err := aggregate(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	stage("computing statistics")
	rep, err := p.build(rows)
	if err != nil {
		return nil, err
	}
	// The stretches in which a spent offer budget held variants back (constraints.go), read
	// in the report's snapshot.
	if rep.Constrained, err = constraints(ctx, tx, p.input.Experiment, p.input.Phase, p.start, p.end); err != nil {
		return nil, err
	}
	for _, c := range rep.Constrained {
		rep.Warnings = append(rep.Warnings, c.warning())
	}
	// The recorder's losses and backlog in the window (exposure_loss.go).
	warnings, err := exposureWarnings(ctx, s.db, p.input.Experiment, p.input.Phase, p.end, rep)
	if err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	return rep, nil
}

// readTx begins the transaction a report reads in. One snapshot for all of it: the rollups,
// the job's cursor and queue, and the events behind them must agree (statement.go).
// Read-only, so that a hot standby can serve it.
func (s *Source) readTx(ctx context.Context) (*sqlx.Tx, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	// The statement's row estimates are far off (CTEs), so the planner would compile it with
	// LLVM, which costs more than it saves (docs/benchmarks.md, analyze report).
	if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// reportTables are the tables the aggregate reads; events and order_items are partitioned.
var reportTables = []string{"exposures", "events", "order_items", "loyalty_entries"}

// freshenStatistics analyses the report's tables whose statistics are missing or stale
// (analyseStale). Right after a bulk load (a demo, a backfill) autovacuum has not analysed them
// yet, and the planner, guessing, picks far slower plans than with statistics. On a standby it
// does nothing: the primary's rollup job analyses these tables too, and its statistics come
// with the data.
func (s *Source) freshenStatistics(ctx context.Context) {
	_, _ = analyseStale(ctx, s.db, reportTables)
}

// build turns the aggregate rows into the report.
func (p *Prepared) build(rows []aggRow) (*Report, error) {
	in := p.input
	idx := map[string]int{}
	for i, v := range in.Variants {
		idx[v.Key] = i
	}
	newArms := func() []Arm {
		a := make([]Arm, len(in.Variants))
		for i := range a {
			a[i].Metrics = make([]Suff, len(in.Metrics))
		}
		return a
	}
	in.Data.Overall = newArms()
	segs := map[string][]Arm{}
	days := map[time.Time][]Arm{}
	var excluded, unknown, fromEvents int64
	currencies := map[string]bool{}
	capped := map[string]*Cap{}
	for _, r := range rows {
		if r.Excluded {
			excluded += r.Units
			continue
		}
		for _, c := range r.caps(in.Options.Cap) {
			if capped[c.Metric] == nil {
				capped[c.Metric] = &c
				in.Caps = append(in.Caps, c)
			} else {
				capped[c.Metric].Capped += c.Capped
			}
		}
		fromEvents += r.FromEvents
		vi, ok := idx[r.Variant]
		if !ok {
			unknown += r.Units
			continue
		}
		for _, c := range []string{r.CurMin, r.CurMax} {
			if c != "" {
				currencies[c] = true
			}
		}
		a := Arm{Units: r.Units, Metrics: make([]Suff, len(in.Metrics))}
		for mi, m := range in.Metrics {
			a.Metrics[mi] = r.suff(m.Name)
		}
		a = in.inPeriod(a, r.Period)
		in.Data.Overall[vi].add(a)
		if in.SegmentAttribute != "" {
			key := r.Segment
			if key == "" {
				key = "(none)"
			}
			if segs[key] == nil {
				segs[key] = newArms()
			}
			segs[key][vi].add(a)
		}
		if r.Day.Valid {
			d := r.Day.Time.UTC()
			if days[d] == nil {
				days[d] = newArms()
			}
			days[d][vi].add(a)
		}
	}
	var total int64
	for _, a := range in.Data.Overall {
		total += a.Units
	}
	if total == 0 {
		msg := fmt.Sprintf("%v for experiment %q phase %d", ErrNoExposures, in.Experiment, in.Phase)
		if excluded > 0 {
			msg += fmt.Sprintf(" (%d shoppers seen in two variants are left out)", excluded)
		}
		return nil, errors.New(msg)
	}
	for i := range in.Caps {
		in.Caps[i].Capped = capped[in.Caps[i].Metric].Capped
	}
	in.Excluded = excluded
	switch len(currencies) {
	case 0:
		in.Currency = p.strategyCurrency
	case 1:
		in.Currency = sortedKeys(currencies)[0]
	}
	for _, k := range sortedKeys(segs) {
		in.Data.Segments = append(in.Data.Segments, SegmentData{Value: k, Arms: segs[k]})
	}
	var dayKeys []time.Time
	for d := range days {
		dayKeys = append(dayKeys, d)
	}
	sort.Slice(dayKeys, func(i, j int) bool { return dayKeys[i].Before(dayKeys[j]) })
	for _, d := range dayKeys {
		in.Data.Days = append(in.Data.Days, DayData{Day: d, Arms: days[d]})
	}
	r, err := Build(in)
	if err != nil {
		return nil, err
	}
	r.ExcludedUnknownVariant = unknown
	src := p.Source
	src.UnitsFromEvents = fromEvents
	r.Source = &src
	if r.Bandit != nil {
		r.Bandit.Metric = p.banditMetric
	}
	r.Window = &Window{Start: p.start.UTC(), End: p.end.UTC()}
	if p.win > 0 {
		r.Window.ConversionWindow = p.win.String()
	}
	if len(currencies) > 1 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("orders are in several currencies (%s); money metrics add their minor units as they are and are shown without a currency",
			strings.Join(sortedKeys(currencies), ", ")))
	}
	if unknown > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d exposed shoppers are in a variant the phase does not define; they are left out", unknown))
	}
	if p.crossSellNote != "" {
		r.Warnings = append(r.Warnings, p.crossSellNote)
	}
	return r, nil
}

// InlineSQL returns the aggregate query with its arguments written in as literals, so that the
// very statement a report runs can be timed on its own in psql (scripts/bench/analyze.sh).
func (p *Prepared) InlineSQL() (string, error) {
	lits := make([]string, len(p.Args))
	for i, a := range p.Args {
		lit, err := literal(a)
		if err != nil {
			return "", fmt.Errorf("argument $%d: %w", i+1, err)
		}
		lits[i] = lit
	}
	q, err := substitutePlaceholders(p.SQL, lits)
	if err != nil {
		return "", err
	}
	return p.Source.note() + q, nil
}

// substitutePlaceholders replaces each $N outside quoted text and comments by lits[N-1], in
// one pass over q: text that comes from a literal is never scanned again, so a "$5" inside an
// inlined value stays as it is, and "$1" is never mistaken for the front of "$10".
func substitutePlaceholders(q string, lits []string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(q); {
		if skip := quotedLen(q[i:]); skip > 0 {
			b.WriteString(q[i : i+skip])
			i += skip
			continue
		}
		if q[i] == '$' && i+1 < len(q) && isDigit(q[i+1]) && (i == 0 || !isIdentChar(q[i-1])) {
			j := i + 1
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			n, err := strconv.Atoi(q[i+1 : j])
			if err != nil || n < 1 || n > len(lits) {
				return "", fmt.Errorf("placeholder %s has no argument (%d given)", q[i:j], len(lits))
			}
			b.WriteString(lits[n-1])
			i = j
			continue
		}
		b.WriteByte(q[i])
		i++
	}
	return b.String(), nil
}

// quotedLen returns the length of the quoted literal, quoted identifier, dollar-quoted string or
// comment that starts q, or 0 when q starts with none of them; an unterminated one runs to the end.
func quotedLen(q string) int {
	closing := func(from int, end string) int {
		if k := strings.Index(q[from:], end); k >= 0 {
			return from + k + len(end)
		}
		return len(q)
	}
	switch {
	case strings.HasPrefix(q, "--"):
		return closing(2, "\n")
	case strings.HasPrefix(q, "/*"):
		return closing(2, "*/")
	case q[0] == '\'' || q[0] == '"':
		// A doubled quote inside is an escaped quote, so scanning on past it is right.
		for k := 1; k < len(q); k++ {
			if q[k] == q[0] {
				if k+1 < len(q) && q[k+1] == q[0] {
					k++
					continue
				}
				return k + 1
			}
		}
		return len(q)
	case q[0] == '$':
		// $tag$ ... $tag$, where tag is empty or an identifier that does not start with a digit.
		k := 1
		for k < len(q) && isIdentChar(q[k]) {
			k++
		}
		if k < len(q) && q[k] == '$' && (k == 1 || !isDigit(q[1])) {
			return closing(k+1, q[:k+1])
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentChar(c byte) bool {
	return c == '_' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

// literal writes one argument as an SQL literal.
func literal(v any) (string, error) {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return quote(x), nil
	case int, int64:
		return fmt.Sprint(x), nil
	case float64:
		return fmt.Sprintf("%g", x), nil
	case time.Time:
		return quote(x.UTC().Format(time.RFC3339Nano)), nil
	case pq.StringArray:
		val, err := x.Value()
		if err != nil {
			return "", err
		}
		return quote(val.(string)), nil
	}
	return "", fmt.Errorf("no literal form for %T", v)
}

// aggregate runs the report's statement with its source's settings, which hold for it alone:
// the rest of the report's transaction runs as the planner chooses.
func aggregate(ctx context.Context, tx *sqlx.Tx, p *Prepared) ([]aggRow, error) {
	sets := p.Source.settings()
	for _, s := range sets {
		if _, err := tx.ExecContext(ctx, "SET LOCAL "+s.name+" = "+s.value); err != nil {
			return nil, fmt.Errorf("reading %q: %w", p.input.Experiment, err)
		}
	}
	var rows []aggRow
	if err := tx.SelectContext(ctx, &rows, p.SQL, p.Args...); err != nil {
		return nil, fmt.Errorf("aggregating %q: %w", p.input.Experiment, err)
	}
	for _, s := range sets {
		if _, err := tx.ExecContext(ctx, "RESET "+s.name); err != nil {
			return nil, fmt.Errorf("reading %q: %w", p.input.Experiment, err)
		}
	}
	return rows, nil
}
