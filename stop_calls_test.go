package zongzi_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// TestStopWithCallsInFlight stops an agent while its shard client makes
// writes and linearizable reads on its replica, which has no leader, so
// that each call ends quickly and the next one starts. Each must end with
// an error, not crash the process: Dragonboat's Propose and ReadIndex
// check that their host is open, then wake its engine, which the host's
// Close drops; a large command (its copy takes a while) widens the window.
// Without the agent's guard, the race detector reported it in every run
// of the test, and the process crashed in about one stop in three.
func TestStopWithCallsInFlight(t *testing.T) {
	for range 3 {
		stopWithCallsInFlight(t)
	}
}

func stopWithCallsInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := startThreeZones(ctx, t)
	defer c.stop()
	a := c.nodes[0].agent
	s := c.createActive(ctx, a, testType, "calls")
	writeEventually(ctx, t, a, s.ID, "a first write")
	c.nodes[1].agent.Stop()
	c.nodes[2].agent.Stop()
	cl := a.Client(s.ID)
	cmd := bytes.Repeat([]byte{'x'}, 5<<20)
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stopped:
					return
				default:
				}
				// One attempt: too short a deadline to pause for another.
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Millisecond)
				var err error
				if i%3 == 2 {
					_, _, err = cl.Read(cctx, nil, false)
				} else {
					_, _, err = cl.Apply(cctx, cmd)
				}
				ccancel()
				if err == nil && i%3 != 2 {
					t.Error("a write applied on a replica without a leader")
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	a.Stop()
	close(stopped)
	wg.Wait()
}
