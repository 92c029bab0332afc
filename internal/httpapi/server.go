// Package httpapi is the HTTP face of xsell: Gin routes, handlers, authentication and the one
// mapping from error codes to HTTP status.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/bandit"
	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/events"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/exposures"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/offers"
)

// Config is what the HTTP layer needs from the environment.
type Config struct {
	APIKeys        []APIKey
	RateLimits     RateLimits // requests per second per key, by role; none by default
	MaxBodyBytes   int64      // larger bodies get 413
	TrustedProxies []string   // addresses whose X-Forwarded-For is believed; none by default
	MetricsKey     string     // when set, /metrics wants it as a Bearer token
	// RequestTimeout is the deadline of every request's context (0: none): the database work
	// of a request that reaches it stops, and the client gets 503 rather than a wait.
	RequestTimeout time.Duration
	// AssignLogSample logs 1 in this many successful POST /v1/assign lines; 0 or 1 logs all.
	AssignLogSample int
}

// Deps are the services the handlers call.
type Deps struct {
	DB       *sqlx.DB
	Log      *slog.Logger
	Registry *prometheus.Registry

	Experiments *experiments.Store
	Assignments *experiments.Cache  // compiled experiments that /v1/assign answers from
	Exposures   *exposures.Recorder // writes exposures off the request path
	Events      *events.Service     // ingests POST /v1/events
	Loyalty     *loyalty.Service    // program, accounts and the points ledger
	Offers      *offers.Store       // the global frequency cap and the holdout
	Budgets     *offers.Budgets     // what offer budgets spent, for an experiment's GET
	Bandits     *bandit.Updater     // recomputes bandits' weights, on schedule or when asked
	Console     http.Handler        // the web console, served under /console/ when set

	Complements       *complements.Cache     // the complements model, in memory
	ComplementsBuilds *complements.Refresher // builds it on request
}

// Server routes requests to handlers.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	engine  *gin.Engine
	ids     *requestIDs
	metrics httpMetrics
	// migrated remembers that /readyz found every migration applied.
	migrated atomic.Bool
	// assignLines counts successful assignments, for the access log's sampling.
	assignLines atomic.Uint64
}

// ConfigureLibraries sets the globals of the libraries the HTTP layer uses (Gin's release mode,
// JSON names in validation errors); the wiring calls it before New. Setting them again is a
// no-op.
func ConfigureLibraries() { configureOnce.Do(configure) }

var configureOnce sync.Once

func configure() {
	gin.SetMode(gin.ReleaseMode)
	useJSONNames()
}

// New builds the routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	cfg.APIKeys = withLimiters(cfg.APIKeys, cfg.RateLimits)
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, ids: newRequestIDs(), metrics: newHTTPMetrics(deps.Registry)}
	e := gin.New()
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	e.HandleMethodNotAllowed = true
	// Route on the path as sent, then decode each parameter: a shopper id holding "/" is
	// reachable as one percent-encoded segment (a%2Fb) instead of splitting the route.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.ContextWithFallback = true
	e.Use(s.withRequestID, s.securityHeaders, s.observe, gin.CustomRecoveryWithWriter(nil, s.recoverPanic), s.withDeadline, s.limitBody)
	e.NoRoute(func(c *gin.Context) {
		s.renderError(c, apperr.New(apperr.NotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		s.renderError(c, apperr.New(apperr.MethodNotAllowed, "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.engine = e
	s.routes()
	return s, nil
}

// withDeadline gives the request's context the RequestTimeout deadline, which the stores'
// statements honour: a frozen database then costs a client the deadline and a 503, never an
// open-ended wait.
//
// POST /v1/assign goes without: it is answered from memory (the cache, the caps counter, the
// recorder's queue) and waits on nothing a deadline could cut short, and a timer per request
// is a cost every assignment would pay for nothing.
func (s *Server) withDeadline(c *gin.Context) {
	if s.cfg.RequestTimeout <= 0 || c.FullPath() == assignRoute {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// Handler is the http.Handler that serves the API.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine exposes the Gin engine so that tests can add routes of their own.
func (s *Server) Engine() *gin.Engine { return s.engine }

func (s *Server) routes() {
	e := s.engine
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsAccess, gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.openapi)
	v1 := e.Group("/v1")
	s.experimentRoutes(v1)
	s.assignRoutes(v1)
	s.eventRoutes(v1)
	s.loyaltyRoutes(v1)
	s.offerRoutes(v1)
	s.complementsRoutes(v1)
	if s.deps.Console != nil {
		// The console renders its own pages and errors; it shares the request id, headers,
		// metrics and body limit of every route.
		e.Any("/console/*path", gin.WrapH(s.deps.Console))
	}
}
