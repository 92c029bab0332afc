package httpapi

import "github.com/gin-gonic/gin"

// What the external tests (package httpapi_test) reach inside the package for, to test
// middleware and decoding on routes of their own.

// Authenticate is authenticate.
func (s *Server) Authenticate(roles ...Role) gin.HandlerFunc { return s.authenticate(roles...) }

// CallerName is the name of the key that authenticated the request.
func (s *Server) CallerName(c *gin.Context) string { return s.caller(c).Name }

// RenderError is renderError.
func (s *Server) RenderError(c *gin.Context, err error) { s.renderError(c, err) }

// DecodeJSON is decodeJSON.
func DecodeJSON(c *gin.Context, v any) error { return decodeJSON(c, v) }

// JoinPath is join: a member's JSON path under its parent's.
func JoinPath(path, key string) string { return join(path, key) }

// EventField is eventField.
func EventField(path string) (int, string, bool) { return eventField(path) }
