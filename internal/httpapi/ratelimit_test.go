package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/httpapi"
)

func TestParseRateLimits(t *testing.T) {
	got, err := httpapi.ParseRateLimits(httpapi.DefaultRateLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := httpapi.RateLimits{httpapi.RoleCheckout: {0, 1}, httpapi.RoleAdmin: {50, 50}, httpapi.RoleAnalyst: {20, 20}}
	if len(got) != len(want) {
		t.Fatalf("%s parses to %v, want %v", httpapi.DefaultRateLimits, got, want)
	}
	for r, l := range want {
		if got[r] != l {
			t.Errorf("%s: %+v, want %+v", r, got[r], l)
		}
	}
	if got, err := httpapi.ParseRateLimits("admin=0.5:3"); err != nil || got[httpapi.RoleAdmin] != (httpapi.RateLimit{0.5, 3}) {
		t.Errorf("admin=0.5:3 parses to %v, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"root=5", `unknown role "root"`},
		{"admin", "want role=RATE"},
		{"admin=-1", "≥ 0"},
		{"admin=fast", "≥ 0"},
		{"admin=NaN", "≥ 0"},
		{"admin=5:0", "burst"},
		{"admin=5,admin=6", "a second limit"},
	} {
		if _, err := httpapi.ParseRateLimits(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("httpapi.ParseRateLimits(%q) = %v, want an error mentioning %q", tc.in, err, tc.want)
		}
	}
}

// TestRateLimitPerKey: an admin key past its burst gets 429 rate_limited with Retry-After; the
// other admin key has a budget of its own, and checkout, unlimited by default, is not slowed.
func TestRateLimitPerKey(t *testing.T) {
	const admin1, admin2, checkout = "admin-one-0123456789abcdef0123456789", "admin-two-0123456789abcdef0123456789", "checkout-0123456789abcdef0123456789"
	// One request per 1000 s after a burst of 2: no token comes back during the test.
	limits, err := httpapi.ParseRateLimits("admin=0.001:2," + "checkout=0")
	if err != nil {
		t.Fatal(err)
	}
	ts := apptest.New(t, apptest.Options{
		APIKeys:   "admin:" + admin1 + ",admin:" + admin2 + ",checkout:" + checkout,
		Configure: func(c *app.Config) { c.HTTP.RateLimits = limits },
	})
	s := ts.App.HTTP
	s.Engine().GET("/test/keyed", s.Authenticate(httpapi.RoleAdmin, httpapi.RoleCheckout), func(c *gin.Context) { c.String(200, "ok") })
	ts.Start(t)

	for i := range 2 {
		if a := do(t, "GET", ts.URL+"/test/keyed", admin1, "", ""); a.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i+1, a.status, a.raw)
		}
	}
	a := do(t, "GET", ts.URL+"/test/keyed", admin1, "", "")
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != http.StatusTooManyRequests || errorCode(a) != "rate_limited" || err != nil || retry < 900 || retry > 1000 {
		t.Fatalf("third request: %d %s Retry-After %q, want 429 rate_limited, retry in about 1000 s", a.status, a.raw, a.header.Get("Retry-After"))
	}
	if !strings.Contains(a.raw, "admin-1") || strings.Contains(a.raw, admin1) {
		t.Fatalf("the 429 should name the key, not show its secret: %s", a.raw)
	}
	if a := do(t, "GET", ts.URL+"/test/keyed", admin2, "", ""); a.status != 200 {
		t.Fatalf("the second admin key was limited by the first one's use: %d %s", a.status, a.raw)
	}
	for i := range 50 {
		if a := do(t, "GET", ts.URL+"/test/keyed", checkout, "", ""); a.status != 200 {
			t.Fatalf("checkout request %d: %d %s, want no limit", i+1, a.status, a.raw)
		}
	}
}
