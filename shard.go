package zongzi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// Shard is one Raft group, as recorded in the registry.
type Shard = registry.Shard

// Shard statuses: new until every replica its placement wants is active,
// then active; a shard whose placement cannot be satisfied has the status
// ShardStatusUnsatisfied followed by ": " and the reason.
const (
	ShardStatusNew         = registry.ShardStatusNew
	ShardStatusActive      = registry.ShardStatusActive
	ShardStatusUnsatisfied = registry.ShardStatusUnsatisfied
)

// ShardClient proposes commands to and reads from one shard. It uses this
// host's replica when there is one, and otherwise forwards the request over
// the message bus to the nearest host that has one; a replica here that is
// still catching up with its shard comes after the other hosts' replicas.
// It is safe for concurrent use and cheap to keep. A client of the prime
// shard (shard 0) serves Leader and Index only. A command may be reused
// once its call returns; a query too, unless the call ended with its ctx
// (a read forwarded on the bus may still hold it). Data returned by the
// local replica is the state machine's own (see Result), not to be
// changed.
type ShardClient struct {
	a       *Agent
	shardID uint64
}

// ShardID returns the ID of the client's shard.
func (c *ShardClient) ShardID() uint64 { return c.shardID }

// Apply proposes cmd, waits until it is applied and returns the state
// machine's result. ctx must have a deadline (ErrInvalidConfig without one),
// which bounds the proposal in Dragonboat. On ErrOutcomeUnknown (ErrTimeout,
// or ctx cancelled once the command was proposed, among others) the
// command may or may not have applied; on ErrShardNotReady it did not, and
// only then is it tried on another host, and again after a pause (10 ms,
// growing to 100) while ctx's deadline leaves time. A host without a
// replica sends it to the leader's host first: every write goes through
// the leader. A result over the message bus's limit (see ErrTooLarge)
// cannot come back from another host: the command applied, and the call
// fails with ErrResultTooLarge, with the result's value but no data.
func (c *ShardClient) Apply(ctx context.Context, cmd []byte) (value uint64, data []byte, err error) {
	if err := c.guestOnly("Apply"); err != nil {
		return 0, nil, err
	}
	err = c.do(ctx, leaderFirst, func() (err error) {
		value, data, err = c.a.localApply(ctx, c.shardID, cmd)
		return err
	}, func(ctx context.Context, addr string) (err error) {
		value, data, err = c.a.pool.Apply(ctx, addr, c.shardID, cmd)
		return err
	})
	return value, data, err
}

// Commit proposes cmd and returns once it is committed, without the state
// machine's result: once the replica that took it has applied it, or as
// soon as it is committed where the host config sets NotifyCommit (see
// WithHostConfig). Like Apply, it needs a deadline and prefers the leader's
// host.
func (c *ShardClient) Commit(ctx context.Context, cmd []byte) error {
	if err := c.guestOnly("Commit"); err != nil {
		return err
	}
	return c.do(ctx, leaderFirst, func() error {
		return c.a.localCommit(ctx, c.shardID, cmd)
	}, func(ctx context.Context, addr string) error {
		return c.a.pool.Commit(ctx, addr, c.shardID, cmd)
	})
}

// Read queries the shard. It is linearizable (a ReadIndex barrier) unless
// stale, in which case any replica, voting or not, answers from its state.
// Forwarded to another host while a further host, or a replica here still
// catching up, is left to try, it waits there for at most half the time
// ctx leaves, as LeaderRead and Index do: a host gone silent does not take
// its whole deadline.
func (c *ShardClient) Read(ctx context.Context, query []byte, stale bool) (value uint64, data []byte, err error) {
	if err := c.guestOnly("Read"); err != nil {
		return 0, nil, err
	}
	err = c.do(ctx, anyRead, func() (err error) {
		value, data, err = c.a.localRead(ctx, c.shardID, query, stale)
		return err
	}, func(ctx context.Context, addr string) (err error) {
		value, data, err = c.a.pool.Read(ctx, addr, c.shardID, query, stale, false)
		return err
	})
	return value, data, err
}

// LeaderRead is a linearizable read, like Read, sent to the shard's leader:
// served here when the local replica leads (or no leader is known yet), else
// by the host that leads as far as this one knows, where the ReadIndex round
// starts without a hop to the leader. If that host cannot serve it, the
// nearest host with a replica does, with the same guarantee.
func (c *ShardClient) LeaderRead(ctx context.Context, query []byte) (value uint64, data []byte, err error) {
	if err := c.guestOnly("LeaderRead"); err != nil {
		return 0, nil, err
	}
	err = c.do(ctx, leaderOnly, func() (err error) {
		value, data, err = c.a.localRead(ctx, c.shardID, query, false)
		return err
	}, func(ctx context.Context, addr string) (err error) {
		value, data, err = c.a.pool.Read(ctx, addr, c.shardID, query, false, true)
		return err
	})
	return value, data, err
}

// Index returns, after a read barrier, the raft index of the last entry
// the shard's state machine applied (its Update's last Entry.Index): the
// index of the last command, since membership changes and the no-op
// entries of new leaders never reach the state machine.
func (c *ShardClient) Index(ctx context.Context) (index uint64, err error) {
	err = c.do(ctx, anyRead, func() (err error) {
		index, err = c.a.localIndex(ctx, c.shardID)
		return err
	}, func(ctx context.Context, addr string) (err error) {
		index, err = c.a.pool.Index(ctx, addr, c.shardID)
		return err
	})
	return index, err
}

// Leader returns the shard's leader replica ID and term: as seen by this
// host's replica when it has one (zero while it knows no leader, e.g. just
// after a restart), else as last recorded in the registry.
func (c *ShardClient) Leader() (replicaID, term uint64) {
	if c.shardID == 0 || c.hasLocal() {
		li, _ := c.a.localLeader(c.shardID)
		return li.leader, li.term
	}
	s, _ := c.a.store.State().Shard(c.shardID)
	return s.Leader, s.Term
}

// guestOnly refuses a command or query to the prime shard, whose state
// machine is the registry: Agent.State and the Agent's methods read and
// change it.
func (c *ShardClient) guestOnly(call string) error {
	if c.shardID == 0 {
		return fmt.Errorf("%w: %s on the prime shard (shard 0): only its Leader and Index are served", ErrInvalidConfig, call)
	}
	return nil
}

func (c *ShardClient) hasLocal() bool {
	_, _, ok := c.a.localReplicaOf(c.shardID)
	return ok
}

// Watch sends the results of query to results until ctx is done. Unless
// stale, it starts after a read barrier. When the replica serving it stops
// (it moved, or its shard was deleted), it goes on at another host with a
// replica, so results may repeat, or ends with the reason none can serve
// it (ErrShardNotFound for a deleted shard). Unlike the other calls, it is
// not tried again after a pause when no host can serve it. It never closes
// results.
func (c *ShardClient) Watch(ctx context.Context, query []byte, results chan<- *Result, stale bool) error {
	if err := c.guestOnly("Watch"); err != nil {
		return err
	}
	send := func(v uint64, d []byte) error {
		select {
		case results <- &Result{Value: v, Data: d}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.attempt(ctx, anyReplica, func() error {
		return c.a.localWatch(ctx, c.shardID, query, stale, send)
	}, func(ctx context.Context, addr string) error {
		return c.a.pool.Watch(ctx, addr, c.shardID, query, stale, send)
	})
}

// target says which replica serves a request.
type target uint8

const (
	// anyReplica: the local replica, else the nearest host with one.
	anyReplica target = iota
	// anyRead: as anyReplica, for a read that ends (Read, Index), which a
	// host may be given only a share of the time left for (see forward).
	anyRead
	// leaderFirst: the local replica, else the leader's host, then the
	// nearest. For writes, which go through the leader anyway: sent to a
	// follower's host they would take one more hop.
	leaderFirst
	// leaderOnly: the local replica if it leads, else the leader's host,
	// then the nearest. For leader reads, shared as anyRead's.
	leaderOnly
)

// read says whether t's request is a read that ends, which changes
// nothing wherever it was cut short: not a write, nor a Watch.
func (t target) read() bool { return t == anyRead || t == leaderOnly }

// do runs a request with attempt, again while it fails with
// ErrShardNotReady (nothing was proposed or read: the shard may be electing
// a leader, or its leader handing over) and ctx's deadline leaves time. It
// pauses between attempts, retryPause at first and twice as long each time
// up to retryMaxPause, and gives up when the pause would leave the next
// attempt less than two raft ticks (Dragonboat refuses a proposal with less
// than one), or at once when ctx has no deadline. A deadline that passed
// on the way to another host is ErrTimeout, as it is here.
func (c *ShardClient) do(ctx context.Context, t target, local func() error, remote func(ctx context.Context, addr string) error) error {
	return c.a.whileNotReady(ctx, func() error { return c.attempt(ctx, t, local, remote) })
}

// whileNotReady makes attempt again while it fails with ErrShardNotReady
// and ctx's deadline leaves time, with the pauses that ShardClient.do
// describes.
func (a *Agent) whileNotReady(ctx context.Context, attempt func() error) error {
	margin := 2 * a.raftTick()
	for pause := retryPause; ; pause = min(2*pause, retryMaxPause) {
		err := attempt()
		if !errors.Is(err, ErrShardNotReady) {
			return timeoutError(err)
		}
		d, ok := ctx.Deadline()
		if !ok || time.Until(d) < pause+margin || sleep(ctx, pause) != nil {
			return timeoutError(err)
		}
	}
}

// timeoutError wraps ErrTimeout around a bare context.DeadlineExceeded,
// as the bus returns when the caller's deadline passes before an answer.
func timeoutError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// Pauses between the attempts of a request that no host could serve.
const (
	retryPause    = 10 * time.Millisecond
	retryMaxPause = 100 * time.Millisecond
)

// attempt runs a request where t says: on the local replica, else on the
// other hosts with an active replica, in t's order, until one serves it,
// and on a local replica still catching up only once none of them can
// (localTurn). It moves on only when a host says it cannot serve the
// shard, which means nothing was proposed, or when a read ran out of its
// share of the time there (forward). When the registry changed while it
// tried them (a Watch may have gone on for hours at the first), it takes
// the route again and tries the hosts it has not tried yet: the shard's
// replicas may have moved, or the shard been deleted (ErrShardNotFound).
// A request, or a result, over the bus's limit (ErrTooLarge) is left to
// the local replica, if any, which has no such limit: it serves it at
// once, or, when it could not serve it first, its error
// (ErrShardNotReady) is returned, which do tries again.
func (c *ShardClient) attempt(ctx context.Context, t target, local func() error, remote func(ctx context.Context, addr string) error) error {
	if c.a.Status() != AgentStatusReady {
		return ErrAgentNotReady
	}
	first, last := c.localTurn(t == leaderOnly)
	var err, localErr error
	if first {
		if localErr = local(); !errors.Is(localErr, ErrShardNotReady) {
			return localErr
		}
	}
	tried := make([]string, 0, 8) // on the stack while the shard has few hosts
	for {
		rt, rerr := c.a.route(c.shardID)
		if rerr != nil {
			return rerr
		}
		leader := ""
		if t == leaderFirst || t == leaderOnly {
			leader = c.leaderAddr(rt)
		}
		fresh := false
		for i := -1; i < len(rt.addrs); i++ { // the leader's host first, if any
			addr := leader
			if i >= 0 {
				addr = rt.addrs[i]
			}
			if addr == "" || slices.Contains(tried, addr) {
				continue
			}
			tried, fresh = append(tried, addr), true
			share := t.read() && (last || anyUntried(rt.addrs[i+1:], tried))
			err = c.forward(ctx, share, addr, remote)
			if errors.Is(err, ErrTooLarge) && c.hasLocal() {
				// Over the bus's limit, it can be served by the replica
				// here only, which has no such limit: now, or once it can.
				if first {
					return localErr
				}
				if ctx.Err() == nil {
					return local()
				}
				return err
			}
			if !errors.Is(err, ErrShardNotReady) || ctx.Err() != nil {
				return err
			}
		}
		if !fresh || c.a.store.State().Index() == rt.index {
			break
		}
	}
	if last && ctx.Err() == nil {
		return local()
	}
	if err == nil {
		err = fmt.Errorf("%w: shard %d has no active replica on another host", ErrShardNotReady, c.shardID)
	}
	return err
}

// forward runs remote at addr. A read that has another host, or the
// local replica, left to try if this one fails (share) gets half of
// ctx's time left there: a host gone silent (a partition, a power loss)
// holds a forwarded call until its deadline, while the prober finds it
// out only within seconds, and until then it comes first in the route.
// A read cut short there did nothing: it fails with ErrShardNotReady, and
// the next host is tried.
func (c *ShardClient) forward(ctx context.Context, share bool, addr string, remote func(ctx context.Context, addr string) error) error {
	d, ok := ctx.Deadline()
	if !share || !ok {
		return remote(ctx, addr)
	}
	sctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Until(d)/2))
	defer cancel()
	err := remote(sctx, addr)
	if err != nil && sctx.Err() != nil && ctx.Err() == nil {
		// Not wrapped: a read that ends here has no outcome to be unknown.
		return fmt.Errorf("%w: shard %d: host %s did not answer within half the time left: %v", ErrShardNotReady, c.shardID, addr, err)
	}
	return err
}

// anyUntried says whether addrs holds an address not in tried.
func anyUntried(addrs, tried []string) bool {
	for _, addr := range addrs {
		if !slices.Contains(tried, addr) {
			return true
		}
	}
	return false
}

// leaderAddr returns the API address of the host of the shard's leader:
// as this host's replica knows it, when it has one that knows a leader
// of a term no older than the registry's, else as the registry records
// it; "" when unknown or on this host. A replica hears of a new leader at
// once, the registry only once the leader has recorded itself through
// the prime shard, which may itself be electing a leader then (the host
// that led both went silent, say).
func (c *ShardClient) leaderAddr(rt *shardRoute) string {
	li, ok := c.a.localLeader(c.shardID)
	if !ok {
		return rt.leader
	}
	if li.term < rt.term || li.leader == rt.leaderID {
		return rt.leader
	}
	st := c.a.store.State()
	r, ok := st.Replica(li.leader)
	if !ok || r.ShardID != c.shardID || r.HostID == c.a.hostID || r.Status != registry.ReplicaStatusActive {
		return rt.leader
	}
	if h, ok := st.Host(r.HostID); ok && h.ApiAddress != "" {
		return h.ApiAddress
	}
	return rt.leader
}

// localTurn says when this host serves the request itself: first, before
// the other hosts; last, once none of them could, while its replica is
// behind (see Agent.behind); or, both false, not at all. A leader
// request is served here, first, only by a replica that leads (or knows
// no leader yet).
func (c *ShardClient) localTurn(leader bool) (first, last bool) {
	var replicaID uint64
	caughtUp := true
	if c.shardID == 0 {
		replicaID = c.a.primeID.Load()
	} else if _, lr, ok := c.a.localReplicaOf(c.shardID); ok {
		replicaID, caughtUp = lr.replicaID, !c.a.behind(c.shardID, lr)
	} else {
		return false, false
	}
	if leader {
		li, known := c.a.localLeader(c.shardID)
		return !known || li.leader == replicaID, false
	}
	return caughtUp, !caughtUp
}

// shardRoute is where requests for a shard go when this host has no
// replica: the API addresses of the other hosts with an active replica,
// nearest first, and the leader's. It is computed from one registry index.
type shardRoute struct {
	index  uint64
	addrs  []string
	leader string
	// leaderID and term are the leader replica and term the registry records.
	leaderID, term uint64
}

// route returns the shard's route, rebuilt only when the registry changed
// since it was computed (or the prober measured new round trips).
func (a *Agent) route(shardID uint64) (*shardRoute, error) {
	st := a.store.State()
	if rt, ok := a.routes.Load(shardID); ok && rt.index == st.Index() {
		return rt, nil
	}
	shard, ok := st.Shard(shardID)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrShardNotFound, shardID)
	}
	type cand struct {
		addr string
		rtt  time.Duration
	}
	var cands []cand
	rt := &shardRoute{index: st.Index(), leaderID: shard.Leader, term: shard.Term}
	for _, r := range st.ShardReplicas(shardID) {
		if r.HostID == a.hostID || r.Status != registry.ReplicaStatusActive {
			continue
		}
		h, ok := st.Host(r.HostID)
		if !ok {
			continue
		}
		rtt, measured := a.pool.RTT(h.ApiAddress)
		if !measured {
			rtt = time.Hour
		}
		cands = append(cands, cand{addr: h.ApiAddress, rtt: rtt})
		if r.ID == shard.Leader {
			rt.leader = h.ApiAddress
		}
	}
	slices.SortFunc(cands, func(x, y cand) int {
		return cmp.Or(cmp.Compare(x.rtt, y.rtt), cmp.Compare(x.addr, y.addr))
	})
	for _, c := range cands {
		rt.addrs = append(rt.addrs, c.addr)
	}
	a.routes.Update(func(m map[uint64]*shardRoute) { m[shardID] = rt })
	return rt, nil
}
