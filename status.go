package zongzi

// AgentStatus is where an agent is in its life.
type AgentStatus int32

// Agent statuses, in the order an agent passes through them.
const (
	AgentStatusPending      AgentStatus = iota // created, Start not called
	AgentStatusInitializing                    // forming the prime shard with its peers
	AgentStatusJoining                         // joining an existing cluster
	AgentStatusRejoining                       // restarting from its replica on disk
	AgentStatusReady                           // serving
	AgentStatusStopping                        // Stop (or a failed Start) is tearing it down
	AgentStatusStopped                         // stopped
)

var agentStatusNames = [...]string{"pending", "initializing", "joining", "rejoining", "ready", "stopping", "stopped"}

// String returns the status as used in logs and in kv1's /_status.
func (s AgentStatus) String() string {
	if s < 0 || int(s) >= len(agentStatusNames) {
		return "unknown"
	}
	return agentStatusNames[s]
}
