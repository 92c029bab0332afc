package analysis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// The exposure recorder (internal/exposures) counts what it could not keep in exposure_losses,
// and stages exposures in exposure_log before merging them into exposures. A report says when
// either touches its window: a lost exposure is a shopper missing from the denominator unless
// they came back, and a loss that differs by variant biases the comparison.

// exposureLoss is what exposure_losses holds for one variant of the window.
type exposureLoss struct {
	Variant string `db:"variant"`
	Reason  string `db:"reason"`
	Lost    int64  `db:"lost"`
}

// exposureWarnings returns the report's warnings about exposures lost in the window (with
// their count and share, overall and per variant) and about exposures still staged.
func exposureWarnings(ctx context.Context, db *sqlx.DB, experiment string, phase int, end time.Time, r *Report) ([]string, error) {
	var losses []exposureLoss
	if err := sqlx.SelectContext(ctx, db, &losses, `SELECT variant, reason, sum(lost)::bigint AS lost
		FROM exposure_losses WHERE experiment_key = $1 AND phase = $2 AND hour < $3
		GROUP BY variant, reason HAVING sum(lost) > 0 ORDER BY variant, reason`, experiment, phase, end); err != nil {
		return nil, fmt.Errorf("reading exposure losses of %q: %w", experiment, err)
	}
	var warnings []string
	if w := lossWarning(losses, r); w != "" {
		warnings = append(warnings, w)
	}
	var offers []exposureLoss
	if err := sqlx.SelectContext(ctx, db, &offers, `SELECT variant, '' AS reason, sum(offers_lost)::bigint AS lost
		FROM exposure_losses WHERE experiment_key = $1 AND phase = $2 AND hour < $3
		GROUP BY variant HAVING sum(offers_lost) > 0 ORDER BY variant`, experiment, phase, end); err != nil {
		return nil, fmt.Errorf("reading the offer losses of %q: %w", experiment, err)
	}
	if w := offerLossWarning(offers); w != "" {
		warnings = append(warnings, w)
	}
	var staged int64
	if err := sqlx.GetContext(ctx, db, &staged, `SELECT count(*) FROM exposure_log l,
		unnest(l.experiments, l.phases) AS u(experiment_key, phase)
		WHERE u.experiment_key = $1 AND u.phase = $2 AND l.at < $3`, experiment, phase, end); err != nil {
		return nil, fmt.Errorf("counting staged exposures of %q: %w", experiment, err)
	}
	if staged > 0 {
		warnings = append(warnings, fmt.Sprintf("%d exposures of this window are still staged and not in the report yet "+
			"(the servers merge them in the background; run the report again when they are)", staged))
	}
	return warnings, nil
}

// lossWarning words the losses of a window, or returns "" when there were none.
func lossWarning(losses []exposureLoss, r *Report) string {
	var lost int64
	byVariant, byReason := map[string]int64{}, map[string]int64{}
	for _, l := range losses {
		lost += l.Lost
		byVariant[l.Variant] += l.Lost
		byReason[l.Reason] += l.Lost
	}
	if lost == 0 {
		return ""
	}
	kept := r.ExcludedMultipleVariants + r.ExcludedUnknownVariant
	units := map[string]int64{}
	for _, v := range r.Variants {
		kept += v.Units
		units[v.Key] = v.Units
	}
	var parts []string
	for _, v := range r.Variants {
		n := byVariant[v.Key]
		parts = append(parts, fmt.Sprintf("%s %d (%s)", v.Key, n, percent(n, units[v.Key]+n)))
		delete(byVariant, v.Key)
	}
	for _, k := range sortedKeys(byVariant) {
		parts = append(parts, fmt.Sprintf("%s %d", k, byVariant[k]))
	}
	order := sortedKeys(byReason)
	sort.SliceStable(order, func(i, j int) bool { return byReason[order[i]] > byReason[order[j]] })
	reasons := make([]string, len(order))
	for i, k := range order {
		reasons[i] = fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), byReason[k])
	}
	return fmt.Sprintf("%d exposures of this window were lost by the recorder (%s of %d recorded or lost): %s; why: %s. "+
		"A shopper whose exposure was lost is missing unless they came back; a share that differs by variant biases the comparison",
		lost, percent(lost, kept+lost), kept+lost, strings.Join(parts, ", "), strings.Join(reasons, ", "))
}

// offerLossWarning words the products offered by learned arms that the recorder could not
// keep, or returns "" when there were none.
func offerLossWarning(losses []exposureLoss) string {
	var lost int64
	parts := make([]string, len(losses))
	for i, l := range losses {
		lost += l.Lost
		parts[i] = fmt.Sprintf("%s %d", l.Variant, l.Lost)
	}
	if lost == 0 {
		return ""
	}
	return fmt.Sprintf("%d products offered by learned strategies in this window were lost by the recorder (%s): "+
		"a shopper's purchase of a product whose offer was lost is not counted as a cross-sell, so these arms' "+
		"cross_sell_rate may be undercounted", lost, strings.Join(parts, ", "))
}

// percent is n/of as a percentage with two significant decimals for small shares.
func percent(n, of int64) string {
	if of == 0 {
		return "n/a"
	}
	p := 100 * float64(n) / float64(of)
	if p < 1 {
		return fmt.Sprintf("%.2f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}
