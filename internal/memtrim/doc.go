// Package memtrim makes large blocks that C code frees go back to the
// operating system.
//
// Dragonboat keeps its log in Pebble, and Pebble allocates its write buffers
// (16 MiB memtables here) with C calloc when the program is built with cgo.
// glibc serves a block that large with mmap at first, but each free of an
// mmapped block raises its mmap threshold to that block's size, so from the
// second memtable on the buffers come from glibc's heaps, one per thread.
// Freed, they stay resident: a kv1 node measured 250-280 MB RSS after a
// million writes, of which under 100 MB was the Go runtime's. Fixing the
// threshold stops that adjustment, so every memtable is mmapped and unmapped
// again when Pebble frees it.
package memtrim
