package loyalty

import (
	"context"
	"strconv"
	"time"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
)

// Account is a shopper's points at one moment. A shopper never seen has an account of zeros.
type Account struct {
	ShopperID string `json:"shopper_id"`
	// Balance is what can be spent now: the remainders of available, unexpired lots.
	Balance int64 `json:"balance"`
	// Pending is what order points will add once their pending period ends.
	Pending int64 `json:"pending"`
	// LifetimeEarned is the points ever earned less what reversals of earns undid.
	LifetimeEarned int64 `json:"lifetime_earned"`
	// LifetimeRedeemed is the points ever redeemed less what reversals of redemptions undid.
	LifetimeRedeemed int64 `json:"lifetime_redeemed"`
	// Expired is the points lost to expiry, including lots past expiry the job has not yet
	// written off.
	Expired int64 `json:"expired"`
	// NextExpiry is the next time held points (spendable or pending) expire; nil if never.
	NextExpiry *Expiry `json:"next_expiry"`
}

// Expiry is an amount of points and when it expires.
type Expiry struct {
	At     time.Time `json:"at"`
	Points int64     `json:"points"`
}

// Account reads a shopper's balances in one statement, so that they agree with each other.
func (s *Service) Account(ctx context.Context, shopperID string) (Account, error) {
	if err := CheckShopperID(shopperID); err != nil {
		return Account{}, err
	}
	now := s.now()
	var row struct {
		Balance    int64      `db:"balance"`
		Pending    int64      `db:"pending"`
		Earned     int64      `db:"earned"`
		Redeemed   int64      `db:"redeemed"`
		Expired    int64      `db:"expired"`
		NextAt     *time.Time `db:"next_at"`
		NextPoints int64      `db:"next_points"`
	}
	err := s.db.GetContext(ctx, &row, `
		WITH lots AS (
			SELECT l.remaining, l.available_at, l.expires_at FROM loyalty_lots l WHERE l.shopper_id = $1
		), held AS (
			SELECT
				COALESCE(sum(remaining) FILTER (WHERE available_at <= $2 AND (expires_at IS NULL OR expires_at > $2)), 0) AS balance,
				COALESCE(sum(remaining) FILTER (WHERE available_at > $2 AND (expires_at IS NULL OR expires_at > $2)), 0) AS pending,
				COALESCE(sum(remaining) FILTER (WHERE expires_at <= $2), 0) AS lapsed,
				min(expires_at) FILTER (WHERE remaining > 0 AND expires_at > $2) AS next_at
			FROM lots
		), written AS (
			SELECT
				COALESCE(sum(points) FILTER (WHERE kind = 'earn'), 0) AS earned,
				COALESCE(-sum(points) FILTER (WHERE kind = 'redeem'), 0) AS redeemed,
				COALESCE(-sum(points) FILTER (WHERE kind = 'expire'), 0) AS expired
			FROM loyalty_entries WHERE shopper_id = $1
		), undone AS (
			SELECT
				COALESCE(sum(abs(r.points) + r.shortfall) FILTER (WHERE o.kind = 'earn'), 0) AS earned,
				COALESCE(sum(abs(r.points) + r.shortfall) FILTER (WHERE o.kind = 'redeem'), 0) AS redeemed
			FROM loyalty_entries r JOIN loyalty_entries o ON o.id = r.reverses
			WHERE r.shopper_id = $1 AND r.kind = 'reverse'
		)
		SELECT held.balance, held.pending, written.earned - undone.earned AS earned,
			written.redeemed - undone.redeemed AS redeemed, written.expired + held.lapsed AS expired,
			held.next_at,
			COALESCE((SELECT sum(remaining) FROM lots WHERE expires_at = held.next_at), 0) AS next_points
		FROM held, written, undone`, shopperID, now)
	if err != nil {
		return Account{}, database.Wrap(err, "reading the account of %q", shopperID)
	}
	a := Account{ShopperID: shopperID, Balance: row.Balance, Pending: row.Pending,
		LifetimeEarned: row.Earned, LifetimeRedeemed: row.Redeemed, Expired: row.Expired}
	if row.NextAt != nil {
		a.NextExpiry = &Expiry{At: row.NextAt.UTC(), Points: row.NextPoints}
	}
	return a, nil
}

// Page is one page of a shopper's ledger, newest first.
type Page struct {
	Transactions []Transaction `json:"transactions"`
	// NextCursor fetches the next (older) page; absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Page sizes of Transactions.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Transactions lists a shopper's ledger entries, newest first, limit at a time (0: the
// default), starting after cursor (a NextCursor, or "" for the newest).
func (s *Service) Transactions(ctx context.Context, shopperID, cursor string, limit int) (Page, error) {
	var p apperr.Problems
	checkShopper(&p, shopperID)
	var before int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n <= 0 {
			p.Add("cursor", "invalid", "must be a next_cursor from an earlier page")
		}
		before = n
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		p.Add("limit", "out_of_range", "must be between 1 and %d", MaxPageSize)
	}
	if err := p.Err(); err != nil {
		return Page{}, err
	}
	page := Page{Transactions: []Transaction{}}
	err := s.db.SelectContext(ctx, &page.Transactions, `SELECT `+transactionColumns+`
		FROM loyalty_entries e LEFT JOIN loyalty_lots l ON l.entry_id = e.id
		WHERE e.shopper_id = $1 AND ($2 = 0 OR e.id < $2)
		ORDER BY e.id DESC LIMIT $3`, shopperID, before, limit+1)
	if err != nil {
		return Page{}, database.Wrap(err, "listing the transactions of %q", shopperID)
	}
	if len(page.Transactions) > limit {
		page.Transactions = page.Transactions[:limit]
		page.NextCursor = strconv.FormatInt(page.Transactions[limit-1].ID, 10)
	}
	for i := range page.Transactions {
		page.Transactions[i].normalise()
	}
	return page, nil
}

// normalise shows times in UTC, as they were written.
func (t *Transaction) normalise() {
	t.CreatedAt = t.CreatedAt.UTC()
	if t.AvailableAt != nil {
		at := t.AvailableAt.UTC()
		t.AvailableAt = &at
	}
	if t.ExpiresAt != nil {
		at := t.ExpiresAt.UTC()
		t.ExpiresAt = &at
	}
}
