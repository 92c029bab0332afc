package httpapi

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/dbtest"
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
	db, err := sqlx.Open("postgres", "postgres://secret_user@127.0.0.1:1/secret_db?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logged bytes.Buffer // readyz runs on this goroutine, through ServeHTTP
	s, err := New(Config{}, Deps{DB: db, Log: slog.New(slog.NewJSONHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body := rec.Body.String()
	if rec.Code != 503 || !strings.Contains(body, `"database":"unreachable"`) {
		t.Fatalf("readyz = %d %s, want 503 with database unreachable", rec.Code, body)
	}
	for _, leak := range []string{"127.0.0.1", "dial", "connect", "secret_"} {
		if strings.Contains(body, leak) {
			t.Errorf("readyz shows %q of the database error: %s", leak, body)
		}
	}
	if !strings.Contains(logged.String(), "127.0.0.1:1") {
		t.Errorf("the log lacks the database error: %s", logged.String())
	}
}

// TestMetricsKey: with XSELL_METRICS_KEY set, /metrics answers only that key; API keys, even
// the admin's, do not open it.
func TestMetricsKey(t *testing.T) {
	const metricsKey = "metrics-0123456789abcdef0123456789"
	keys, err := ParseAPIKeys("admin:a-secret-0123456789abcdef0123456789")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{APIKeys: keys, MetricsKey: metricsKey}, Deps{DB: dbtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, key := range []string{"", "wrong", "a-secret-0123456789abcdef0123456789", metricsKey + "x"} {
		if a := do(t, "GET", ts.URL+"/metrics", key, "", ""); a.status != 401 || errorCode(a) != "unauthorized" {
			t.Errorf("/metrics with key %q: %d %s, want 401 unauthorized", key, a.status, a.raw)
		}
	}
	a := do(t, "GET", ts.URL+"/metrics", metricsKey, "", "")
	if a.status != 200 || !strings.Contains(a.raw, "xsell_http_requests_total") {
		t.Fatalf("/metrics with the metrics key: %d %.200s", a.status, a.raw)
	}
}
