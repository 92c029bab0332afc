package app_test

import (
	"time"

	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
)

// TestNothingOutlivesRun exercises every background component — an exposure queued, a batch
// of events committed, the cache listening, the loyalty jobs ticking — then stops the server:
// once Run has returned, no goroutine it started is left.
func TestNothingOutlivesRun(t *testing.T) {
	srv := apptest.New(t, apptest.Options{Configure: func(c *app.Config) {
		c.CreditEvery, c.ExpireEvery = time.Millisecond, time.Millisecond
	}})
	// Whatever ran before Run (the test database's pools, this test's own) is not Run's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv.Start(t)
	client := &http.Client{}
	post := func(path, key, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
		}
	}
	post("/v1/events", apptest.CheckoutKey, `{"events":[{"id":"e-1","type":"offer_viewed","shopper_id":"s-1"}]}`)
	post("/v1/loyalty/accounts/s-1/earn", apptest.AdminKey, `{"points": 5, "idempotency_key": "k", "reason": "r"}`)
	post("/v1/assign", apptest.CheckoutKey, `{"shopper_id": "s-1"}`)
	client.CloseIdleConnections()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
}
