package test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// Compact constructors of recorded operations, for the checker's own tests.

func linG(key string, call, ret int64, out linOutput) linOp {
	return linOp{In: linInput{Kind: linGet, Key: key}, Out: out, Call: call, Return: ret}
}

func linC(key, val string, call, ret int64, out linOutput) linOp {
	return linOp{In: linInput{Kind: linPut, Key: key, Val: val}, Out: out, Call: call, Return: ret}
}

func linCAS(key string, ver uint64, val string, call, ret int64, out linOutput) linOp {
	return linOp{In: linInput{Kind: linPut, Key: key, HasVer: true, Ver: ver, Val: val}, Out: out, Call: call, Return: ret}
}

func linD(key string, ver uint64, call, ret int64, out linOutput) linOp {
	return linOp{In: linInput{Kind: linDel, Key: key, HasVer: ver != 0, Ver: ver}, Out: out, Call: call, Return: ret}
}

func linOk(ver uint64, val string) linOutput { return linOutput{Status: linOK, Ver: ver, Val: val} }

var (
	lin404 = linOutput{Status: linNotFound}
	linUnk = linOutput{Status: linUnknown}
)

func linConflict(stored uint64) linOutput { return linOutput{Status: linMismatch, Ver: stored} }

// TestLinearModel checks the model on small histories, legal and not: a
// checker that accepts everything would pass every chaos scenario.
func TestLinearModel(t *testing.T) {
	P := linPending
	cases := []struct {
		name string
		ok   bool
		ops  []linOp
	}{
		{"create then read", true, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linG("/k", 2, 3, linOk(5, "a"))}},
		{"acknowledged create lost", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linG("/k", 2, 3, lin404)}},
		{"read concurrent with create", true, []linOp{linC("/k", "a", 0, 10, linOk(5, "a")), linG("/k", 2, 3, lin404)}},
		{"stale linearizable read", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, 3, linOk(7, "b")), linG("/k", 4, 5, linOk(5, "a"))}},
		{"read of a value never written", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linG("/k", 2, 3, linOk(5, "x"))}},
		{"two creates both succeed", false, []linOp{linC("/k", "a", 0, 10, linOk(5, "a")), linC("/k", "b", 0, 10, linOk(6, "b"))}},
		{"create on an existing key mismatches", true, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linC("/k", "b", 2, 3, linConflict(5))}},
		{"mismatch with a wrong stored version", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linC("/k", "b", 2, 3, linConflict(4))}},
		{"cas on the stored version mismatches", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, 3, linConflict(5))}},
		{"cas on a missing key", true, []linOp{linCAS("/k", 3, "b", 0, 1, linConflict(0))}},
		{"write version goes back", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, 3, linOk(4, "b"))}},
		{"delete then read", true, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, 3, linOk(5, "a")), linG("/k", 4, 5, lin404)}},
		{"acknowledged delete undone", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 5, 2, 3, linOk(5, "a")), linG("/k", 4, 5, linOk(5, "a"))}},
		{"delete answers another record", false, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, 3, linOk(5, "b"))}},
		{"delete of a missing key", true, []linOp{linD("/k", 0, 0, 1, lin404), linD("/k", 9, 2, 3, lin404)}},
		{"unknown create applied", true, []linOp{linC("/k", "a", 0, P, linUnk), linG("/k", 2, 3, linOk(9, "a")), linCAS("/k", 9, "b", 4, 5, linOk(11, "b"))}},
		{"unknown create not applied", true, []linOp{linC("/k", "a", 0, P, linUnk), linG("/k", 2, 3, lin404)}},
		{"unknown create applied late", true, []linOp{linC("/k", "a", 0, P, linUnk), linG("/k", 2, 3, lin404), linG("/k", 4, 5, linOk(9, "a"))}},
		{"unknown create cannot apply twice", false, []linOp{
			linC("/k", "a", 0, P, linUnk), linG("/k", 2, 3, linOk(9, "a")), linD("/k", 0, 4, 5, linOk(9, "a")), linG("/k", 6, 7, linOk(9, "a"))}},
		{"unseen version learned by cas", true, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linCAS("/k", 8, "c", 4, 5, linOk(10, "c")), linG("/k", 6, 7, linOk(10, "c"))}},
		{"unseen version is above the replaced one", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linG("/k", 4, 5, linOk(4, "b"))}},
		{"unseen version learned by mismatch", true, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linC("/k", "c", 4, 5, linConflict(8)), linG("/k", 6, 7, linOk(8, "b"))}},
		{"unseen version contradicted", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linC("/k", "c", 4, 5, linConflict(8)), linG("/k", 6, 7, linOk(9, "b"))}},
		{"unknown delete", true, []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 5, 2, P, linUnk), linG("/k", 4, 5, linOk(5, "a")), linG("/k", 6, 7, lin404)}},
		{"read sees a write before its call", false, []linOp{linG("/k", 0, 1, linOk(5, "a")), linC("/k", "a", 2, 3, linOk(5, "a"))}},
		{"cas succeeds twice on one version", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, 10, linOk(7, "b")), linCAS("/k", 5, "c", 2, 10, linOk(8, "c"))}},
		{"create after a delete", true, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, 3, linOk(5, "a")), linC("/k", "b", 4, 5, linOk(9, "b"))}},
		{"create after a delete reuses a version", false, []linOp{
			linC("/k", "a", 0, 1, linOk(1, "a")), linCAS("/k", 1, "b", 2, 3, linOk(2, "b")), linD("/k", 0, 4, 5, linOk(2, "b")),
			linC("/k", "c", 6, 7, linOk(1, "c")), linCAS("/k", 1, "d", 8, 9, linOk(2, "d"))}},
		{"create after an unknown delete goes back", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, P, linUnk), linC("/k", "b", 4, 5, linOk(3, "b"))}},
		{"create after an unknown delete", true, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, P, linUnk), linC("/k", "b", 4, 5, linOk(6, "b"))}},
		{"keys are independent", true, []linOp{linC("/a", "x", 0, 1, linOk(5, "x")), linC("/b", "y", 2, 3, linOk(6, "y")), linG("/a", 4, 5, linOk(5, "x"))}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			res, _, err := linCheck(tc.ops, 10*time.Second, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]porcupine.CheckResult{true: porcupine.Ok, false: porcupine.Illegal}[tc.ok]; res != want {
				t.Errorf("check = %s, want %s", res, want)
			}
		})
	}
}

// TestLinearVisualization checks that a failing history is saved as
// porcupine's HTML visualisation.
func TestLinearVisualization(t *testing.T) {
	ops := []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linG("/k", 2, 3, lin404)}
	res, path, err := linCheck(ops, 10*time.Second, t.TempDir(), "lost")
	if err != nil || res != porcupine.Illegal {
		t.Fatalf("check = %s, %v; want Illegal", res, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualisation %s: %v, %d bytes", path, err, len(b))
	}
}

// TestLinearLost checks the count of acknowledged writes that the final
// state contradicts.
func TestLinearLost(t *testing.T) {
	P := linPending
	cases := []struct {
		name  string
		ops   []linOp
		final linOutput
		lost  int
	}{
		{"kept", []linOp{linC("/k", "a", 0, 1, linOk(5, "a"))}, linOk(5, "a"), 0},
		{"overwritten", []linOp{linC("/k", "a", 0, 1, linOk(5, "a"))}, linOk(9, "b"), 0},
		{"version went back", []linOp{linC("/k", "a", 0, 1, linOk(5, "a"))}, linOk(3, "z"), 1},
		{"gone", []linOp{linC("/k", "a", 0, 1, linOk(5, "a"))}, lin404, 1},
		{"deleted after", []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, 3, linOk(5, "a"))}, lin404, 0},
		{"maybe deleted after", []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linD("/k", 0, 2, P, linUnk)}, lin404, 0},
		{"maybe deleted later", []linOp{linD("/k", 0, 0, P, linUnk), linC("/k", "a", 2, 3, linOk(5, "a"))}, lin404, 0},
		{"deleted long before", []linOp{linD("/k", 0, 0, 1, lin404), linC("/k", "a", 2, 3, linOk(5, "a"))}, lin404, 1},
		{"delete undone", []linOp{linD("/k", 0, 0, 1, linOk(5, "a"))}, linOk(5, "a"), 1},
	}
	for _, tc := range cases {
		if got := linLost(tc.ops, map[string]linOutput{"/k": tc.final}); len(got) != tc.lost {
			t.Errorf("%s: lost %q, want %d", tc.name, got, tc.lost)
		}
	}
}

// TestLinearStale checks the weaker rule of stale reads.
func TestLinearStale(t *testing.T) {
	writes := []linOp{linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, 3, linOk(7, "b")), linC("/j", "c", 0, linPending, linUnk)}
	read := func(node int, gen uint64, key string, ver uint64, val string, call int64) linStaleRead {
		return linStaleRead{Client: 1, Node: node, Gen: gen, Key: key, Found: val != "", Ver: ver, Val: val, Call: call, Return: call + 1}
	}
	cases := []struct {
		name  string
		reads []linStaleRead
		bad   int
	}{
		{"forward", []linStaleRead{read(1, 0, "/k", 5, "a", 1), read(1, 0, "/k", 7, "b", 2)}, 0},
		{"unknown write", []linStaleRead{read(1, 0, "/j", 42, "c", 1)}, 0},
		{"not found after anything", []linStaleRead{read(1, 0, "/k", 7, "b", 1), read(1, 0, "/k", 0, "", 2)}, 0},
		{"never written", []linStaleRead{read(1, 0, "/k", 6, "x", 1)}, 1},
		{"written to another key", []linStaleRead{read(1, 0, "/j", 5, "a", 1)}, 1},
		{"wrong version", []linStaleRead{read(1, 0, "/k", 6, "a", 1)}, 1},
		{"backwards", []linStaleRead{read(1, 0, "/k", 7, "b", 1), read(1, 0, "/k", 5, "a", 2)}, 1},
		{"backwards on another node", []linStaleRead{read(1, 0, "/k", 7, "b", 1), read(2, 0, "/k", 5, "a", 2)}, 0},
		{"written after the read returned", []linStaleRead{read(1, 0, "/k", 7, "b", 0)}, 1},
		{"written while the read ran", []linStaleRead{read(1, 0, "/k", 7, "b", 1)}, 0},
		{"unknown write sent after the read returned", []linStaleRead{{Client: 1, Node: 1, Key: "/j", Found: true, Ver: 9, Val: "c", Call: -5, Return: -1}}, 1},
		{"backwards after a restart", []linStaleRead{read(1, 0, "/k", 7, "b", 1), read(1, 2, "/k", 5, "a", 2)}, 0},
	}
	for _, tc := range cases {
		if got := linCheckStale(writes, tc.reads); len(got) != tc.bad {
			t.Errorf("%s: violations %q, want %d", tc.name, got, tc.bad)
		}
	}
}

// TestLinearParse checks how answers become outcomes.
func TestLinearParse(t *testing.T) {
	put := linInput{Kind: linPut, Key: "/k", Val: "v"}
	cases := []struct {
		in     linInput
		status int
		body   string
		err    error
		want   linOutput
	}{
		{put, 200, `{"key":"/k","ver":6,"val":"v"}` + "\n", nil, linOk(6, "v")},
		{put, 409, "Version mismatch (0 != 6)\n", nil, linConflict(6)},
		{put, 503, "Timeout: the write may or may not have been applied\n", nil, linOutput{Status: linUnknown}},
		{put, 200, `{"key":"/other","ver":6,"val":"v"}`, nil, linOutput{Status: linUnknown}},
		{put, 404, "Not found\n", nil, linOutput{Status: linUnknown}},
		{put, 0, "", errors.New("EOF"), linOutput{Status: linUnknown}},
		{linInput{Kind: linDel, Key: "/k"}, 404, "Not found\n", nil, lin404},
		{linInput{Kind: linGet, Key: "/k"}, 409, "Version mismatch (0 != 6)\n", nil, linOutput{Status: linUnknown}},
	}
	for _, tc := range cases {
		got := linParseOutput(tc.in, tc.status, []byte(tc.body), tc.err)
		got.Why = ""
		if got != tc.want {
			t.Errorf("%d %q: got %+v, want %+v", tc.status, tc.body, got, tc.want)
		}
	}
	if !linNeverSent(0, nil, &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}) ||
		!linNeverSent(http.StatusServiceUnavailable, []byte("Starting: this node is not ready yet, retry shortly\n"), nil) ||
		!linNeverSent(http.StatusServiceUnavailable, []byte("Unavailable: shard 1: apply: zongzi: shard not ready: proposal dropped (no leader)\n"), nil) ||
		linNeverSent(http.StatusServiceUnavailable, []byte("Unavailable: bus 127.0.0.1:1: zongzi: outcome unknown: the call failed: EOF; the write may or may not have been applied\n"), nil) ||
		linNeverSent(http.StatusServiceUnavailable, []byte("Timeout: the write may or may not have been applied\n"), nil) ||
		linNeverSent(0, nil, errors.New("EOF")) {
		t.Error("linNeverSent: wrong")
	}
}

// TestLinearWithoutUnseenWrites checks which operations the first, faster
// check leaves out: only writes of unknown outcome that nobody saw.
func TestLinearWithoutUnseenWrites(t *testing.T) {
	P := linPending
	ops := []linOp{
		linC("/k", "a", 0, 1, linOk(5, "a")),
		linCAS("/k", 5, "seen", 2, P, linUnk),
		linCAS("/k", 5, "unseen", 2, P, linUnk),
		linD("/k", 0, 3, P, linUnk),
		linG("/k", 4, 5, linOk(9, "seen")),
	}
	got := linWithoutUnseenWrites(ops)
	var vals []string
	for _, op := range got {
		vals = append(vals, fmt.Sprintf("%d:%s", op.In.Kind, op.In.Val))
	}
	if want := "1:a 1:seen 2: 0:"; strings.Join(vals, " ") != want {
		t.Fatalf("kept %q, want %q", strings.Join(vals, " "), want)
	}
}

// An unknown write that nobody read can still be the only explanation of
// what others saw: the check without it fails, and the whole history must
// then be checked, not reported as a violation.
func TestLinearUnseenWriteStillCounts(t *testing.T) {
	ops := []linOp{
		linC("/k", "a", 0, 1, linOk(5, "a")),
		linCAS("/k", 5, "b", 2, linPending, linUnk), // applied as v8, never read
		linCAS("/k", 8, "c", 4, 5, linOk(10, "c")),
	}
	if res := porcupine.CheckOperations(linPorcupine, linOperations(linWithoutUnseenWrites(ops))); res {
		t.Fatal("the history without the unknown write is linearizable; the test needs one that is not")
	}
	if res, _, err := linCheck(ops, 10*time.Second, "", ""); err != nil || res != porcupine.Ok {
		t.Fatalf("check = %s, %v; want Ok", res, err)
	}
}

// TestLinearStaleAnswers checks that a stale read's answer is either
// recorded or, when kv1 should never give it, reported: one that is
// silently dropped leaves the stale rule nothing to check.
func TestLinearStaleAnswers(t *testing.T) {
	cases := []struct {
		status   int
		body     string
		recorded bool
		odd      bool
	}{
		{200, `{"key":"/k","ver":6,"val":"v"}` + "\n", true, false},
		{404, "Not found\n", true, false},
		{503, "Unavailable: shard 1: zongzi: shard not ready\n", false, false},
		{500, "Internal error: undecodable result from the state machine\n", false, true},
		{409, "Version mismatch (0 != 6)\n", false, true},
		{200, "not json\n", false, true},
		{200, `{"key":"/other","ver":6,"val":"v"}` + "\n", false, true},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		target := linTarget{Node: &kv1proc.Node{N: 1, HTTP: srv.Listener.Addr().String()}, Gen: new(atomic.Uint64)}
		c := &linClient{timeout: linRequestTimeout}
		h := newLinHistory()
		c.staleRead(t.Context(), target, "/k", h)
		srv.Close()
		_, stale := h.snapshot()
		if got := len(stale) == 1; got != tc.recorded || (len(c.odd) > 0) != tc.odd {
			t.Errorf("%d %q: recorded %v, odd %q; want recorded %v, odd %v", tc.status, tc.body, got, c.odd, tc.recorded, tc.odd)
		}
	}
}

// TestLinearUnread checks that a history in which some kind of read never
// returned a record is reported: its checks would pass whatever kv1 did.
func TestLinearUnread(t *testing.T) {
	get := func(mode string, out linOutput) linOp {
		return linOp{In: linInput{Kind: linGet, Key: "/k", Mode: mode}, Out: out}
	}
	found := linStaleRead{Key: "/k", Found: true, Ver: 5, Val: "a"}
	missing := linStaleRead{Key: "/k"}
	cases := []struct {
		name  string
		ops   []linOp
		stale []linStaleRead
		want  string
	}{
		{"all kinds", []linOp{get("", linOk(5, "a")), get("leader", linOk(5, "a"))}, []linStaleRead{missing, found}, ""},
		{"no reads", nil, nil, "linearizable read,leader read,stale read"},
		{"reads found nothing", []linOp{get("", lin404), get("leader", lin404)}, []linStaleRead{missing}, "linearizable read,leader read,stale read"},
		{"only the final reads", []linOp{get("final", linOk(5, "a")), get("leader", linOk(5, "a"))}, []linStaleRead{found}, "linearizable read"},
	}
	for _, tc := range cases {
		if got := strings.Join(linUnread(tc.ops, tc.stale), ","); got != tc.want {
			t.Errorf("%s: unread %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestLinearResolve checks that a stale read of a write whose outcome is
// unknown counts as proof that it applied: a value that a replica showed
// and the linearizable reads then never saw is a violation.
func TestLinearResolve(t *testing.T) {
	P := linPending
	stale := []linStaleRead{{Client: 9, Node: 2, Key: "/k", Found: true, Ver: 8, Val: "b", Call: 3, Return: 4}}
	cases := []struct {
		name string
		ok   bool
		ops  []linOp
	}{
		{"seen, then read by all", true, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linG("/k", 5, 6, linOk(8, "b"))}},
		{"seen, then lost", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linG("/k", 5, 6, linOk(5, "a"))}},
		{"seen with another version", false, []linOp{
			linC("/k", "a", 0, 1, linOk(5, "a")), linCAS("/k", 5, "b", 2, P, linUnk), linG("/k", 5, 6, linOk(9, "b"))}},
	}
	for _, tc := range cases {
		res, _, err := linCheck(linResolve(tc.ops, stale), 10*time.Second, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]porcupine.CheckResult{true: porcupine.Ok, false: porcupine.Illegal}[tc.ok]; res != want {
			t.Errorf("%s: check = %s, want %s", tc.name, res, want)
		}
	}
	ops := []linOp{linCAS("/k", 5, "b", 5, P, linUnk)} // sent after the read returned
	if got := linResolve(ops, stale); got[0].Out.Status != linUnknown {
		t.Errorf("a write sent after the read returned was resolved: %+v", got[0])
	}
}
