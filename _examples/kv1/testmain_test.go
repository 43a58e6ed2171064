package main

import (
	"os"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/testtmp"
)

// TestMain gives the run its own temporary directory (testtmp).
func TestMain(m *testing.M) { os.Exit(testtmp.Run(m, nil)) }
