package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// TestChaos runs the linearizability checker against real kv1 clusters, one
// subtest per fault scenario: a concurrent workload runs while the fault is
// injected and healed, then every node is brought back, each key is read
// once more on every node, and the history is checked with porcupine,
// acknowledged writes are checked for loss, stale reads by their weaker
// rule, and the registry snapshot must converge on every running host. A
// write of unknown outcome whose value a stale read returned counts as
// applied (linResolve). Every key must have had an acknowledged write and
// every kind of read (linearizable, leader, stale) must have returned a
// record, else the checks had nothing to check; an answer kv1 should never
// give (a 500, a record of another key) fails the scenario.
//
// By default each scenario runs a few seconds of workload (what `make test`
// runs). CHAOS_DURATION sets the workload's duration per scenario (e.g.
// 60s, what `make chaos` runs); from 20 s on, clusters have four shards
// instead of two, a fault round comes every 20 s and shards snapshot every
// 1,000 entries instead of 100;
// CHAOS_SUMMARY names a file to write the per-scenario summary to as JSON;
// CHAOS_ARTIFACTS the directory where a failing history's visualisation and
// the nodes' logs are saved (default: a zongzi-chaos directory under the
// system's temporary directory).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kv1 clusters; skipped in -short mode")
	}
	cfg := chaosConfigFromEnv(t)
	bin := kv1Bin
	var sums []chaosSummary
	for _, sc := range chaosScenarios {
		t.Run(sc.Name, func(t *testing.T) {
			sum := chaosRunScenario(t, bin, cfg, sc)
			t.Log(sum.line())
			sums = append(sums, sum)
		})
	}
	for _, s := range sums {
		t.Log(s.line())
	}
	if cfg.Summary != "" {
		b, err := json.MarshalIndent(sums, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.Summary, append(b, '\n'), 0o644)
		}
		if err != nil {
			t.Errorf("write summary: %v", err)
		}
	}
}

// chaosConfig is how long and how hard the scenarios run.
type chaosConfig struct {
	Duration     time.Duration // workload per scenario
	Rounds       int           // fault rounds per scenario
	Shards       int           // kv shards of each cluster
	Clients      int
	Keys         int
	CheckTimeout time.Duration // porcupine's budget
	Snapshot     int           // kv1's -snap: entries between snapshots
	Artifacts    string        // where failing histories and logs go
	Summary      string        // JSON summary file, if any
}

// chaosSnapshotEntries is how often the chaos clusters' shards take a
// snapshot (kv1's -snap): often enough that snapshots are taken, sent to
// lagging replicas and recovered from while faults strike, which Zongzi's
// default of 100,000 entries would seldom do in a run.
const chaosSnapshotEntries = 1000

// chaosShortSnapshotEntries is the same for runs shorter than 20 s (the
// CI run): a shard there has a few hundred entries when the fault strikes,
// so at chaosSnapshotEntries no node would ever recover from a snapshot,
// and a recovery that loses records would pass.
const chaosShortSnapshotEntries = 100

// chaosColdKeys is how many keys each client of a scenario creates once
// and leaves alone: a replica that loses one of them (in a snapshot, in a
// restart) keeps the loss until the final reads, where the contended keys,
// deleted and created again all the time, would soon hide it.
const chaosColdKeys = 25

// chaosShortDuration is the workload per scenario of the CI run.
const chaosShortDuration = 4 * time.Second

func chaosConfigFromEnv(t *testing.T) chaosConfig {
	cfg := chaosConfig{
		Duration: chaosShortDuration, Rounds: 1, Shards: 2, Clients: 8, Keys: 5,
		CheckTimeout: 30 * time.Second,
		Snapshot:     chaosShortSnapshotEntries,
		Artifacts:    chaosOr(os.Getenv("CHAOS_ARTIFACTS"), filepath.Join(os.TempDir(), "zongzi-chaos")),
		Summary:      os.Getenv("CHAOS_SUMMARY"),
	}
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a positive duration such as 60s", s)
		}
		cfg.Duration = d
	}
	if cfg.Duration >= 20*time.Second {
		cfg.Rounds = int(min(cfg.Duration/(20*time.Second), 10))
		cfg.Shards = 4
		cfg.CheckTimeout = 5 * time.Minute
		cfg.Snapshot = chaosSnapshotEntries
	}
	return cfg
}

// chaosOr returns a, or b when a is empty.
func chaosOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// chaosScenario is a cluster size and a fault injected while the workload
// runs.
type chaosScenario struct {
	Name  string
	Peers int
	// Inject injects the fault and returns the function that heals it;
	// nil for a scenario without faults.
	Inject func(ctx context.Context, r *chaosRun) (heal func(ctx context.Context) error, err error)
	// Hold is how long the fault lasts, given the length of a round;
	// nil: a third of the round.
	Hold func(round time.Duration) time.Duration
}

// chaosPause is how long a paused leader stays paused: many election
// timeouts (kv1's followers campaign after 200 to 400 ms), and longer than a
// client's request timeout.
const chaosPause = 2500 * time.Millisecond

// chaosScenarios are the scenarios of TestChaos.
var chaosScenarios = []chaosScenario{
	{Name: "none-3", Peers: 3},
	{Name: "none-5", Peers: 5},
	{Name: "follower-kill", Peers: 3, Inject: func(ctx context.Context, r *chaosRun) (func(context.Context) error, error) {
		n, err := r.follower(ctx)
		if err != nil {
			return nil, err
		}
		return r.killAndRestart(n)
	}},
	{Name: "leader-kill", Peers: 3, Inject: func(ctx context.Context, r *chaosRun) (func(context.Context) error, error) {
		n, err := r.leader(ctx, r.busiestShard())
		if err != nil {
			return nil, err
		}
		return r.killAndRestart(n)
	}},
	{Name: "leader-pause", Peers: 3, Hold: func(time.Duration) time.Duration { return chaosPause },
		Inject: func(ctx context.Context, r *chaosRun) (func(context.Context) error, error) {
			n, err := r.leader(ctx, r.busiestShard())
			if err != nil {
				return nil, err
			}
			r.logf("SIGSTOP node %d", n.N)
			if err := r.c.Pause(n); err != nil {
				return nil, err
			}
			return func(context.Context) error {
				r.logf("SIGCONT node %d", n.N)
				return r.c.Signal(n, syscall.SIGCONT)
			}, nil
		}},
	{Name: "cluster-kill", Peers: 3, Inject: func(ctx context.Context, r *chaosRun) (func(context.Context) error, error) {
		for _, n := range r.running() {
			if err := r.kill(n); err != nil {
				return nil, err
			}
		}
		return func(context.Context) error { return r.startAll() }, nil
	}},
	{Name: "nonvoting-join-leave", Peers: 3, Hold: func(round time.Duration) time.Duration { return round / 2 },
		Inject: func(ctx context.Context, r *chaosRun) (func(context.Context) error, error) {
			n, err := r.c.Add()
			if err != nil {
				return nil, err
			}
			r.gens[n] = new(atomic.Uint64)
			r.logf("start non-voting node %d", n.N)
			if err := r.c.Start(n); err != nil {
				return nil, err
			}
			// Clients use the new node once it serves.
			joined := make(chan struct{})
			go func() {
				defer close(joined)
				if err := r.c.WaitHealthy(ctx, n); err != nil {
					r.t.Errorf("non-voting node %d: %v", n.N, err)
					return
				}
				r.targets.add(linTarget{Node: n, Gen: r.gens[n]})
				st, _ := n.HostStatus(ctx)
				r.logf("non-voting node %d serves clients; its replicas: %+v", n.N, st.Shards)
			}()
			return func(context.Context) error {
				<-joined
				r.targets.remove(n)
				r.logf("stop (SIGTERM) non-voting node %d", n.N)
				return r.c.Stop(n)
			}, nil
		}},
}

// chaosRun is one scenario's cluster and the workload's view of it. Only
// the test's goroutine uses its methods.
type chaosRun struct {
	t       *testing.T
	c       *kv1proc.Cluster
	start   time.Time
	gens    map[*kv1proc.Node]*atomic.Uint64 // see linTarget
	killed  map[*kv1proc.Node]bool           // nodes to start again
	targets *linTargets
	keys    []string
}

// logf logs with the time since the workload started.
func (r *chaosRun) logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("%6.2fs "+format, append([]any{time.Since(r.start).Seconds()}, args...)...)
}

// running returns the nodes whose process is running (paused or not).
func (r *chaosRun) running() []*kv1proc.Node {
	var out []*kv1proc.Node
	for _, n := range r.c.Nodes {
		if n.PID() != 0 {
			out = append(out, n)
		}
	}
	return out
}

// kill kills n, changing its incarnation first, and marks it to be started
// again.
func (r *chaosRun) kill(n *kv1proc.Node) error {
	r.logf("SIGKILL node %d", n.N)
	r.gens[n].Add(1)
	r.killed[n] = true
	return r.c.Kill(n)
}

// startAll starts again every node that was killed.
func (r *chaosRun) startAll() error {
	for _, n := range r.c.Nodes {
		if !r.killed[n] {
			continue
		}
		r.logf("start node %d", n.N)
		r.gens[n].Add(1)
		if err := r.c.Start(n); err != nil {
			return err
		}
		delete(r.killed, n)
	}
	return nil
}

// killAndRestart kills n and returns the function that starts it again.
func (r *chaosRun) killAndRestart(n *kv1proc.Node) (func(context.Context) error, error) {
	if err := r.kill(n); err != nil {
		return nil, err
	}
	return func(context.Context) error { return r.startAll() }, nil
}

// waitHealthy waits until every running node serves.
func (r *chaosRun) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return r.c.WaitHealthy(ctx, r.running()...)
}

// leads returns the names of the shards that n says it leads.
func (r *chaosRun) leads(ctx context.Context, n *kv1proc.Node) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := n.HostStatus(ctx)
	return st.Leading(), err
}

// leader returns the running node that says it leads shard name, waiting
// for one.
func (r *chaosRun) leader(ctx context.Context, name string) (*kv1proc.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return r.c.LeaderOf(ctx, name)
}

// follower returns a running peer that leads neither the busiest shard nor,
// if there is one, any shard.
func (r *chaosRun) follower(ctx context.Context) (*kv1proc.Node, error) {
	busy := r.busiestShard()
	var best *kv1proc.Node
	fewest := -1
	for _, n := range r.c.Nodes[:len(r.c.Peers)] {
		names, err := r.leads(ctx, n)
		if n.PID() == 0 || err != nil || slices.Contains(names, busy) {
			continue
		}
		if fewest < 0 || len(names) < fewest {
			best, fewest = n, len(names)
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no follower of %s", busy)
	}
	return best, nil
}

// busiestShard returns the name of the shard holding most of the
// workload's keys, placed as kv1 places them.
func (r *chaosRun) busiestShard() string {
	counts := make([]int, r.c.Shards)
	for _, k := range r.keys {
		counts[kv1proc.ShardOf(k, r.c.Shards)]++
	}
	return kv1proc.ShardName(slices.Index(counts, slices.Max(counts)))
}

// chaosFinal is the final reads made on one node.
type chaosFinal struct {
	Node  int
	Reads map[string]linOutput // by key
}

// finalReads reads every key of the history, the workload's keys and the
// cold ones, linearizably on every node that serves clients once every
// node is back, and records the reads in h: a replica that lost a record
// shows even when the others kept it. It returns the outcomes, one
// chaosFinal per node.
func (r *chaosRun) finalReads(ctx context.Context, h *linHistory, client int) ([]chaosFinal, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ops, _ := h.snapshot()
	keys := linKeys(ops, r.keys)
	r.targets.mu.Lock()
	targets := slices.Clone(r.targets.nodes)
	r.targets.mu.Unlock()
	var finals []chaosFinal
	for i, t := range targets {
		final := chaosFinal{Node: t.Node.N, Reads: map[string]linOutput{}}
		finals = append(finals, final)
		for _, key := range keys {
			for {
				in := linInput{Kind: linGet, Key: key, Mode: "final"}
				call := h.now()
				code, body, err := linSend(ctx, linRequestTimeout, http.MethodGet, t.Node.URL(key))
				if out := linParseOutput(in, code, body, err); out.Status != linUnknown {
					h.add(linOp{Client: client + i, Node: t.Node.N, In: in, Out: out, Call: call, Return: h.now()})
					final.Reads[key] = out
					break
				}
				if ctx.Err() != nil {
					return finals, fmt.Errorf("final read of %s on node %d: %w", key, t.Node.N, ctx.Err())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return finals, nil
}

// registryConverged waits until every running node answers /_registry
// with the same snapshot.
func (r *chaosRun) registryConverged(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		nodes := r.running()
		snaps := make([]string, len(nodes))
		last = ""
		for i, n := range nodes {
			code, body, err := linSend(ctx, linRequestTimeout, http.MethodGet, n.URL("/_registry"))
			switch {
			case err != nil:
				last = fmt.Sprintf("node %d: %v", n.N, err)
			case code != http.StatusOK:
				last = fmt.Sprintf("node %d: %d %s", n.N, code, strings.TrimSpace(string(body)))
			case i > 0 && string(body) != snaps[0]:
				last = fmt.Sprintf("node %d differs from node %d:\n%s\n---\n%s", n.N, nodes[0].N, body, snaps[0])
			}
			if last != "" {
				break
			}
			snaps[i] = string(body)
		}
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry snapshots did not converge: %s", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// snapshotCounts sums kv1's snapshot counters over the running nodes.
func (r *chaosRun) snapshotCounts(ctx context.Context) (saved, recovered int, err error) {
	for _, n := range r.running() {
		code, body, serr := linSend(ctx, time.Second, http.MethodGet, n.URL("/metrics"))
		if serr == nil && code != http.StatusOK {
			serr = fmt.Errorf("%d %s", code, body)
		}
		if serr != nil {
			return 0, 0, fmt.Errorf("node %d: /metrics: %w", n.N, serr)
		}
		for line := range strings.Lines(string(body)) {
			name, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			c, _ := strconv.Atoi(v)
			switch name {
			case "kv1_snapshots_saved_total":
				saved += c
			case "kv1_snapshots_recovered_total":
				recovered += c
			}
		}
	}
	return saved, recovered, nil
}

// chaosSummary is the outcome of one scenario.
type chaosSummary struct {
	Scenario           string `json:"scenario"`
	Nodes              int    `json:"nodes"`
	Shards             int    `json:"shards"`
	Duration           string `json:"duration"`
	Ops                int    `json:"operations"`
	Indeterminate      int    `json:"indeterminate"`
	Refused            int    `json:"refusedWrites"` // plain 503 Unavailable: taken as not applied
	StaleReads         int    `json:"staleReads"`
	Faults             int    `json:"faults"`
	Linearizable       string `json:"linearizable"` // yes, no, or unknown (the checker ran out of time)
	Lost               int    `json:"acknowledgedWritesLost"`
	StaleViolations    int    `json:"staleViolations"`
	SnapshotsSaved     int    `json:"snapshotsSaved"`     // by the processes running at the end
	SnapshotsRecovered int    `json:"snapshotsRecovered"` // likewise
	Registry           string `json:"registryConverged"`  // yes or no
	Visualization      string `json:"visualization,omitempty"`
}

// line formats s as one stable, greppable line.
func (s chaosSummary) line() string {
	return fmt.Sprintf("chaos: scenario=%s nodes=%d shards=%d duration=%s ops=%d indeterminate=%d refused_writes=%d stale_reads=%d faults=%d linearizable=%s lost=%d stale_violations=%d registry_converged=%s snapshots_saved=%d snapshots_recovered=%d",
		s.Scenario, s.Nodes, s.Shards, s.Duration, s.Ops, s.Indeterminate, s.Refused, s.StaleReads, s.Faults, s.Linearizable, s.Lost, s.StaleViolations, s.Registry, s.SnapshotsSaved, s.SnapshotsRecovered)
}

// chaosRunScenario runs sc on a new cluster and checks its history.
func chaosRunScenario(t *testing.T, bin string, cfg chaosConfig, sc chaosScenario) chaosSummary {
	ctx, cancel := context.WithTimeout(t.Context(), 3*cfg.Duration+5*time.Minute)
	defer cancel()
	c, err := kv1proc.New(bin, t.TempDir(), sc.Peers, cfg.Shards)
	if err != nil {
		t.Fatal(err)
	}
	c.Args = []string{"-snap", fmt.Sprint(cfg.Snapshot)}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			chaosSaveLogs(t, c, filepath.Join(cfg.Artifacts, t.Name()))
		}
	})
	r := &chaosRun{t: t, c: c, gens: map[*kv1proc.Node]*atomic.Uint64{}, killed: map[*kv1proc.Node]bool{}, targets: &linTargets{}}
	for i := range cfg.Keys {
		r.keys = append(r.keys, fmt.Sprintf("/lin-%d", i))
	}
	for _, n := range c.Nodes {
		r.gens[n] = new(atomic.Uint64)
		r.targets.add(linTarget{Node: n, Gen: r.gens[n]})
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	if err := r.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}

	sum := chaosSummary{Scenario: sc.Name, Nodes: sc.Peers, Shards: cfg.Shards, Duration: cfg.Duration.String()}
	w := linWorkload{Clients: cfg.Clients, Keys: r.keys, Cold: chaosColdKeys, Duration: cfg.Duration,
		MaxOps: int(cfg.Duration/time.Millisecond) + 1000, Timeout: linRequestTimeout}
	h := newLinHistory()
	r.start = h.start
	odd := make(chan []string, 1)
	go func() { odd <- w.run(ctx, r.targets, h) }()
	sum.Faults = r.inject(ctx, sc, cfg)
	for _, s := range <-odd {
		t.Errorf("unexpected answer: %s", s)
	}

	// Heal: every node that should run serves again, then each key is
	// read once more, so that a lost write shows in the history.
	if err := r.startAll(); err != nil {
		t.Fatal(err)
	}
	if err := r.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	finals, err := r.finalReads(ctx, h, cfg.Clients*1000)
	if err != nil {
		t.Error(err)
	}
	if sum.SnapshotsSaved, sum.SnapshotsRecovered, err = r.snapshotCounts(ctx); err != nil {
		t.Error(err)
	}
	ops, stale := h.snapshot()
	sum.Ops, sum.Indeterminate = linCount(ops)
	sum.Refused = int(h.refused.Load())
	sum.StaleReads = len(stale)
	r.logUnknown(ops)
	ops = linResolve(ops, stale)

	res, path, err := linCheck(ops, cfg.CheckTimeout, cfg.Artifacts, strings.ReplaceAll(t.Name(), "/", "-"))
	if err != nil {
		t.Errorf("save visualisation: %v", err)
	}
	switch res {
	case porcupine.Ok:
		sum.Linearizable = "yes"
	case porcupine.Illegal:
		sum.Linearizable = "no"
		sum.Visualization = path
		t.Errorf("history of %d operations is not linearizable; visualisation: %s", len(ops), path)
	default:
		// No answer is no evidence: the scenario fails, as a violation would.
		sum.Linearizable = "unknown"
		t.Errorf("porcupine could not decide within %v whether the history of %d operations is linearizable", cfg.CheckTimeout, len(ops))
	}
	// A history without acknowledged writes is linearizable whatever kv1
	// does (a kv1 that refuses every write passes the checks above).
	for _, key := range linUnwritten(ops, r.keys) {
		t.Errorf("no acknowledged write of %s in %d operations: the history proves nothing about it", key, len(ops))
	}
	for _, kind := range linUnread(ops, stale) {
		t.Errorf("no %s returned a record in %d operations: the history proves nothing about them", kind, len(ops))
	}
	var lost []string
	lostWrites := map[linOp]bool{}
	for _, f := range finals {
		for _, l := range linLost(ops, f.Reads) {
			lost = append(lost, fmt.Sprintf("node %d: %s", f.Node, l))
			lostWrites[l.W] = true
		}
	}
	sum.Lost = len(lostWrites)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost (final reads on %d nodes):\n%s", len(lostWrites), len(finals), linFirst(lost, 20))
	}
	bad := linCheckStale(ops, stale)
	sum.StaleViolations = len(bad)
	if len(bad) > 0 {
		t.Errorf("%d stale reads break their rule:\n%s", len(bad), linFirst(bad, 20))
	}
	sum.Registry = "yes"
	if err := r.registryConverged(ctx); err != nil {
		sum.Registry = "no"
		t.Error(err)
	}
	return sum
}

// inject runs sc's fault rounds while the workload runs and returns the
// number of faults injected. Round i injects a quarter into its share of
// the duration, holds, heals and waits for the cluster to serve.
func (r *chaosRun) inject(ctx context.Context, sc chaosScenario, cfg chaosConfig) int {
	if sc.Inject == nil {
		return 0
	}
	round := cfg.Duration / time.Duration(cfg.Rounds)
	hold := round / 3
	if sc.Hold != nil {
		hold = sc.Hold(round)
	}
	faults := 0
	for i := range cfg.Rounds {
		if !chaosSleepUntil(ctx, r.start.Add(time.Duration(i)*round+round/4)) {
			break
		}
		heal, err := sc.Inject(ctx, r)
		if err != nil {
			r.t.Errorf("inject %s: %v", sc.Name, err)
			break
		}
		faults++
		chaosSleepUntil(ctx, time.Now().Add(hold))
		if err := heal(ctx); err != nil {
			r.t.Errorf("heal %s: %v", sc.Name, err)
			break
		}
		if err := r.waitHealthy(ctx); err != nil {
			r.t.Errorf("after %s: %v", sc.Name, err)
			break
		}
		r.logf("healthy again")
	}
	return faults
}

// chaosSleepUntil sleeps until t and reports whether ctx is still live.
func chaosSleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(t)):
		return true
	}
}

// chaosSaveLogs copies the nodes' logs to dir, for a failed scenario.
func chaosSaveLogs(t *testing.T, c *kv1proc.Cluster, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("save logs: %v", err)
		return
	}
	for _, n := range c.Nodes {
		for _, p := range []string{n.Stderr, n.Stdout} {
			if b, err := os.ReadFile(p); err == nil {
				_ = os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
			}
		}
	}
	t.Logf("node logs saved in %s", dir)
}

// hostPort matches the addresses in an error, which logUnknown masks so
// that the errors of one kind count together.
var hostPort = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// logUnknown logs why operations had an unknown outcome, by reason, with
// the span of their calls since the workload started.
func (r *chaosRun) logUnknown(ops []linOp) {
	type span struct{ n, first, last int64 }
	why := map[string]*span{}
	for _, op := range ops {
		if op.Out.Status != linUnknown {
			continue
		}
		reason := hostPort.ReplaceAllString(op.Out.Why, "<addr>")
		s := why[reason]
		if s == nil {
			s = &span{first: op.Call, last: op.Call}
			why[reason] = s
		}
		s.n++
		s.first, s.last = min(s.first, op.Call), max(s.last, op.Call)
	}
	for w, s := range why {
		r.t.Logf("%d unknown outcomes, called %.2f–%.2f s into the workload: %s",
			s.n, time.Duration(s.first).Seconds(), time.Duration(s.last).Seconds(), w)
	}
}
