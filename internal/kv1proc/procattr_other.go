//go:build !linux

package kv1proc

import "syscall"

// procAttr returns the attributes of a node's process. Only Linux can have
// a node killed when this process dies; elsewhere Cluster.Close must run.
func procAttr(bool) *syscall.SysProcAttr { return nil }
