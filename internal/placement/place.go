package placement

import (
	"cmp"
	"slices"
	"strings"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// Input is the registry as placement sees it. Place does not modify it and
// keeps no reference to it.
type Input struct {
	// Hosts are all registered hosts, in any order.
	Hosts []registry.Host
	// Shards are all registered shards, in any order, the prime shard too.
	Shards []registry.Shard
	// Replicas are all registered replicas, in any order.
	Replicas []registry.Replica
}

// Plan is the set of registry changes that moves the replicas toward every
// shard's placement tags. It is meant to be applied as a whole.
type Plan struct {
	// Add lists new replicas, sorted by shard ID then host ID. Their ID is 0
	// (the registry assigns one), Status is "new", and a non-voting replica
	// carries its group in Tags[TagGroup].
	Add []registry.Replica
	// Remove lists the IDs of replicas to delete, ascending.
	Remove []uint64
	// Status maps a shard ID to its new status, only for shards whose status
	// changes; nil when none does.
	Status map[uint64]string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Add) == 0 && len(p.Remove) == 0 && len(p.Status) == 0
}

// Place returns the plan that reconciles the registry in with the placement
// tags of every shard. It skips the prime shard (shard 0, managed by
// bootstrap) and shards without placement tags, but for the status of one
// whose tags were removed while they could not be met: it goes back to
// "new", as no reason holds any more. Shards are planned in ID order, each
// seeing the host loads left by the ones before it.
func Place(in Input) Plan {
	p := newPlanner(in)
	shards := slices.SortedFunc(slices.Values(in.Shards), func(a, b registry.Shard) int {
		return cmp.Compare(a.ID, b.ID)
	})
	for _, s := range shards {
		switch {
		case s.ID == 0:
		case HasRules(s.Tags):
			p.placeShard(s)
		case strings.HasPrefix(s.Status, registry.ShardStatusUnsatisfied):
			p.setStatus(s, registry.ShardStatusNew)
		}
	}
	slices.SortFunc(p.plan.Add, func(a, b registry.Replica) int {
		return cmp.Or(cmp.Compare(a.ShardID, b.ShardID), cmp.Compare(a.HostID, b.HostID))
	})
	slices.Sort(p.plan.Remove)
	return p.plan
}

// host is a registered host with the planning state placement keeps on it.
type host struct {
	*registry.Host
	load     int  // replicas of any shard it holds, counting the changes planned so far
	occupied bool // it holds, gets or is held back for a replica of the shard being planned
}

// planner holds the state shared by all shards while a plan is built.
type planner struct {
	hosts    []*host // ascending ID
	byID     map[string]*host
	replicas map[uint64][]registry.Replica // by shard ID
	pools    map[string]*pool              // see shardPlan.pool
	plan     Plan
}

func newPlanner(in Input) *planner {
	p := &planner{
		byID:     make(map[string]*host, len(in.Hosts)),
		replicas: make(map[uint64][]registry.Replica),
		pools:    make(map[string]*pool),
	}
	for i := range in.Hosts {
		p.byID[in.Hosts[i].ID] = &host{Host: &in.Hosts[i]}
	}
	for _, h := range p.byID {
		p.hosts = append(p.hosts, h)
	}
	slices.SortFunc(p.hosts, func(a, b *host) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range in.Replicas {
		p.replicas[r.ShardID] = append(p.replicas[r.ShardID], r)
		if h := p.byID[r.HostID]; h != nil {
			h.load++
		}
	}
	return p
}

// setStatus records a new status for s unless it is empty or unchanged.
func (p *planner) setStatus(s registry.Shard, status string) {
	if status == "" || status == s.Status {
		return
	}
	if p.plan.Status == nil {
		p.plan.Status = make(map[uint64]string)
	}
	p.plan.Status[s.ID] = status
}

// unsatisfied formats the status of a shard that cannot be placed.
func unsatisfied(reason string) string {
	return registry.ShardStatusUnsatisfied + ": " + reason
}

// placeShard plans the replicas of one shard that has placement tags.
func (p *planner) placeShard(s registry.Shard) {
	rules, err := ParseRules(s.Tags)
	if err != nil {
		p.setStatus(s, unsatisfied(err.Error()))
		return
	}
	for _, h := range p.hosts {
		h.occupied = false
	}
	sp := &shardPlan{planner: p, shard: s, rules: rules, settled: true}
	members, groups, cover := sp.attribute(p.replicas[s.ID])
	sp.placeGroup(rules.Members, false, members)
	for _, g := range rules.Groups {
		sp.placeGroup(g, true, groups[g.Name])
	}
	sp.placeCover(cover)
	p.setStatus(s, sp.status())
}

// shardPlan holds the state of one shard while its groups are placed.
type shardPlan struct {
	*planner
	shard   registry.Shard
	rules   Rules
	changed bool     // the plan adds or removes a replica of the shard
	settled bool     // every replica kept so far is active
	reasons []string // why groups cannot be satisfied
}

// status returns the shard's new status, or "" to leave it unchanged.
func (sp *shardPlan) status() string {
	switch {
	case len(sp.reasons) > 0:
		return unsatisfied(strings.Join(sp.reasons, "; "))
	case !sp.changed && sp.settled:
		return registry.ShardStatusActive
	case strings.HasPrefix(sp.shard.Status, registry.ShardStatusUnsatisfied):
		return registry.ShardStatusNew
	}
	return ""
}

// attribute sorts the shard's replicas into members, non-voting groups and
// cover, and plans the removal of the rest: non-voting replicas of no known
// group and extra replicas on a host that already holds one (the voting,
// active, oldest one stays). Witnesses are left alone but occupy their host.
// An untagged non-voting replica on a host eligible for cover is adopted
// as cover.
func (sp *shardPlan) attribute(replicas []registry.Replica) (members []registry.Replica, groups map[string][]registry.Replica, cover []registry.Replica) {
	replicas = slices.Clone(replicas)
	slices.SortFunc(replicas, func(a, b registry.Replica) int {
		return cmp.Or(compareBool(a.IsNonVoting, b.IsNonVoting), compareBool(!isActive(a), !isActive(b)), cmp.Compare(a.ID, b.ID))
	})
	groups = make(map[string][]registry.Replica)
	held := make(map[string]bool)
	for _, r := range replicas {
		if h := sp.byID[r.HostID]; h != nil {
			h.occupied = true
		}
		if r.IsWitness {
			continue
		}
		group, tagged := r.Tags[TagGroup]
		switch {
		case held[r.HostID]:
			sp.remove(r)
		case !r.IsNonVoting:
			members = append(members, r)
		case tagged && group != GroupCover && slices.ContainsFunc(sp.rules.Groups, func(g Group) bool { return g.Name == group }):
			groups[group] = append(groups[group], r)
		case sp.rules.Cover != nil && (group == GroupCover || !tagged && sp.eligible(sp.byID[r.HostID], sp.rules.Cover)):
			cover = append(cover, r)
		default:
			sp.remove(r)
		}
		held[r.HostID] = true
	}
	return members, groups, cover
}

// eligible reports whether h may hold a replica of the shard in a group
// with these filters; h may be nil (a host that is gone).
func (sp *shardPlan) eligible(h *host, filters []Filter) bool {
	return h != nil &&
		(h.Status == registry.HostStatusActive || h.Status == registry.HostStatusNew) &&
		slices.Contains(h.ShardTypes, sp.shard.Type) &&
		matchAll(filters, h.Tags)
}

// keep notes a replica that stays in its group.
func (sp *shardPlan) keep(r registry.Replica) {
	sp.settled = sp.settled && isActive(r)
}

// remove plans the deletion of r.
func (sp *shardPlan) remove(r registry.Replica) {
	sp.plan.Remove = append(sp.plan.Remove, r.ID)
	if h := sp.byID[r.HostID]; h != nil {
		h.load--
	}
	sp.changed = true
}

// add plans a new replica of the shard on h; group is "" for a member.
func (sp *shardPlan) add(h *host, group string) {
	r := registry.Replica{ShardID: sp.shard.ID, HostID: h.ID, Status: registry.ReplicaStatusNew}
	if group != "" {
		r.IsNonVoting = true
		r.Tags = map[string]string{TagGroup: group}
	}
	sp.plan.Add = append(sp.plan.Add, r)
	h.occupied = true
	h.load++
	sp.changed = true
}

// placeCover keeps cover replicas on eligible hosts, removes the others
// and adds one on every eligible host without a replica of the shard.
// Cover is never unsatisfiable.
func (sp *shardPlan) placeCover(have []registry.Replica) {
	if sp.rules.Cover == nil {
		return // have is empty: without cover no replica is attributed to it
	}
	for _, r := range have {
		if sp.eligible(sp.byID[r.HostID], sp.rules.Cover) {
			sp.keep(r)
		} else {
			sp.remove(r)
		}
	}
	for _, h := range sp.hosts {
		if !h.occupied && sp.eligible(h, sp.rules.Cover) {
			sp.add(h, GroupCover)
		}
	}
}

func isActive(r registry.Replica) bool { return r.Status == registry.ReplicaStatusActive }

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
