package simulation

import (
	"testing"

	"github.com/xsell/xsell/client"
)

func TestBanditScheduleInDays(t *testing.T) {
	x := &client.Experiment{Definition: client.Definition{Key: "b", Allocation: &client.Allocation{Type: "bandit", BurnIn: "36h", UpdateEvery: "6h"}}}
	s, ok, err := scheduleOf(x)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	// A burn-in of 36 hours ends with day 2; updates every 6 hours land daily.
	var due []int
	for day := 1; day <= 5; day++ {
		if s.due(day) {
			due = append(due, day)
		}
	}
	if len(due) != 4 || due[0] != 2 {
		t.Errorf("updates after days %v, want 2, 3, 4, 5", due)
	}
	x.Allocation = &client.Allocation{Type: "bandit", BurnIn: "0s", UpdateEvery: "2d"}
	if s, _, _ := scheduleOf(x); !s.due(1) || s.due(2) || !s.due(3) {
		t.Errorf("every 2 days from day 1: %+v", s)
	}
	x.Allocation = &client.Allocation{Type: "fixed"}
	if _, ok, err := scheduleOf(x); ok || err != nil {
		t.Errorf("a fixed experiment has a schedule: %v %v", ok, err)
	}
	x.Allocation = &client.Allocation{Type: "bandit", BurnIn: "soon", UpdateEvery: "1d"}
	if _, _, err := scheduleOf(x); err == nil {
		t.Error("a burn-in that is no duration was accepted")
	}
}
