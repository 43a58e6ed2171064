package zongzi_test

import (
	"errors"
	"net"
	"testing"

	"github.com/zongzi-kv/zongzi"
)

// A bad address keeps its cause: the net package's error says what is wrong
// with it, and a caller can get at it with errors.As.
func TestBadAddressKeepsItsCause(t *testing.T) {
	_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithAddrApi("nope"))
	var addrErr *net.AddrError
	if !errors.Is(err, zongzi.ErrInvalidConfig) || !errors.As(err, &addrErr) {
		t.Fatalf("bad api address: %v, want ErrInvalidConfig wrapping a *net.AddrError", err)
	}
}
