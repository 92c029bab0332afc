package loyalty

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/exposures"
)

// CreditBatch is how many order events one transaction of CreditOrders handles: large enough
// that a batch's fixed statements cost little per order, small enough that a batch with poison,
// credited again event by event, stays well inside the statement and lock timeouts.
const CreditBatch = 1000

// orderEvent is an order_completed or order_refunded row of the events outbox.
type orderEvent = events.OrderEvent

// The consumers whose refused rows go to quarantine, as named there and in
// xsell_quarantined_total: crediting quarantines order events by event id, expiry accounts by
// shopper id.
const (
	CreditingConsumer = "loyalty_crediting"
	ExpiryConsumer    = "loyalty_expiry"
)

// CreditOrders credits points for the order events written since its last run and returns how
// many events it handled. It reads the events table as an outbox: its cursor (the last seq
// handled) moves in the same transaction as the points, so each event counts exactly once,
// even with several servers running it (they queue on the cursor row). An order_completed
// earns the base rate on amount − discount once per order id (pending when pending_days > 0)
// plus the bonus of each running loyalty_points variant the shopper is in whose products the
// order holds; an order_refunded takes back points in proportion to the amount returned. An
// event the database refuses to credit (a sum out of range, say) is quarantined, and the
// others and the cursor go on without it.
//
// "The shopper is in" means their exposure to the variant is stored when the order's batch is
// read, merged into exposures or still staged in exposure_log (internal/exposures merges in
// the background, and under load trails assignment by a minute or more), and they were seen
// in no other variant of the phase: a shopper in two variants is in none, as analysis and the
// offer budgets count them, and earns the base points only. An exposure still in a server's
// memory (its last ~100 ms) is not stored yet: an order credited that soon earns no bonus.
func (s *Service) CreditOrders(ctx context.Context) (int, error) {
	n, err := s.creditOutbox().Drain(ctx, s.db)
	return n, database.Wrap(err, "crediting order events")
}

// creditOutbox is the crediting as a reader of the events table: a batch is credited with a
// few statements for the whole of it (creditSet); one the database refuses is credited again
// event by event (creditEvent), each guarded, the refused ones going to quarantine.
func (s *Service) creditOutbox() *database.Outbox[orderEvent] {
	o := &database.Outbox[orderEvent]{
		Name: CreditingConsumer, Cursor: "loyalty_event_cursor", Limit: CreditBatch, TxOptions: readCommitted,
		Quarantine: s.quarantine, Read: readOrderEvents,
		Prepare: func(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) (func(orderEvent) error, error) {
			batch, err := readOrderBatch(ctx, tx, evs, s.now())
			if err != nil {
				return nil, err
			}
			return func(ev orderEvent) error { return s.creditEvent(ctx, tx, ev, batch) }, nil
		},
		Seq: func(ev orderEvent) int64 { return ev.Seq },
		Key: func(ev orderEvent) string { return ev.ID },
	}
	if !s.eventByEvent {
		o.Set = func(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) error {
			batch, err := readOrderBatch(ctx, tx, evs, s.now())
			if err != nil {
				return err
			}
			return s.creditSet(ctx, tx, evs, batch)
		}
	}
	return o
}

// readOrderEvents reads the order events after seq. internal/events makes rows visible in seq
// order (an advisory lock around each commit), so nothing can appear later below the cursor.
func readOrderEvents(ctx context.Context, tx *sqlx.Tx, after int64, limit int) ([]orderEvent, error) {
	return events.ReadOrders(ctx, tx, events.AllOrders, after, limit)
}

// creditEvent credits or refunds one order event under its shopper's account lock.
func (s *Service) creditEvent(ctx context.Context, tx *sqlx.Tx, ev orderEvent, batch *orderBatch) error {
	if err := lockAccount(ctx, tx, ev.ShopperID, s.now()); err != nil {
		return err
	}
	var err error
	if ev.Type == "order_completed" {
		err = s.creditOrder(ctx, tx, ev, batch)
	} else {
		err = s.refundOrder(ctx, tx, ev)
	}
	if err != nil {
		return fmt.Errorf("event %s (seq %d, order %s): %w", ev.ID, ev.Seq, ev.OrderID, err)
	}
	return nil
}

// orderBatch is what crediting a batch of order events reads once, in a few statements,
// rather than once per order: crediting costs a round trip per statement, and each order
// used to need three more of them.
type orderBatch struct {
	prog Program
	// exposed lists, per shopper with an order in the batch, the running experiments whose
	// current phase exposed them to one variant, merged or staged, as the batch began (see
	// CreditOrders).
	exposed map[string][]exposure
	// skus holds the distinct SKUs of the batch's orders from exposed shoppers, by event id.
	skus map[string][]string
}

// exposure is a shopper's variant in a running experiment, with the experiment's variants.
type exposure struct {
	ShopperID, Experiment, Variant string
	Variants                       *variantsDef
}

// variantsDef is an experiment's variants as crediting reads them, decoded once per batch;
// err, when the definition does not decode, fails each order that would read it, as decoding
// it per order did (so the batch goes event by event and those orders to quarantine).
type variantsDef struct {
	list []strategyVariant
	err  error
}

// readExposed reads the variants the shoppers were exposed to in running experiments, merged
// or still staged (exposures.RunningVariants: a shopper seen in two variants of a phase is in
// none, so earns no bonus from it), with those experiments' variants, in shopper then
// experiment order (the order of an order's bonus entries).
func readExposed(ctx context.Context, tx *sqlx.Tx, buyers []string) ([]exposure, error) {
	seen, err := exposures.RunningVariants(ctx, tx, buyers)
	if err != nil || len(seen) == 0 {
		return nil, err
	}
	var keys []string
	var phases []int64
	for _, v := range seen {
		keys, phases = append(keys, v.Experiment), append(phases, int64(v.Phase))
	}
	// A second statement, so a second snapshot: an experiment that stopped or began another
	// phase in between is left out, as it would be had the batch begun a moment later.
	var defs []struct {
		Key      string `db:"key"`
		Variants []byte `db:"variants"`
	}
	if err := tx.SelectContext(ctx, &defs, `SELECT DISTINCT x.key, x.variants
		FROM experiments x JOIN unnest($1::text[], $2::int[]) AS s(key, phase) ON s.key = x.key AND s.phase = x.phase
		WHERE x.status = 'running'`, pq.StringArray(keys), pq.Int64Array(phases)); err != nil {
		return nil, fmt.Errorf("reading the variants of the experiments a batch's shoppers are in: %w", err)
	}
	variants := make(map[string]*variantsDef, len(defs))
	for _, d := range defs {
		v := &variantsDef{}
		if err := json.Unmarshal(d.Variants, &v.list); err != nil {
			v.err = fmt.Errorf("experiment %s: variants: %w", d.Key, err)
		}
		variants[d.Key] = v
	}
	out := make([]exposure, 0, len(seen))
	for _, v := range seen {
		if def, ok := variants[v.Experiment]; ok {
			out = append(out, exposure{ShopperID: v.ShopperID, Experiment: v.Experiment, Variant: v.Variant, Variants: def})
		}
	}
	return out, nil
}

// readOrderBatch makes sure every shopper of the batch has an account (so that locking it is
// one statement) and reads the program and what the orders' bonuses depend on.
func readOrderBatch(ctx context.Context, tx *sqlx.Tx, evs []orderEvent, now time.Time) (*orderBatch, error) {
	var shoppers, buyers []string
	for _, ev := range evs {
		shoppers = append(shoppers, ev.ShopperID)
		if ev.Type == "order_completed" {
			buyers = append(buyers, ev.ShopperID)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO loyalty_accounts (shopper_id, created_at)
		SELECT DISTINCT s, $2::timestamptz FROM unnest($1::text[]) AS s ON CONFLICT DO NOTHING`, pq.StringArray(shoppers), now); err != nil {
		return nil, fmt.Errorf("making the accounts of a batch: %w", err)
	}
	b := &orderBatch{exposed: map[string][]exposure{}, skus: map[string][]string{}}
	if len(buyers) == 0 {
		return b, nil
	}
	var err error
	if b.prog, err = loadProgram(ctx, tx); err != nil {
		return nil, err
	}
	exposed, err := readExposed(ctx, tx, buyers)
	if err != nil {
		return nil, err
	}
	for _, x := range exposed {
		b.exposed[x.ShopperID] = append(b.exposed[x.ShopperID], x)
	}
	var orders []string
	for _, ev := range evs {
		if ev.Type == "order_completed" && len(b.exposed[ev.ShopperID]) > 0 {
			orders = append(orders, ev.ID)
		}
	}
	if len(orders) == 0 {
		return b, nil
	}
	var lines []struct {
		EventID string `db:"event_id"`
		SKU     string `db:"sku"`
	}
	if err := tx.SelectContext(ctx, &lines, `SELECT DISTINCT event_id, sku FROM order_items
		WHERE event_id = ANY($1)`, pq.StringArray(orders)); err != nil {
		return nil, err
	}
	for _, l := range lines {
		b.skus[l.EventID] = append(b.skus[l.EventID], l.SKU)
	}
	return b, nil
}

// orderRow is the loyalty_orders row of an order.
type orderRow struct {
	Paid       int64      `db:"paid"`
	Refunded   int64      `db:"refunded"`
	CreditedAt *time.Time `db:"credited_at"`
}

// creditOrder earns an order's points, unless its order id was credited before.
func (s *Service) creditOrder(ctx context.Context, tx *sqlx.Tx, ev orderEvent, batch *orderBatch) error {
	prog := batch.prog
	now := s.now()
	paid := max(ev.Amount-ev.Discount, 0)
	var rows []orderRow
	// A row without credited_at was left by a refund that came first; an order id already
	// credited makes this event a duplicate order, which earns nothing.
	if err := tx.SelectContext(ctx, &rows, `INSERT INTO loyalty_orders
		(order_id, shopper_id, currency, paid, event_seq, credited_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (order_id) DO UPDATE SET shopper_id = EXCLUDED.shopper_id, currency = EXCLUDED.currency,
			paid = EXCLUDED.paid, event_seq = EXCLUDED.event_seq, credited_at = EXCLUDED.credited_at
			WHERE loyalty_orders.credited_at IS NULL
		RETURNING paid, refunded, credited_at`, ev.OrderID, ev.ShopperID, ev.Currency, paid, ev.Seq, now); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	// The return window runs from the order; an order reported late does not wait twice.
	start := ev.OccurredAt.UTC().Truncate(time.Microsecond)
	if start.After(now) {
		start = now
	}
	available := start.Add(prog.pending())
	expires := expiryFrom(available, prog)
	earn := func(points int64, reason string, experiment, variant *string) error {
		if points <= 0 {
			return nil
		}
		_, err := addLot(ctx, tx, entry{ShopperID: ev.ShopperID, Kind: KindEarn, Points: min(points, MaxPoints),
			Source: SourceOrder, Reason: reason, OrderID: &ev.OrderID, Experiment: experiment, Variant: variant,
			CreatedAt: now}, available, expires)
		return err
	}
	base := basePoints(ev.Amount, ev.Discount, ev.Currency, prog.EarnRate)
	if err := earn(base, "order_completed", nil, nil); err != nil {
		return err
	}
	bonuses, err := orderBonuses(batch, ev, base)
	if err != nil {
		return err
	}
	for _, b := range bonuses {
		if err := earn(b.points, "loyalty_points bonus", &b.experiment, &b.variant); err != nil {
			return err
		}
		if err := chargeBonus(ctx, tx, s.budgets, Bonus{Experiment: b.experiment, Variant: b.variant,
			ShopperID: ev.ShopperID, Ref: ev.OrderID, Points: min(b.points, MaxPoints), At: start}); err != nil {
			return err
		}
	}
	if rows[0].Refunded > 0 {
		return takeBackRefunded(ctx, tx, now, ev.OrderID, rows[0].Paid, rows[0].Refunded, s.budgets)
	}
	return nil
}

// refundOrder adds a refund to its order and takes back the points it is owed.
func (s *Service) refundOrder(ctx context.Context, tx *sqlx.Tx, ev orderEvent) error {
	var o orderRow
	if err := tx.GetContext(ctx, &o, `INSERT INTO loyalty_orders (order_id, shopper_id, currency, refunded)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (order_id) DO UPDATE SET refunded = loyalty_orders.refunded + EXCLUDED.refunded
		RETURNING paid, refunded, credited_at`, ev.OrderID, ev.ShopperID, ev.Currency, ev.Amount); err != nil {
		return err
	}
	if o.CreditedAt == nil {
		return nil // the order has not been seen yet; crediting it will apply the refund
	}
	return takeBackRefunded(ctx, tx, s.now(), ev.OrderID, o.Paid, o.Refunded, s.budgets)
}

// takeBackRefunded makes the points an order's earns have lost add up to their share of the
// refunded amount: floor(points × refunded / paid), capped at the points. Working from the
// running total rather than from each refund keeps partial refunds from rounding away points,
// and counting every reversal (manual ones too) keeps an earn from being undone twice.
func takeBackRefunded(ctx context.Context, tx *sqlx.Tx, now time.Time, orderID string, paid, refunded int64, budgets BonusBudgets) error {
	var earns []struct {
		ID int64 `db:"id"`
	}
	if err := tx.SelectContext(ctx, &earns, `SELECT id FROM loyalty_entries
		WHERE order_id = $1 AND kind = 'earn' AND source = 'order' ORDER BY id`, orderID); err != nil {
		return err
	}
	for _, e := range earns {
		o, err := loadOriginal(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		owed := o.Points
		if paid > 0 && refunded < paid {
			owed = mulDiv(o.Points, refunded, paid)
		}
		if want := owed - o.Undone; want > 0 {
			if _, err := reverse(ctx, tx, now, e.ID, want, SourceOrder, "order_refunded", budgets); err != nil {
				return err
			}
		}
	}
	return nil
}

// mulDiv is floor(a × b / c) for 0 <= b <= c, without overflow.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

// bonus is the extra points of one loyalty_points variant.
type bonus struct {
	experiment, variant string
	points              int64
}

// strategyVariant is the part of an experiment's variant that crediting reads.
type strategyVariant struct {
	Key      string `json:"key"`
	Strategy struct {
		Type             string   `json:"type"`
		Products         []string `json:"products"`
		BonusPoints      int64    `json:"bonus_points"`
		PointsMultiplier float64  `json:"points_multiplier"`
	} `json:"strategy"`
}

// orderBonuses finds the running experiments whose current phase exposed the shopper to a
// loyalty_points variant, and the bonus of each whose products the order holds.
func orderBonuses(batch *orderBatch, ev orderEvent, base int64) ([]bonus, error) {
	exposed, skus := batch.exposed[ev.ShopperID], batch.skus[ev.ID]
	var out []bonus
	for _, x := range exposed {
		if x.Variants.err != nil {
			return nil, x.Variants.err
		}
		variants := x.Variants.list
		i := slices.IndexFunc(variants, func(v strategyVariant) bool { return v.Key == x.Variant })
		if i < 0 || variants[i].Strategy.Type != "loyalty_points" {
			continue
		}
		st := variants[i].Strategy
		if !slices.ContainsFunc(st.Products, func(p string) bool { return slices.Contains(skus, p) }) {
			continue
		}
		points := st.BonusPoints
		if st.PointsMultiplier > 1 {
			// The multiplier scales the base points; the bonus is the extra part, floored.
			points = int64(math.Floor(float64(base) * (st.PointsMultiplier - 1)))
		}
		if points > 0 {
			out = append(out, bonus{experiment: x.Experiment, variant: x.Variant, points: points})
		}
	}
	return out, nil
}
