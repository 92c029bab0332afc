package pglisten_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
	"github.com/xsell/xsell/internal/pglisten"
)

func TestFollowerReloadsOnListenAndOnEachNotification(t *testing.T) {
	url := dbtest.URL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reloads := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The backstop is an hour away: within the test, only LISTEN and NOTIFY reload.
		_ = pglisten.Follower{URL: url, Channel: "pglisten_test", Every: time.Hour, What: "test",
			Reload: func(context.Context) error { reloads <- struct{}{}; return nil }}.Run(ctx)
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-reloads:
		case <-time.After(time.Minute):
			t.Fatalf("no reload %s", what)
		}
	}
	wait("once listening")
	for i := range 3 {
		if _, err := db.Exec(`SELECT pg_notify('pglisten_test', 'x')`); err != nil {
			t.Fatal(err)
		}
		wait("after notification " + string(rune('1'+i)))
	}
	cancel()
	wg.Wait() // Run returns once its listener has stopped
	select {
	case <-reloads:
		t.Error("a reload nobody asked for")
	default:
	}
}
