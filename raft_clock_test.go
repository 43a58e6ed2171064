package zongzi

import (
	"testing"
	"time"
)

func TestRaftTicks(t *testing.T) {
	for _, tc := range []struct {
		rtt                 uint64
		election, heartbeat uint64
	}{
		{rtt: 20, election: 10, heartbeat: 2},
		{rtt: 10, election: 20, heartbeat: 4},
		{rtt: 1, election: 200, heartbeat: 40},
		{rtt: 30, election: 7, heartbeat: 2},
		{rtt: 50, election: 4, heartbeat: 1},
		{rtt: 100, election: 3, heartbeat: 1},
		{rtt: 0, election: 200, heartbeat: 40},
	} {
		election, heartbeat := raftTicks(tc.rtt)
		if election != tc.election || heartbeat != tc.heartbeat {
			t.Errorf("raftTicks(%d) = %d, %d; want %d, %d", tc.rtt, election, heartbeat, tc.election, tc.heartbeat)
		}
	}
}

// Dragonboat refuses a replica whose ElectionRTT is not above twice its
// HeartbeatRTT; no clock may produce one.
func TestRaftTicksValidAtEveryClock(t *testing.T) {
	for rtt := uint64(1); rtt <= 1000; rtt++ {
		election, heartbeat := raftTicks(rtt)
		if heartbeat == 0 || election <= 2*heartbeat {
			t.Fatalf("raftTicks(%d) = %d, %d", rtt, election, heartbeat)
		}
		tick := time.Duration(rtt) * time.Millisecond
		if got := time.Duration(election) * tick; got < electionTimeout {
			t.Fatalf("raftTicks(%d): election after %v, under %v", rtt, got, electionTimeout)
		}
	}
}
