// Command bare is the yardstick of scripts/bench/assign.sh: a Gin handler with no middleware
// that answers POST /v1/assign with a fixed body read from a file, so that the benchmark
// compares xsell's assignment with the cost of HTTP and Gin alone.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bare ADDR BODY_FILE")
		os.Exit(2)
	}
	body, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	length := strconv.Itoa(len(body))
	e.POST("/v1/assign", func(c *gin.Context) {
		// The same Content-Length as xsell's answer, so that neither is chunked.
		c.Header("Content-Length", length)
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	})
	// The same connection settings as xsell's server (internal/httpapi.Serve), so that the
	// two differ only in their handlers.
	srv := &http.Server{Addr: os.Args[1], Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
