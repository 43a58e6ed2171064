package zongzi

import "time"

// The raft clock. Dragonboat counts elections and heartbeats in ticks of
// NodeHostConfig.RTTMillisecond, and every tick wakes every replica of the
// host, busy or not. A 20 ms tick costs half the wake-ups of a 10 ms one;
// elections and heartbeats are set in time, not in ticks, so that failover
// takes as long at either.
const (
	// defaultRTTMillisecond is the tick when the host config leaves it zero.
	defaultRTTMillisecond = 20
	// electionTimeout is how long a follower waits without hearing from a
	// leader before it campaigns; Dragonboat randomizes it up to twice that.
	electionTimeout = 200 * time.Millisecond
	// heartbeatInterval is how often a leader sends heartbeats.
	heartbeatInterval = 40 * time.Millisecond
)

// raftTicks returns the ElectionRTT and HeartbeatRTT that give
// electionTimeout and heartbeatInterval on a clock of rtt milliseconds,
// keeping ElectionRTT above twice HeartbeatRTT as Dragonboat requires.
func raftTicks(rtt uint64) (election, heartbeat uint64) {
	tick := time.Duration(max(rtt, 1)) * time.Millisecond
	heartbeat = uint64((heartbeatInterval + tick - 1) / tick)
	election = max(uint64((electionTimeout+tick-1)/tick), 2*heartbeat+1)
	return election, heartbeat
}

// raftTick returns the host's raft clock tick.
func (a *Agent) raftTick() time.Duration {
	return time.Duration(a.hostConfig.RTTMillisecond) * time.Millisecond
}
