package simulation

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xsell/xsell/client"
)

// A bandit experiment's weights move while it runs. Shoppers arrive over simulated days that
// end now, so the server's own schedule (real time) would never fire within them: after each
// simulated day the run asks for the updates the schedule would have made by the end of that
// day, back-dated to it (POST /v1/experiments/{key}/bandit/update with "at"), so that the next
// day's shoppers are bucketed with the new weights and the report's periods fall where the
// updates did. Updates land on day boundaries: update_every is rounded up to whole days.

// BanditStep is one update the run asked for: the simulated time it took effect at, the
// weights after it, and why they were held, if they were.
type BanditStep struct {
	Day     int // the simulated day after which it ran, from 1
	At      time.Time
	Period  *int
	Weights map[string]float64
	Note    string
}

// banditSchedule is when a bandit's updates fall in a run: after the burn-in, every
// update_every rounded up to whole days.
type banditSchedule struct {
	firstDay, everyDays int
}

// scheduleOf reads a bandit's schedule; false for an experiment with fixed weights.
func scheduleOf(x *client.Experiment) (banditSchedule, bool, error) {
	a := x.Allocation
	if a == nil || a.Type != "bandit" {
		return banditSchedule{}, false, nil
	}
	burnIn, err := days(a.BurnIn)
	if err != nil {
		return banditSchedule{}, false, fmt.Errorf("experiment %s: burn_in: %w", x.Key, err)
	}
	every, err := days(a.UpdateEvery)
	if err != nil {
		return banditSchedule{}, false, fmt.Errorf("experiment %s: update_every: %w", x.Key, err)
	}
	return banditSchedule{firstDay: max(burnIn, 1), everyDays: max(every, 1)}, true, nil
}

// days is a duration ("36h", "2d") in whole days, rounded up.
func days(s string) (int, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		return strconv.Atoi(d)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return int((d + 24*time.Hour - 1) / (24 * time.Hour)), nil
}

// due reports whether an update falls at the end of day (counted from 1).
func (s banditSchedule) due(day int) bool {
	return day >= s.firstDay && (day-s.firstDay)%s.everyDays == 0
}

// updateBandit asks for the update at the end of a simulated day.
func updateBandit(ctx context.Context, c *api, key string, day int, at time.Time) (BanditStep, error) {
	u, err := c.admin.UpdateBandit(ctx, key, at)
	if err != nil {
		return BanditStep{}, fmt.Errorf("updating the bandit after day %d: %w", day, err)
	}
	return BanditStep{Day: day, At: u.At, Period: u.Period, Weights: u.Weights, Note: u.Note}, nil
}
