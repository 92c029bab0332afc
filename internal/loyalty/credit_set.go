package loyalty

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// creditSet credits a batch of order events with a few statements for the whole batch rather
// than a few per event: the accounts locked at once (in shopper order, as every writer that
// locks several does, so two of them cannot deadlock), the refunds added to their orders, the
// orders claimed, then every earn of the batch — base and bonus — with its lot and first move in
// one statement. Only the refunds' take-backs go order by order (reversals draw on lots one at
// a time; refunds are a small share of orders).
//
// The result is the one crediting event by event gives (creditEvent, the path a batch the
// database refuses takes): an order earns once per order id, on its first event of the batch;
// a refund before its order in the batch is applied when the order is credited, as a refund
// of an earlier batch is; a take-back counts the order's whole refunded amount, so it owes the
// same points whether refunds came one at a time or together.
func (s *Service) creditSet(ctx context.Context, tx *sqlx.Tx, evs []orderEvent, batch *orderBatch) error {
	var shoppers []string
	for _, ev := range evs {
		shoppers = append(shoppers, ev.ShopperID)
	}
	slices.Sort(shoppers)
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM loyalty_accounts WHERE shopper_id = ANY($1)
		ORDER BY shopper_id FOR UPDATE`, pq.StringArray(slices.Compact(shoppers))); err != nil {
		return fmt.Errorf("locking the accounts of a batch: %w", err)
	}
	// The clock is read after the locks are held (see inAccountTx).
	now := s.now()
	owed, err := addRefunds(ctx, tx, evs)
	if err != nil {
		return err
	}
	credited, err := claimOrders(ctx, tx, evs, now)
	if err != nil {
		return err
	}
	if err := s.earnOrders(ctx, tx, credited, batch, now); err != nil {
		return err
	}
	for _, o := range credited {
		if o.Refunded > 0 {
			owed = append(owed, claimed{orderEvent: o.orderEvent, orderRow: o.orderRow})
		}
	}
	slices.SortFunc(owed, bySeq)
	for _, o := range owed {
		if err := takeBackRefunded(ctx, tx, now, o.OrderID, o.Paid, o.Refunded, s.budgets); err != nil {
			return fmt.Errorf("order %s: taking back its refunds: %w", o.OrderID, err)
		}
	}
	return nil
}

// claimed is an order of the batch with its loyalty_orders row after the batch's writes.
type claimed struct {
	orderEvent
	orderRow
}

// addRefunds adds the batch's refunds to their orders (making the row of an order not seen
// yet) and returns the orders credited before the batch that it refunded, whose points are
// now owed back.
func addRefunds(ctx context.Context, tx *sqlx.Tx, evs []orderEvent) ([]claimed, error) {
	first := map[string]orderEvent{}
	var ids, shoppers, currencies []string
	var amounts []int64
	for _, ev := range evs {
		if ev.Type != "order_refunded" {
			continue
		}
		if _, ok := first[ev.OrderID]; !ok {
			first[ev.OrderID] = ev
		}
		ids, shoppers, currencies = append(ids, ev.OrderID), append(shoppers, ev.ShopperID), append(currencies, ev.Currency)
		amounts = append(amounts, ev.Amount)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []struct {
		OrderID string `db:"order_id"`
		orderRow
	}
	// Summed in SQL: a total past bigint is the database refusing the batch (22003), which
	// then goes event by event and quarantines the refund that overflows.
	if err := tx.SelectContext(ctx, &rows, `INSERT INTO loyalty_orders (order_id, shopper_id, currency, refunded)
		SELECT DISTINCT ON (order_id) order_id, shopper_id, currency, sum(amount) OVER (PARTITION BY order_id)::bigint
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS r(order_id, shopper_id, currency, amount, ord)
		ORDER BY order_id, ord
		ON CONFLICT (order_id) DO UPDATE SET refunded = loyalty_orders.refunded + EXCLUDED.refunded
		RETURNING order_id, paid, refunded, credited_at`,
		pq.StringArray(ids), pq.StringArray(shoppers), pq.StringArray(currencies), pq.Int64Array(amounts)); err != nil {
		return nil, fmt.Errorf("adding the refunds of a batch: %w", err)
	}
	var owed []claimed
	for _, r := range rows {
		if r.CreditedAt != nil {
			owed = append(owed, claimed{orderEvent: first[r.OrderID], orderRow: r.orderRow})
		}
	}
	return owed, nil
}

// claimOrders writes the row of each order of the batch not credited yet, on its first event,
// and returns those orders, in event order: the others are duplicates, which earn nothing.
func claimOrders(ctx context.Context, tx *sqlx.Tx, evs []orderEvent, now time.Time) ([]claimed, error) {
	first := map[string]orderEvent{}
	var ids, shoppers, currencies []string
	var paid, seqs []int64
	for _, ev := range evs {
		if _, dup := first[ev.OrderID]; ev.Type != "order_completed" || dup {
			continue
		}
		first[ev.OrderID] = ev
		ids, shoppers, currencies = append(ids, ev.OrderID), append(shoppers, ev.ShopperID), append(currencies, ev.Currency)
		paid, seqs = append(paid, max(ev.Amount-ev.Discount, 0)), append(seqs, ev.Seq)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []struct {
		OrderID string `db:"order_id"`
		orderRow
	}
	if err := tx.SelectContext(ctx, &rows, `INSERT INTO loyalty_orders
		(order_id, shopper_id, currency, paid, event_seq, credited_at)
		SELECT o.*, $6::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS o
		ON CONFLICT (order_id) DO UPDATE SET shopper_id = EXCLUDED.shopper_id, currency = EXCLUDED.currency,
			paid = EXCLUDED.paid, event_seq = EXCLUDED.event_seq, credited_at = EXCLUDED.credited_at
			WHERE loyalty_orders.credited_at IS NULL
		RETURNING order_id, paid, refunded, credited_at`,
		pq.StringArray(ids), pq.StringArray(shoppers), pq.StringArray(currencies), pq.Int64Array(paid),
		pq.Int64Array(seqs), now); err != nil {
		return nil, fmt.Errorf("claiming the orders of a batch: %w", err)
	}
	out := make([]claimed, 0, len(rows))
	for _, r := range rows {
		out = append(out, claimed{orderEvent: first[r.OrderID], orderRow: r.orderRow})
	}
	slices.SortFunc(out, bySeq)
	return out, nil
}

// earns are the columns of the earn entries and lots of a batch, one element per earn.
type earns struct {
	shoppers, reasons, orders, experiments, variants, available, expires []string
	points                                                               []int64
}

func (e *earns) add(ev orderEvent, points int64, reason, experiment, variant string, available time.Time, expires *time.Time) {
	if points <= 0 {
		return
	}
	exp := ""
	if expires != nil {
		exp = expires.Format(time.RFC3339Nano)
	}
	e.shoppers, e.reasons, e.orders = append(e.shoppers, ev.ShopperID), append(e.reasons, reason), append(e.orders, ev.OrderID)
	e.experiments, e.variants = append(e.experiments, experiment), append(e.variants, variant)
	e.available, e.expires = append(e.available, available.Format(time.RFC3339Nano)), append(e.expires, exp)
	e.points = append(e.points, min(points, MaxPoints))
}

// earnOrders writes the earns of the orders claimed — base points, then each bonus, order
// after order, as crediting event by event numbers them — with their lots and first moves,
// in one statement.
func (s *Service) earnOrders(ctx context.Context, tx *sqlx.Tx, orders []claimed, batch *orderBatch, now time.Time) error {
	var e earns
	var charges []Bonus
	for _, o := range orders {
		// The return window runs from the order; an order reported late does not wait twice.
		start := o.OccurredAt.UTC().Truncate(time.Microsecond)
		if start.After(now) {
			start = now
		}
		available := start.Add(batch.prog.pending())
		expires := expiryFrom(available, batch.prog)
		base := basePoints(o.Amount, o.Discount, o.Currency, batch.prog.EarnRate)
		e.add(o.orderEvent, base, "order_completed", "", "", available, expires)
		bonuses, err := orderBonuses(batch, o.orderEvent, base)
		if err != nil {
			return fmt.Errorf("event %s (seq %d, order %s): %w", o.ID, o.Seq, o.OrderID, err)
		}
		for _, b := range bonuses {
			e.add(o.orderEvent, b.points, "loyalty_points bonus", b.experiment, b.variant, available, expires)
			charges = append(charges, Bonus{Experiment: b.experiment, Variant: b.variant, ShopperID: o.ShopperID,
				Ref: o.OrderID, Points: min(b.points, MaxPoints), At: start})
		}
	}
	if len(e.points) == 0 {
		return nil
	}
	// Each earn's entry and lot ids are drawn first, in the earns' order, so that the three
	// inserts read the batch alone rather than joining one insert's RETURNING to the next.
	_, err := tx.ExecContext(ctx, `WITH x AS MATERIALIZED (
			SELECT x.*, nextval('loyalty_entries_id_seq') AS entry_id, nextval('loyalty_lots_id_seq') AS lot_id
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::timestamptz[], $8::text[]) WITH ORDINALITY
				AS x(shopper_id, points, reason, order_id, experiment, variant, available_at, expires_at, ord)
			ORDER BY ord
		), en AS (
			INSERT INTO loyalty_entries (id, shopper_id, kind, points, source, reason, order_id, experiment, variant, created_at)
			SELECT entry_id, shopper_id, 'earn', points, 'order', reason, order_id, NULLIF(experiment, ''), NULLIF(variant, ''), $9
			FROM x
		), lot AS (
			INSERT INTO loyalty_lots (id, shopper_id, entry_id, points, remaining, earned_at, available_at, expires_at)
			SELECT lot_id, shopper_id, entry_id, points, points, $9, available_at, NULLIF(expires_at, '')::timestamptz
			FROM x
		)
		INSERT INTO loyalty_lot_moves (entry_id, lot_id, points) SELECT entry_id, lot_id, points FROM x`,
		pq.StringArray(e.shoppers), pq.Int64Array(e.points), pq.StringArray(e.reasons), pq.StringArray(e.orders),
		pq.StringArray(e.experiments), pq.StringArray(e.variants), pq.StringArray(e.available), pq.StringArray(e.expires), now)
	if err != nil {
		return fmt.Errorf("writing the earns of a batch: %w", err)
	}
	// The bonuses are charged to their offers' budgets in this transaction, as crediting
	// event by event does (creditOrder), with the whole batch's in one call.
	if s.budgets == nil || len(charges) == 0 {
		return nil
	}
	if err := s.budgets.ChargeBonuses(ctx, tx, charges); err != nil {
		return fmt.Errorf("charging the bonuses of a batch to their budgets: %w", err)
	}
	return nil
}

func bySeq(a, b claimed) int { return cmp.Compare(a.Seq, b.Seq) }
