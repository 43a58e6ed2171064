//go:build !(linux && cgo)

package memtrim

// Fix does nothing without cgo on Linux: Pebble then allocates its buffers
// in the Go heap, where the garbage collector returns them. It reports false.
func Fix() bool {
	return false
}
