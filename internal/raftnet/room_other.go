//go:build !(linux || darwin)

package raftnet

// freeSpace cannot read the free space of dir's file system here.
func freeSpace(string) (uint64, bool) { return 0, false }
