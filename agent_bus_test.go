package zongzi

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// FuzzCheckJoin decodes any bytes as a join request, as the bus does, and
// checks it: nothing panics, and a join that passes has a printable host
// ID of at most maxHostID bytes and two host:port addresses.
func FuzzCheckJoin(f *testing.F) {
	for _, req := range []*pb.JoinRequest{
		{HostId: "0b5c5bd4-6a3e-4b0e-9a43-6f3b1a3c7d09", ApiAddress: "127.0.0.1:1", RaftAddress: "127.0.0.1:2"},
		{HostId: "h", ApiAddress: "[::1]:17001", RaftAddress: "localhost:17002", Tags: map[string]string{"zone": "a"}, NonVoting: true},
		{HostId: "a b", ApiAddress: "127.0.0.1", RaftAddress: ":1"},
		{HostId: strings.Repeat("x", maxHostID+1), ApiAddress: "[::1", RaftAddress: "h:99999"},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pb.JoinRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		err := checkJoin(&req)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("checkJoin: %v, want ErrInvalidConfig", err)
			}
			return
		}
		if id := req.GetHostId(); id == "" || len(id) > maxHostID || strings.ContainsAny(id, " \t\n") {
			t.Fatalf("host ID %q passed", id)
		}
	})
}
