package offers

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/periodic"
)

// SpendConsumer is the name under which the discount spender quarantines the order events the
// database refuses (internal/database.Quarantine).
const SpendConsumer = "offer_spending"

// spendBatch is how many order events one transaction of ChargeOrders handles.
const spendBatch = 200

// Spender charges the discounts of orders won by offers to their budgets, and gives refunded
// shares back. It reads the events table as an outbox, like loyalty's crediting: its cursor
// moves in the transaction that records the spends, so each order is charged exactly once,
// whichever server runs it (they queue on the cursor row). Orders are charged when read,
// within Every of their commit: an order is never refused for a budget — it has happened — so
// what does not fit is recorded as overspent, and the budget closes (docs/offers.md).
type Spender struct {
	db         *sqlx.DB
	budgets    *Budgets
	quarantine *database.Quarantine
	every      time.Duration
	log        *slog.Logger
}

// DefaultSpendEvery is how often a server's spender charges new orders: the delay between an
// order and the close of the budget it spent, beyond which offers are overspent.
const DefaultSpendEvery = time.Second

// NewSpender returns the spender of budgets over db, run every every (DefaultSpendEvery when 0).
func NewSpender(db *sqlx.DB, budgets *Budgets, q *database.Quarantine, every time.Duration, log *slog.Logger) *Spender {
	if every <= 0 {
		every = DefaultSpendEvery
	}
	if q == nil {
		q = database.NewQuarantine(nil, nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Spender{db: db, budgets: budgets, quarantine: q, every: every, log: log}
}

// Run charges orders every period until ctx ends; a failed run is logged and tried again.
func (s *Spender) Run(ctx context.Context) error {
	periodic.Run(ctx, s.every, func(ctx context.Context) {
		if _, err := s.ChargeOrders(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("charging order discounts to offer budgets", "error", err)
		}
	})
	return nil
}

// orderEvent is an order event the spender reads.
type orderEvent = events.OrderEvent

// ChargeOrders charges the order events written since its last run and returns how many it
// read.
func (s *Spender) ChargeOrders(ctx context.Context) (int, error) {
	n, err := s.outbox().Drain(ctx, s.db)
	return n, database.Wrap(err, "charging order discounts")
}

// outbox is the spender as a reader of the events table.
func (s *Spender) outbox() *database.Outbox[orderEvent] {
	return &database.Outbox[orderEvent]{
		Name: SpendConsumer, Cursor: "offer_spend_cursor", Limit: spendBatch, Quarantine: s.quarantine,
		Read: readOrderEvents,
		Prepare: func(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) (func(orderEvent) error, error) {
			variants, err := variantsOf(ctx, tx, evs)
			if err != nil {
				return nil, err
			}
			return func(ev orderEvent) error { return s.charge(ctx, tx, ev, variants) }, nil
		},
		Seq: func(ev orderEvent) int64 { return ev.Seq },
		Key: func(ev orderEvent) string { return ev.ID },
	}
}

// readOrderEvents reads the order events after seq that can spend or give back a budget.
func readOrderEvents(ctx context.Context, tx *sqlx.Tx, after int64, limit int) ([]orderEvent, error) {
	return events.ReadOrders(ctx, tx, events.DiscountedOrders, after, limit)
}

// variantsOf reads, for the orders of a batch, the variant of the current phase of the
// experiment named by the order that exposed its shopper, by "experiment shopper"
// (exposures.VariantsOf): the exposures still staged in exposure_log count too, since the
// recorder's background merge may trail an order (docs/assignment.md), and a shopper seen in
// two variants, merged or staged, is in none, as analysis leaves them out.
func variantsOf(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) (map[string]string, error) {
	var pairs []exposures.Pair
	for _, ev := range evs {
		if ev.Experiment.Valid {
			pairs = append(pairs, exposures.Pair{Experiment: ev.Experiment.String, ShopperID: ev.ShopperID})
		}
	}
	seen, err := exposures.VariantsOf(ctx, tx, pairs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(seen))
	for _, v := range seen {
		out[v.Experiment+" "+v.ShopperID] = v.Variant
	}
	return out, nil
}

// charge charges one order's discount, or gives back a refund's share of one.
func (s *Spender) charge(ctx context.Context, tx *sqlx.Tx, ev orderEvent, variants map[string]string) error {
	if ev.Type == "order_refunded" {
		return s.refund(ctx, tx, ev.OrderID, ev.Amount)
	}
	key := ev.Experiment.String
	res, err := s.budgets.Charge(ctx, tx, Spend{Experiment: key, Variant: variants[key+" "+ev.ShopperID],
		ShopperID: ev.ShopperID, Kind: experiments.BudgetDiscount, Amount: ev.Discount, Currency: ev.Currency,
		Base: ev.Amount, Ref: ev.OrderID, At: ev.OccurredAt.UTC()})
	if err != nil || res.Duplicate {
		return err
	}
	// A refund read before its order (events out of order) gave nothing back then.
	var refunded int64
	if err := tx.GetContext(ctx, &refunded, `SELECT COALESCE(sum(amount), 0) FROM events
		WHERE order_id = $1 AND type = 'order_refunded' AND seq < $2`, ev.OrderID, ev.Seq); err != nil {
		return fmt.Errorf("reading earlier refunds of order %s: %w", ev.OrderID, err)
	}
	return s.refund(ctx, tx, ev.OrderID, refunded)
}

// refund adds a refunded amount to the order's discount spends and gives back to their
// budgets the discount's share of what has been refunded: floor(discount × refunded / order
// amount), all of it once the whole order is refunded.
func (s *Spender) refund(ctx context.Context, tx *sqlx.Tx, orderID string, amount int64) error {
	if amount <= 0 {
		return nil
	}
	var spends []struct {
		Experiment string `db:"experiment"`
		Amount     int64  `db:"amount"`
		Base       int64  `db:"base"`
		Refunded   int64  `db:"refunded"`
		Returned   int64  `db:"returned"`
	}
	if err := tx.SelectContext(ctx, &spends, `UPDATE offer_spends SET refunded = refunded + $2
		WHERE ref = $1 AND kind = 'discount' RETURNING experiment, amount, base, refunded, returned`, orderID, amount); err != nil {
		return fmt.Errorf("recording a refund of order %s: %w", orderID, err)
	}
	for _, sp := range spends {
		owed := sp.Amount
		if sp.Base > 0 && sp.Refunded < sp.Base {
			owed = new(big.Int).Div(new(big.Int).Mul(big.NewInt(sp.Amount), big.NewInt(sp.Refunded)), big.NewInt(sp.Base)).Int64()
		}
		if err := s.budgets.Return(ctx, tx, sp.Experiment, experiments.BudgetDiscount, orderID, owed-sp.Returned); err != nil {
			return err
		}
	}
	return nil
}
