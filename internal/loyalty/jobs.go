package loyalty

import (
	"context"
	"log/slog"
	"time"
)

// Jobs runs the loyalty background jobs of a Service on timers.
type Jobs struct {
	Service *Service
	// CreditEvery is the pause between runs of CreditOrders; 0 turns it off.
	CreditEvery time.Duration
	// ExpireEvery is the pause between runs of ExpireDue; 0 turns it off.
	ExpireEvery time.Duration
	Log         *slog.Logger
}

// DefaultCreditEvery credits orders every two seconds, so that points show up while the
// shopper is still on the confirmation page; DefaultExpireEvery expires lots every ten
// minutes: balances never count a lapsed lot anyway, so the job only writes the ledger
// entries down.
const (
	DefaultCreditEvery = 2 * time.Second
	DefaultExpireEvery = 10 * time.Minute
)

// Run runs CreditOrders and ExpireDue on their tickers until ctx ends, and returns nil then. A
// failed run is logged and retried at the next tick: the jobs stop for nothing but ctx.
func (j Jobs) Run(ctx context.Context) error {
	log := j.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	credit, expire := ticker(j.CreditEvery), ticker(j.ExpireEvery)
	defer credit.stop()
	defer expire.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-credit.c:
			n, err := j.Service.CreditOrders(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("loyalty: crediting orders", "error", err, "credited", n)
			} else if n > 0 {
				log.Debug("loyalty: credited order events", "events", n)
			}
		case <-expire.c:
			n, err := j.Service.ExpireDue(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("loyalty: expiring lots", "error", err, "expired", n)
			} else if n > 0 {
				log.Info("loyalty: expired lots", "lots", n)
			}
		}
	}
}

type tick struct {
	c    <-chan time.Time
	stop func()
}

// ticker is a time.Ticker, or a channel that never fires when every is 0.
func ticker(every time.Duration) tick {
	if every <= 0 {
		return tick{c: nil, stop: func() {}}
	}
	t := time.NewTicker(every)
	return tick{c: t.C, stop: t.Stop}
}
