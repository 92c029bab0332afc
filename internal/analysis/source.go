package analysis

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// The forms of the aggregate statement (statement.go): where a report reads each shopper's
// figures from.
const (
	// FormRollupGroups reads the sums the rollup job keeps per variant and day.
	FormRollupGroups = "rollup_groups"
	// FormRollupRows reads the rollup job's row of each shopper (a segment needs them).
	FormRollupRows = "rollup_rows"
	// FormEvents computes every shopper's figures from events.
	FormEvents = "events"
)

// DataSource says where a report read each shopper's figures: from the rollups that the
// rollup job keeps (the fast path), or from events, and why.
type DataSource struct {
	// Form is FormRollupGroups, FormRollupRows or FormEvents.
	Form string `json:"form"`
	// Reason says why every figure was computed from events, when Form is FormEvents.
	Reason string `json:"reason,omitempty"`
	// RollupSeq is the last event (events.seq) the rollups had read when the report began;
	// later orders and refunds were read from events.
	RollupSeq int64 `json:"rollup_seq,omitempty"`
	// UnitsFromEvents is how many of the report's units had their figures computed from events:
	// all of them in FormEvents, the ones whose rollup rows were behind otherwise.
	UnitsFromEvents int64 `json:"units_from_events"`
}

// Reasons a report reads events rather than rollups.
const (
	reasonAsked      = "asked for (--from events)"
	reasonWindow     = "a conversion window (--window) ends each shopper's count at their own time, which the rollups do not keep"
	reasonPeriods    = "a bandit's periods split its shoppers at the times its weights changed, which the rollups' days do not"
	reasonNotBuilt   = "the rollups have not been built on this database yet (the server's rollup job has not run)"
	reasonPointValue = "the loyalty program's point value changed and the rollup job has not repriced the bonus points yet"
	reasonNotClipped = "the phase has just ended and the rollup job has not clipped the rollups at its end yet"
	reasonBefore     = "the window ends before the rollups' last update (a clock behind the database's)"
)

// chooseSource decides whether the rollups can answer req about a phase ending at endedAt
// (NULL: running) in a report whose window ends at end; periods says the report splits its
// shoppers into a bandit's periods.
func chooseSource(ctx context.Context, q sqlx.QueryerContext, req ReportRequest, key string, phase int, endedAt sql.NullTime, end time.Time, periods bool) (DataSource, error) {
	switch {
	case req.FromEvents:
		return DataSource{Form: FormEvents, Reason: reasonAsked}, nil
	case req.Window > 0:
		return DataSource{Form: FormEvents, Reason: reasonWindow}, nil
	case periods:
		return DataSource{Form: FormEvents, Reason: reasonPeriods}, nil
	}
	var st struct {
		Seq     int64         `db:"seq"`
		Used    sql.NullInt64 `db:"point_value"`
		Program int64         `db:"program"`
		Clipped sql.NullTime  `db:"clipped"`
		Rows    sql.NullTime  `db:"computed_at"`
	}
	if err := sqlx.GetContext(ctx, q, &st, `SELECT s.seq, s.point_value, s.computed_at,
		COALESCE((SELECT point_value FROM loyalty_program LIMIT 1), 0)::bigint AS program,
		(SELECT ended_at FROM analysis_rollup_phases WHERE experiment_key = $1 AND phase = $2) AS clipped
		FROM analysis_rollup_state s`, key, phase); err != nil {
		return DataSource{}, fmt.Errorf("reading the rollups' state: %w", err)
	}
	switch {
	case st.Seq == 0:
		return DataSource{Form: FormEvents, Reason: reasonNotBuilt}, nil
	case !st.Used.Valid || st.Used.Int64 != st.Program:
		return DataSource{Form: FormEvents, Reason: reasonPointValue}, nil
	case endedAt.Valid && !(st.Clipped.Valid && st.Clipped.Time.Equal(endedAt.Time)):
		return DataSource{Form: FormEvents, Reason: reasonNotClipped}, nil
	case !endedAt.Valid && st.Rows.Valid && end.Before(st.Rows.Time):
		// A row computed at T counts every time before T (and is due otherwise); a window of
		// a running phase ending before T could see it count past its end.
		return DataSource{Form: FormEvents, Reason: reasonBefore}, nil
	case req.Segment != "":
		return DataSource{Form: FormRollupRows, RollupSeq: st.Seq}, nil
	}
	return DataSource{Form: FormRollupGroups, RollupSeq: st.Seq}, nil
}

// note is the comment InlineSQL puts above the statement, so that --sql says what it reads and
// with which settings (PGOPTIONS, made from settings, is what scripts/bench/analyze.sh runs psql
// with).
func (d DataSource) note() string {
	names, opts := "jit = off", "-c jit=off"
	for _, s := range d.settings() {
		names += " and " + s.name + " = " + s.value
		opts += " -c " + s.name + "=" + s.value
	}
	why := "compiling it costs more than it saves."
	if d.Form == FormRollupRows {
		why = "compiling it costs more than it saves,\n-- and the planner, guessing many groups, would sort every row."
	}
	return d.what() + "-- analyze runs it with " + names + " (PGOPTIONS='" + opts + "' for psql): " + why + "\n"
}

// setting is a planner setting the statement runs with, SET LOCAL before it and reset after.
type setting struct{ name, value string }

// settings are what the statement of d runs with besides jit = off (readTx). The rows form
// groups every unit by variant, segment and day: the planner cannot know how few segments
// there are (an attribute's values), guesses hundreds of thousands of groups, and sorts every
// row for them; hashed, the same grouping takes a third less time (docs/benchmarks.md,
// analyze report).
func (d DataSource) settings() []setting {
	if d.Form == FormRollupRows {
		return []setting{{"enable_sort", "off"}}
	}
	return nil
}

func (d DataSource) what() string {
	switch d.Form {
	case FormRollupGroups:
		return fmt.Sprintf("-- Reads the sums the rollup job keeps per variant and day (analysis_rollup_groups, up to\n"+
			"-- event %d), corrected for the shoppers it caps and for those whose rows are behind, which are\n"+
			"-- computed from events.\n", d.RollupSeq)
	case FormRollupRows:
		return fmt.Sprintf("-- Reads each shopper's rollup row (analysis_rollups, up to event %d), the segment attribute\n"+
			"-- included; the shoppers whose rows are behind are computed from events.\n", d.RollupSeq)
	}
	return "-- Reads every shopper's figures from events: " + d.Reason + ".\n"
}
