package test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// TestKV1SnapshotCatchUp stops a peer while the others write well past
// their snapshot interval (-snap 50), so that the shards' logs are
// compacted and the peer can only catch up from a snapshot sent by a
// leader. It must then serve every record with its exact version and
// value, and count the snapshots it recovered from.
func TestKV1SnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kv1 cluster; skipped in -short mode")
	}
	c := e2eNew(t, kv1Bin)
	c.Args = []string{"-snap", "50"}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, c.Nodes...)
	live, lagging := c.Nodes[:2], c.Nodes[2]
	if err := c.Stop(lagging); err != nil {
		t.Fatal(err)
	}
	e2eAwaitLeaders(t, live)
	var recs []e2eRec
	for i := range 400 {
		key := fmt.Sprintf("/snap-%d", i)
		val := strings.Repeat(fmt.Sprint(i), 1+i%7) + "\x00é"
		rec := e2eExpectRecord(t, "PUT "+key, e2ePut(t, live[i%2], key+"?val="+url.QueryEscape(val)), key, val)
		if i%3 == 0 { // a second version
			rec = e2eExpectRecord(t, "CAS "+key, e2ePut(t, live[i%2], fmt.Sprintf("%s?val=%s&ver=%d", key, url.QueryEscape(val+"+"), rec.Ver)), key, val+"+")
		}
		if i%5 == 0 {
			e2eExpect(t, "DELETE "+key, e2eDelete(t, live[i%2], key), http.StatusOK, rec.JSON())
			continue
		}
		recs = append(recs, rec)
	}
	if err := c.Start(lagging); err != nil {
		t.Fatal(err)
	}
	e2eWaitHealthy(t, c, lagging)
	for _, rec := range recs {
		e2eReadDurable(t, lagging, rec, "?stale=true")
	}
	for i := 0; i < 400; i += 5 {
		e2eExpect(t, "deleted key", e2eGet(t, lagging, fmt.Sprintf("/snap-%d?stale=true", i)), http.StatusNotFound, "Not found\n")
	}
	if n := snapshotsRecovered(t, lagging); n == 0 {
		t.Errorf("node %d recovered from no snapshot: the test did not exercise what it means to", lagging.N)
	}
}

// snapshotsRecovered returns n's kv1_snapshots_recovered_total.
func snapshotsRecovered(t *testing.T, n *kv1proc.Node) int {
	t.Helper()
	r := e2eGet(t, n, "/metrics")
	for line := range strings.Lines(r.Body) {
		if v, ok := strings.CutPrefix(line, "kv1_snapshots_recovered_total "); ok {
			c, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("/metrics: %q", line)
			}
			return c
		}
	}
	t.Fatalf("node %d /metrics lacks kv1_snapshots_recovered_total", n.N)
	return 0
}
