package httpapi

import "github.com/gin-gonic/gin"

// eventRoutes registers the /v1 routes of this area.
func (s *Server) eventRoutes(v1 *gin.RouterGroup) {}
