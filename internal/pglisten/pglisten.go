// Package pglisten keeps an in-memory copy of database state current on every server: it
// reloads when a Postgres NOTIFY says the state changed, after the listening connection comes
// back (notifications may have been missed meanwhile), and periodically as a backstop.
package pglisten

import (
	"context"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// Follower reloads on notifications of one channel.
type Follower struct {
	// URL is the database to LISTEN on; Channel the notification channel.
	URL, Channel string
	// Every is the period of the backstop reload.
	Every time.Duration
	// Timeout bounds one reload.
	Timeout time.Duration
	// What names the copy in log lines, such as "complements cache".
	What string
	Log  *slog.Logger
	// Reload loads the state again. An error it returns is logged as a failed reload; a
	// Reload that logs its own failures (with figures of its own) returns nil. The copy is
	// the caller's to keep until the next reload.
	Reload func(context.Context) error
	// Next, when set, is asked after each reload when one more reload is due besides
	// notifications and the period (a bandit's catch-up); zero means none.
	Next func() time.Time
}

// Run reloads until ctx ends, then returns nil once everything it started has stopped.
func (f Follower) Run(ctx context.Context) error {
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	every, timeout := f.Every, f.Timeout
	if every <= 0 {
		every = 30 * time.Second
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	due := make(chan struct{}, 1)
	listener := pq.NewListener(f.URL, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Warn(f.What+": change listener", "event", int(ev), "error", err)
		}
		if ev == pq.ListenerEventReconnected {
			poke(due)
		}
	})
	// Listen waits for a connection; with the database down at start it would block the loop.
	// Closing the listener ends that wait and the listener's own goroutine, which closes
	// Notify last: Run returns only after both.
	listening := make(chan struct{})
	defer func() {
		listener.Close()
		<-listening
		for range listener.Notify {
		}
	}()
	go func() {
		defer close(listening)
		if err := listener.Listen(f.Channel); err != nil {
			if ctx.Err() == nil {
				log.Warn(f.What+": cannot LISTEN for changes; relying on periodic reloads", "error", err)
			}
			return
		}
		// Changes committed before LISTEN took effect sent no notification we could hear.
		poke(due)
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	next := time.NewTimer(time.Hour)
	next.Stop()
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-listener.Notify: // nil also means "reconnected": reload either way
			poke(due)
		case <-tick.C:
			poke(due)
		case <-next.C:
			poke(due)
		case <-due:
			rctx, cancel := context.WithTimeout(ctx, timeout)
			if err := f.Reload(rctx); err != nil && ctx.Err() == nil {
				log.Warn(f.What+": reload failed; still answering from the last copy", "error", err)
			}
			cancel()
			if f.Next != nil {
				if at := f.Next(); !at.IsZero() {
					next.Reset(time.Until(at))
				}
			}
		}
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
