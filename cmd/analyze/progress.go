package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows what a long command is doing and for how long, on one rewritten stderr line,
// only when stderr is a terminal: in a pipe or a log it would be noise.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	label string
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// isTerminal reports whether w is a terminal: a character device such as /dev/null is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress starts the progress line; stage and done are no-ops when stderr is not a terminal.
func startProgress(stderr io.Writer) *progress {
	p := &progress{start: time.Now(), stop: make(chan struct{})}
	if !isTerminal(stderr) {
		return p
	}
	p.w = stderr
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// draw rewrites the line with the stage and the elapsed time.
func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.label != "" {
		fmt.Fprintf(p.w, "\r\033[Kanalyze: %s… %.1fs", p.label, time.Since(p.start).Seconds())
	}
}

// stage names what is being done now.
func (p *progress) stage(label string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	p.label = label
	p.mu.Unlock()
}

// done stops and clears the line; it may be called more than once.
func (p *progress) done() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		if p.w != nil {
			fmt.Fprint(p.w, "\r\033[K")
		}
	})
}
