package loyalty

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
)

// expireBatch is how many accounts one scan of the expiry job picks up.
const expireBatch = 500

// ExpireDue writes an expire entry for every lot that is past its expiry and still holds
// points, and returns how many it wrote. Each account is handled under its lock and only lots
// with points left are written off, so running it twice, or on two servers at once, writes
// each lot's expiry once. An account the database refuses to write off is quarantined and
// skipped from then on, until someone deletes its quarantine row: its lapsed lots count in no
// balance anyway, so only their expire entries wait.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	after := ""
	for {
		var shoppers []string
		if err := s.db.SelectContext(ctx, &shoppers, `SELECT DISTINCT shopper_id FROM loyalty_lots l
			WHERE remaining > 0 AND expires_at <= $1 AND shopper_id > $2
				AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.consumer = $4 AND q.key = l.shopper_id)
			ORDER BY shopper_id LIMIT $3`, s.now(), after, expireBatch, ExpiryConsumer); err != nil {
			return total, database.Wrap(err, "finding accounts with lapsed lots")
		}
		for _, id := range shoppers {
			n, err := s.expireAccount(ctx, id)
			total += n
			if database.Refused(err) {
				err = s.quarantine.Put(ctx, s.db, ExpiryConsumer, id, map[string]string{"shopper_id": id}, err)
			}
			if err != nil {
				return total, database.Wrap(err, "expiring the lots of %q", id)
			}
		}
		if len(shoppers) < expireBatch {
			return total, nil
		}
		after = shoppers[len(shoppers)-1]
	}
}

// expireAccount writes off the lapsed lots of one account.
func (s *Service) expireAccount(ctx context.Context, shopperID string) (int, error) {
	n := 0
	err := s.inAccountTx(ctx, shopperID, func(tx *sqlx.Tx, now time.Time) error {
		n = 0
		var lots []struct {
			ID         int64   `db:"id"`
			Remaining  int64   `db:"remaining"`
			OrderID    *string `db:"order_id"`
			Experiment *string `db:"experiment"`
			Variant    *string `db:"variant"`
		}
		// Read after the lock: a concurrent run that expired these lots first has left them at 0.
		if err := tx.SelectContext(ctx, &lots, `SELECT l.id, l.remaining, e.order_id, e.experiment, e.variant
			FROM loyalty_lots l JOIN loyalty_entries e ON e.id = l.entry_id
			WHERE l.shopper_id = $1 AND l.remaining > 0 AND l.expires_at <= $2
			ORDER BY l.id`, shopperID, now); err != nil {
			return err
		}
		for _, l := range lots {
			// The entry names the order and experiment of the lot, so that offer_cost can leave
			// out bonus points that expired unspent.
			id, err := insertEntry(ctx, tx, entry{ShopperID: shopperID, Kind: KindExpire, Points: -l.Remaining,
				Source: SourceJob, Reason: "expired", OrderID: l.OrderID, Experiment: l.Experiment,
				Variant: l.Variant, CreatedAt: now})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE loyalty_lots SET remaining = 0 WHERE id = $1`, l.ID); err != nil {
				return err
			}
			if err := move(ctx, tx, id, l.ID, -l.Remaining, 0); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
