package bus

import (
	"context"

	"github.com/zongzi-kv/zongzi/internal/bus/pb"
)

// Handler serves requests arriving over the bus. The agent implements it.
// Shard calls are served from the local replica only; a handler never
// forwards again, so a request makes at most one hop.
type Handler interface {
	// Info describes this host, and which replica of shardID (when not 0)
	// runs here.
	Info(ctx context.Context, shardID uint64) (*pb.InfoResponse, error)
	// Join adds a host to the prime shard and returns its replica ID.
	Join(ctx context.Context, req *pb.JoinRequest) (uint64, error)
	// Membership adds or removes a replica of a shard this host serves.
	Membership(ctx context.Context, req *pb.MembershipRequest) error
	// Members returns the membership of a shard this host serves.
	Members(ctx context.Context, shardID uint64) (*pb.MembersResponse, error)
	// Apply proposes cmd to the shard and returns the result.
	Apply(ctx context.Context, shardID uint64, cmd []byte) (uint64, []byte, error)
	// Commit proposes cmd and returns once it is committed.
	Commit(ctx context.Context, shardID uint64, cmd []byte) error
	// Read queries the shard. leader says the caller sent the read here as
	// the shard's leader; the read is linearizable either way (unless stale).
	Read(ctx context.Context, shardID uint64, query []byte, stale, leader bool) (uint64, []byte, error)
	// Index returns the shard's applied index after a read barrier.
	Index(ctx context.Context, shardID uint64) (uint64, error)
	// Watch calls send for every result until ctx is done or send fails.
	Watch(ctx context.Context, shardID uint64, query []byte, stale bool, send func(value uint64, data []byte) error) error
}

// Codes maps errors to gRPC codes on the server and back on the client.
type Codes struct {
	// ToCode picks the status code sent for a handler error.
	ToCode func(error) uint32
	// ToError rebuilds an error from a received code and message.
	ToError func(code uint32, msg string) error
	// Unknown is wrapped by the error of a forwarded write whose call
	// failed without an answer from the serving host: the connection broke
	// or the host stopped, perhaps after it had proposed the write.
	Unknown error
	// TooLarge is wrapped by the error of a query or command over the
	// bus's message limit, which is not sent. A result over it comes back
	// as ResourceExhausted, which ToError maps; that of an Apply, which
	// applied all the same, as OutOfRange, with the result's value.
	TooLarge error
	// Closed is wrapped by the error of a call made once the pool is
	// closed, which is not sent.
	Closed error
}
