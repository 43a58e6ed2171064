package zongzi_test

import (
	"context"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
)

// A host deleted from the registry leaves no bus connection open on the
// other hosts: each kept one to every address it had ever called, a
// connection and a read stream for each host that left, for as long as it
// ran.
func TestBusClosesConnectionToDeletedHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, "a", "b", "c")
	c.startAll(ctx, c.nodes...)
	defer c.stop()
	d := c.addNode("d")
	c.startAll(ctx, d)
	a := c.nodes[0].agent
	waitFor(t, settle, "host a to measure the round trip to host d", func() bool {
		_, measured := zongzi.RoundTrip(a, d.api)
		return measured && zongzi.BusConnected(a, d.api)
	})
	id := d.agent.HostID()
	d.agent.Stop()
	if err := a.HostDelete(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "host a to close its connection to deleted host d", func() bool {
		return !zongzi.BusConnected(a, d.api)
	})
	if !zongzi.BusConnected(a, c.nodes[1].api) {
		t.Error("host a closed its connection to host b, which the registry lists")
	}
}
