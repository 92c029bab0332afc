package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/migrations"
)

// healthz says the process is up; it touches nothing else.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	Status     string `json:"status"` // ready, or unavailable
	Database   string `json:"database"`
	Migrations string `json:"migrations"`
}

// readyz says whether the server can do its work: the database answers and has every
// migration this binary knows.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Database: "ok", Migrations: "ok"}
	if err := s.deps.DB.PingContext(ctx); err != nil {
		r.Status, r.Database, r.Migrations = "unavailable", "unreachable: "+err.Error(), "unknown"
	} else if pending, err := migrations.Pending(ctx, s.deps.DB.DB); err != nil {
		r.Status, r.Migrations = "unavailable", "unknown: "+err.Error()
	} else if pending {
		r.Status, r.Migrations = "unavailable", "pending: run `server migrate`"
	}
	status := http.StatusOK
	if r.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, r)
}
