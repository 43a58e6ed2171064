package kv1proc

import "syscall"

// procAttr returns the attributes of a node's process: unless detach, the
// kernel kills it when this process dies, so that a test binary that dies
// without running its cleanups (a -timeout panic, a SIGKILL) leaves no
// node running.
func procAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return nil
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
