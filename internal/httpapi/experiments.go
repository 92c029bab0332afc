package httpapi

import "github.com/gin-gonic/gin"

// experimentRoutes registers the /v1 routes of this area.
func (s *Server) experimentRoutes(v1 *gin.RouterGroup) {}
