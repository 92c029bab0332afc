package httpapi

import "github.com/gin-gonic/gin"

// loyaltyRoutes registers the /v1 routes of this area.
func (s *Server) loyaltyRoutes(v1 *gin.RouterGroup) {}
