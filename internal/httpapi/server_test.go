package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/app"
	"github.com/xsell/xsell/internal/apptest"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/openapitest"
)

// newTestServer serves the API over a fresh database, with bodies limited to 1 KiB; routes
// the test adds to the Server's engine are served too.
func newTestServer(t *testing.T) (*httpapi.Server, *apptest.Server) {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{Configure: func(c *app.Config) { c.HTTP.MaxBodyBytes = 1 << 10 }})
	return srv.App.HTTP, srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, key, contentType, body string) answer {
	t.Helper()
	headers := map[string]string{}
	if key != "" {
		headers["Authorization"] = "Bearer " + key
	}
	if contentType != "" {
		headers["Content-Type"] = contentType
	}
	return send(t, method, url, body, headers)
}

// send makes one request and reads the whole answer.
func send(t *testing.T, method, url, body string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := openapitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func errorCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestReadyz(t *testing.T) {
	_, ts := newTestServer(t)
	a := do(t, "GET", ts.URL+"/readyz", "", "", "")
	if a.status != 200 || a.body["status"] != "ready" {
		t.Fatalf("readyz = %d %s, want 200 ready", a.status, a.raw)
	}
	if a := do(t, "GET", ts.URL+"/healthz", "", "", ""); a.status != 200 {
		t.Fatalf("healthz = %d", a.status)
	}
}

func TestReadyzWithoutDatabase(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Proxy: true})
	srv.Proxy.Stop() // as if the database went down
	a := do(t, "GET", srv.URL+"/readyz", "", "", "")
	if a.status != http.StatusServiceUnavailable || a.body["status"] != "degraded" {
		t.Fatalf("readyz with the database down = %d %s, want 503 degraded (assignment answers from its cache)", a.status, a.raw)
	}
}

func TestAuthTable(t *testing.T) {
	s, ts := newTestServer(t)
	s.Engine().POST("/test/admin-only", s.Authenticate(httpapi.RoleAdmin), func(c *gin.Context) {
		c.JSON(200, gin.H{"key": s.CallerName(c)})
	})
	cases := []struct {
		name, key string
		status    int
		code      string
	}{
		{"no key", "", 401, "unauthorized"},
		{"unknown key", "nope", 401, "unauthorized"},
		{"wrong role checkout", "c-secret-0123456789abcdef0123456789", 403, "forbidden"},
		{"wrong role analyst", "n-secret-0123456789abcdef0123456789", 403, "forbidden"},
		{"right role", "a-secret-0123456789abcdef0123456789", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", ts.URL+"/test/admin-only", tc.key, "application/json", "{}")
			if a.status != tc.status || errorCode(a) != tc.code {
				t.Fatalf("got %d %s, want %d %q", a.status, a.raw, tc.status, tc.code)
			}
			if strings.Contains(a.raw, "secret") {
				t.Fatalf("the answer leaks a secret: %s", a.raw)
			}
		})
	}
	if a := do(t, "POST", ts.URL+"/test/admin-only", "a-secret-0123456789abcdef0123456789", "application/json", "{}"); a.body["key"] != "admin-1" {
		t.Fatalf("key name = %v, want admin-1", a.body["key"])
	}
}

type echoBody struct {
	Name  string `json:"name" binding:"required"`
	Count int    `json:"count" binding:"gte=0"`
	Inner struct {
		Tag string `json:"tag"`
	} `json:"inner"`
}

func TestRequestErrors(t *testing.T) {
	s, ts := newTestServer(t)
	s.Engine().POST("/test/echo", func(c *gin.Context) {
		var b echoBody
		if err := httpapi.DecodeJSON(c, &b); err != nil {
			s.RenderError(c, err)
			return
		}
		c.JSON(200, b)
	})
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code, mention                   string
	}{
		{"malformed says where", "POST", "/test/echo", "application/json", "{\n  \"name\": \"x\",\n  oops}", 400, "malformed_json", "line 3, column 3"},
		{"truncated", "POST", "/test/echo", "application/json", `{"name": "x"`, 400, "malformed_json", "unexpected end"},
		{"empty body", "POST", "/test/echo", "application/json", ``, 400, "malformed_json", "empty"},
		{"wrong type names the field", "POST", "/test/echo", "application/json", `{"name": "x", "count": "two"}`, 400, "invalid_request", "count"},
		{"unknown nested field has its path", "POST", "/test/echo", "application/json", `{"name": "x", "inner": {"tga": "y"}}`, 400, "invalid_request", "inner.tga"},
		{"binding rule", "POST", "/test/echo", "application/json", `{"count": -1}`, 400, "invalid_request", "name"},
		{"oversize", "POST", "/test/echo", "application/json", `{"name": "` + strings.Repeat("x", 2000) + `"}`, 413, "payload_too_large", "1024"},
		{"media type", "POST", "/test/echo", "text/plain", `{"name": "x"}`, 415, "unsupported_media_type", "application/json"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, "not_found", "/v1/nothing"},
		{"wrong method", "DELETE", "/readyz", "", "", 405, "method_not_allowed", "DELETE"},
		{"ok", "POST", "/test/echo", "application/json; charset=utf-8", `{"name": "x", "count": 2}`, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, tc.method, ts.URL+tc.path, "", tc.ctype, tc.body)
			if a.status != tc.status || errorCode(a) != tc.code || !strings.Contains(a.raw, tc.mention) {
				t.Fatalf("got %d %s, want %d %q mentioning %q", a.status, a.raw, tc.status, tc.code, tc.mention)
			}
			if a.header.Get("X-Request-ID") == "" {
				t.Fatal("no X-Request-ID in the answer")
			}
		})
	}
}

// TestAFailureAfterTheDeadlineIsAnOutage: whatever error a request meets once its deadline has
// passed, the client is told 503 with Retry-After, never 500.
func TestAFailureAfterTheDeadlineIsAnOutage(t *testing.T) {
	s, ts := newTestServer(t)
	s.Engine().GET("/test/late", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		c.Request = c.Request.WithContext(ctx)
		s.RenderError(c, errors.New("pq: an error no classifier knows"))
	})
	s.Engine().GET("/test/bug", func(c *gin.Context) { s.RenderError(c, errors.New("a bug")) })
	if a := do(t, "GET", ts.URL+"/test/late", "", "", ""); a.status != 503 || errorCode(a) != "unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("late failure: %d %s (Retry-After %q), want 503 unavailable with Retry-After", a.status, a.raw, a.header.Get("Retry-After"))
	}
	if a := do(t, "GET", ts.URL+"/test/bug", "", "", ""); a.status != 500 || errorCode(a) != "internal" {
		t.Fatalf("a bug in time: %d %s, want 500 internal", a.status, a.raw)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	_, ts := newTestServer(t)
	req, _ := http.NewRequest("GET", ts.URL+"/healthz", nil)
	req.Header.Set("X-Request-ID", "trace-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != "trace-42" {
		t.Fatalf("X-Request-ID = %q, want trace-42", got)
	}
}

func TestPanicAnswersInErrorShape(t *testing.T) {
	s, ts := newTestServer(t)
	s.Engine().GET("/test/panic", func(c *gin.Context) { panic("boom") })
	a := do(t, "GET", ts.URL+"/test/panic", "", "", "")
	if a.status != 500 || errorCode(a) != "internal" || strings.Contains(a.raw, "boom") {
		t.Fatalf("panic answered %d %s", a.status, a.raw)
	}
}

func TestMetricsCountRoutes(t *testing.T) {
	_, ts := newTestServer(t)
	do(t, "GET", ts.URL+"/healthz", "", "", "")
	do(t, "GET", ts.URL+"/healthz", "", "", "")
	// Methods outside HTTP's usual ones share one label value, so clients cannot mint series.
	do(t, "BREW", ts.URL+"/healthz", "", "", "")
	do(t, "XYZZY", ts.URL+"/nowhere", "", "", "")
	a := do(t, "GET", ts.URL+"/metrics", "", "", "")
	for _, want := range []string{
		`xsell_http_requests_total{method="GET",route="/healthz",status="200"} 2`,
		`xsell_http_request_duration_seconds_bucket{method="GET",route="/healthz"`,
		`xsell_http_requests_total{method="other",route="unmatched",status="405"} 1`,
		`xsell_http_requests_total{method="other",route="unmatched",status="404"} 1`,
	} {
		if !strings.Contains(a.raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// doWith is do with a JSON body and extra headers.
func doWith(t *testing.T, method, url, key, body string, headers map[string]string) answer {
	t.Helper()
	all := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	for k, v := range headers {
		all[k] = v
	}
	return send(t, method, url, body, all)
}
