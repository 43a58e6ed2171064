package zongzi

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/zongzi-kv/zongzi/internal/placement"
	"github.com/zongzi-kv/zongzi/internal/registry"
)

// Plan is a set of registry changes decided by a ShardController.
type Plan = placement.Plan

// ShardController decides where guest shards' replicas go. The agent whose
// replica leads the prime shard calls Reconcile whenever the registry
// changes and proposes the returned plan as one registry entry, which the
// registry refuses if anything else was applied since the state Reconcile
// was given (the change wakes the next call). A plan that the registry
// would refuse at that state (a replica on a host that is not registered,
// say) is not proposed but logged at Warn with the reason. Reconcile must
// be a pure function of the state: no I/O, no proposals.
type ShardController interface {
	Reconcile(state *State) Plan
}

// defaultShardController places replicas by the shards' placement tags
// (TagPlacementMember and the others): members, named non-voting groups,
// vary and cover.
type defaultShardController struct{}

// Reconcile implements ShardController.
func (defaultShardController) Reconcile(st *State) Plan {
	return placement.Place(placement.Input{Hosts: st.Hosts(), Shards: st.Shards(), Replicas: st.Replicas()})
}

// runShardController runs the shard controller while this host's replica
// leads the prime shard.
func (a *Agent) runShardController(ctx context.Context) {
	every(ctx, a.sweep, a.store.Changed, nil, func() { a.placeReplicas(ctx) })
}

// planRetries bounds how many plans in a row placeReplicas makes after the
// registry refused the one before for having moved on; the next change or
// sweep makes the next.
const planRetries = 10

// placeReplicas applies the controller's plan while this host leads the
// prime shard. A plan refused because entries applied since it was made is
// made again at once: those entries need not have changed a record (a
// ShardCreate of a name that exists, a leader record of an older term), and
// only a change wakes the controller.
func (a *Agent) placeReplicas(ctx context.Context) {
	for range planRetries {
		if !a.leadsPrime() {
			return
		}
		st := a.store.State()
		if !a.applyPlan(ctx, st, a.controller.Reconcile(st)) {
			return
		}
	}
}

func (a *Agent) leadsPrime() bool {
	nh := a.NodeHost()
	if nh == nil {
		return false
	}
	leader, _, ok, err := nh.GetLeaderID(0)
	return err == nil && ok && leader == a.primeID.Load()
}

// applyPlan proposes a plan computed from the registry st as one batch,
// which the registry applies only if nothing else was applied since: a plan
// whose proposal timed out may yet commit, and the next plan, made without
// it, must not act beside it (remove a second member, say). A plan refused
// so is made again from the registry as it is now: applyPlan then reports
// true. A plan that st itself refuses (a controller's replica on a host
// that is not registered, say) is not proposed: it is logged, and would be
// refused again however often it were made.
func (a *Agent) applyPlan(ctx context.Context, st *State, p Plan) (refused bool) {
	index := st.Index()
	batch := registry.Command{Op: registry.OpBatch, IfIndex: index}
	for i := range p.Add {
		batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpReplicaPut, Replica: &p.Add[i]})
	}
	for _, id := range p.Remove {
		batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpReplicaDelete, ReplicaID: id})
	}
	for shardID, status := range p.Status {
		batch.Batch = append(batch.Batch, registry.Command{Op: registry.OpStatusSet, Kind: registry.KindShard, ShardID: shardID, Status: status})
	}
	if len(batch.Batch) == 0 {
		return false
	}
	if err := registry.Check(st, batch); err != nil {
		a.log.Warn("zongzi: invalid placement plan", "adds", len(p.Add), "removes", len(p.Remove), "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := a.proposeRegistry(ctx, batch)
	switch {
	case errors.Is(err, ErrRejected) && a.store.State().Index() != index: // made from an older registry
		a.log.Debug("zongzi: placement plan refused", "err", err)
		return true
	case err != nil && ctxAlive(err):
		a.log.Warn("zongzi: apply placement plan", "adds", len(p.Add), "removes", len(p.Remove), "err", err)
	case err == nil:
		a.logStatuses(st, p.Status)
	}
	return false
}

// logStatuses logs the shard statuses an applied plan changed from st's
// that say the shard's placement cannot be met, or no longer says so.
func (a *Agent) logStatuses(st *State, statuses map[uint64]string) {
	for id, status := range statuses {
		old, _ := st.Shard(id)
		switch reason, ok := strings.CutPrefix(status, ShardStatusUnsatisfied+": "); {
		case ok:
			a.log.Warn("zongzi: shard placement unsatisfied", "shard", id, "name", old.Name, "reason", reason)
		case strings.HasPrefix(old.Status, ShardStatusUnsatisfied):
			a.log.Info("zongzi: shard placement satisfiable again", "shard", id, "name", old.Name, "status", status)
		}
	}
}
