// Package api holds the OpenAPI 3.1 document of xsell's HTTP API, embedded so that the server
// serves the very document its tests check every route and every answer against.
package api

import _ "embed"

//go:embed openapi.json
var document []byte

// OpenAPI is the OpenAPI 3.1 document as JSON. Callers must not modify it.
func OpenAPI() []byte { return document }
