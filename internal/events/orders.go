package events

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// OrderEvent is an order_completed or order_refunded row of the events table, as the
// consumers that follow orders through it (loyalty crediting, offer budgets) read it.
type OrderEvent struct {
	Seq        int64          `db:"seq" json:"seq"`
	ID         string         `db:"id" json:"id"`
	Type       string         `db:"type" json:"type"`
	ShopperID  string         `db:"shopper_id" json:"shopper_id"`
	OccurredAt time.Time      `db:"occurred_at" json:"occurred_at"`
	Experiment sql.NullString `db:"experiment" json:"experiment"`
	OrderID    string         `db:"order_id" json:"order_id"`
	Amount     int64          `db:"amount" json:"amount"`
	Discount   int64          `db:"discount" json:"discount"`
	Currency   string         `db:"currency" json:"currency"`
}

// Which order events a consumer reads.
const (
	// AllOrders is every completed and refunded order.
	AllOrders = `type IN ('order_completed', 'order_refunded')`
	// DiscountedOrders is the completed orders that name an experiment and carry a discount,
	// and every refund: what can spend or give back an offer budget.
	DiscountedOrders = `((type = 'order_completed' AND experiment IS NOT NULL AND discount > 0) OR type = 'order_refunded')`
)

// ReadOrders reads up to limit order events after seq, in seq order, of the kind which names
// (AllOrders or DiscountedOrders, a constant, never input). Store makes rows visible in seq
// order (an advisory lock around each commit), so nothing can appear later below a cursor.
func ReadOrders(ctx context.Context, tx *sqlx.Tx, which string, after int64, limit int) ([]OrderEvent, error) {
	var evs []OrderEvent
	if err := tx.SelectContext(ctx, &evs, `SELECT seq, id, type, shopper_id, occurred_at, experiment, order_id,
			amount, COALESCE(discount, 0) AS discount, currency
		FROM events WHERE seq > $1 AND `+which+` ORDER BY seq LIMIT $2`, after, limit); err != nil {
		return nil, fmt.Errorf("reading order events: %w", err)
	}
	for i := range evs {
		evs[i].Currency = strings.TrimSpace(evs[i].Currency)
	}
	return evs, nil
}
