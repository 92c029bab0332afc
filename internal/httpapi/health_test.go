package httpapi_test

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
)

// TestEveryAnswerIsNotSniffedNorStored: success, error, unknown route and keyed answers alike
// carry nosniff and no-store.
func TestEveryAnswerIsNotSniffedNorStored(t *testing.T) {
	_, ts := newTestServer(t)
	for _, r := range []struct{ method, path, key string }{
		{"GET", "/healthz", ""},
		{"GET", "/readyz", ""},
		{"GET", "/metrics", ""},
		{"GET", "/v1/nowhere", ""},
		{"GET", "/v1/experiments", ""},
		{"GET", "/v1/experiments", "n-secret-0123456789abcdef0123456789"},
		{"GET", "/v1/loyalty/accounts/s-1", "n-secret-0123456789abcdef0123456789"},
	} {
		a := do(t, r.method, ts.URL+r.path, r.key, "", "")
		if a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q, Cache-Control %q; want nosniff, no-store",
				r.method, r.path, a.status, a.header.Get("X-Content-Type-Options"), a.header.Get("Cache-Control"))
		}
	}
}

// TestReadyzHidesTheDatabaseError: with the database unreachable, /readyz says "unreachable"
// and nothing of the driver's error (which names hosts and users); the log has the detail.
func TestReadyzHidesTheDatabaseError(t *testing.T) {
	logged := &lockedBuffer{}
	srv := apptest.Start(t, apptest.Options{Proxy: true, Configure: func(c *app.Config) {
		c.Log = slog.New(slog.NewJSONHandler(logged, nil))
	}})
	srv.Proxy.Stop()
	proxy := srv.Proxy.Addr()
	a := do(t, "GET", srv.URL+"/readyz", "", "", "")
	if a.status != 503 || !strings.Contains(a.raw, `"database":"unreachable"`) {
		t.Fatalf("readyz = %d %s, want 503 with database unreachable", a.status, a.raw)
	}
	for _, leak := range []string{proxy, "127.0.0.1", "dial", "connect", "pgtdb", "testdb"} {
		if strings.Contains(a.raw, leak) {
			t.Errorf("readyz shows %q of the database error: %s", leak, a.raw)
		}
	}
	// The error is the dial's (naming the address) or, on a pooled connection the outage cut,
	// the driver's "bad connection".
	if !regexp.MustCompile(`"msg":"readyz: the database is unreachable","error":"[^"]+"`).MatchString(logged.String()) {
		t.Errorf("the log lacks the database error: %s", logged.String())
	}
}

// lockedBuffer is a log sink the server's goroutines may write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMetricsKey: with XSELL_METRICS_KEY set, /metrics answers only that key; API keys, even
// the admin's, do not open it.
func TestMetricsKey(t *testing.T) {
	const metricsKey = "metrics-0123456789abcdef0123456789"
	srv := apptest.Start(t, apptest.Options{Configure: func(c *app.Config) { c.HTTP.MetricsKey = metricsKey }})
	for _, key := range []string{"", "wrong", adminKey, metricsKey + "x"} {
		if a := do(t, "GET", srv.URL+"/metrics", key, "", ""); a.status != 401 || errorCode(a) != "unauthorized" {
			t.Errorf("/metrics with key %q: %d %s, want 401 unauthorized", key, a.status, a.raw)
		}
	}
	a := do(t, "GET", srv.URL+"/metrics", metricsKey, "", "")
	if a.status != 200 || !strings.Contains(a.raw, "xsell_http_requests_total") {
		t.Fatalf("/metrics with the metrics key: %d %.200s", a.status, a.raw)
	}
}
