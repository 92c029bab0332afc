package periodic

import (
	"context"
	"testing"
	"time"
)

// TestRunTicksUntilTheContextEnds: fn runs on each tick, and Run returns once ctx ends,
// without another call.
func TestRunTicksUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan int, 10)
	done := make(chan struct{})
	n := 0
	go func() {
		Run(ctx, time.Millisecond, func(context.Context) {
			n++
			calls <- n
			if n == 3 {
				cancel()
			}
		})
		close(done)
	}()
	for want := 1; want <= 3; want++ {
		if got := <-calls; got != want {
			t.Fatalf("call %d, want %d", got, want)
		}
	}
	<-done
	select {
	case got := <-calls:
		t.Fatalf("fn ran again (call %d) after the context ended", got)
	default:
	}
}
