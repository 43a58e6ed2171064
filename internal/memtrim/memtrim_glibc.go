//go:build linux && cgo

package memtrim

/*
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
static int set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#else
static int set_mmap_threshold(int bytes) { return 0; }
#endif

static void *touched(size_t n) {
	char *p = calloc(n, 1);
	if (p != NULL) memset(p, 1, n);
	return p;
}
*/
import "C"

import "unsafe"

// Threshold is the size from which C allocations are mmapped once Fix has
// run: glibc's own starting value, 128 KiB.
const Threshold = 128 << 10

// Fix sets the C allocator's mmap threshold to Threshold, which also turns
// off glibc's raising of it. It reports whether the allocator took the
// setting; it is false where the C library is not glibc.
func Fix() bool {
	return C.set_mmap_threshold(C.int(Threshold)) == 1
}

// allocTouched allocates n bytes with C calloc and writes every byte, so
// they are resident. Tests use it to watch RSS; free it with release.
func allocTouched(n int) unsafe.Pointer {
	return C.touched(C.size_t(n))
}

// release frees a block from allocTouched.
func release(p unsafe.Pointer) {
	C.free(p)
}
