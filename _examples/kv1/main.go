// Command kv1 serves a replicated, versioned, in-memory key-value store over
// HTTP on a Zongzi cluster. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/valyala/fasthttp"

	"github.com/zongzi-kv/zongzi"
)

// shardType is the URI of kv1's state machine.
const shardType = "zongzi://github.com/zongzi-kv/zongzi/_examples/kv1"

// options are kv1's command-line flags.
type options struct {
	dir, gossip, raft, api, http, peers, zone, region, name, pprof string
	shards                                                         int
	snapshotEntries                                                uint64
	timeout                                                        time.Duration
	leaderAffinity                                                 bool
	tls                                                            tlsFiles
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("kv1", flag.ContinueOnError)
	fs.StringVar(&o.dir, "d", filepath.Join(os.TempDir(), "zongzi-kv1", "node-1"), "data dir")
	fs.StringVar(&o.gossip, "g", "", "gossip address (advertise[,bind]); empty turns gossip off")
	fs.StringVar(&o.raft, "r", "127.0.0.1:17012", "raft address (advertise[,bind])")
	fs.StringVar(&o.api, "a", "127.0.0.1:17013", "API address (advertise[,bind])")
	fs.StringVar(&o.http, "h", ":8001", "HTTP listen address")
	fs.StringVar(&o.peers, "p", "127.0.0.1:17013,127.0.0.1:17023,127.0.0.1:17033", "peer API addresses, comma-separated")
	fs.StringVar(&o.zone, "z", "us-west-1a", "zone (host tag geo:zone)")
	fs.StringVar(&o.region, "re", "us-central1", "region (host tag geo:region)")
	fs.IntVar(&o.shards, "s", 4, "number of kv shards")
	fs.StringVar(&o.name, "n", "kv1", "cluster name")
	fs.DurationVar(&o.timeout, "t", time.Second, "request timeout")
	fs.Uint64Var(&o.snapshotEntries, "snap", 0, "snapshot each shard every `N` raft entries (0: Zongzi's default, 100000)")
	fs.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (off when empty)")
	fs.BoolVar(&o.leaderAffinity, "affinity", true, "gather the kv shards' leaders on the prime shard's leader (give every node the same)")
	fs.StringVar(&o.tls.cert, "tls-cert", "", "mutual TLS between nodes (raft and API ports, not HTTP): this node's certificate, PEM `FILE`; with -tls-key and -tls-ca")
	fs.StringVar(&o.tls.key, "tls-key", "", "mutual TLS between nodes (raft and API ports, not HTTP): the private key of -tls-cert, PEM `FILE`")
	fs.StringVar(&o.tls.ca, "tls-ca", "", "mutual TLS between nodes (raft and API ports, not HTTP): the CA that signs every node's certificate, PEM `FILE`")
	fs.StringVar(&o.tls.name, "tls-name", "", "mutual TLS between nodes: a DNS `NAME` that every node's certificate carries, checked instead of the nodes' IP addresses")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	// The flag package reported its own errors on stderr; ours are
	// reported here, likewise.
	var err error
	switch {
	case o.shards < 1 || o.shards > 99999:
		err = fmt.Errorf("-s %d: want 1 to 99999 shards", o.shards)
	case o.timeout <= 0:
		err = fmt.Errorf("-t %v: want a positive request deadline", o.timeout)
	default:
		err = o.tls.check()
	}
	if err != nil {
		fmt.Fprintln(fs.Output(), "kv1:", err)
	}
	return o, err
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(log) // the state machines log through it too
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once the first signal came, the next one ends the process at once,
	// without waiting for the shutdown.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, o, log, os.Stdout); err != nil {
		log.Error("kv1", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. The HTTP server starts first and answers
// 503 with Retry-After until the cluster is ready. Its address is bound
// before the agent starts, so that a node that cannot serve HTTP (the
// address is taken, say) says so at once instead of joining the cluster
// first: the agent waits for its peers, for good if they are not there.
func run(ctx context.Context, o options, log *slog.Logger, stdout io.Writer) error {
	// "tcp", as net/http listens: fasthttp's ListenAndServe takes IPv4
	// only, and would fail on an IPv6 address such as [::1]:8001.
	ln, err := net.Listen("tcp", o.http)
	if err != nil {
		return fmt.Errorf("http: listen on -h %s: %w", o.http, err)
	}
	agent, err := newAgent(o, log)
	if err != nil {
		ln.Close()
		return err
	}
	if o.pprof != "" {
		go servePprof(o.pprof, log)
	}
	var current atomic.Pointer[fasthttp.RequestHandler]
	starting := fasthttp.RequestHandler(serveStarting)
	current.Store(&starting)
	srv := newHTTPServer(func(rc *fasthttp.RequestCtx) { (*current.Load())(rc) }, defaultMaxVal, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(sctx)
		agent.Stop()
	}()

	start := time.Now()
	if err := agent.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	shards, err := createShards(ctx, agent, o)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	h, err := newKVHandler(agent, shards, o.timeout, start.Add(gatherWait))
	if err != nil {
		return err
	}
	kv := fasthttp.RequestHandler(h.serve)
	current.Store(&kv)
	log.Info("kv1: serving", "http", o.http, "host", agent.HostID(), "startup", time.Since(start).Round(time.Millisecond))
	go printRegistryOnce(ctx, agent, shards, stdout, log)

	select {
	case <-ctx.Done():
		log.Info("kv1: stopping; a second signal ends the process at once")
		return nil
	case err := <-serveErr:
		return fmt.Errorf("http: %w", err)
	}
}

func newAgent(o options, log *slog.Logger) (*zongzi.Agent, error) {
	opts := []zongzi.AgentOption{
		zongzi.WithAddrApi(strings.Split(o.api, ",")...),
		zongzi.WithAddrRaft(strings.Split(o.raft, ",")...),
		zongzi.WithDirRaft(filepath.Join(o.dir, "raft")),
		zongzi.WithHostTags("geo:region="+o.region, "geo:zone="+o.zone),
		zongzi.WithHostConfig(hostConfig()),
		zongzi.WithLogger(log),
	}
	if o.gossip != "" {
		opts = append(opts, zongzi.WithAddrGossip(strings.Split(o.gossip, ",")...))
	}
	if o.leaderAffinity {
		opts = append(opts, zongzi.WithLeaderAffinity())
	}
	if o.tls.enabled() {
		cfg, err := o.tls.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, zongzi.WithTLS(cfg))
	}
	if o.snapshotEntries > 0 {
		// The log keeps half an interval of entries behind each snapshot.
		cfg := zongzi.DefaultReplicaConfig()
		cfg.SnapshotEntries, cfg.CompactionOverhead = o.snapshotEntries, o.snapshotEntries/2
		opts = append(opts, zongzi.WithReplicaConfig(cfg))
	}
	agent, err := zongzi.NewAgent(o.name, strings.Split(o.peers, ","), opts...)
	if err != nil {
		return nil, err
	}
	if err := agent.StateMachineRegister(shardType, newStateMachine); err != nil {
		return nil, err
	}
	return agent, nil
}

// hostConfig is Dragonboat's host configuration for a kv1 node: metrics on,
// and one engine worker of each kind that takes part in every write (raft
// steps, commits, applies) instead of 16; commit workers run only with
// NotifyCommit, which kv1 leaves off. A node runs a handful of shards
// whose updates are cheap; with one worker, one raft step carries every
// shard's entries, one log write and sync, and one message per peer, and
// wakes one goroutine instead of one per shard. Fewer step workers is a
// setting a data dir keeps: Dragonboat refuses to start on one created
// with another.
func hostConfig() config.NodeHostConfig {
	engine := config.GetDefaultEngineConfig()
	engine.ExecShards, engine.CommitShards, engine.ApplyShards = 1, 1, 1
	return config.NodeHostConfig{EnableMetrics: true, Expert: config.ExpertConfig{Engine: engine}}
}

// newKVHandler wires the HTTP handler to the agent. Until gatherBy, the
// node is not ready while the kv shards' leaders move (healthz).
func newKVHandler(agent *zongzi.Agent, shards []zongzi.Shard, timeout time.Duration, gatherBy time.Time) (*handler, error) {
	clients := make([]shardClient, len(shards))
	for i, s := range shards {
		clients[i] = agent.Client(s.ID)
	}
	return newHandler(clients, handlerConfig{
		Timeout: timeout,
		Healthz: func(ctx context.Context) error { return healthz(ctx, agent, shards, gatherBy) },
		Status:  func(_ context.Context, w io.Writer) error { return writeStatus(w, agent) },
		Registry: func(ctx context.Context, w io.Writer) error {
			st, err := agent.StateLinearizable(ctx)
			if err != nil {
				return err
			}
			return st.Save(w)
		},
	})
}

// gatherWait is how long after its start a node waits, at most, for the
// kv shards' leaders to gather (-affinity) before it says it is ready.
// A shard takes no proposals while its leadership moves, and a write that a
// follower forwarded to the old leader then times out with its outcome
// unknown; the moves come right after each shard's first election, so a
// node that waits for them keeps its first clients out of their way. The
// wait is bounded so that a leader that cannot move (its host lags) delays
// readiness by seconds, not for good.
const gatherWait = 3 * time.Second

// healthz says whether this node can serve: the agent is ready, a
// linearizable read barrier (ReadIndex) completes on every kv shard, through
// the local replica or the host a request would be forwarded to, and, until
// gatherBy, the kv shards' leaders have gathered (Agent.LeadersGathered).
func healthz(ctx context.Context, agent *zongzi.Agent, shards []zongzi.Shard, gatherBy time.Time) error {
	if s := agent.Status(); s != zongzi.AgentStatusReady {
		return fmt.Errorf("agent %s", s)
	}
	for _, s := range shards {
		if _, err := agent.Client(s.ID).Index(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if time.Now().Before(gatherBy) && !agent.LeadersGathered() {
		return errors.New("the kv shards' leaders are moving to the prime shard's leader")
	}
	return nil
}

// shardStatus is one shard in /_status.
type shardStatus struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	Leader    uint64 `json:"leader"`
	Term      uint64 `json:"term"`
	Replica   uint64 `json:"replica"`
	NonVoting bool   `json:"nonVoting"`
}

// writeStatus writes this host's view of its shards from local state.
func writeStatus(w io.Writer, agent *zongzi.Agent) error {
	st := agent.State()
	local := map[uint64]zongzi.Replica{}
	for _, r := range st.HostReplicas(agent.HostID()) {
		local[r.ShardID] = r
	}
	out := struct {
		HostID string        `json:"hostID"`
		Status string        `json:"status"`
		Shards []shardStatus `json:"shards"`
	}{HostID: agent.HostID(), Status: agent.Status().String(), Shards: []shardStatus{}}
	for _, s := range st.Shards() {
		leader, term := agent.Client(s.ID).Leader()
		r := local[s.ID]
		out.Shards = append(out.Shards, shardStatus{ID: s.ID, Name: s.Name, Leader: leader, Term: term, Replica: r.ID, NonVoting: r.IsNonVoting})
	}
	return json.NewEncoder(w).Encode(out)
}

// printRegistryOnce prints the registry snapshot to stdout when every kv
// shard has its replicas active, if this host then leads the prime shard.
func printRegistryOnce(ctx context.Context, agent *zongzi.Agent, shards []zongzi.Shard, stdout io.Writer, log *slog.Logger) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st := agent.State()
		if !shardsPlaced(st, shards) {
			continue
		}
		leader, _ := agent.Client(0).Leader()
		for _, r := range st.HostReplicas(agent.HostID()) {
			if r.ShardID == 0 && r.ID == leader {
				if err := st.Save(stdout); err != nil {
					log.Warn("kv1: print registry", "err", err)
				}
			}
		}
		return
	}
}

// shardsPlaced reports whether every shard has all its replicas active and
// at least one.
func shardsPlaced(st *zongzi.State, shards []zongzi.Shard) bool {
	for _, s := range shards {
		reps := st.ShardReplicas(s.ID)
		if len(reps) == 0 {
			return false
		}
		for _, r := range reps {
			if r.Status != "active" {
				return false
			}
		}
	}
	return true
}
