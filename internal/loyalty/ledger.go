package loyalty

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/validate"
)

// Entry kinds of the ledger.
const (
	KindEarn    = "earn"
	KindRedeem  = "redeem"
	KindReverse = "reverse"
	KindExpire  = "expire"
)

// Sources of ledger entries.
const (
	SourceAPI   = "api"   // a checkout or admin request
	SourceOrder = "order" // credited from order events
	SourceJob   = "job"   // the expiry job
)

// Limits of requests.
const (
	MaxPoints      = 1_000_000_000         // per transaction; more is a bug in the caller
	MaxShopperID   = validate.MaxShopperID // characters, as everywhere
	MaxKeyLength   = 128                   // characters of an idempotency key or order id
	MaxReasonChars = 256
)

// Transaction is one ledger entry as clients see it.
type Transaction struct {
	ID        int64  `json:"id" db:"id"`
	ShopperID string `json:"shopper_id" db:"shopper_id"`
	// Type is earn, redeem, reverse or expire.
	Type string `json:"type" db:"kind"`
	// Points is signed: what the entry added to or took from the shopper's points.
	Points int64 `json:"points" db:"points"`
	// Shortfall is the part of a reversal that could not move the balance (see the migration).
	Shortfall int64 `json:"shortfall" db:"shortfall"`
	// Reverses is the id of the transaction a reversal undoes.
	Reverses   *int64  `json:"reverses,omitempty" db:"reverses"`
	Source     string  `json:"source" db:"source"`
	Reason     string  `json:"reason,omitempty" db:"reason"`
	OrderID    *string `json:"order_id,omitempty" db:"order_id"`
	Experiment *string `json:"experiment,omitempty" db:"experiment"`
	Variant    *string `json:"variant,omitempty" db:"variant"`
	// AvailableAt and ExpiresAt describe the lot an earn made; ExpiresAt is absent when the
	// lot never expires.
	AvailableAt *time.Time `json:"available_at,omitempty" db:"available_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty" db:"expires_at"`
	CreatedAt   time.Time  `json:"created_at" db:"created_at"`
}

// Receipt is the answer to an earn, a redemption or a reversal.
type Receipt struct {
	Transaction Transaction `json:"transaction"`
	// Balance is the shopper's spendable points right after the transaction.
	Balance int64 `json:"balance"`
}

// Outcome is a Receipt with the exact answer stored for its idempotency key: a replay gets
// the same Status and the same Body bytes as the first request.
type Outcome struct {
	Status   int
	Body     []byte
	Receipt  Receipt
	Replayed bool
}

// EarnRequest adds points to a shopper, in a lot of their own.
type EarnRequest struct {
	Points         int64  `json:"points"`
	IdempotencyKey string `json:"idempotency_key"`
	Reason         string `json:"reason"`
	OrderID        string `json:"order_id,omitempty"`
	// Experiment and Variant make the points the bonus of that variant's offer: they count in
	// its offer_cost and are charged to its budgets, which may refuse them (409).
	Experiment string `json:"experiment,omitempty"`
	Variant    string `json:"variant,omitempty"`
}

// Validate reports every problem with its field name.
func (r EarnRequest) Validate() error {
	var p apperr.Problems
	r.check(&p)
	return p.Err()
}

func (r EarnRequest) check(p *apperr.Problems) {
	checkPoints(p, "points", r.Points)
	checkKey(p, r.IdempotencyKey)
	switch {
	case r.Reason == "":
		p.Add("reason", "required", "is required: say why the points are given")
	case !validate.Text(p, "reason", r.Reason):
	case utf8.RuneCountInString(r.Reason) > MaxReasonChars:
		p.Add("reason", "too_long", "must have at most %d characters", MaxReasonChars)
	}
	checkOrderID(p, r.OrderID)
	checkOffer(p, r.Experiment, r.Variant)
}

// RedeemRequest spends points of a shopper.
type RedeemRequest struct {
	Points         int64  `json:"points"`
	IdempotencyKey string `json:"idempotency_key"`
	OrderID        string `json:"order_id,omitempty"`
}

// Validate reports every problem with its field name.
func (r RedeemRequest) Validate() error {
	var p apperr.Problems
	r.check(&p)
	return p.Err()
}

func (r RedeemRequest) check(p *apperr.Problems) {
	checkPoints(p, "points", r.Points)
	checkKey(p, r.IdempotencyKey)
	checkOrderID(p, r.OrderID)
}

// ReverseRequest undoes an earn or a redemption, wholly or (with Points) in part.
type ReverseRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	// Points to reverse; nil reverses all that is left to reverse.
	Points *int64 `json:"points,omitempty"`
}

// Validate reports every problem with its field name.
func (r ReverseRequest) Validate() error {
	var p apperr.Problems
	if r.Points != nil {
		checkPoints(&p, "points", *r.Points)
	}
	checkKey(&p, r.IdempotencyKey)
	return p.Err()
}

func checkPoints(p *apperr.Problems, field string, n int64) {
	if n <= 0 || n > MaxPoints {
		p.Add(field, "out_of_range", "must be between 1 and %d", MaxPoints)
	}
}

func checkKey(p *apperr.Problems, key string) {
	switch {
	case key == "":
		p.Add("idempotency_key", "required", "is required, so that a retry cannot count twice")
	case !validate.Text(p, "idempotency_key", key):
	case utf8.RuneCountInString(key) > MaxKeyLength:
		p.Add("idempotency_key", "too_long", "must have at most %d characters", MaxKeyLength)
	}
}

func checkOrderID(p *apperr.Problems, id string) {
	if validate.Text(p, "order_id", id) && utf8.RuneCountInString(id) > MaxKeyLength {
		p.Add("order_id", "too_long", "must have at most %d characters", MaxKeyLength)
	}
}

// CheckShopperID says whether a shopper id (from a URL) is usable.
func CheckShopperID(id string) error {
	var p apperr.Problems
	checkShopper(&p, id)
	return p.Err()
}

func checkShopper(p *apperr.Problems, id string) {
	validate.ShopperID(p, "shopper_id", id)
}

// Earn credits points to a shopper as a new lot that is spendable at once and expires after
// the program's expiry_days.
func (s *Service) Earn(ctx context.Context, shopperID string, r EarnRequest) (Outcome, error) {
	var p apperr.Problems
	checkShopper(&p, shopperID)
	r.check(&p)
	if err := p.Err(); err != nil {
		return Outcome{}, err
	}
	return s.idempotent(ctx, shopperID, r.IdempotencyKey, "earn", r, func(tx *sqlx.Tx, now time.Time) (int64, error) {
		prog, err := loadProgram(ctx, tx)
		if err != nil {
			return 0, err
		}
		id, err := addLot(ctx, tx, entry{
			ShopperID: shopperID, Kind: KindEarn, Points: r.Points, Source: SourceAPI,
			Reason: r.Reason, OrderID: nullable(r.OrderID), CreatedAt: now,
			Experiment: nullable(r.Experiment), Variant: nullable(r.Variant),
		}, now, expiryFrom(now, prog))
		if err != nil || r.Experiment == "" {
			return id, err
		}
		return id, chargeBonus(ctx, tx, s.budgets, Bonus{Experiment: r.Experiment, Variant: r.Variant, ShopperID: shopperID,
			Ref: bonusRef(nullable(r.OrderID), id), Points: r.Points, At: now, Strict: true})
	})
}

// Redeem spends points of a shopper, from the lots that expire first. A balance that does not
// cover them is an InsufficientPoints error, and nothing is written.
func (s *Service) Redeem(ctx context.Context, shopperID string, r RedeemRequest) (Outcome, error) {
	var p apperr.Problems
	checkShopper(&p, shopperID)
	r.check(&p)
	if err := p.Err(); err != nil {
		return Outcome{}, err
	}
	return s.idempotent(ctx, shopperID, r.IdempotencyKey, "redeem", r, func(tx *sqlx.Tx, now time.Time) (int64, error) {
		return spend(ctx, tx, entry{
			ShopperID: shopperID, Kind: KindRedeem, Points: -r.Points, Source: SourceAPI,
			OrderID: nullable(r.OrderID), CreatedAt: now,
		})
	})
}

// Reverse undoes an earn (taking back what is left of its lot) or a redemption (putting the
// points back into the lots they came from). Over all its reversals, a transaction is undone
// at most once.
func (s *Service) Reverse(ctx context.Context, transactionID int64, r ReverseRequest) (Outcome, error) {
	if err := r.Validate(); err != nil {
		return Outcome{}, err
	}
	var shopperID string
	err := s.db.GetContext(ctx, &shopperID, `SELECT shopper_id FROM loyalty_entries WHERE id = $1`, transactionID)
	if errors.Is(err, sql.ErrNoRows) {
		return Outcome{}, apperr.New(apperr.NotFound, "no transaction %d", transactionID)
	} else if err != nil {
		return Outcome{}, database.Wrap(err, "reading transaction %d", transactionID)
	}
	target := "reverse " + strconv.FormatInt(transactionID, 10)
	return s.idempotent(ctx, shopperID, r.IdempotencyKey, target, r, func(tx *sqlx.Tx, now time.Time) (int64, error) {
		var want int64
		if r.Points != nil {
			want = *r.Points
		}
		return reverse(ctx, tx, now, transactionID, want, SourceAPI, "", s.budgets)
	})
}

// idempotent runs op under the account lock unless the key was used before: then it replays
// the stored answer when the request is the same, and refuses it when it is not. op returns
// the id of the entry it wrote; its receipt is stored with the key in the same transaction.
func (s *Service) idempotent(ctx context.Context, shopperID, key, op string, req any,
	fn func(tx *sqlx.Tx, now time.Time) (int64, error)) (Outcome, error) {
	canon, err := json.Marshal(struct {
		Op      string `json:"op"`
		Request any    `json:"request"`
	}{op, req})
	if err != nil {
		return Outcome{}, err
	}
	hash := sha256.Sum256(canon)
	var out Outcome
	err = database.Transact(ctx, s.db, readCommitted, func(dtx *database.Tx) error {
		tx := dtx.Tx
		prior, err := claimKey(ctx, tx, shopperID, key)
		if err == nil {
			prior, err = lockAccountKey(ctx, tx, shopperID, key, s.now())
		}
		if err != nil {
			return err
		}
		if prior != nil {
			if string(prior.Hash) != string(hash[:]) {
				return apperr.New(apperr.IdempotencyConflict,
					"idempotency_key %q was used for a different request of this shopper; use a new key", key)
			}
			out = Outcome{Status: prior.Status, Body: prior.Body, Replayed: true}
			return json.Unmarshal(prior.Body, &out.Receipt)
		}
		now := s.now() // read after the lock, as in inAccountTx
		id, err := fn(tx, now)
		if err != nil {
			return err
		}
		rec, err := receipt(ctx, tx, id, now)
		if err != nil {
			return err
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		out = Outcome{Status: http.StatusCreated, Body: body, Receipt: rec}
		_, err = tx.ExecContext(ctx, `INSERT INTO loyalty_idempotency
			(shopper_id, key, request_hash, status, body, entry_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, shopperID, key, hash[:], out.Status, body, id, now)
		return err
	})
	return out, database.Wrap(err, "%s for %q", op, shopperID)
}

// claimKey takes the transaction-level lock of a shopper's idempotency key. It is taken before
// the account row is read, so that the key's stored answer read with the account is the
// committed one: a request that waited on the account lock would otherwise read the key as
// new from its older snapshot and do the work a second time, or fail on the key's row.
//
// When another transaction holds the key, claimKey returns the answer stored for it, to be
// replayed, or a RequestInProgress error while the first request with the key is still
// running: a retry that overtook its first try is told to come back, not that it failed.
func claimKey(ctx context.Context, tx *sqlx.Tx, shopperID, key string) (*storedAnswer, error) {
	h := fnv.New64a()
	h.Write([]byte(shopperID))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var row struct {
		Claimed bool   `db:"claimed"`
		Hash    []byte `db:"request_hash"`
		Status  *int   `db:"status"`
		Body    []byte `db:"body"`
	}
	// Keys are hashed into the single-bigint space of advisory locks, shared with the events
	// commit lock: a collision with it, or between two keys, at worst answers a 409 to retry.
	if err := tx.GetContext(ctx, &row, `SELECT pg_try_advisory_xact_lock($3) AS claimed, i.request_hash, i.status, i.body
		FROM (SELECT) AS one LEFT JOIN loyalty_idempotency i ON i.shopper_id = $1 AND i.key = $2`,
		shopperID, key, int64(h.Sum64())); err != nil {
		return nil, fmt.Errorf("claiming idempotency key %q: %w", key, err)
	}
	switch {
	case row.Claimed:
		return nil, nil
	case row.Status != nil:
		return &storedAnswer{Hash: row.Hash, Status: *row.Status, Body: row.Body}, nil
	}
	return nil, &apperr.Error{Code: apperr.RequestInProgress,
		Message: fmt.Sprintf("a request with idempotency_key %q is still being processed; retry in a moment to get its answer", key)}
}

// receipt is the transaction id with the shopper's balance at now.
func receipt(ctx context.Context, q queryer, id int64, now time.Time) (Receipt, error) {
	var row struct {
		Transaction
		Balance int64 `db:"balance"`
	}
	err := q.GetContext(ctx, &row, `SELECT `+transactionColumns+`,
		(SELECT COALESCE(sum(l.remaining), 0) FROM loyalty_lots l
			WHERE l.shopper_id = e.shopper_id AND `+spendableLots+`) AS balance
		FROM loyalty_entries e LEFT JOIN loyalty_lots l ON l.entry_id = e.id WHERE e.id = $1`, id, now)
	row.normalise()
	return Receipt{Transaction: row.Transaction, Balance: row.Balance}, err
}

const transactionColumns = `e.id, e.shopper_id, e.kind, e.points, e.shortfall, e.reverses, e.source,
	e.reason, e.order_id, e.experiment, e.variant, l.available_at, l.expires_at, e.created_at`

// spendableLots is the condition on loyalty_lots (aliased l) of lots whose points can be
// spent at $2: available, not expired (whether or not the expiry job has run), not empty.
const spendableLots = `l.remaining > 0 AND l.available_at <= $2 AND (l.expires_at IS NULL OR l.expires_at > $2)`

// entry is a ledger row to write.
type entry struct {
	ShopperID  string
	Kind       string
	Points     int64
	Shortfall  int64
	Reverses   *int64
	Source     string
	Reason     string
	OrderID    *string
	Experiment *string
	Variant    *string
	CreatedAt  time.Time
}

func insertEntry(ctx context.Context, tx *sqlx.Tx, e entry) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `INSERT INTO loyalty_entries
		(shopper_id, kind, points, shortfall, reverses, source, reason, order_id, experiment, variant, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		e.ShopperID, e.Kind, e.Points, e.Shortfall, e.Reverses, e.Source, e.Reason, e.OrderID,
		e.Experiment, e.Variant, e.CreatedAt)
	if err != nil {
		return 0, fmt.Errorf("writing a %s entry: %w", e.Kind, err)
	}
	return id, nil
}

// move records how an entry changed a lot; the caller changes the lot itself.
func move(ctx context.Context, tx *sqlx.Tx, entryID, lotID, points, settled int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO loyalty_lot_moves (entry_id, lot_id, points, settled)
		VALUES ($1, $2, $3, $4)`, entryID, lotID, points, settled)
	return err
}

// expiryFrom is when a lot that becomes available at t expires, or nil for never.
func expiryFrom(t time.Time, p Program) *time.Time {
	if p.ExpiryDays == 0 {
		return nil
	}
	at := t.Add(p.expiry())
	return &at
}

// addLot writes an earn entry, its lot and the lot's first move in one statement. The account
// must be locked by tx.
func addLot(ctx context.Context, tx *sqlx.Tx, e entry, availableAt time.Time, expiresAt *time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `WITH en AS (
			INSERT INTO loyalty_entries
				(shopper_id, kind, points, source, reason, order_id, experiment, variant, created_at)
			VALUES ($1, 'earn', $2, $3, $4, $5, $6, $7, $8) RETURNING id
		), lot AS (
			INSERT INTO loyalty_lots (shopper_id, entry_id, points, remaining, earned_at, available_at, expires_at)
			SELECT $1, en.id, $2, $2, $8, $9, $10 FROM en RETURNING id, entry_id
		)
		INSERT INTO loyalty_lot_moves (entry_id, lot_id, points) SELECT lot.entry_id, lot.id, $2 FROM lot
		RETURNING entry_id`,
		e.ShopperID, e.Points, e.Source, e.Reason, e.OrderID, e.Experiment, e.Variant, e.CreatedAt,
		availableAt, expiresAt)
	if err != nil {
		return 0, fmt.Errorf("writing an earn and its lot: %w", err)
	}
	return id, nil
}

// spend writes a redeem entry of -e.Points points drawn from the spendable lots that expire
// first (never-expiring lots last, older lots first among equals). The account must be locked
// by tx, which is what keeps two spends from drawing the same points.
func spend(ctx context.Context, tx *sqlx.Tx, e entry) (int64, error) {
	want := -e.Points
	var lots []struct {
		ID        int64 `db:"id"`
		Remaining int64 `db:"remaining"`
	}
	if err := tx.SelectContext(ctx, &lots, `SELECT l.id, l.remaining FROM loyalty_lots l
		WHERE l.shopper_id = $1 AND `+spendableLots+`
		ORDER BY l.expires_at ASC NULLS LAST, l.id`, e.ShopperID, e.CreatedAt); err != nil {
		return 0, err
	}
	var have int64
	for _, l := range lots {
		have += l.Remaining
	}
	if have < want {
		return 0, apperr.New(apperr.InsufficientPoints, "the balance is %d points, %d were asked", have, want)
	}
	id, err := insertEntry(ctx, tx, e)
	if err != nil {
		return 0, err
	}
	for _, l := range lots {
		if want == 0 {
			break
		}
		take := min(want, l.Remaining)
		want -= take
		if _, err := tx.ExecContext(ctx, `UPDATE loyalty_lots SET remaining = remaining - $2 WHERE id = $1`, l.ID, take); err != nil {
			return 0, err
		}
		if err := move(ctx, tx, id, l.ID, -take, 0); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// original is the entry a reversal undoes.
type original struct {
	ID         int64   `db:"id"`
	ShopperID  string  `db:"shopper_id"`
	Kind       string  `db:"kind"`
	Points     int64   `db:"points"`
	OrderID    *string `db:"order_id"`
	Experiment *string `db:"experiment"`
	Variant    *string `db:"variant"`
	Undone     int64   `db:"undone"`
}

// loadOriginal reads an entry with how much of it reversals have undone so far.
func loadOriginal(ctx context.Context, q queryer, id int64) (original, error) {
	var o original
	err := q.GetContext(ctx, &o, `SELECT e.id, e.shopper_id, e.kind, e.points, e.order_id, e.experiment, e.variant,
		COALESCE((SELECT sum(abs(r.points) + r.shortfall) FROM loyalty_entries r WHERE r.reverses = e.id), 0) AS undone
		FROM loyalty_entries e WHERE e.id = $1`, id)
	return o, err
}

// reverse undoes want points (0: all that is left) of the entry id, whose account tx has
// locked, and returns the id of the reverse entry.
func reverse(ctx context.Context, tx *sqlx.Tx, now time.Time, id, want int64, source, reason string, budgets BonusBudgets) (int64, error) {
	o, err := loadOriginal(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	if o.Kind != KindEarn && o.Kind != KindRedeem {
		return 0, apperr.New(apperr.Conflict, "transaction %d is an %s entry; only earn and redeem transactions can be reversed", id, o.Kind)
	}
	left := abs(o.Points) - o.Undone
	if left == 0 {
		return 0, apperr.New(apperr.Conflict, "transaction %d is already wholly reversed", id)
	}
	if want == 0 {
		want = left
	}
	if want > left {
		return 0, &apperr.Error{Code: apperr.Conflict,
			Message: fmt.Sprintf("only %d of the %d points of transaction %d are left to reverse", left, abs(o.Points), id),
			Details: []apperr.Detail{{Field: "points", Code: "out_of_range", Message: fmt.Sprintf("must be at most %d", left)}}}
	}
	e := entry{ShopperID: o.ShopperID, Kind: KindReverse, Reverses: &o.ID, Source: source, Reason: reason,
		OrderID: o.OrderID, Experiment: o.Experiment, Variant: o.Variant, CreatedAt: now}
	if o.Kind == KindEarn {
		return reverseEarn(ctx, tx, e, o, want, budgets)
	}
	return reverseRedeem(ctx, tx, e, o, want)
}

// reverseEarn takes want points back from the earn's lot; what the lot no longer holds (spent
// or expired) is recorded as shortfall and as the lot's debt rather than taken from elsewhere.
func reverseEarn(ctx context.Context, tx *sqlx.Tx, e entry, o original, want int64, budgets BonusBudgets) (int64, error) {
	var lot struct {
		ID        int64 `db:"id"`
		Remaining int64 `db:"remaining"`
	}
	if err := tx.GetContext(ctx, &lot, `SELECT id, remaining FROM loyalty_lots WHERE entry_id = $1`, o.ID); err != nil {
		return 0, err
	}
	take := min(want, lot.Remaining)
	e.Points, e.Shortfall = -take, want-take
	id, err := insertEntry(ctx, tx, e)
	if err != nil {
		return 0, err
	}
	if err := returnBonus(ctx, tx, budgets, o, take); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE loyalty_lots SET remaining = remaining - $2, debt = debt + $3
		WHERE id = $1`, lot.ID, take, e.Shortfall); err != nil {
		return 0, err
	}
	if take > 0 {
		return id, move(ctx, tx, id, lot.ID, -take, 0)
	}
	return id, nil
}

// reverseRedeem puts want points back into the lots the redemption drew them from, keeping
// their expiry; the latest-expiring draws go back first, as the shopper would prefer. Points
// going back to a lot with debt pay the debt first, so that reversing both an earn and a
// redemption of its points leaves nothing behind.
func reverseRedeem(ctx context.Context, tx *sqlx.Tx, e entry, o original, want int64) (int64, error) {
	var draws []struct {
		LotID       int64 `db:"lot_id"`
		Outstanding int64 `db:"outstanding"`
		Debt        int64 `db:"debt"`
	}
	if err := tx.SelectContext(ctx, &draws, `SELECT m.lot_id, l.debt,
		-m.points - COALESCE((SELECT sum(b.points + b.settled) FROM loyalty_lot_moves b
			JOIN loyalty_entries r ON r.id = b.entry_id
			WHERE r.reverses = m.entry_id AND b.lot_id = m.lot_id), 0) AS outstanding
		FROM loyalty_lot_moves m JOIN loyalty_lots l ON l.id = m.lot_id
		WHERE m.entry_id = $1
		ORDER BY l.expires_at DESC NULLS FIRST, l.id DESC`, o.ID); err != nil {
		return 0, err
	}
	type back struct{ lot, put, settle int64 }
	var backs []back
	left := want
	for _, d := range draws {
		if left == 0 {
			break
		}
		k := min(left, d.Outstanding)
		if k <= 0 {
			continue
		}
		left -= k
		settle := min(k, d.Debt)
		backs = append(backs, back{d.LotID, k - settle, settle})
		e.Points += k - settle
		e.Shortfall += settle
	}
	if left != 0 {
		return 0, fmt.Errorf("redeem %d: draws cover %d points less than its unreversed part", o.ID, left)
	}
	id, err := insertEntry(ctx, tx, e)
	if err != nil {
		return 0, err
	}
	for _, b := range backs {
		if _, err := tx.ExecContext(ctx, `UPDATE loyalty_lots SET remaining = remaining + $2, debt = debt - $3
			WHERE id = $1`, b.lot, b.put, b.settle); err != nil {
			return 0, err
		}
		if err := move(ctx, tx, id, b.lot, b.put, b.settle); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
