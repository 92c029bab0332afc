package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xsell/xsell/internal/apperr"
)

// requestIDKey is the X-Request-ID header's name as net/http stores it, so that the hot path
// reads and writes header maps without canonicalising the name on every request.
const requestIDKey = "X-Request-Id"

// requestIDs makes ids unique across restarts (random prefix) and cheap per request (counter).
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b)}
}

func (r *requestIDs) next() string {
	return r.prefix + "-" + strconv.FormatUint(r.n.Add(1), 36)
}

// validRequestID accepts a caller's id only if it is short and printable, so that it can be
// logged and echoed without escaping surprises.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// withRequestID takes X-Request-ID from the request or makes one, and echoes it back.
func (s *Server) withRequestID(c *gin.Context) {
	var id string
	if v := c.Request.Header[requestIDKey]; len(v) > 0 {
		id = v[0]
	}
	if !validRequestID(id) {
		id = s.ids.next()
	}
	c.Writer.Header()[requestIDKey] = []string{id}
	c.Next()
}

// requestID is the id of the request, as withRequestID set it on the response.
func requestID(c *gin.Context) string {
	if v := c.Writer.Header()[requestIDKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Shared header values: net/http only reads them.
var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
)

// securityHeaders marks every answer as not to be sniffed into another content type, nor
// stored by a browser or proxy: answers carry account balances and keyed data, never anything
// worth caching.
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	c.Next()
}

// routeOf names a request by its route template, so that metrics do not explode per id.
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// observe logs each request as one JSON line and counts it in the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route, status := routeOf(c), c.Writer.Status()
	s.metrics.observe(c.Request.Method, route, status, elapsed)
	if !s.log.Enabled(c.Request.Context(), slog.LevelInfo) {
		return
	}
	sampled := s.logSample(route, status)
	if sampled == 0 {
		return
	}
	s.logRequest(c, route, status, elapsed, sampled)
}

// assignRoute is the hot route whose successful lines the access log samples.
const assignRoute = "/v1/assign"

// logSample says whether to log this request: 1 to log it as itself, N to log it standing
// for N like it, 0 to skip it. Successful assignments are sampled: checkout sends one per
// page view, and a line each cost a quarter of the server's throughput; everything else,
// and every failed assignment, is logged.
func (s *Server) logSample(route string, status int) int {
	n := s.cfg.AssignLogSample
	if n <= 1 || route != assignRoute || status >= 400 {
		return 1
	}
	// Every Nth rather than at random: exact counts, and a test can tell.
	if s.assignLines.Add(1)%uint64(n) != 0 {
		return 0
	}
	return n
}

// logRequest writes the access log line of one request.
func (s *Server) logRequest(c *gin.Context, route string, status int, elapsed time.Duration, sampled int) {
	attrs := []slog.Attr{
		slog.String("request_id", requestID(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", c.Writer.Size()),
		slog.String("client_ip", c.ClientIP()),
	}
	if k := s.caller(c); k.Name != "" {
		attrs = append(attrs, slog.String("key", k.Name), slog.String("role", string(k.Role)))
	}
	if sampled > 1 {
		attrs = append(attrs, slog.Int("sampled", sampled))
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", attrs...)
}

// recoverPanic turns a panic into a logged 500 in the JSON error shape.
func (s *Server) recoverPanic(c *gin.Context, recovered any) {
	s.log.Error("panic", "request_id", requestID(c), "route", routeOf(c), "panic", fmt.Sprint(recovered))
	s.renderError(c, &apperr.Error{Code: apperr.Internal, Message: "internal error; the server log has the details under this request id"})
}

// limitBody caps the request body; a larger one is refused with 413 before or while reading.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		s.renderError(c, apperr.New(apperr.PayloadTooLarge, "the body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
	c.Next()
}

// httpMetrics are the request counters and latencies served on /metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// series holds each (method, route, status)'s counter and histogram once looked up, since
	// finding them by label values on every request costs more than counting.
	series *sync.Map // seriesKey → *seriesMetrics
}

type seriesKey struct {
	method, route string
	status        int
}

type seriesMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// observe counts one request and its latency.
func (m httpMetrics) observe(method, route string, status int, elapsed time.Duration) {
	k := seriesKey{metricMethod(method), route, status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &seriesMetrics{
			requests: m.requests.WithLabelValues(k.method, route, strconv.Itoa(status)),
			latency:  m.latency.WithLabelValues(k.method, route),
		})
	}
	sm := v.(*seriesMetrics)
	sm.requests.Inc()
	sm.latency.Observe(elapsed.Seconds())
}

// metricMethod bounds the method label: a client may send any token as a method, and each
// would otherwise become a series of its own.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

func newHTTPMetrics(reg prometheus.Registerer) httpMetrics {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsell_http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xsell_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		series: &sync.Map{},
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}
