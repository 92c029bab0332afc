package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/xsell/xsell/internal/simulation"
)

// isTerminal reports whether f is a terminal, where a progress bar may redraw its line.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Intervals of the progress display: a bar redraws often, a log line every few seconds.
const (
	barEvery  = 200 * time.Millisecond
	lineEvery = 5 * time.Second
	barWidth  = 28
)

// startProgress shows the run's progress on w until the returned function is called.
func startProgress(w io.Writer, terminal bool, p *simulation.Progress) func() {
	began := time.Now()
	every := lineEvery
	if terminal {
		every = barEvery
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if terminal {
					fmt.Fprintf(w, "\r%s\x1b[K\n", status(p, time.Since(began), true))
				}
				return
			case <-tick.C:
				if terminal {
					fmt.Fprintf(w, "\r%s\x1b[K", status(p, time.Since(began), true))
				} else {
					fmt.Fprintf(w, "simulate: %s\n", status(p, time.Since(began), false))
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// status is one line of progress: shoppers assigned of the total, rate, ETA and stage; once
// every shopper is in, how long the final wait has lasted.
func status(p *simulation.Progress, elapsed time.Duration, bar bool) string {
	total := p.Total.Load()
	n := p.Assigned.Load()
	stage, in := p.Stage()
	frac := 0.0
	if total > 0 {
		frac = float64(n) / float64(total)
	}
	var b strings.Builder
	if bar {
		full := int(frac * barWidth)
		b.WriteString("[" + strings.Repeat("=", full))
		if full < barWidth {
			b.WriteString(">" + strings.Repeat(" ", barWidth-full-1))
		}
		b.WriteString("] ")
	}
	fmt.Fprintf(&b, "%3.0f%% %s/%s shoppers, %s events", 100*frac, thousands(n), thousands(total), thousands(p.Events.Load()))
	if total > 0 && n < total {
		rate := float64(n) / max(elapsed.Seconds(), 1e-3)
		eta := "?"
		if rate > 0 {
			eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(&b, ", %s shoppers/s, ETA %s, %s", thousands(int64(rate)), eta, stage)
	} else {
		fmt.Fprintf(&b, ", %s (%s)", stage, in.Round(time.Second))
	}
	return b.String()
}
