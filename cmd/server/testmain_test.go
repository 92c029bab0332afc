package main

import (
	"os"
	"testing"

	"github.com/xsell/xsell/internal/servertest"
)

// TestMain removes the server binary the tests built (servertest.Main).
func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }
