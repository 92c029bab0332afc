package client

import (
	"context"
	"crypto/rand"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Account is a shopper's points at one moment; a shopper never seen has zeros.
type Account struct {
	ShopperID        string  `json:"shopper_id"`
	Balance          int64   `json:"balance"` // spendable now
	Pending          int64   `json:"pending"` // order points still in their return window
	LifetimeEarned   int64   `json:"lifetime_earned"`
	LifetimeRedeemed int64   `json:"lifetime_redeemed"`
	Expired          int64   `json:"expired"`
	NextExpiry       *Expiry `json:"next_expiry"` // nil when nothing held expires
}

// Expiry is an amount of points and when it expires.
type Expiry struct {
	At     time.Time `json:"at"`
	Points int64     `json:"points"`
}

// Transaction is one entry of a shopper's ledger.
type Transaction struct {
	ID        int64  `json:"id"`
	ShopperID string `json:"shopper_id"`
	Type      string `json:"type"`   // earn, redeem, reverse or expire
	Points    int64  `json:"points"` // signed: what the entry added or took
	// Shortfall is the part of a reversal that could not move the balance (spent already).
	Shortfall   int64      `json:"shortfall"`
	Reverses    *int64     `json:"reverses,omitempty"` // the transaction a reversal undoes
	Source      string     `json:"source"`             // api, order or job
	Reason      string     `json:"reason,omitempty"`
	OrderID     *string    `json:"order_id,omitempty"`
	Experiment  *string    `json:"experiment,omitempty"` // a bonus's experiment
	Variant     *string    `json:"variant,omitempty"`
	AvailableAt *time.Time `json:"available_at,omitempty"` // an earn's lot: spendable from
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`   // an earn's lot: expires at (nil: never)
	CreatedAt   time.Time  `json:"created_at"`
}

// TransactionPage is one page of a ledger, newest first.
type TransactionPage struct {
	Transactions []Transaction `json:"transactions"`
	NextCursor   string        `json:"next_cursor,omitempty"` // empty on the last page
}

// Receipt is the answer to an earn, a redemption or a reversal.
type Receipt struct {
	Transaction Transaction `json:"transaction"`
	Balance     int64       `json:"balance"` // spendable points right after
	// Replayed says the server answered from an earlier request with the same idempotency
	// key (a retry whose first answer was lost): nothing was written this time.
	Replayed bool `json:"-"`
	// IdempotencyKey is the key the request was sent with: yours, or the one generated.
	IdempotencyKey string `json:"-"`
}

// EarnRequest gives a shopper points.
type EarnRequest struct {
	Points int64  `json:"points"`
	Reason string `json:"reason"` // why, for the ledger: required
	// OrderID ties the points to an order, optionally.
	OrderID string `json:"order_id,omitempty"`
	// IdempotencyKey makes the call safe to repeat: the same key with the same request is
	// answered once. Empty: one is generated and kept for the call's retries. Derive it from
	// your own record (such as "goodwill-" + ticket id) to be safe across restarts of your
	// process too.
	IdempotencyKey string `json:"idempotency_key"`
}

// RedeemRequest spends a shopper's points.
type RedeemRequest struct {
	Points         int64  `json:"points"`
	OrderID        string `json:"order_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key"` // as in EarnRequest; "o-1002-points" for order o-1002
}

// ReverseRequest undoes an earn or a redemption, wholly or in part.
type ReverseRequest struct {
	Points         *int64 `json:"points,omitempty"` // nil: all that is left to reverse
	IdempotencyKey string `json:"idempotency_key"`  // as in EarnRequest
}

// Program is the loyalty program's settings.
type Program struct {
	EarnRate    int       `json:"earn_rate"`    // points per major currency unit paid, floored
	PointValue  int       `json:"point_value"`  // minor units a point is worth, for cost accounting
	ExpiryDays  int       `json:"expiry_days"`  // 0: points never expire
	PendingDays int       `json:"pending_days"` // order points wait this long (the return window)
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// GetAccount reads a shopper's points.
func (c *Client) GetAccount(ctx context.Context, shopperID string) (*Account, error) {
	var a Account
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/loyalty/accounts/" + url.PathEscape(shopperID),
		retry: retrySafe, out: &a}); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListTransactions reads one page of a shopper's ledger, newest first: limit entries (0: the
// server's default) after cursor ("" for the newest, else a NextCursor).
func (c *Client) ListTransactions(ctx context.Context, shopperID, cursor string, limit int) (*TransactionPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p TransactionPage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/loyalty/accounts/" + url.PathEscape(shopperID) + "/transactions",
		query: q, retry: retrySafe, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// Transactions walks a shopper's whole ledger, newest first, a page at a time; it stops at
// the first error, which it yields.
func (c *Client) Transactions(ctx context.Context, shopperID string) iter.Seq2[Transaction, error] {
	return func(yield func(Transaction, error) bool) {
		cursor := ""
		for {
			p, err := c.ListTransactions(ctx, shopperID, cursor, 0)
			if err != nil {
				yield(Transaction{}, err)
				return
			}
			for _, t := range p.Transactions {
				if !yield(t, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			cursor = p.NextCursor
		}
	}
}

// Earn gives a shopper points, in a lot of their own. It answers a *Error with
// CodeIdempotencyConflict when the key was used for a different request.
func (c *Client) Earn(ctx context.Context, shopperID string, r EarnRequest) (*Receipt, error) {
	r.IdempotencyKey = keyOr(r.IdempotencyKey)
	return c.ledgerWrite(ctx, "/v1/loyalty/accounts/"+url.PathEscape(shopperID)+"/earn", r, r.IdempotencyKey)
}

// Redeem spends a shopper's points, from the lots that expire first. A balance that does not
// cover them is a *Error with CodeInsufficientPoints, and nothing is spent.
func (c *Client) Redeem(ctx context.Context, shopperID string, r RedeemRequest) (*Receipt, error) {
	r.IdempotencyKey = keyOr(r.IdempotencyKey)
	return c.ledgerWrite(ctx, "/v1/loyalty/accounts/"+url.PathEscape(shopperID)+"/redeem", r, r.IdempotencyKey)
}

// Reverse undoes an earn (what is left of its lot) or a redemption (the points go back).
func (c *Client) Reverse(ctx context.Context, transactionID int64, r ReverseRequest) (*Receipt, error) {
	r.IdempotencyKey = keyOr(r.IdempotencyKey)
	return c.ledgerWrite(ctx, "/v1/loyalty/transactions/"+strconv.FormatInt(transactionID, 10)+"/reverse", r, r.IdempotencyKey)
}

// ledgerWrite sends an idempotent ledger request: every retry carries the same key, so the
// server answers a retry of a request it already did from what it stored.
func (c *Client) ledgerWrite(ctx context.Context, path string, body any, key string) (*Receipt, error) {
	var rc Receipt
	a, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, retry: retrySafe, out: &rc})
	if err != nil {
		return nil, err
	}
	rc.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	rc.IdempotencyKey = key
	return &rc, nil
}

// keyOr is key, or a new random idempotency key.
func keyOr(key string) string {
	if key != "" {
		return key
	}
	return "idem-" + rand.Text()
}

// GetProgram reads the loyalty program's settings (admin or analyst key).
func (c *Client) GetProgram(ctx context.Context) (*Program, error) {
	var p Program
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/loyalty/program", retry: retrySafe, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// SetProgram replaces the loyalty program's settings (admin key); UpdatedAt is ignored.
func (c *Client) SetProgram(ctx context.Context, p Program) (*Program, error) {
	body := struct {
		EarnRate    int `json:"earn_rate"`
		PointValue  int `json:"point_value"`
		ExpiryDays  int `json:"expiry_days"`
		PendingDays int `json:"pending_days"`
	}{p.EarnRate, p.PointValue, p.ExpiryDays, p.PendingDays}
	var out Program
	// Setting the same values twice is harmless: retried like a read.
	if _, err := c.do(ctx, request{method: http.MethodPut, path: "/v1/loyalty/program", body: body, retry: retrySafe, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
