package analysis

import (
	"fmt"
	"strings"
)

// holdoutBonusSQL is the holdout's rule for which ledger entries are offer cost: the bonus of
// any experiment's variant (entries that name one, or reverse one that does). The holdout's
// shoppers are recorded under their own key, so the rule of a variant (bonusOfVariantSQL)
// would find none; the programme's cost is every offer's. The base points every order earns
// name no experiment and are not an offer's cost.
const holdoutBonusSQL = `AND COALESCE(l.experiment, o.experiment) IS NOT NULL`

// holdoutAggregateSQL is the events form of the aggregate statement (statement.go) for the
// holdout's exposures, with the programme's offer cost and one more parameter: $9, the
// earliest first exposure counted (--since; NULL for the whole generation, whose exposures
// carry its number, back-dated assignments included). The rollup job keeps
// no rows for the holdout (it rolls up experiments' phases only), so every figure is computed
// from events.
var holdoutAggregateSQL = sqlJoin(
	fmt.Sprintf(exposedSQL, "0", " AND ($9::timestamptz IS NULL OR first_seen >= $9::timestamptz)"),
	fmt.Sprintf(fromEventsSQL, "x WHERE NOT multiple_variants"),
	holdoutFiguresSQL+",",
	programPointValueSQL, fmt.Sprintf(perFromEventsSQL, "per"), percentileCapsSQL, fmt.Sprintf(cappedSQL, excludedFromExposuresSQL))

// holdoutFiguresSQL is figuresSQL with the programme's bonus rule in place of the variant's.
var holdoutFiguresSQL = strings.Replace(figuresSQL, bonusOfVariantSQL, holdoutBonusSQL, 1)
