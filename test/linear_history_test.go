package test

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// linOp is one recorded operation of a linearizable kind: a linearizable or
// leader read, a create, a compare-and-set or a delete.
type linOp struct {
	Client int // porcupine client: a new one after each unknown outcome
	Node   int // the node the request was sent to (kv1proc.Node.N)
	In     linInput
	Out    linOutput
	Call   int64 // nanoseconds since the history started
	Return int64 // linPending when the outcome is unknown
}

// linPending is the return time of an operation whose outcome is unknown: it
// may take effect at any time after its call, so it never returns.
const linPending int64 = math.MaxInt64

// linStaleRead is one successful GET ?stale=true, checked by the weaker rule
// of linCheckStale.
type linStaleRead struct {
	Client int
	Node   int
	Gen    uint64 // the node's incarnation: it changes when the node is killed or started
	Key    string
	Found  bool
	Ver    uint64
	Val    string
	Call   int64
	Return int64
}

// linHistory collects operations from concurrent clients.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []linOp
	stale []linStaleRead
	// refused counts the writes kv1 refused with a plain 503 Unavailable,
	// left out of ops as not applied (see linNeverSent).
	refused atomic.Int64
}

func newLinHistory() *linHistory { return &linHistory{start: time.Now()} }

// now returns the time since the history started, from the monotonic clock.
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *linHistory) add(op linOp) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *linHistory) addStale(r linStaleRead) {
	h.mu.Lock()
	h.stale = append(h.stale, r)
	h.mu.Unlock()
}

// snapshot returns copies of the operations and stale reads so far.
func (h *linHistory) snapshot() ([]linOp, []linStaleRead) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]linOp(nil), h.ops...), append([]linStaleRead(nil), h.stale...)
}

// linPorcupine is linModel as a deterministic porcupine model over sets of
// states.
var linPorcupine = linModel.ToModel()

// linOperations converts ops to porcupine operations. Unknown outcomes
// return after every other operation.
func linOperations(ops []linOp) []porcupine.Operation {
	var last int64
	for _, op := range ops {
		if op.Return != linPending {
			last = max(last, op.Return)
		}
	}
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		ret := op.Return
		if ret == linPending {
			ret = last + 1
		}
		out[i] = porcupine.Operation{ClientId: op.Client, Input: op.In, Call: op.Call, Output: op.Out, Return: ret,
			Metadata: fmt.Sprintf("node %d", op.Node)}
	}
	return out
}

// linCheck checks ops for linearizability within timeout. When the history
// is not linearizable and dir is not empty, it writes porcupine's
// visualisation to a file in dir and returns the file's path.
//
// Writes of unknown outcome make the search slow: each may take effect at
// any time after its call. So linCheck first checks the history without
// those whose value no operation returned. Leaving one out decides that it
// never applied, one of the outcomes it may have had, so a linearization of
// that history is one of the whole history; only a "linearizable" answer is
// taken from it. Otherwise the whole history is checked.
func linCheck(ops []linOp, timeout time.Duration, dir, name string) (porcupine.CheckResult, string, error) {
	if pruned := linWithoutUnseenWrites(ops); len(pruned) < len(ops) {
		if res := porcupine.CheckOperationsTimeout(linPorcupine, linOperations(pruned), timeout); res == porcupine.Ok {
			return res, "", nil
		}
	}
	res, info := porcupine.CheckOperationsVerbose(linPorcupine, linOperations(ops), timeout)
	if res != porcupine.Illegal || dir == "" {
		return res, "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.html", name, time.Now().Format("20060102-150405")))
	return res, path, porcupine.VisualizePath(linPorcupine, info, path)
}

// linWithoutUnseenWrites returns ops without the writes of unknown outcome
// whose value no successful operation returned (values are unique in a
// history).
func linWithoutUnseenWrites(ops []linOp) []linOp {
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Out.Status == linOK {
			seen[op.Out.Val] = true
		}
	}
	out := make([]linOp, 0, len(ops))
	for _, op := range ops {
		if op.In.Kind == linPut && op.Out.Status == linUnknown && !seen[op.In.Val] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// linResolve returns ops in which each write of unknown outcome whose value
// a stale read returned is resolved: it applied, with the version read, no
// later than that read returned. A replica applies only committed entries,
// and values are unique, so the read proves it; left unknown, the write
// could be taken as never applied by the check of linearizable operations,
// while the stale rule accepts its value because it may have applied, and a
// value that replicas showed but the log then lost would pass both. The
// earliest such read counts; a read before the write was sent is left to
// linCheckStale.
func linResolve(ops []linOp, stale []linStaleRead) []linOp {
	first := map[string]linStaleRead{} // by value
	for _, r := range stale {
		if f, ok := first[r.Val]; r.Found && (!ok || r.Return < f.Return) {
			first[r.Val] = r
		}
	}
	out := slices.Clone(ops)
	for i, op := range out {
		r, ok := first[op.In.Val]
		if op.In.Kind != linPut || op.Out.Status != linUnknown || !ok || r.Key != op.In.Key || r.Return < op.Call {
			continue
		}
		out[i].Out = linOutput{Status: linOK, Ver: r.Ver, Val: r.Val}
		out[i].Return = r.Return
	}
	return out
}

// linLoss is an acknowledged write that a final read contradicts.
type linLoss struct {
	W   linOp
	Why string // what the final read returned
}

// String describes the loss, for an error message.
func (l linLoss) String() string { return linDescribe(l.W.In, l.W.Out) + ": " + l.Why }

// linLost returns the acknowledged writes that the final state of their key
// contradicts: a write whose version the final read does not reach, a write
// whose key is gone with no delete that may have come after it, or a delete
// whose record is still there. final holds the result of a linearizable read
// of every key made after all acknowledged operations returned.
func linLost(ops []linOp, final map[string]linOutput) []linLoss {
	var lost []linLoss
	for _, w := range ops {
		if w.In.Kind == linGet || w.Out.Status != linOK {
			continue
		}
		f, ok := final[w.In.Key]
		if !ok {
			lost = append(lost, linLoss{w, "no final read"})
			continue
		}
		switch {
		case w.In.Kind == linDel:
			if f.Status == linOK && f.Ver <= w.Out.Ver {
				lost = append(lost, linLoss{w, fmt.Sprintf("final read v%d", f.Ver)})
			}
		case f.Status == linOK:
			if f.Ver < w.Out.Ver || f.Ver == w.Out.Ver && f.Val != w.Out.Val {
				lost = append(lost, linLoss{w, fmt.Sprintf("final read v%d=%q", f.Ver, f.Val)})
			}
		case !linMayDeleteAfter(ops, w):
			lost = append(lost, linLoss{w, "final read 404 and no delete after it"})
		}
	}
	return lost
}

// linMayDeleteAfter reports whether some delete of w's key, successful or
// with an unknown outcome, may have taken effect after w.
func linMayDeleteAfter(ops []linOp, w linOp) bool {
	for _, d := range ops {
		if d.In.Kind == linDel && d.In.Key == w.In.Key && (d.Out.Status == linOK || d.Out.Status == linUnknown) &&
			d.Return >= w.Call {
			return true
		}
	}
	return false
}

// linCheckStale checks stale reads by the weaker rule they promise: a value
// read was written to that key by a write that succeeded (with that
// version) or whose outcome is unknown, sent before the read returned, and
// one client's reads of a key
// from one incarnation of a node never go back in version. A "not found"
// may follow anything, since a delete may have happened.
func linCheckStale(ops []linOp, stale []linStaleRead) []string {
	type write struct {
		key   string
		ver   uint64
		known bool
		call  int64
	}
	written := map[string]write{}
	for _, op := range ops {
		if op.In.Kind == linPut && (op.Out.Status == linOK || op.Out.Status == linUnknown) {
			written[op.In.Val] = write{op.In.Key, op.Out.Ver, op.Out.Status == linOK, op.Call}
		}
	}
	sorted := append([]linStaleRead(nil), stale...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	type seq struct {
		client, node int
		gen          uint64
		key          string
	}
	seen := map[seq]uint64{}
	var bad []string
	for _, r := range sorted {
		if !r.Found {
			continue
		}
		desc := fmt.Sprintf("client %d, node %d: stale get %s -> v%d=%q", r.Client, r.Node, r.Key, r.Ver, r.Val)
		w, ok := written[r.Val]
		switch {
		case !ok || w.key != r.Key:
			bad = append(bad, desc+": never written")
		case w.known && w.ver != r.Ver:
			bad = append(bad, fmt.Sprintf("%s: written as v%d", desc, w.ver))
		case w.call > r.Return:
			bad = append(bad, desc+": written after the read returned")
		}
		s := seq{r.Client, r.Node, r.Gen, r.Key}
		if prev := seen[s]; r.Ver < prev {
			bad = append(bad, fmt.Sprintf("%s: after v%d", desc, prev))
		}
		seen[s] = max(seen[s], r.Ver)
	}
	return bad
}

// linUnwritten returns the keys of which ops hold no acknowledged create
// or compare-and-set.
func linUnwritten(ops []linOp, keys []string) []string {
	written := map[string]bool{}
	for _, op := range ops {
		if op.In.Kind == linPut && op.Out.Status == linOK {
			written[op.In.Key] = true
		}
	}
	var out []string
	for _, k := range keys {
		if !written[k] {
			out = append(out, k)
		}
	}
	return out
}

// linUnread returns the kinds of read (linearizable, leader, stale) of
// which no answer in ops or stale returned a record. A check of reads that
// all failed, or all found nothing, checks nothing: a kv1 whose stale reads
// always answer 404 or 503 would pass it.
func linUnread(ops []linOp, stale []linStaleRead) []string {
	var plain, leader, found bool
	for _, op := range ops {
		if op.In.Kind == linGet && op.Out.Status == linOK {
			plain = plain || op.In.Mode == ""
			leader = leader || op.In.Mode == "leader"
		}
	}
	for _, r := range stale {
		found = found || r.Found
	}
	var out []string
	for _, k := range []struct {
		name string
		ok   bool
	}{{"linearizable read", plain}, {"leader read", leader}, {"stale read", found}} {
		if !k.ok {
			out = append(out, k.name)
		}
	}
	return out
}

// linKeys returns keys and the other keys of ops, sorted.
func linKeys(ops []linOp, keys []string) []string {
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	for _, op := range ops {
		set[op.In.Key] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// linCount returns the number of operations and of those with an unknown
// outcome.
func linCount(ops []linOp) (n, unknown int) {
	for _, op := range ops {
		if op.Out.Status == linUnknown {
			unknown++
		}
	}
	return len(ops), unknown
}

// linFirst returns at most n lines of list, joined, for an error message.
func linFirst(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], "\n") + fmt.Sprintf("\n… and %d more", len(list)-n)
	}
	return strings.Join(list, "\n")
}
