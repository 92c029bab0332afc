package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/complements"
	"github.com/xsell/xsell/internal/validate"
)

// complementsRoutes registers the complements of one product, for product pages (checkout),
// and the model's settings and builds, for admins (analysts read them).
func (s *Server) complementsRoutes(v1 *gin.RouterGroup) {
	v1.GET("/complements/:sku", s.authenticate(RoleCheckout, RoleAnalyst, RoleAdmin), s.complementsWired, s.getComplements)
	v1.GET("/models/complements", s.authenticate(RoleAdmin, RoleAnalyst), s.complementsWired, s.getComplementsModel)
	v1.PUT("/models/complements/settings", s.authenticate(RoleAdmin), s.complementsWired, s.putComplementsSettings)
	v1.POST("/models/complements/builds", s.authenticate(RoleAdmin), s.complementsWired, s.postComplementsBuild)
}

// complementsWired refuses complements requests on a server built without the model (tests
// of other areas), rather than failing on a nil pointer.
func (s *Server) complementsWired(c *gin.Context) {
	if s.deps.Complements == nil || s.deps.ComplementsBuilds == nil {
		s.renderError(c, apperr.New(apperr.Internal, "the complements model is not wired"))
	}
}

// complementsAnswer is the body of GET /v1/complements/{sku}.
type complementsAnswer struct {
	SKU         string                   `json:"sku"`
	Complements []complements.Complement `json:"complements"`
	// Model says which snapshot answered; null before the first build.
	Model *modelRef `json:"model"`
}

// modelRef identifies the snapshot an answer comes from.
type modelRef struct {
	Version int64     `json:"version"`
	BuiltAt time.Time `json:"built_at"`
	Orders  int64     `json:"orders"`
}

// getComplements answers from memory: a product the model does not know has no complements,
// which is an answer (200 and an empty list), not an error.
func (s *Server) getComplements(c *gin.Context) {
	sku := c.Param("sku")
	var p apperr.Problems
	validate.SKU(&p, "sku", sku)
	limit, minLift := complements.MaxComplementsCap, 0.0
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > complements.MaxComplementsCap {
			p.Add("limit", "out_of_range", "must be a whole number from 1 to %d, not %q", complements.MaxComplementsCap, v)
		}
		limit = n
	}
	if v, ok := c.GetQuery("min_lift"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0) || math.IsInf(f, 0) {
			p.Add("min_lift", "out_of_range", "must be a number ≥ 0, not %q", v)
		}
		minLift = f
	}
	if err := p.Err(); err != nil {
		s.renderError(c, err)
		return
	}
	m := s.deps.Complements.Model()
	out := complementsAnswer{SKU: sku, Complements: []complements.Complement{}}
	if m.Built() {
		out.Model = &modelRef{Version: m.Version, BuiltAt: m.BuiltAt, Orders: m.Orders}
	}
	for _, cm := range m.Of(sku) {
		if len(out.Complements) == limit {
			break
		}
		if cm.Lift >= minLift {
			out.Complements = append(out.Complements, cm)
		}
	}
	c.JSON(http.StatusOK, out)
}

// modelAnswer is the body of GET /v1/models/complements.
type modelAnswer struct {
	// Serving is the snapshot this server answers from; null before the first build.
	Serving *complements.Snapshot `json:"serving"`
	// Coverage is the share of the serving snapshot's catalog with at least one complement.
	Coverage float64 `json:"coverage"`
	// Settings are those the next build uses.
	Settings complements.StoredSettings `json:"settings"`
	// Building says whether this server is building a snapshot or has one requested.
	Building bool `json:"building"`
}

func (s *Server) getComplementsModel(c *gin.Context) {
	st, err := complements.LoadSettings(c.Request.Context(), s.deps.DB)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.modelAnswer(st))
}

func (s *Server) modelAnswer(st complements.StoredSettings) modelAnswer {
	out := modelAnswer{Settings: st, Building: s.deps.ComplementsBuilds.Building()}
	if m := s.deps.Complements.Model(); m.Built() {
		snap := m.Snapshot
		out.Serving, out.Coverage = &snap, snap.Coverage()
	}
	return out
}

// settingsBody is the body of PUT /v1/models/complements/settings: every setting must be
// given, so that a forgotten field is an error rather than a silent zero. version, when given,
// makes the change conditional on the settings not having changed since.
type settingsBody struct {
	WindowDays     *int      `json:"window_days" binding:"required"`
	MinOrders      *int      `json:"min_orders" binding:"required"`
	MinConfidence  *float64  `json:"min_confidence" binding:"required"`
	MinLift        *float64  `json:"min_lift" binding:"required"`
	MinLLR         *float64  `json:"min_llr" binding:"required"`
	MaxComplements *int      `json:"max_complements" binding:"required"`
	MaxBasket      *int      `json:"max_basket" binding:"required"`
	Excluded       *[]string `json:"excluded" binding:"required"`
	Version        int       `json:"version"`
}

func (s *Server) putComplementsSettings(c *gin.Context) {
	var b settingsBody
	if err := decodeJSON(c, &b); err != nil {
		s.renderError(c, err)
		return
	}
	st, err := complements.SaveSettings(c.Request.Context(), s.deps.DB, complements.Settings{
		WindowDays: *b.WindowDays, MinOrders: *b.MinOrders, MinConfidence: *b.MinConfidence,
		MinLift: *b.MinLift, MinLLR: *b.MinLLR, MaxComplements: *b.MaxComplements,
		MaxBasket: *b.MaxBasket, Excluded: *b.Excluded,
	}, b.Version, time.Now())
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.modelAnswer(st))
}

// postComplementsBuild asks this server to build a snapshot now. A build of a large shop takes
// longer than a request may, so it runs in the background: 202, and GET
// /v1/models/complements shows the new snapshot once every server serves it.
func (s *Server) postComplementsBuild(c *gin.Context) {
	st, err := complements.LoadSettings(c.Request.Context(), s.deps.DB)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.deps.ComplementsBuilds.Trigger()
	c.Header("Location", "/v1/models/complements")
	c.JSON(http.StatusAccepted, s.modelAnswer(st))
}
