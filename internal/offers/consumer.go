package offers

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

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
	// oneByOne turns the batch path (chargeSet) off, for the tests that compare the two.
	oneByOne bool
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
	o := &database.Outbox[orderEvent]{
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
	if !s.oneByOne {
		o.Set = s.chargeSet
	}
	return o
}

// chargeSet charges a batch as charging its events one by one would, with a few statements
// for the batch's orders when the order of the charges cannot matter: no experiment among
// them bounds the discount (no budget in the order's currency, no per-shopper limit, on the
// experiment or the variant) and no refund of the batch is of an order the batch charges.
// Otherwise the batch goes one by one, and the refunds (few, each of which may give back to a
// bounded budget) always do. Every order of the batch is a few statements one by one, and under the events
// load those were more of the database's time than crediting (docs/benchmarks.md).
func (s *Spender) chargeSet(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) error {
	variants, err := variantsOf(ctx, tx, evs)
	if err != nil {
		return err
	}
	oneByOne := func(evs []orderEvent) error {
		for _, ev := range evs {
			if err := s.charge(ctx, tx, ev, variants); err != nil {
				return err
			}
		}
		return nil
	}
	var spends []Spend
	var refunds []orderEvent
	seqOf := map[string]int64{}
	for _, ev := range evs {
		if ev.Type == "order_refunded" {
			refunds = append(refunds, ev)
			continue
		}
		if _, dup := seqOf[ev.OrderID]; !dup {
			seqOf[ev.OrderID] = ev.Seq
		}
		spends = append(spends, s.spendOf(ev, variants))
	}
	for _, ev := range refunds {
		if _, ok := seqOf[ev.OrderID]; ok {
			return oneByOne(evs)
		}
	}
	set, err := unboundedSpends(ctx, tx, spends)
	if err != nil {
		return err
	}
	// An order of an experiment that does not exist records nothing, but is not a duplicate
	// either: charge gives back its earlier refunds, after every event of it. Rare; one by one.
	if set == nil || len(set) != len(spends) {
		return oneByOne(evs)
	}
	recorded, err := chargeUnbounded(ctx, tx, experiments.BudgetDiscount, set)
	if err != nil {
		return err
	}
	if err := s.refundEarlier(ctx, tx, recorded, seqOf); err != nil {
		return err
	}
	for _, ev := range refunds {
		if err := s.refund(ctx, tx, ev.OrderID, ev.Amount); err != nil {
			return err
		}
	}
	return nil
}

// refundEarlier gives back, for the orders just charged, what refunds read before their order
// event (events out of order) gave nothing back for then, as charge does after each order.
func (s *Spender) refundEarlier(ctx context.Context, tx *sqlx.Tx, orders []string, seqOf map[string]int64) error {
	if len(orders) == 0 {
		return nil
	}
	seqs := make([]int64, len(orders))
	for i, o := range orders {
		seqs[i] = seqOf[o]
	}
	var rows []struct {
		OrderID  string `db:"order_id"`
		Refunded int64  `db:"refunded"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT o.order_id, sum(e.amount)::bigint AS refunded
		FROM unnest($1::text[], $2::bigint[]) AS o(order_id, seq)
		JOIN events e ON e.order_id = o.order_id AND e.type = 'order_refunded' AND e.seq < o.seq
		GROUP BY o.order_id, o.seq ORDER BY o.seq`, pq.StringArray(orders), pq.Int64Array(seqs)); err != nil {
		return fmt.Errorf("reading earlier refunds of a batch's orders: %w", err)
	}
	for _, r := range rows {
		if err := s.refund(ctx, tx, r.OrderID, r.Refunded); err != nil {
			return err
		}
	}
	return nil
}

// spendOf is the spend of an order's discount.
func (s *Spender) spendOf(ev orderEvent, variants map[string]string) Spend {
	key := ev.Experiment.String
	return Spend{Experiment: key, Variant: variants[key+" "+ev.ShopperID],
		ShopperID: ev.ShopperID, Kind: experiments.BudgetDiscount, Amount: ev.Discount, Currency: ev.Currency,
		Base: ev.Amount, Ref: ev.OrderID, At: ev.OccurredAt.UTC()}
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
	res, err := s.budgets.Charge(ctx, tx, s.spendOf(ev, variants))
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
