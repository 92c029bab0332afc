package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/experiments"
)

// offerRoutes registers the program's offer settings (SPEC §2a, §2b): the global cap and the
// holdout are the admin's, readable by the analyst; both are audited.
func (s *Server) offerRoutes(v1 *gin.RouterGroup) {
	// Authentication first: a server without the offers still answers 401/403 as documented.
	read := []gin.HandlerFunc{s.authenticate(RoleAdmin, RoleAnalyst), s.offersWired}
	write := []gin.HandlerFunc{s.authenticate(RoleAdmin), s.offersWired}
	v1.GET("/offers/settings", append(read, s.getOfferSettings)...)
	v1.PUT("/offers/settings", append(write, s.putOfferSettings)...)
	v1.GET("/offers/history", append(read, s.offerHistory)...)
	v1.GET("/holdout", append(read, s.getHoldout)...)
	v1.PUT("/holdout", append(write, s.putHoldout)...)
}

// offersWired refuses the routes on a server built without the offers (tests of other areas).
func (s *Server) offersWired(c *gin.Context) {
	if s.deps.Offers == nil {
		s.renderError(c, apperr.New(apperr.Internal, "the offer settings are not wired"))
	}
}

// offerSettingsBody is the body of PUT /v1/offers/settings. What GET answered may be sent back:
// version, when given, must be the one stored (else 409); updated_at is ignored.
type offerSettingsBody struct {
	GlobalCap *experiments.FrequencyCap `json:"global_cap"`
	Version   *int                      `json:"version"`
	UpdatedAt *time.Time                `json:"updated_at"`
}

// holdoutBody is the body of PUT /v1/holdout; generation, version and updated_at as GET
// answered them may be sent back (version is checked, the others ignored).
type holdoutBody struct {
	Percent    *float64   `json:"percent" binding:"required"`
	Seed       string     `json:"seed"`
	Generation *int       `json:"generation"`
	Version    *int       `json:"version"`
	UpdatedAt  *time.Time `json:"updated_at"`
}

func (s *Server) getOfferSettings(c *gin.Context) {
	st, err := s.deps.Offers.Settings(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) putOfferSettings(c *gin.Context) {
	var body offerSettingsBody
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	st, err := s.deps.Offers.SetSettings(c, s.actor(c), body.Version, body.GlobalCap)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	c.JSON(http.StatusOK, st)
}

func (s *Server) getHoldout(c *gin.Context) {
	h, err := s.deps.Offers.Holdout(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

func (s *Server) putHoldout(c *gin.Context) {
	var body holdoutBody
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	h, err := s.deps.Offers.SetHoldout(c, s.actor(c), body.Version, *body.Percent, body.Seed)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.refreshAssignments(c)
	c.JSON(http.StatusOK, h)
}

func (s *Server) offerHistory(c *gin.Context) {
	h, err := s.deps.Offers.History(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"history": h})
}

// experimentView is an experiment as GET answers it: the definition and state, and what its
// budgets have spent and have left.
type experimentView struct {
	*experiments.Experiment
	BudgetStatus []experiments.BudgetStatus `json:"budget_status,omitempty"`
}

// viewOf adds the budgets' state to an experiment, when the offers are wired.
func (s *Server) viewOf(c *gin.Context, e *experiments.Experiment) (experimentView, error) {
	v := experimentView{Experiment: e}
	if s.deps.Budgets == nil {
		return v, nil
	}
	var err error
	v.BudgetStatus, err = s.deps.Budgets.Status(c, e)
	return v, err
}
