package httpapi_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xsell/xsell/internal/httpapi"
)

// TestTheAccessLogSamplesSuccessfulAssignments: with a sample of 10, 1 in 10 successful
// assignments is logged, saying what it stands for; every failed one, and every other route,
// is logged each time.
func TestTheAccessLogSamplesSuccessfulAssignments(t *testing.T) {
	var log bytes.Buffer
	s := cachedAPI(t, httpapi.Config{AssignLogSample: 10}, httpapi.Deps{Log: slog.New(slog.NewJSONHandler(&log, nil))})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for i := range 100 {
		if a := do(t, "POST", ts.URL+"/v1/assign", checkoutKey, "application/json", fmt.Sprintf(`{"shopper_id": "s-%d"}`, i)); a.status != 200 {
			t.Fatalf("assign: %d %s", a.status, a.raw)
		}
	}
	for range 3 {
		if a := do(t, "POST", ts.URL+"/v1/assign", checkoutKey, "application/json", `{}`); a.status != 400 {
			t.Fatalf("assign without a shopper: %d", a.status)
		}
		do(t, "GET", ts.URL+"/healthz", "", "", "")
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	var ok, bad, health int
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"route":"/v1/assign"`) && strings.Contains(l, `"status":200`):
			if !strings.Contains(l, `"sampled":10`) {
				t.Errorf("a sampled line does not say it stands for 10: %s", l)
			}
			ok++
		case strings.Contains(l, `"route":"/v1/assign"`) && strings.Contains(l, `"status":400`):
			if strings.Contains(l, `"sampled"`) {
				t.Errorf("a failed assignment logged as a sample: %s", l)
			}
			bad++
		case strings.Contains(l, `"route":"/healthz"`):
			health++
		}
	}
	if ok != 10 || bad != 3 || health != 3 {
		t.Fatalf("logged %d successful assignments of 100 (want 10), %d failed of 3, %d /healthz of 3:\n%s", ok, bad, health, log.String())
	}
}
