package main

import "testing"

// TestGCPercentForReachesTheFloor checks the GOGC chosen for a live heap against what the
// runtime makes of it, the heap goal live × (1 + GOGC/100): at the floor or above, by the
// least GOGC that gets there, never under the base, and the base once the live heap alone
// reaches the floor at it.
func TestGCPercentForReachesTheFloor(t *testing.T) {
	const mb = 1 << 20
	goal := func(live uint64, p int) uint64 { return live + live*uint64(p)/100 }
	floor := uint64(384 * mb)
	for _, live := range []uint64{1, 1000, 3 * mb, 21 * mb, 22*mb + 12345, 76 * mb, 77 * mb, 100 * mb, 383 * mb, 384 * mb, 2048 * mb} {
		p := gcPercentFor(live, floor, 400)
		if p < 400 {
			t.Errorf("live %d: GOGC %d under the base 400", live, p)
		}
		if p == maxGCPercent {
			continue // a live heap of a few kilobytes, before anything is loaded
		}
		if goal(live, p) < floor && goal(live, 400) < floor {
			t.Errorf("live %d: GOGC %d puts the goal at %d, under the floor %d", live, p, goal(live, p), floor)
		}
		if p > 400 && goal(live, p-1) >= floor {
			t.Errorf("live %d: GOGC %d, yet %d already reaches the floor", live, p, p-1)
		}
	}
	// 5× a live heap of 77 MB is over 384 MB: the floor no longer changes anything.
	if p := gcPercentFor(77*mb, floor, 400); p != 400 {
		t.Errorf("live 77 MB: GOGC %d, want the base 400", p)
	}
	if p := gcPercentFor(21*mb, 0, 400); p != 400 {
		t.Errorf("no floor: GOGC %d, want the base 400", p)
	}
	if p := gcPercentFor(0, floor, 400); p != 400 {
		t.Errorf("no cycle yet (live heap 0): GOGC %d, want the base 400", p)
	}
}
