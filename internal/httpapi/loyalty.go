package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/internal/apperr"
	"github.com/xsell/xsell/internal/loyalty"
)

// loyaltyRoutes registers the /v1 routes of this area. Reads of accounts are open to the
// analyst too; the program is the admin's, readable by the analyst for cost accounting.
func (s *Server) loyaltyRoutes(v1 *gin.RouterGroup) {
	read := s.authenticate(RoleCheckout, RoleAdmin, RoleAnalyst)
	write := s.authenticate(RoleCheckout, RoleAdmin)
	g := v1.Group("/loyalty", s.loyaltyWired)
	g.GET("/program", s.authenticate(RoleAdmin, RoleAnalyst), s.getLoyaltyProgram)
	g.PUT("/program", s.authenticate(RoleAdmin), s.putLoyaltyProgram)
	g.GET("/accounts/:shopper_id", read, s.getLoyaltyAccount)
	g.GET("/accounts/:shopper_id/transactions", read, s.listLoyaltyTransactions)
	g.POST("/accounts/:shopper_id/earn", write, s.earnPoints)
	g.POST("/accounts/:shopper_id/redeem", write, s.redeemPoints)
	g.POST("/transactions/:id/reverse", write, s.reverseTransaction)
}

// loyaltyWired refuses loyalty requests on a server built without the service (tests of
// other areas), rather than failing on a nil pointer.
func (s *Server) loyaltyWired(c *gin.Context) {
	if s.deps.Loyalty == nil {
		s.renderError(c, apperr.New(apperr.Internal, "the loyalty service is not wired"))
	}
}

// programBody is the body of PUT /v1/loyalty/program: every setting must be given, so that a
// forgotten field is an error rather than a silent zero.
type programBody struct {
	EarnRate    *int `json:"earn_rate" binding:"required"`
	PointValue  *int `json:"point_value" binding:"required"`
	ExpiryDays  *int `json:"expiry_days" binding:"required"`
	PendingDays *int `json:"pending_days" binding:"required"`
}

func (s *Server) getLoyaltyProgram(c *gin.Context) {
	p, err := s.deps.Loyalty.Program(c.Request.Context())
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Server) putLoyaltyProgram(c *gin.Context) {
	var body programBody
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	p, err := s.deps.Loyalty.SetProgram(c.Request.Context(), loyalty.Program{
		EarnRate: *body.EarnRate, PointValue: *body.PointValue,
		ExpiryDays: *body.ExpiryDays, PendingDays: *body.PendingDays,
	})
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Server) getLoyaltyAccount(c *gin.Context) {
	a, err := s.deps.Loyalty.Account(c.Request.Context(), c.Param("shopper_id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (s *Server) listLoyaltyTransactions(c *gin.Context) {
	limit := 0
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			var p apperr.Problems
			p.Add("limit", "wrong_type", "must be an integer, not %q", v)
			s.renderError(c, p.Err())
			return
		}
		limit = n
		if n == 0 {
			limit = -1 // an explicit 0 is out of range, not "the default"
		}
	}
	page, err := s.deps.Loyalty.Transactions(c.Request.Context(), c.Param("shopper_id"), c.Query("cursor"), limit)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) earnPoints(c *gin.Context) {
	var req loyalty.EarnRequest
	if err := decodeJSON(c, &req); err != nil {
		s.renderError(c, err)
		return
	}
	out, err := s.deps.Loyalty.Earn(c.Request.Context(), c.Param("shopper_id"), req)
	s.renderOutcome(c, out, err)
}

func (s *Server) redeemPoints(c *gin.Context) {
	var req loyalty.RedeemRequest
	if err := decodeJSON(c, &req); err != nil {
		s.renderError(c, err)
		return
	}
	out, err := s.deps.Loyalty.Redeem(c.Request.Context(), c.Param("shopper_id"), req)
	s.renderOutcome(c, out, err)
}

func (s *Server) reverseTransaction(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(c, apperr.New(apperr.NotFound, "no transaction %q", c.Param("id")))
		return
	}
	var req loyalty.ReverseRequest
	if err := decodeJSON(c, &req); err != nil {
		s.renderError(c, err)
		return
	}
	out, err := s.deps.Loyalty.Reverse(c.Request.Context(), id, req)
	s.renderOutcome(c, out, err)
}

// renderOutcome sends the stored answer of an idempotent write byte for byte, so that a
// replay is indistinguishable from the first answer but for the Idempotent-Replayed header.
func (s *Server) renderOutcome(c *gin.Context, out loyalty.Outcome, err error) {
	if err != nil {
		s.renderError(c, err)
		return
	}
	if out.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Data(out.Status, "application/json; charset=utf-8", out.Body)
}
