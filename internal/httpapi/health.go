package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/migrations"
)

// healthz says the process is up; it touches nothing else.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	// Status is ready; degraded when the database is down but assignment answers from its
	// cache; or unavailable.
	Status     string `json:"status"`
	Database   string `json:"database"`
	Migrations string `json:"migrations"`
	Assignment string `json:"assignment,omitempty"`
	// Exposures says how recording goes; "shedding: ..." while exposures are being dropped
	// (counted in exposure_losses). Shedding leaves the status ready: taking an instance out
	// of rotation for it would only move its load onto the others.
	Exposures string `json:"exposures,omitempty"`
}

// readyz says whether the server can do its work: the database answers and has every
// migration this binary knows.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Database: "ok", Migrations: "ok"}
	// The answer says what is wrong in words anyone may read; the error, which may name hosts,
	// users and databases, goes to the log.
	if err := s.deps.DB.PingContext(ctx); err != nil {
		r.Status, r.Database, r.Migrations = "unavailable", "unreachable", "unknown"
		s.log.Warn("readyz: the database is unreachable", "error", err.Error())
	} else if !s.migrated.Load() {
		// Checked until it holds, then remembered: migrations are never undone under a running
		// server, and readiness probes come every few seconds.
		if pending, err := migrations.Pending(ctx, s.deps.DB.DB); err != nil {
			r.Status, r.Migrations = "unavailable", "unknown"
			s.log.Warn("readyz: checking migrations failed", "error", err.Error())
		} else if pending {
			r.Status, r.Migrations = "unavailable", "pending: run `server migrate`"
		} else {
			s.migrated.Store(true)
		}
	}
	if a := s.deps.Assignments; a != nil {
		checked := a.Checked()
		r.Assignment = fmt.Sprintf("%d experiments cached, checked %s ago", a.Snapshot().Len(), time.Since(checked).Round(time.Millisecond))
		if r.Status == "unavailable" && !checked.IsZero() {
			// Checkout still gets answers; writes (events, loyalty) do not work.
			r.Status = "degraded"
		}
	}
	if e := s.deps.Exposures; e != nil {
		r.Exposures, _ = e.Status()
	}
	status := http.StatusOK
	if r.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, r)
}

// metricsAccess lets /metrics through to anyone when no metrics key is configured, else only to
// "Authorization: Bearer KEY", compared in constant time.
func (s *Server) metricsAccess(c *gin.Context) {
	if s.cfg.MetricsKey == "" {
		c.Next()
		return
	}
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	want := sha256.Sum256([]byte(s.cfg.MetricsKey))
	h := sha256.Sum256([]byte(got))
	if !ok || subtle.ConstantTimeCompare(h[:], want[:]) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="xsell-metrics"`)
		s.renderError(c, apperr.New(apperr.Unauthorized, "/metrics wants the metrics key (XSELL_METRICS_KEY): Authorization: Bearer KEY"))
		return
	}
	c.Next()
}
