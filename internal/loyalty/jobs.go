package loyalty

import (
	"context"
	"log/slog"
	"time"
)

// Jobs says how often the server runs the loyalty background jobs.
type Jobs struct {
	// CreditEvery is the pause between runs of CreditOrders; 0 turns it off.
	CreditEvery time.Duration
	// ExpireEvery is the pause between runs of ExpireDue; 0 turns it off.
	ExpireEvery time.Duration
	Log         *slog.Logger
}

// DefaultJobs credits orders every two seconds, so that points show up while the shopper is
// still on the confirmation page, and expires lots every ten minutes: balances never count a
// lapsed lot anyway, so the job only writes the ledger entries down.
var DefaultJobs = Jobs{CreditEvery: 2 * time.Second, ExpireEvery: 10 * time.Minute}

// RunJobs runs CreditOrders and ExpireDue on their tickers until ctx ends. A failed run is
// logged and retried at the next tick.
func (s *Service) RunJobs(ctx context.Context, j Jobs) {
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
			return
		case <-credit.c:
			n, err := s.CreditOrders(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("loyalty: crediting orders", "error", err, "credited", n)
			} else if n > 0 {
				log.Debug("loyalty: credited order events", "events", n)
			}
		case <-expire.c:
			n, err := s.ExpireDue(ctx)
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
