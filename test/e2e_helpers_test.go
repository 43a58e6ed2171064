package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// Limits of the end-to-end tests: every wait is bounded by one of these.
const (
	e2eStartTimeout = 30 * time.Second // a cluster or node becomes healthy
	e2eCatchUp      = 10 * time.Second // a lagging replica or leader election
	e2eLogTail      = 40               // log lines shown per node on failure
)

// e2eShards is the number of kv shards of every test cluster.
const e2eShards = 4

// e2eNew prepares a cluster of three peers under t.TempDir() without
// starting it. When the test ends every process is killed, and on failure
// the tail of each node's log and stdout is logged.
func e2eNew(t *testing.T, bin string) *kv1proc.Cluster {
	t.Helper()
	c, err := kv1proc.New(bin, t.TempDir(), 3, e2eShards)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("node %d (%s) stderr tail:\n%s", n.N, n.HTTP, e2eTail(n.Stderr, e2eLogTail))
				t.Logf("node %d stdout tail:\n%s", n.N, e2eTail(n.Stdout, 5))
			}
		}
	})
	return c
}

// e2eStart starts a cluster of three peers and waits until every node is
// healthy and every kv shard has a leader.
func e2eStart(t *testing.T, bin string) *kv1proc.Cluster {
	t.Helper()
	c := e2eNew(t, bin)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	return c
}

// e2eWaitHealthy waits until every given node answers /healthz with 200.
func e2eWaitHealthy(t *testing.T, c *kv1proc.Cluster, nodes ...*kv1proc.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eStartTimeout)
	defer cancel()
	if err := c.WaitHealthy(ctx, nodes...); err != nil {
		t.Fatal(err)
	}
}

// e2eTail returns the last n lines of the file at path.
func e2eTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// e2eDo sends method target (a path and query) to n, with form as an
// urlencoded body when non-nil, and fails the test on a transport error.
func e2eDo(t *testing.T, n *kv1proc.Node, method, target string, form url.Values) kv1proc.Response {
	t.Helper()
	r, err := n.Do(t.Context(), method, target, form)
	if err != nil {
		t.Fatalf("node %d: %s %.80s: %v", n.N, method, target, err)
	}
	return r
}

// e2eDoBody sends method target to n with body as it is, of content type
// ctype, and fails the test on a transport error.
func e2eDoBody(t *testing.T, n *kv1proc.Node, method, target, ctype, body string) kv1proc.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, n.URL(target), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("node %d: %s %.80s: %v", n.N, method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("node %d: %s %.80s: %v", n.N, method, target, err)
	}
	return kv1proc.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// e2eClient sends e2eDoBody's requests.
var e2eClient = &http.Client{Timeout: 10 * time.Second}

// e2eGet, e2ePut and e2eDelete send a request without a body.
func e2eGet(t *testing.T, n *kv1proc.Node, target string) kv1proc.Response {
	t.Helper()
	return e2eDo(t, n, http.MethodGet, target, nil)
}

func e2ePut(t *testing.T, n *kv1proc.Node, target string) kv1proc.Response {
	t.Helper()
	return e2eDo(t, n, http.MethodPut, target, nil)
}

func e2eDelete(t *testing.T, n *kv1proc.Node, target string) kv1proc.Response {
	t.Helper()
	return e2eDo(t, n, http.MethodDelete, target, nil)
}

// e2eExpect fails the test unless r has the status and exactly the body.
func e2eExpect(t *testing.T, what string, r kv1proc.Response, status int, body string) {
	t.Helper()
	if r.Status != status || r.Body != body {
		t.Fatalf("%s: got %v, want %d %q", what, r, status, body)
	}
}

// e2eRec is a kv1 record as its JSON body carries it.
type e2eRec struct {
	Key string `json:"key"`
	Ver uint64 `json:"ver"`
	Val string `json:"val"`
}

// JSON returns the exact response body of the record (DESIGN §7).
func (r e2eRec) JSON() string {
	return `{"key":` + e2eJSONString(r.Key) + `,"ver":` + strconv.FormatUint(r.Ver, 10) + `,"val":` + e2eJSONString(r.Val) + "}\n"
}

// e2eJSONString encodes s as a JSON string, as kv1 does: like
// encoding/json, but without escaping <, > and & for HTML.
func e2eJSONString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// e2eExpectRecord fails the test unless r is a 200 record answer with
// Content-Type application/json, the key and the value, and an exact body.
// It returns the record (with its version).
func e2eExpectRecord(t *testing.T, what string, r kv1proc.Response, key, val string) e2eRec {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: got %v, want 200 record", what, r)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	var rec e2eRec
	if err := json.Unmarshal([]byte(r.Body), &rec); err != nil {
		t.Fatalf("%s: body %q: %v", what, r.Body, err)
	}
	want := e2eRec{Key: key, Ver: rec.Ver, Val: val}
	if rec.Ver == 0 || r.Body != want.JSON() {
		t.Fatalf("%s: body %q, want %q with a non-zero ver", what, r.Body, want.JSON())
	}
	return rec
}

// e2eMismatch is the body of a 409 (DESIGN §7).
func e2eMismatch(want, stored uint64) string {
	return fmt.Sprintf("Version mismatch (%d != %d)\n", want, stored)
}

// e2eEventually calls check every 50 ms until it returns "" (success) or
// the timeout passes; then it fails the test with check's last complaint.
func e2eEventually(t *testing.T, timeout time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eReadAll reads rec.Key from every node: linearizably and from the
// leader (both must answer rec at once) and stale (polled until it shows
// rec, as a replica may lag).
func e2eReadAll(t *testing.T, nodes []*kv1proc.Node, rec e2eRec) {
	t.Helper()
	for _, n := range nodes {
		e2eReadOne(t, n, rec)
	}
}

// e2eReadOne reads rec.Key from n in the three modes; see e2eReadAll.
func e2eReadOne(t *testing.T, n *kv1proc.Node, rec e2eRec) {
	t.Helper()
	want := rec.JSON()
	e2eEventually(t, e2eCatchUp, fmt.Sprintf("node %d stale read of %s", n.N, rec.Key), func() string {
		r := e2eGet(t, n, rec.Key+"?stale=true")
		if r.Status == http.StatusOK && r.Body == want {
			return ""
		}
		return r.String()
	})
	for _, q := range []string{"", "?leader=true", "?stale=false&leader=false"} {
		r := e2eGet(t, n, rec.Key+q)
		e2eExpectRecord(t, fmt.Sprintf("node %d GET %s%s", n.N, rec.Key, q), r, rec.Key, rec.Val)
		if r.Body != want {
			t.Fatalf("node %d GET %s%s: %q, want %q", n.N, rec.Key, q, r.Body, want)
		}
	}
}

// e2eAwaitLeaders waits until, on every live node, every shard has a leader
// that is one of the live nodes' replicas, and the kv shards' leaders have
// gathered on the node that leads the prime shard (kv1's -affinity, on by
// default): a write to any shard is then served without waiting for an
// election, or for a leader to move. A write that a follower forwards
// while its shard's leadership moves is dropped, and times out with its
// outcome unknown (503).
func e2eAwaitLeaders(t *testing.T, live []*kv1proc.Node) {
	t.Helper()
	e2eEventually(t, e2eCatchUp, "leaders on live nodes", func() string {
		var views []kv1proc.HostStatus
		home := map[uint64]int{} // replica ID on a live node → that node
		for _, n := range live {
			st, err := n.HostStatus(t.Context())
			if err != nil {
				return err.Error()
			}
			views = append(views, st)
			for _, s := range st.Shards {
				home[s.Replica] = n.N
			}
		}
		for i, st := range views {
			if len(st.Shards) != e2eShards+1 {
				return fmt.Sprintf("node %d lists %d shards", live[i].N, len(st.Shards))
			}
			prime, _ := st.Shard(0)
			for _, s := range st.Shards {
				if node, ok := home[s.Leader]; s.Leader == 0 || !ok {
					return fmt.Sprintf("node %d: shard %d leader %d is not live", live[i].N, s.ID, s.Leader)
				} else if node != home[prime.Leader] {
					return fmt.Sprintf("node %d: shard %d is led from node %d, the prime shard from node %d",
						live[i].N, s.ID, node, home[prime.Leader])
				}
			}
		}
		return ""
	})
}

// e2eRegistry is a parsed /_registry answer (DESIGN §4).
type e2eRegistry struct {
	Header struct {
		Index    uint64 `json:"index"`
		Hosts    int    `json:"hosts"`
		Shards   int    `json:"shards"`
		Replicas int    `json:"replicas"`
	}
	Hosts []struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		APIAddress  string `json:"apiAddress"`
		RaftAddress string `json:"raftAddress"`
	}
	Shards []struct {
		ID   uint64            `json:"id"`
		Name string            `json:"name"`
		Tags map[string]string `json:"tags"`
	}
	Replicas []struct {
		ID          uint64 `json:"id"`
		HostID      string `json:"hostID"`
		ShardID     uint64 `json:"shardID"`
		IsNonVoting bool   `json:"isNonVoting"`
		Status      string `json:"status"`
	}
}

// e2eGetRegistry reads and parses n's /_registry: a header line, then as
// many host, shard and replica lines as the header counts.
func e2eGetRegistry(t *testing.T, n *kv1proc.Node) e2eRegistry {
	t.Helper()
	r := e2eGet(t, n, "/_registry")
	if r.Status != http.StatusOK {
		t.Fatalf("node %d /_registry: %v", n.N, r)
	}
	var reg e2eRegistry
	dec := json.NewDecoder(strings.NewReader(r.Body))
	if err := dec.Decode(&reg.Header); err != nil {
		t.Fatalf("node %d /_registry header: %v\n%s", n.N, err, r.Body)
	}
	h := reg.Header
	e2eDecodeN(t, dec, h.Hosts, &reg.Hosts)
	e2eDecodeN(t, dec, h.Shards, &reg.Shards)
	e2eDecodeN(t, dec, h.Replicas, &reg.Replicas)
	if dec.More() {
		t.Fatalf("node %d /_registry: lines after the %d replicas:\n%s", n.N, h.Replicas, r.Body)
	}
	if !strings.HasSuffix(r.Body, "\n") || strings.Count(r.Body, "\n") != 1+h.Hosts+h.Shards+h.Replicas {
		t.Fatalf("node %d /_registry: want one JSON object per line:\n%s", n.N, r.Body)
	}
	return reg
}

// e2eDecodeN decodes n JSON values from dec into the slice *dst.
func e2eDecodeN[T any](t *testing.T, dec *json.Decoder, n int, dst *[]T) {
	t.Helper()
	for range n {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("/_registry: %v", err)
		}
		*dst = append(*dst, v)
	}
}

// e2eRegistryPrinters returns the nodes whose stdout holds a registry
// snapshot header line with the counts of a formed 3-node cluster.
func e2eRegistryPrinters(nodes []*kv1proc.Node) []int {
	const want = `"hosts":3,"shards":5,"replicas":15,`
	var printers []int
	for _, n := range nodes {
		b, _ := os.ReadFile(n.Stdout)
		for line := range bytes.Lines(b) {
			if bytes.HasPrefix(line, []byte(`{"index":`)) && bytes.Contains(line, []byte(want)) {
				printers = append(printers, n.N)
				break
			}
		}
	}
	return printers
}
