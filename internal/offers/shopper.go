package offers

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
)

// windowSpend is one of a shopper's spends in a per-shopper limit's window.
type windowSpend struct {
	Ref      string    `db:"ref"`
	Kind     string    `db:"kind"`
	Net      int64     `db:"net"` // amount less what refunds gave back
	Currency string    `db:"currency"`
	At       time.Time `db:"at"`
}

// shopperLimit is a per-shopper limit with the scope of its budget.
type shopperLimit struct {
	scope    string // "" for the experiment's budget
	limit    *experiments.ShopperLimit
	currency string // of the budget's discount
}

func (d *definition) shopperLimits(variant string) []shopperLimit {
	var out []shopperLimit
	scopes := []string{""}
	if variant != "" {
		scopes = append(scopes, variant)
	}
	for _, scope := range scopes {
		b := d.budgetOf(scope)
		if b == nil || b.PerShopper == nil {
			continue
		}
		l := shopperLimit{scope: scope, limit: b.PerShopper}
		if b.Discount != nil {
			l.currency = b.Discount.Currency
		}
		out = append(out, l)
	}
	return out
}

// chargeShopper checks the spend (already recorded as row id) against the shopper's limits,
// under the shopper's lock for the experiment. It reports the part of the spend over a limit,
// and closes the offer to the shopper (through the feed) once a limit is reached, until the
// window frees up. A strict spend over a limit is refused with ShopperLimit.
func (b *Budgets) chargeShopper(ctx context.Context, tx *sqlx.Tx, d *definition, s *Spend, id int64) (int64, bool, error) {
	lims := d.shopperLimits(s.Variant)
	if len(lims) == 0 {
		return 0, false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO offer_shopper_locks (experiment, shopper_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, s.Experiment, s.ShopperID); err != nil {
		return 0, false, fmt.Errorf("making a shopper's limit row: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM offer_shopper_locks WHERE experiment = $1 AND shopper_id = $2 FOR UPDATE`,
		s.Experiment, s.ShopperID); err != nil {
		return 0, false, fmt.Errorf("locking a shopper's limits: %w", err)
	}
	var over int64
	var until time.Time
	for _, l := range lims {
		var rows []windowSpend
		if err := tx.SelectContext(ctx, &rows, `SELECT ref, kind, amount - returned AS net, currency, at FROM offer_spends
			WHERE experiment = $1 AND shopper_id = $2 AND ($3 = '' OR variant = $3) AND at > $4
			  AND returned < amount AND id <> $5 ORDER BY at, id`,
			s.Experiment, s.ShopperID, l.scope, s.At.Add(-l.limit.Per.Duration()), id); err != nil {
			return 0, false, fmt.Errorf("reading a shopper's spends: %w", err)
		}
		rows = append(rows, windowSpend{Ref: s.Ref, Kind: string(s.Kind), Net: s.Amount, Currency: s.Currency, At: s.At})
		o, u := l.check(rows, s)
		if o > 0 && s.Strict {
			return 0, false, apperr.New(apperr.ShopperLimit, "shopper %q would go past the per-shopper limit of %s (%s): at most %s per %s",
				s.ShopperID, s.Experiment, scopeName(l.scope), l.describe(), l.limit.Per)
		}
		over = max(over, o)
		if u.After(until) {
			until = u
		}
	}
	if until.IsZero() {
		return over, false, nil
	}
	return over, true, closeForShopper(ctx, tx, s.ShopperID, s.Experiment, until)
}

func scopeName(scope string) string {
	if scope == "" {
		return "the experiment's budget"
	}
	return "variant " + scope + "'s budget"
}

func (l shopperLimit) describe() string {
	switch {
	case l.limit.AcceptedOffers != nil && l.limit.Discount != nil:
		return fmt.Sprintf("%d accepted offers and a discount of %d", *l.limit.AcceptedOffers, *l.limit.Discount)
	case l.limit.AcceptedOffers != nil:
		return fmt.Sprintf("%d accepted offers", *l.limit.AcceptedOffers)
	}
	return fmt.Sprintf("a discount of %d", *l.limit.Discount)
}

// check measures the window's spends (oldest first, the new one s last) against the limit —
// every spend since the window's start before s, later ones included, since concurrent spends
// do not commit in the order of their times:
// the part of s over it, and until when the shopper's offer is closed (zero when the limit is
// not reached). A spend is one accepted offer per ref: an order's discount and its bonus are
// one acceptance.
func (l shopperLimit) check(rows []windowSpend, s *Spend) (over int64, until time.Time) {
	per := l.limit.Per.Duration()
	if n := l.limit.AcceptedOffers; n != nil {
		var firsts []time.Time // the first spend of each ref, oldest first
		var refs []string
		for _, r := range rows {
			if !slices.Contains(refs, r.Ref) {
				refs = append(refs, r.Ref)
				firsts = append(firsts, r.At)
			}
		}
		isNew := slices.Index(refs, s.Ref) == len(refs)-1
		if len(refs) > *n && isNew {
			over = s.Amount
		}
		if len(refs) >= *n {
			// Below the limit again once the oldest len-n+1 acceptances leave the window.
			until = firsts[len(refs)-*n].Add(per)
		}
	}
	if d := l.limit.Discount; d != nil && s.Kind == experiments.BudgetDiscount && s.Currency == l.currency {
		var sums []int64 // running total of discounts, oldest first
		total := int64(0)
		var ats []time.Time
		for _, r := range rows {
			if r.Kind == string(experiments.BudgetDiscount) && r.Currency == l.currency {
				total += r.Net
				sums, ats = append(sums, total), append(ats, r.At)
			}
		}
		if total > *d {
			over = max(over, min(total-*d, s.Amount))
		}
		if total >= *d {
			for k := range sums {
				if total-sums[k] < *d {
					until = maxTime(until, ats[k].Add(per))
					break
				}
			}
		}
	}
	return over, until
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// closeForShopper tells every server's counter, through the feed, that the shopper's offer of
// the experiment is closed until then. It takes the feed's lock, held until the caller's
// transaction ends, so that the row becomes visible in id order.
func closeForShopper(ctx context.Context, tx *sqlx.Tx, shopperID, experiment string, until time.Time) error {
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, feedLockKey)); err != nil {
		return fmt.Errorf("locking the offer feed: %w", err)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO offer_feed (server, kind, shopper_id, experiments, at, until)
		VALUES ('', 'closed', $1, $2, now(), $3)`, shopperID, pq.StringArray{experiment}, until)
	if err != nil {
		return fmt.Errorf("closing an offer to a shopper: %w", err)
	}
	return nil
}
