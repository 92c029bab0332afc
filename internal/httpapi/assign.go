package httpapi

import "github.com/gin-gonic/gin"

// assignRoutes registers the /v1 routes of this area.
func (s *Server) assignRoutes(v1 *gin.RouterGroup) {}
