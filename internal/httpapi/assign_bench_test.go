package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// benchAPI is a Server whose cache holds 20 running experiments with targeting, and whose
// recorder is not running (its queue absorbs, then drops and counts). It is the HTTP layer
// alone, without internal/app's wiring, because assignment needs no database.
func benchAPI(b *testing.B) http.Handler { return learnedBenchAPI(b, 0) }

func benchRequests(b *testing.B, h http.Handler, pool int) {
	bodies := make([][]byte, pool)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"shopper_id":"shopper-%d","attributes":{"country":"IT","device":"mobile","visits":5}}`, i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/assign", bytes.NewReader(bodies[i%pool]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+checkoutKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		i++
	}
}

// BenchmarkAssignHandler is POST /v1/assign in process, returning shoppers: the whole
// middleware chain, decoding, 20 experiments and the encoded answer.
func BenchmarkAssignHandler(b *testing.B) { benchRequests(b, benchAPI(b), 1000) }

// BenchmarkBareHandler is the yardstick: Gin with no middleware and a fixed body.
func BenchmarkBareHandler(b *testing.B) { benchRequests(b, bareHandler(), 1000) }

// bareHandler is Gin with no middleware answering a fixed body of the size of a 20-assignment
// answer.
func bareHandler() http.Handler {
	body := bytes.Repeat([]byte("x"), 3000)
	e := gin.New()
	e.POST("/v1/assign", func(c *gin.Context) { c.Data(200, "application/json", body) })
	return e
}
