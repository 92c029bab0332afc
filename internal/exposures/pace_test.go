package exposures

import (
	"testing"
	"time"
)

// TestTheMergeYieldsToABurstForAMinuteOnly: while requests are being staged the merge rests
// three times as long as it worked (a quarter of the time); with the stager idle, or a backlog
// older than a minute (new shoppers steadily outpacing a paced merge), it does not rest, so
// that the backlog in exposure_log stays bounded.
func TestTheMergeYieldsToABurstForAMinuteOnly(t *testing.T) {
	r := New(nil, Config{}, nil, nil)
	worked := 100 * time.Millisecond

	r.lastStaged.Store(time.Now().UnixNano())
	if got := r.mergePause(worked, 10*time.Second); got != 300*time.Millisecond {
		t.Errorf("staging busy, backlog of 10 s: rest %v, want 300ms", got)
	}
	if got := r.mergePause(worked, 61*time.Second); got != 0 {
		t.Errorf("staging busy, backlog of 61 s: rest %v, want none", got)
	}
	r.lastStaged.Store(time.Now().Add(-2 * time.Second).UnixNano())
	if got := r.mergePause(worked, 10*time.Second); got != 0 {
		t.Errorf("stager idle for 2 s: rest %v, want none", got)
	}

	full := New(nil, Config{MergeShare: 1}, nil, nil)
	full.lastStaged.Store(time.Now().UnixNano())
	if got := full.mergePause(worked, time.Second); got != 0 {
		t.Errorf("merge share 1: rest %v, want none", got)
	}
}
