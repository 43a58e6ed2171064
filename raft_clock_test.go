package zongzi

import (
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
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

// A replica config that leaves both ticks zero gets them set in time from
// the host's clock, and keeps the rest of what it says.
func TestReplicaConfigTicksSetInTime(t *testing.T) {
	cfg := DefaultReplicaConfig()
	cfg.SnapshotEntries = 7
	a, err := NewAgent("zz", []string{DefaultApiAddress}, WithDirRaft(t.TempDir()),
		WithHostConfig(config.NodeHostConfig{RTTMillisecond: 30}), WithReplicaConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	election, heartbeat := raftTicks(30)
	got := a.replicaConfig
	if got.ElectionRTT != election || got.HeartbeatRTT != heartbeat || got.SnapshotEntries != 7 {
		t.Errorf("replica config: election %d, heartbeat %d, snapshot entries %d; want %d, %d, 7",
			got.ElectionRTT, got.HeartbeatRTT, got.SnapshotEntries, election, heartbeat)
	}
}
