package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/servertest"
)

func TestLoyaltyExpireCommand(t *testing.T) {
	url, db := testDatabase(t)
	// Points earned 400 days ago under the default 365-day expiry have lapsed; points earned
	// now have not.
	ctx := context.Background()
	past := loyalty.New(db, loyalty.Options{Clock: func() time.Time { return time.Now().Add(-400 * 24 * time.Hour) }})
	if _, err := past.Earn(ctx, "s-1", loyalty.EarnRequest{Points: 70, IdempotencyKey: "old", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := loyalty.New(db, loyalty.Options{}).Earn(ctx, "s-1", loyalty.EarnRequest{Points: 5, IdempotencyKey: "new", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		cmd := servertest.Command(t, []string{"DATABASE_URL=" + url}, "loyalty", "expire")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("server loyalty expire (run %d): %v\n%s", run+1, err, out)
		}
		// The first run writes off the one lapsed lot; the second finds nothing to do.
		want := []string{`"lots":1`, `"lots":0`}[run]
		if !strings.Contains(string(out), want) {
			t.Fatalf("run %d logged %s, want %s", run+1, out, want)
		}
	}
	var expired int64
	if err := db.Get(&expired, `SELECT COALESCE(sum(points), 0) FROM loyalty_entries WHERE kind = 'expire'`); err != nil || expired != -70 {
		t.Fatalf("expire entries sum to %d (%v), want -70", expired, err)
	}

	cmd := servertest.Command(t, []string{"DATABASE_URL=postgres://nowhere"}, "loyalty", "frobnicate")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `unknown command "loyalty frobnicate"`) {
		t.Fatalf("unknown loyalty command: %v %s", err, out)
	}
}
