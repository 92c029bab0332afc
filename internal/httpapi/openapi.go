package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/xsell/xsell/api"
)

// openapi serves the OpenAPI document of this API, without a key: it describes what the API
// does, not what it holds.
func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", api.OpenAPI())
}
