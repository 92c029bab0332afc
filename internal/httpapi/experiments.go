package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
	"github.com/xsell/xsell/internal/validate"
)

// experimentRoutes registers the experiment API of SPEC §3: admins write, analysts read.
func (s *Server) experimentRoutes(v1 *gin.RouterGroup) {
	read := s.authenticate(RoleAdmin, RoleAnalyst)
	write := s.authenticate(RoleAdmin)
	v1.POST("/experiments", write, s.createExperiment)
	v1.GET("/experiments", read, s.listExperiments)
	key := s.experimentKey
	v1.GET("/experiments/:key", read, key, s.getExperiment)
	v1.PUT("/experiments/:key", write, key, s.updateExperiment)
	v1.DELETE("/experiments/:key", write, key, s.deleteExperiment)
	for _, a := range []experiments.Action{experiments.ActionStart, experiments.ActionPause, experiments.ActionResume, experiments.ActionStop} {
		v1.POST("/experiments/:key/"+string(a), write, key, s.transitionExperiment(a))
	}
	v1.POST("/experiments/:key/phases", write, key, s.newPhase)
	v1.GET("/experiments/:key/history", read, key, s.experimentHistory)
	v1.GET("/experiments/:key/bandit", read, key, s.banditUpdates)
	v1.POST("/experiments/:key/bandit/update", write, key, s.updateBandit)
}

// experimentKey answers 404 for a key in the path that no experiment can have — not text
// Postgres can compare (NUL, invalid UTF-8) or longer than a key — before a handler reads it.
func (s *Server) experimentKey(c *gin.Context) {
	key := c.Param("key")
	if _, _, ok := validate.TextProblem(key); !ok || len(key) > maxExperimentKey {
		s.renderError(c, apperr.New(apperr.NotFound, "no experiment %q", validate.PathName(key)))
	}
}

// maxExperimentKey is the length of the longest experiment key (SPEC §3).
const maxExperimentKey = 64

// refreshAssignments reloads this server's assignment cache after an experiment write, so that
// a client who starts an experiment and at once asks this server for a variant sees it; other
// servers hear of the change through NOTIFY.
func (s *Server) refreshAssignments(c *gin.Context) {
	if s.deps.Assignments == nil {
		return
	}
	if err := s.deps.Assignments.Load(c); err != nil {
		s.log.Warn("reloading the assignment cache after a write", "request_id", requestID(c), "error", err)
	}
}

func (s *Server) actor(c *gin.Context) experiments.Actor {
	k := s.caller(c)
	return experiments.Actor{Role: string(k.Role), Name: k.Name}
}

// renderExperiment answers with the experiment and its version as the ETag for If-Match.
func renderExperiment(c *gin.Context, status int, e *experiments.Experiment) {
	c.Header("ETag", strconv.Quote(strconv.Itoa(e.Version)))
	c.JSON(status, e)
}

func (s *Server) createExperiment(c *gin.Context) {
	var def experiments.Definition
	if err := decodeJSON(c, &def); err != nil {
		s.renderError(c, err)
		return
	}
	e, err := s.deps.Experiments.Create(c, s.actor(c), def)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	c.Header("Location", "/v1/experiments/"+e.Key)
	renderExperiment(c, http.StatusCreated, e)
}

func (s *Server) listExperiments(c *gin.Context) {
	f := experiments.ListFilter{Status: experiments.Status(c.Query("status")), After: c.Query("cursor")}
	var p apperr.Problems
	switch f.Status {
	case "", experiments.StatusDraft, experiments.StatusRunning, experiments.StatusPaused, experiments.StatusStopped:
	default:
		p.Add("status", "not_allowed", "must be one of draft, running, paused, stopped, got %q", f.Status)
	}
	validate.Text(&p, "cursor", f.After)
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			p.Add("limit", "out_of_range", "must be a whole number from 1 to 200, got %q", l)
		}
		f.Limit = n
	}
	if err := p.Err(); err != nil {
		s.renderError(c, err)
		return
	}
	list, next, err := s.deps.Experiments.List(c, f)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if list == nil {
		list = []*experiments.Experiment{}
	}
	c.JSON(http.StatusOK, gin.H{"experiments": list, "next_cursor": next})
}

func (s *Server) getExperiment(c *gin.Context) {
	e, err := s.deps.Experiments.Get(c, c.Param("key"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	v, err := s.viewOf(c, e)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(strconv.Itoa(e.Version)))
	c.JSON(http.StatusOK, v)
}

// ifMatch reads the version a write is based on from If-Match ("3", W/"3" or 3), or nil.
func ifMatch(c *gin.Context) (*int, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" {
		return nil, nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.Atoi(v)
	if err != nil {
		e := apperr.New(apperr.Invalid, "If-Match must hold the experiment's version, such as \"3\", got %s", h)
		e.Details = []apperr.Detail{{Field: "If-Match", Code: "invalid_format", Message: "must be a version number"}}
		return nil, e
	}
	return &n, nil
}

// updateBody is a definition plus, optionally, the version it was based on and the server's
// fields as read, so that what GET answered can be edited and PUT back.
type updateBody struct {
	experiments.Definition
	experiments.ReadOnly
	Version *int `json:"version,omitempty"`
}

func (s *Server) updateExperiment(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	var body updateBody
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	if version == nil {
		version = body.Version
	} else if body.Version != nil && *body.Version != *version {
		e := apperr.New(apperr.Invalid, "version: the body says %d but If-Match says %d", *body.Version, *version)
		e.Details = []apperr.Detail{{Field: "version", Code: "mismatch", Message: "must agree with If-Match"}}
		s.renderError(c, e)
		return
	}
	e, err := s.deps.Experiments.Update(c, s.actor(c), c.Param("key"), body.Definition, body.ReadOnly, version)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	renderExperiment(c, http.StatusOK, e)
}

func (s *Server) deleteExperiment(c *gin.Context) {
	version, err := ifMatch(c)
	if err == nil {
		err = s.deps.Experiments.Delete(c, s.actor(c), c.Param("key"), version)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	c.Status(http.StatusNoContent)
}

func (s *Server) transitionExperiment(a experiments.Action) gin.HandlerFunc {
	return func(c *gin.Context) {
		version, err := ifMatch(c)
		if err != nil {
			s.renderError(c, err)
			return
		}
		e, err := s.deps.Experiments.Transition(c, s.actor(c), c.Param("key"), a, version)
		if err != nil {
			s.renderError(c, err)
			return
		}
		s.refreshAssignments(c)
		renderExperiment(c, http.StatusOK, e)
	}
}

func (s *Server) newPhase(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	var change experiments.PhaseChange
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &change); err != nil {
			s.renderError(c, err)
			return
		}
	}
	e, err := s.deps.Experiments.NewPhase(c, s.actor(c), c.Param("key"), change, version)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	renderExperiment(c, http.StatusOK, e)
}

func (s *Server) experimentHistory(c *gin.Context) {
	h, err := s.deps.Experiments.History(c, c.Param("key"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"experiment": c.Param("key"), "history": h})
}

// banditUpdates lists a bandit's scheduled updates (every phase, oldest first) with the state
// in force: what moved its traffic, when and why.
func (s *Server) banditUpdates(c *gin.Context) {
	e, err := s.deps.Experiments.Get(c, c.Param("key"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	updates, err := s.deps.Experiments.BanditUpdates(c, e.Key)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"experiment": e.Key, "phase": e.Phase, "allocation": e.Allocation, "state": e.Bandit, "updates": updates})
}

// BanditUpdateRequest asks for a bandit's update now, off its schedule.
type BanditUpdateRequest struct {
	// At back-dates the update, for simulated or back-filled traffic: in the past, at most
	// MaxBackdate ago, after the current period's start. The update reads the data up to it.
	At *time.Time `json:"at"`
}

// updateBandit recomputes a running bandit's weights now (admin): as a scheduled update would,
// minimum data rule included, and stored and audited as the admin's.
func (s *Server) updateBandit(c *gin.Context) {
	var req BanditUpdateRequest
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			s.renderError(c, err)
			return
		}
	}
	if req.At != nil {
		var p apperr.Problems
		now := time.Now()
		switch {
		case req.At.After(now):
			p.Add("at", "in_the_future", "must be in the past")
		case now.Sub(*req.At) > MaxBackdate:
			p.Add("at", "out_of_range", "must be at most 90 days ago")
		}
		if err := p.Err(); err != nil {
			s.renderError(c, err)
			return
		}
	}
	up, err := s.deps.Bandits.UpdateNow(c, s.actor(c), c.Param("key"), req.At)
	if err == nil && up == nil {
		err = apperr.New(apperr.Conflict, "experiment %q changed while its update was computed; ask again", c.Param("key"))
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	c.JSON(http.StatusOK, gin.H{"experiment": c.Param("key"), "update": up})
}
