// Package test holds the tests that run kv1 as real processes: the
// end-to-end tests of its README and HTTP contract, the overload test, and
// the linearizability checker under injected faults.
package test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
	"github.com/zongzi-kv/zongzi/internal/testtmp"
)

// kv1Bin is the kv1 binary built once for every test of the package.
var kv1Bin string

// TestMain builds kv1 once into a temporary directory, removed at the
// end, in the run's own (testtmp).
func TestMain(m *testing.M) {
	os.Exit(testtmp.Run(m, runTests))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "zongzi-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if kv1Bin, err = kv1proc.Build(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
