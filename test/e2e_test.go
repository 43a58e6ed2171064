package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/freeport"
	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// TestKV1 checks that the kv1 example works as its README and DESIGN §7
// say, on real three-node clusters of real processes over real HTTP. The
// binary is built once; each subtest starts its own cluster under its
// t.TempDir() and kills it when done.
func TestKV1(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kv1 clusters; skipped in -short mode")
	}
	bin := kv1Bin
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"README", e2eREADME},
		{"FormBody", e2eFormBody},
		{"Errors", e2eErrors},
		{"ServerPaths", e2eServerPaths},
		{"NonVoting", e2eNonVoting},
		{"Crash", e2eCrash},
		{"Starting", e2eStarting},
		{"Timeout", e2eTimeout},
		{"Overload", e2eOverload},
		{"ShardCount", e2eShardCount},
		{"OtherCluster", e2eOtherCluster},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, bin) })
	}
}

// e2eREADME follows the README's curl sequence of creates and
// compare-and-sets, then reads the newest value from every node in every
// read mode.
func e2eREADME(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n1 := c.Nodes[0]
	const key = "/testkey"

	v1 := e2eExpectRecord(t, "create", e2ePut(t, n1, key+"?val=testvalue"), key, "testvalue").Ver
	e2eExpect(t, "create again", e2ePut(t, n1, key+"?val=testvalue"), http.StatusConflict, e2eMismatch(0, v1))
	e2eExpect(t, "create with ver=0", e2ePut(t, n1, key+"?val=testvalue&ver=0"), http.StatusConflict, e2eMismatch(0, v1))
	v2 := e2eExpectRecord(t, "CAS v1", e2ePut(t, n1, key+"?val=testvalue2&ver="+fmt.Sprint(v1)), key, "testvalue2").Ver
	// Each write takes a raft index, the two rejected creates too.
	if v2 < v1+3 {
		t.Fatalf("CAS: ver %d, want at least %d (two rejected writes after %d)", v2, v1+3, v1)
	}
	r := e2ePut(t, n1, key+"?val=testvalue3&ver="+fmt.Sprint(v1))
	e2eExpect(t, "CAS stale v1", r, http.StatusConflict, e2eMismatch(v1, v2))
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("409 Content-Type %q, want text/plain", ct)
	}
	v3 := e2eExpectRecord(t, "CAS v2", e2ePut(t, n1, key+"?val=testvalue3&ver="+fmt.Sprint(v2)), key, "testvalue3").Ver
	if v3 < v2+2 {
		t.Fatalf("CAS: ver %d, want at least %d (a rejected write after %d)", v3, v2+2, v2)
	}
	e2eReadAll(t, c.Nodes, e2eRec{Key: key, Ver: v3, Val: "testvalue3"})

	// A CAS on a missing key is a mismatch against 0.
	e2eExpect(t, "CAS missing", e2ePut(t, c.Nodes[1], "/missing?val=x&ver=7"), http.StatusConflict, e2eMismatch(7, 0))
}

// e2eFormBody sends values as a browser does, in an urlencoded body, which
// works like the query string; a body value wins over the query string.
func e2eFormBody(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n2 := c.Nodes[1]
	const key = "/formkey"
	put := func(form url.Values) kv1proc.Response {
		return e2eDo(t, n2, http.MethodPut, key, form)
	}
	v1 := e2eExpectRecord(t, "form create", put(url.Values{"val": {"hello world & more"}}), key, "hello world & more").Ver
	e2eExpect(t, "form create again", put(url.Values{"val": {"x"}}), http.StatusConflict, e2eMismatch(0, v1))
	e2eExpect(t, "form bad ver", put(url.Values{"val": {"x"}, "ver": {"abc"}}), http.StatusBadRequest, "Version must be uint64\n")
	v2 := e2eExpectRecord(t, "form CAS", put(url.Values{"val": {"é\"\n"}, "ver": {fmt.Sprint(v1)}}), key, "é\"\n").Ver
	r := e2eDo(t, n2, http.MethodPut, key+"?val=query&ver=1", url.Values{"val": {"body"}, "ver": {fmt.Sprint(v2)}})
	v3 := e2eExpectRecord(t, "body wins over query", r, key, "body").Ver
	e2eReadAll(t, c.Nodes, e2eRec{Key: key, Ver: v3, Val: "body"})
	e2eExpect(t, "form delete mismatch", e2eDo(t, n2, http.MethodDelete, key, url.Values{"ver": {fmt.Sprint(v1)}}),
		http.StatusConflict, e2eMismatch(v1, v3))
	e2eExpectRecord(t, "form delete", e2eDo(t, n2, http.MethodDelete, key, url.Values{"ver": {fmt.Sprint(v3)}}), key, "body")
	e2eExpect(t, "read deleted", e2eGet(t, n2, key), http.StatusNotFound, "Not found\n")
}

// e2eErrors checks every error row of DESIGN §7, with exact status and body.
func e2eErrors(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n1, n3 := c.Nodes[0], c.Nodes[2]
	for _, q := range []string{"", "?stale=true", "?leader=true"} {
		e2eExpect(t, "GET missing"+q, e2eGet(t, n3, "/nokey"+q), http.StatusNotFound, "Not found\n")
	}
	for _, ver := range []string{"abc", "-1", "18446744073709551616"} {
		for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodGet} {
			r := e2eDo(t, n1, method, "/verkey?val=x&ver="+url.QueryEscape(ver), nil)
			e2eExpect(t, method+" ver="+ver, r, http.StatusBadRequest, "Version must be uint64\n")
		}
	}
	e2eExpect(t, "ver=abc wrote nothing", e2eGet(t, n1, "/verkey"), http.StatusNotFound, "Not found\n")

	for _, method := range []string{http.MethodPost, http.MethodPatch} {
		r := e2eDo(t, n1, method, "/testkey?val=x", nil)
		e2eExpect(t, method, r, http.StatusMethodNotAllowed, "Method not supported\n")
		if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
			t.Errorf("%s: Allow %q, want GET, PUT and DELETE", method, allow)
		}
	}

	big := strings.Repeat("v", 1<<20+1)
	e2eExpect(t, "value over 1 MiB (body)", e2eDo(t, n1, http.MethodPut, "/big", url.Values{"val": {big}}),
		http.StatusRequestEntityTooLarge, "Value too large (max 1048576 bytes)\n")
	e2eExpect(t, "value over 1 MiB (query)", e2ePut(t, n1, "/big?val="+big),
		http.StatusRequestEntityTooLarge, "Value too large (max 1048576 bytes)\n")
	e2eExpectRecord(t, "value of 1 MiB", e2eDo(t, n1, http.MethodPut, "/big", url.Values{"val": {big[1:]}}), "/big", big[1:])

	long := "/" + strings.Repeat("k", 1<<10)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		e2eExpect(t, method+" key over 1 KiB", e2eDo(t, n1, method, long+"?val=x", nil),
			http.StatusRequestURITooLong, "Key too long (max 1024 bytes)\n")
		e2eExpect(t, method+" empty key", e2eDo(t, n1, method, "/?val=x", nil), http.StatusBadRequest, "Key must not be empty\n")
	}
	e2eExpectRecord(t, "key of 1 KiB", e2ePut(t, n1, long[:1<<10]+"?val=x"), long[:1<<10], "x")

	// A key or value that is not UTF-8 would not read back as written.
	e2eExpect(t, "value not UTF-8", e2ePut(t, n1, "/utf8key?val=%FF"), http.StatusBadRequest, "Value must be valid UTF-8\n")
	e2eExpect(t, "value not UTF-8 (body)", e2eDo(t, n1, http.MethodPut, "/utf8key", url.Values{"val": {"a\xc0\xafb"}}),
		http.StatusBadRequest, "Value must be valid UTF-8\n")
	e2eExpect(t, "value not UTF-8 wrote nothing", e2eGet(t, n1, "/utf8key"), http.StatusNotFound, "Not found\n")
	e2eExpect(t, "key not UTF-8", e2ePut(t, n1, "/%FF?val=x"), http.StatusBadRequest, "Key must be valid UTF-8\n")
	e2eExpectRecord(t, "UTF-8 key and value", e2ePut(t, n1, "/%E2%9C%93?val=%C3%A9"), "/✓", "é")

	for _, path := range []string{"/_status", "/healthz", "/_registry", "/metrics", "/_other"} {
		for _, method := range []string{http.MethodPut, http.MethodDelete} {
			e2eExpect(t, method+" "+path, e2eDo(t, n1, method, path+"?val=x", nil),
				http.StatusBadRequest, "Path "+path+" is reserved for the server, not a key\n")
		}
	}

	// DELETE: 200 with the deleted record, 404 missing, 409 mismatch.
	rec := e2eExpectRecord(t, "create", e2ePut(t, n1, "/delkey?val=d"), "/delkey", "d")
	// A GET's body is ignored, whatever it holds.
	e2eExpect(t, "GET with a multipart body", e2eDoBody(t, n3, http.MethodGet, "/delkey", e2eMultipartType, "not multipart"),
		http.StatusOK, rec.JSON())
	e2eExpect(t, "DELETE mismatch", e2eDelete(t, n3, "/delkey?ver="+fmt.Sprint(rec.Ver+1)), http.StatusConflict, e2eMismatch(rec.Ver+1, rec.Ver))
	e2eExpect(t, "DELETE", e2eDelete(t, n3, "/delkey?ver="+fmt.Sprint(rec.Ver)), http.StatusOK, rec.JSON())
	e2eExpect(t, "DELETE missing", e2eDelete(t, n3, "/delkey"), http.StatusNotFound, "Not found\n")
	e2eExpect(t, "DELETE missing with ver", e2eDelete(t, n3, "/delkey?ver=3"), http.StatusNotFound, "Not found\n")
	rec = e2eExpectRecord(t, "re-create", e2ePut(t, n1, "/delkey?val=e"), "/delkey", "e")
	e2eExpect(t, "DELETE without ver", e2eDelete(t, n1, "/delkey"), http.StatusOK, rec.JSON())
	e2eExpect(t, "GET deleted", e2eGet(t, n1, "/delkey"), http.StatusNotFound, "Not found\n")

	// PUT stale=true: 202 once committed, so a linearizable read on
	// another node, and one from the leader, find the value at once.
	e2eExpect(t, "stale PUT", e2ePut(t, n3, "/stalekey?val=s&stale=true"), http.StatusAccepted, "Accepted\n")
	e2eExpectRecord(t, "GET after stale PUT", e2eGet(t, n1, "/stalekey"), "/stalekey", "s")
	e2eExpectRecord(t, "GET leader after stale PUT", e2eGet(t, c.Nodes[1], "/stalekey?leader=true"), "/stalekey", "s")
	e2eExpect(t, "stale DELETE", e2eDelete(t, n1, "/stalekey?stale=true"), http.StatusAccepted, "Accepted\n")
	e2eExpect(t, "GET after stale DELETE", e2eGet(t, n3, "/stalekey"), http.StatusNotFound, "Not found\n")

	e2eProposesNothing(t, c, n1)
}

// e2eMultipartType and e2eMultipartVal are a multipart/form-data body
// holding val, as a browser sends a FormData: kv1 refuses it (415).
const (
	e2eMultipartType = "multipart/form-data; boundary=kv1"
	e2eMultipartVal  = "--kv1\r\nContent-Disposition: form-data; name=\"val\"\r\n\r\nx\r\n--kv1--\r\n"
)

// e2eProposesNothing checks on the real cluster that kv1 proposes nothing
// for a bad request (DESIGN §7): a write of a key just before a run of bad
// requests to it, and a compare-and-set just after, take consecutive raft
// indexes, which are their versions. A leader elected meanwhile adds an
// entry of its own, so the run is made again, on another key, when the
// shard's term moved.
func e2eProposesNothing(t *testing.T, c *kv1proc.Cluster, n *kv1proc.Node) {
	t.Helper()
	big := strings.Repeat("v", 1<<20+1)
	type bad struct {
		method, target string
		form           url.Values
		status         int
	}
	reqs := func(ver uint64) []bad {
		v := fmt.Sprint(ver)
		return []bad{
			{http.MethodPut, "?val=x&ver=abc", nil, http.StatusBadRequest},
			{http.MethodPut, "?val=x&ver=", nil, http.StatusBadRequest},
			{http.MethodPut, "?val=x&ver=-1", nil, http.StatusBadRequest},
			{http.MethodPut, "?val=x&ver=18446744073709551616", nil, http.StatusBadRequest},
			{http.MethodPut, "?val=x&ver=abc&ver=" + v, nil, http.StatusBadRequest}, // the first ver counts
			{http.MethodDelete, "?ver=abc", nil, http.StatusBadRequest},
			{http.MethodPut, "?ver=" + v + "&stale=yes", nil, http.StatusBadRequest},
			{http.MethodDelete, "?leader=maybe", nil, http.StatusBadRequest},
			{http.MethodPut, "?ver=" + v + "&stale=true&leader=true", nil, http.StatusBadRequest},
			{http.MethodDelete, "?stale=true&leader=true", nil, http.StatusBadRequest},
			{http.MethodPut, "?val=%zz&ver=" + v, nil, http.StatusBadRequest},
			{http.MethodPut, "?ver=" + v, url.Values{"val": {"a\xffb"}}, http.StatusBadRequest},
			{http.MethodPut, "?val=%C0%AF&ver=" + v + "&stale=true", nil, http.StatusBadRequest},
			{http.MethodPut, "?ver=" + v, url.Values{"val": {big}}, http.StatusRequestEntityTooLarge},
			{http.MethodPut, "?ver=" + v + "&val=" + big, nil, http.StatusRequestEntityTooLarge},
			{http.MethodPost, "?val=x&ver=" + v, nil, http.StatusMethodNotAllowed},
			{http.MethodPatch, "?val=x&ver=" + v, nil, http.StatusMethodNotAllowed},
		}
	}
	term := func(shard string) uint64 {
		var most uint64
		for _, node := range c.Nodes {
			st, err := node.HostStatus(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.Shards {
				if s.Name == shard {
					most = max(most, s.Term)
				}
			}
		}
		return most
	}
	for attempt := 0; ; attempt++ {
		key := fmt.Sprintf("/nothing-proposed-%d", attempt)
		shard := kv1proc.ShardName(kv1proc.ShardOf(key, e2eShards))
		before := term(shard)
		v := e2eExpectRecord(t, "PUT "+key, e2ePut(t, n, key+"?val=before"), key, "before").Ver
		for _, b := range reqs(v) {
			r := e2eDo(t, n, b.method, key+b.target, b.form)
			if r.Status != b.status {
				t.Fatalf("%s %s%.60s: %v, want %d", b.method, key, b.target, r, b.status)
			}
		}
		// Bodies of another type than urlencoded: 415.
		for _, b := range []struct{ method, ctype, body string }{
			{http.MethodPut, "text/plain", "val=x"},
			{http.MethodPut, e2eMultipartType, e2eMultipartVal},
			{http.MethodPut, e2eMultipartType, "not multipart"},
			{http.MethodDelete, e2eMultipartType, "not multipart"},
		} {
			r := e2eDoBody(t, n, b.method, fmt.Sprintf("%s?ver=%d", key, v), b.ctype, b.body)
			if r.Status != http.StatusUnsupportedMediaType {
				t.Fatalf("%s %s with a %s body %q: %v, want 415", b.method, key, b.ctype, b.body, r)
			}
		}
		after := e2eExpectRecord(t, "CAS "+key, e2ePut(t, n, key+"?val=after&ver="+fmt.Sprint(v)), key, "after").Ver
		if after == v+1 {
			return
		}
		if term(shard) == before || attempt == 4 {
			t.Fatalf("%s: the write after the bad requests got version %d, the one before %d: %d entries between (%s term %d, then %d)",
				key, after, v, after-v-1, shard, before, term(shard))
		}
		t.Logf("%s: %s changed leader (term %d, then %d); again", key, shard, before, term(shard))
	}
}

// e2eServerPaths checks /healthz, /_status, /_registry, /metrics and the
// registry snapshot the prime shard's leader prints once the cluster formed.
func e2eServerPaths(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	for _, n := range c.Nodes {
		e2eExpect(t, fmt.Sprintf("node %d /healthz", n.N), e2eGet(t, n, "/healthz"), http.StatusOK, "OK\n")
		e2eCheckStatus(t, n)
	}

	reg := e2eGetRegistry(t, c.Nodes[1])
	if h := reg.Header; h.Hosts != 3 || h.Shards != 5 || h.Replicas != 15 || h.Index == 0 {
		t.Errorf("/_registry header %+v, want 3 hosts, 5 shards, 15 replicas", h)
	}
	var apis []string
	for _, h := range reg.Hosts {
		apis = append(apis, h.APIAddress)
	}
	slices.Sort(apis)
	if peers := slices.Sorted(slices.Values(c.Peers)); !slices.Equal(apis, peers) {
		t.Errorf("/_registry hosts at %v, want the peers %v", apis, peers)
	}
	if len(reg.Shards) != 5 || reg.Shards[0].ID != 0 {
		t.Errorf("/_registry shards %+v, want 5 with the prime shard 0 first", reg.Shards)
	}
	perHost := map[string]int{}
	for _, r := range reg.Replicas {
		if r.IsNonVoting {
			t.Errorf("replica %+v is non-voting on a peer", r)
		}
		perHost[r.HostID]++
	}
	for host, n := range perHost {
		if n != 5 {
			t.Errorf("host %s has %d replicas, want one of each of the 5 shards", host, n)
		}
	}

	// Exactly one node, the prime shard's leader, prints the snapshot.
	e2eEventually(t, e2eCatchUp, "registry snapshot on stdout", func() string {
		if len(e2eRegistryPrinters(c.Nodes)) == 0 {
			return "no node printed it"
		}
		return ""
	})
	if p := e2eRegistryPrinters(c.Nodes); len(p) != 1 {
		t.Errorf("nodes %v printed the registry snapshot, want exactly one", p)
	}

	// /metrics counts the requests served, by method and code.
	n := c.Nodes[2]
	e2ePut(t, n, "/metered?val=m")
	e2eGet(t, n, "/metered")
	e2eGet(t, n, "/unmetered")
	r := e2eGet(t, n, "/metrics")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") || !strings.HasSuffix(r.Body, "\n") {
		t.Fatalf("/metrics: %d %q, body ending %q; want 200 text, newline-terminated", r.Status, r.Header.Get("Content-Type"),
			r.Body[max(0, len(r.Body)-40):])
	}
	for _, want := range []string{
		"# TYPE kv1_http_requests_total counter\n",
		`kv1_http_requests_total{method="PUT",code="200"} 1` + "\n",
		`kv1_http_requests_total{method="GET",code="200"} `,
		`kv1_http_requests_total{method="GET",code="404"} 1` + "\n",
		"kv1_http_request_duration_seconds_bucket{",
		"\ndragonboat_",
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// e2eCheckStatus checks the shape of n's /_status (DESIGN §7): exactly the
// documented fields, status ready, and every shard, the prime shard 0
// included, with a known leader and term and a local voting replica.
func e2eCheckStatus(t *testing.T, n *kv1proc.Node) {
	t.Helper()
	r := e2eGet(t, n, "/_status")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" || !strings.HasSuffix(r.Body, "}\n") {
		t.Fatalf("node %d /_status: %v %q; want a JSON object and a newline", n.N, r, r.Header.Get("Content-Type"))
	}
	var raw struct {
		HostID string           `json:"hostID"`
		Status string           `json:"status"`
		Shards []map[string]any `json:"shards"`
	}
	if err := json.Unmarshal([]byte(r.Body), &raw); err != nil {
		t.Fatalf("node %d /_status: %v: %s", n.N, err, r.Body)
	}
	if raw.HostID == "" || raw.Status != "ready" || len(raw.Shards) != e2eShards+1 {
		t.Fatalf("node %d /_status: %s", n.N, r.Body)
	}
	wantKeys := []string{"id", "leader", "name", "nonVoting", "replica", "term"}
	for _, s := range raw.Shards {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range s {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("node %d /_status shard fields %v, want %v", n.N, keys, wantKeys)
		}
	}
	st, err := n.HostStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(e2eShards + 1) {
		s, ok := st.Shard(id)
		if !ok || s.Leader == 0 || s.Term == 0 || s.Replica == 0 || s.NonVoting {
			t.Errorf("node %d /_status shard %d: %+v (listed %v)", n.N, id, s, ok)
		}
		if id > 0 && s.Name != kv1proc.ShardName(int(id)-1) {
			t.Errorf("node %d /_status shard %d named %q", n.N, id, s.Name)
		}
	}
}

// e2eNonVoting adds a 4th node, in a zone that already has a peer: it joins
// the prime shard as non-voting, gets no kv replica, and serves reads in
// every mode and writes by forwarding.
func e2eNonVoting(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	n4, err := c.Add()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(n4); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, n4)

	e2eEventually(t, e2eCatchUp, "4th host's replicas in /_registry", func() string {
		reg := e2eGetRegistry(t, c.Nodes[0])
		host := ""
		for _, h := range reg.Hosts {
			if h.APIAddress == n4.API {
				host = h.ID
			}
		}
		if host == "" || reg.Header.Hosts != 4 {
			return fmt.Sprintf("host %s not registered: %+v", n4.API, reg.Header)
		}
		var mine []string
		for _, r := range reg.Replicas {
			if r.HostID == host {
				mine = append(mine, fmt.Sprintf("%+v", r))
				if r.ShardID != 0 || !r.IsNonVoting {
					t.Fatalf("4th host has replica %+v, want only a non-voting prime replica", r)
				}
			}
		}
		if len(mine) != 1 {
			return fmt.Sprintf("4th host has replicas %v, want its non-voting prime replica", mine)
		}
		return ""
	})
	st, err := n4.HostStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Shards {
		if (s.ID == 0) != (s.Replica != 0) || (s.ID == 0) != s.NonVoting || s.Leader == 0 {
			t.Errorf("4th node /_status shard %+v: want a non-voting prime replica only, leaders known", s)
		}
	}

	// Writes and reads through the 4th node, for keys of every shard.
	for i := range 8 {
		key := fmt.Sprintf("/nv-%d", i)
		rec := e2eExpectRecord(t, "create via 4th", e2ePut(t, n4, key+"?val=a"), key, "a")
		rec = e2eExpectRecord(t, "CAS via 4th", e2ePut(t, n4, fmt.Sprintf("%s?val=b&ver=%d", key, rec.Ver)), key, "b")
		e2eReadOne(t, n4, rec)
		e2eReadOne(t, c.Nodes[i%3], rec)
	}
	rec := e2eExpectRecord(t, "create via peer", e2ePut(t, c.Nodes[2], "/nv-peer?val=p"), "/nv-peer", "p")
	e2eReadOne(t, n4, rec)
	e2eExpect(t, "DELETE via 4th", e2eDelete(t, n4, "/nv-peer"), http.StatusOK, rec.JSON())
	e2eExpect(t, "GET deleted via 4th", e2eGet(t, n4, "/nv-peer"), http.StatusNotFound, "Not found\n")
}

// e2eCrash kills a peer, writes through the other two, restarts it on
// another raft address (as a machine that comes back with a new one) and
// reads every acknowledged write from it; then restarts the whole cluster
// and reads them all again.
func e2eCrash(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	live, victim := c.Nodes[:2], c.Nodes[2]
	acked := map[string]e2eRec{}
	write := func(nodes []*kv1proc.Node, prefix string, count int) {
		for i := range count {
			key := fmt.Sprintf("/%s-%d", prefix, i)
			val := fmt.Sprintf("%s value %d", prefix, i)
			acked[key] = e2eExpectRecord(t, "PUT "+key, e2ePut(t, nodes[i%len(nodes)], key+"?val="+url.QueryEscape(val)), key, val)
		}
	}
	write(c.Nodes, "before", 8)

	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	e2eAwaitLeaders(t, live)
	write(live, "during", 24)

	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	victim.Raft = addrs[0]
	if err := c.Start(victim); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, victim)
	for _, rec := range acked {
		e2eReadDurable(t, victim, rec, "?stale=true")
		e2eReadDurable(t, victim, rec, "")
	}
	e2eEventually(t, e2eCatchUp, "the registry to record the new raft address", func() string {
		for _, h := range e2eGetRegistry(t, live[0]).Hosts {
			if h.APIAddress == victim.API {
				if h.RaftAddress == victim.Raft {
					return ""
				}
				return "host " + h.ID + " at " + h.RaftAddress
			}
		}
		return "no host at API address " + victim.API
	})

	if testing.Short() {
		return
	}
	for _, n := range c.Nodes {
		if err := c.Stop(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	for _, n := range c.Nodes {
		for _, rec := range acked {
			e2eReadDurable(t, n, rec, "")
		}
	}
}

// e2eReadDurable reads rec.Key (with query q) from n, which has just become
// healthy after a restart, and fails unless it finds rec. A 503 is an error
// too, as a healthy node must serve, but the read is retried until the
// answer comes or e2eCatchUp passes, so that a lost write is told apart
// from a node that claimed to be ready too early. A stale read may lag: it
// is retried while it shows an older version, without error.
func e2eReadDurable(t *testing.T, n *kv1proc.Node, rec e2eRec, q string) {
	t.Helper()
	what := fmt.Sprintf("node %d GET %s%s after restart", n.N, rec.Key, q)
	complained := false
	e2eEventually(t, e2eCatchUp, what, func() string {
		r := e2eGet(t, n, rec.Key+q)
		switch {
		case r.Status == http.StatusOK && r.Body == rec.JSON():
			return ""
		case r.Status == http.StatusServiceUnavailable:
			if !complained {
				complained = true
				st, _ := n.Do(t.Context(), http.MethodGet, "/_status", nil)
				t.Errorf("%s: %v although /healthz said 200; /_status: %s", what, r, st.Body)
			}
			return r.String()
		case q == "?stale=true" && (r.Status == http.StatusNotFound || r.Status == http.StatusOK):
			return r.String() // not caught up yet
		}
		t.Fatalf("%s: %v, want %q: an acknowledged write is lost", what, r, rec.JSON())
		return ""
	})
}

// e2eRetryAfter reports whether a 503 answer carries a Retry-After header
// with a whole number of seconds.
func e2eRetryAfter(r kv1proc.Response) bool {
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	return err == nil && s > 0
}

// e2eStarting polls nodes from the moment they start until healthy: every
// GET and PUT answer must be 503 with Retry-After or correct, never an
// empty 200 nor a 400. It watches a cold cluster start, then a peer
// restarting into a running cluster.
func e2eStarting(t *testing.T, bin string) {
	c := e2eNew(t, bin)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	seen := e2ePollStarting(t, c, c.Nodes[0], "cold")
	e2eWaitHealthy(t, c, c.Nodes...)
	if err := c.Kill(c.Nodes[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(c.Nodes[1]); err != nil {
		t.Fatal(err)
	}
	for code, n := range e2ePollStarting(t, c, c.Nodes[1], "restart") {
		seen[code] += n
	}
	t.Logf("answers while starting (0: no connection): %v", seen)
}

// e2ePollStarting sends a GET of a missing key and a PUT creating a new key
// to n every 20 ms until n is healthy, checking every answer, and returns
// how many answers of each status it saw (0 for no connection).
func e2ePollStarting(t *testing.T, c *kv1proc.Cluster, n *kv1proc.Node, tag string) map[int]int {
	t.Helper()
	seen := map[int]int{}
	check := func(what string, r kv1proc.Response, err error, ok func(kv1proc.Response) bool) {
		switch {
		case err != nil && strings.Contains(err.Error(), "connection refused"):
			seen[0]++
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		case r.Status == http.StatusServiceUnavailable && e2eRetryAfter(r) && strings.HasSuffix(r.Body, "\n") && len(r.Body) > 1:
			seen[r.Status]++
		case ok(r):
			seen[r.Status]++
		default:
			t.Errorf("%s while starting: %v, headers %v; want 503 with Retry-After, or a correct answer", what, r, r.Header)
			seen[r.Status]++
		}
	}
	ctx := t.Context()
	deadline := time.Now().Add(e2eStartTimeout)
	for i := 0; ; i++ {
		key := fmt.Sprintf("/starting-%s-%d", tag, i)
		r, err := n.Do(ctx, http.MethodGet, key, nil)
		check("GET "+key, r, err, func(r kv1proc.Response) bool {
			return r.Status == http.StatusNotFound && r.Body == "Not found\n"
		})
		r, err = n.Do(ctx, http.MethodPut, key+"?val=s", nil)
		check("PUT "+key, r, err, func(r kv1proc.Response) bool {
			var rec e2eRec
			return r.Status == http.StatusOK && json.Unmarshal([]byte(r.Body), &rec) == nil &&
				rec.Key == key && rec.Val == "s" && rec.Ver > 0 && r.Body == rec.JSON()
		})
		h, err := n.Do(ctx, http.MethodGet, "/healthz", nil)
		if err == nil && h.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("node %d not healthy within %v; answers %v", n.N, e2eStartTimeout, seen)
		}
		if n.PID() == 0 {
			t.Fatalf("node %d exited while starting", n.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if seen[http.StatusServiceUnavailable] == 0 && seen[0] == 0 {
		t.Errorf("node %d was healthy at once: the starting phase was not observed (%v)", n.N, seen)
	}
	return seen
}

// e2eTimeout pauses two of the three peers, so that writes to the third can
// neither commit nor fail for sure: each must answer 503 within about the
// 1 s request timeout, saying that the write may or may not have applied,
// with Retry-After. Once the peers resume, each such key is either missing
// or holds its value. Meanwhile /healthz says why the node cannot serve,
// and /_status still answers.
func e2eTimeout(t *testing.T, bin string) {
	c := e2eStart(t, bin)
	survivor := c.Nodes[0]
	for _, n := range c.Nodes[1:] {
		if err := c.Pause(n); err != nil {
			t.Fatal(err)
		}
	}
	const writes = 8
	answers := make([]kv1proc.Response, writes)
	took := make([]time.Duration, writes)
	errs := make([]error, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			start := time.Now()
			answers[i], errs[i] = survivor.Do(t.Context(), http.MethodPut, fmt.Sprintf("/unknown-%d?val=u", i), nil)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, r := range answers {
		what := fmt.Sprintf("PUT /unknown-%d with 2 of 3 peers paused", i)
		if err := errs[i]; err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		// kv1's deadline (1 s) ended it, not the client's (10 s); the
		// margin is for a loaded machine.
		if took[i] > 5*time.Second {
			t.Errorf("%s: answered after %v, want about 1 s", what, took[i])
		}
		const unknown = "the write may or may not have been applied\n"
		if r.Status != http.StatusServiceUnavailable || !strings.HasSuffix(r.Body, unknown) {
			t.Errorf("%s: %v, want 503 ending %q", what, r, unknown)
		}
		if r.Body != "Timeout: "+unknown {
			t.Logf("%s: %v (not the timeout text)", what, r)
		}
		if !e2eRetryAfter(r) {
			t.Errorf("%s: %v without a Retry-After header (headers %v)", what, r, r.Header)
		}
	}

	// /healthz says why the survivor cannot serve; /_status, from local
	// state, still answers (DESIGN §7).
	h := e2eGet(t, survivor, "/healthz")
	if h.Status != http.StatusServiceUnavailable || !strings.HasPrefix(h.Body, "Not ready: ") ||
		!strings.HasSuffix(h.Body, "\n") || !e2eRetryAfter(h) {
		t.Errorf("/healthz with 2 of 3 peers paused: %v (headers %v), want 503 \"Not ready: <reason>\" with Retry-After", h, h.Header)
	}
	if st, err := survivor.HostStatus(t.Context()); err != nil || st.Status != "ready" || len(st.Shards) != e2eShards+1 {
		t.Errorf("/_status with 2 of 3 peers paused: %+v, %v; want this host's view of %d shards", st, err, e2eShards+1)
	}

	for _, n := range c.Nodes[1:] {
		if err := c.Signal(n, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	for i := range writes {
		key := fmt.Sprintf("/unknown-%d", i)
		e2eEventually(t, e2eCatchUp, "read "+key+" after resume", func() string {
			r := e2eGet(t, survivor, key)
			switch {
			case r.Status == http.StatusNotFound && r.Body == "Not found\n":
			case r.Status == http.StatusOK:
				e2eExpectRecord(t, "GET "+key, r, key, "u")
			default:
				return r.String()
			}
			return ""
		})
	}
}
