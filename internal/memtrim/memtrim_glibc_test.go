//go:build linux && cgo

package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rss reads this process's resident set size in bytes.
func rss(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("statm %q: %v", b, err)
	}
	return pages * os.Getpagesize()
}

// TestFreedBuffersLeaveRSS allocates and frees a memtable-sized block several
// times, as Pebble does, and checks that each free gives the memory back.
// Without Fix, glibc serves the second block from its heap and keeps it.
func TestFreedBuffersLeaveRSS(t *testing.T) {
	if !Fix() {
		t.Skip("the C library is not glibc")
	}
	const size = 16 << 20
	for i := range 4 {
		before := rss(t)
		p := allocTouched(size)
		if p == nil {
			t.Fatal("calloc failed")
		}
		if held := rss(t) - before; held < size/2 {
			t.Fatalf("block %d: RSS grew %d bytes after writing %d", i, held, size)
		}
		release(p)
		if kept := rss(t) - before; kept > size/4 {
			t.Fatalf("block %d: %d bytes still resident after free", i, kept)
		}
	}
}
