package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// TestPlaceProperties places random registries (fixed seed) and checks,
// with a deliberately naive second reading of the rules:
//   - from an empty registry, one plan reaches the fixpoint;
//   - after a random change (a host lost, added or downed, a count changed,
//     replicas activated), placement converges within a few rounds, the
//     hosts starting what each plan gives them before the next, and a plan
//     that removes nothing is not followed by one that removes what it
//     added (a plan that removes frees hosts only for the next);
//   - every plan keeps each shard's voters safe (see checkVoterRemovals);
//   - every plan is a pure function of the registry, whatever the order
//     it is listed in, and the registry accepts it (see checkPlan);
//   - at the fixpoint every shard is either marked unsatisfied or has
//     exactly what its tags ask, spread as they ask (see checkShard).
func TestPlaceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shuffle := rand.New(rand.NewPCG(3, 4)) // for checkPlan, apart from the scenarios
	for i := range 300 {
		in := randomInput(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p := Place(in)
			checkPlan(t, shuffle, in, p)
			in = apply(in, p)
			if p := Place(in); !p.Empty() {
				t.Fatalf("placing a fresh plan again plans %+v", p)
			}
			check(t, in)
			for range 8 {
				in = randomChange(rng, in)
				var added []uint64 // by the last plan, if it removed nothing
				for round := 0; ; round++ {
					p := Place(in)
					if p.Empty() {
						if allActive(in) {
							break
						}
						in, added = activate(in), nil // the hosts start their replicas: placement may go on
						continue
					}
					if round == 12 {
						t.Fatalf("no fixpoint after %d rounds; still planning %+v", round, p)
					}
					for _, id := range p.Remove {
						if slices.Contains(added, id) {
							t.Fatalf("a plan without removals is followed by one that removes replica %d, which it added: %+v", id, p)
						}
					}
					if err := checkVoterRemovals(in, p); err != nil {
						t.Fatalf("%v: %+v\nreplicas: %v", err, p, in.Replicas)
					}
					checkPlan(t, shuffle, in, p)
					next := apply(in, p)
					added = added[:0]
					if len(p.Remove) == 0 {
						for _, r := range next.Replicas[len(next.Replicas)-len(p.Add):] {
							added = append(added, r.ID)
						}
					}
					in = activate(next)
				}
				check(t, in)
			}
		})
	}
}

// allActive says whether every replica of in is active.
func allActive(in Input) bool {
	return !slices.ContainsFunc(in.Replicas, func(r registry.Replica) bool { return !isActive(r) })
}

// checkVoterRemovals checks that plan p, made from in, removes voting
// members of a shard only as a shard can afford: a member whose host is
// still registered goes only in a plan that adds no member to its shard,
// while every other member of its shard is active, and one a plan.
func checkVoterRemovals(in Input, p Plan) error {
	registered := map[string]bool{}
	for _, h := range in.Hosts {
		registered[h.ID] = true
	}
	addsMember := map[uint64]bool{}
	for _, r := range p.Add {
		addsMember[r.ShardID] = addsMember[r.ShardID] || !r.IsNonVoting
	}
	removed := map[uint64]int{}
	for _, id := range p.Remove {
		i := slices.IndexFunc(in.Replicas, func(r registry.Replica) bool { return r.ID == id })
		if i < 0 {
			return fmt.Errorf("the plan removes replica %d, which does not exist", id)
		}
		r := in.Replicas[i]
		if r.IsNonVoting || !registered[r.HostID] {
			continue
		}
		if addsMember[r.ShardID] {
			return fmt.Errorf("shard %d: the plan removes member %d while it adds one", r.ShardID, id)
		}
		if removed[r.ShardID]++; removed[r.ShardID] > 1 {
			return fmt.Errorf("shard %d: the plan removes more than one member", r.ShardID)
		}
		for _, o := range in.Replicas {
			if o.ShardID == r.ShardID && !o.IsNonVoting && o.ID != id && !isActive(o) {
				return fmt.Errorf("shard %d: the plan removes member %d while member %d is not active", r.ShardID, id, o.ID)
			}
		}
	}
	return nil
}

// randomInput returns 3..14 hosts and 1..6 shards on an empty registry.
func randomInput(rng *rand.Rand) Input {
	var in Input
	for range 3 + rng.IntN(12) {
		in.Hosts = append(in.Hosts, randomHost(rng, in.Hosts))
	}
	for id := range uint64(1 + rng.IntN(6)) {
		in.Shards = append(in.Shards, randomShard(rng, id+1))
	}
	return in
}

// randomHost returns a host in one of 4 zones (or none), maybe a reader,
// maybe an edge, mostly active, mostly running kv.
func randomHost(rng *rand.Rand, existing []registry.Host) registry.Host {
	pick := func(p float64, s string) string {
		if rng.Float64() < p {
			return s
		}
		return ""
	}
	tags := []string{
		pick(0.9, "zone="+string(rune('a'+rng.IntN(4)))),
		pick(0.5, "reader"), pick(0.2, "edge"), pick(0.5, "ssd"),
		pick(0.1, "@status=new"), pick(0.05, "@status=down"), pick(0.1, "@type=other"),
	}
	id := fmt.Sprintf("h%03d", rng.IntN(1000))
	for slices.ContainsFunc(existing, func(h registry.Host) bool { return h.ID == id }) {
		id += "x"
	}
	return hosts(id + ":" + strings.Join(tags, ","))[0]
}

// randomShard returns a shard with random members, groups, vary and cover;
// one in twenty has a malformed tag.
func randomShard(rng *rand.Rand, id uint64) registry.Shard {
	spec := []string{fmt.Sprintf("member=%d", 1+rng.IntN(4))}
	if rng.IntN(2) == 0 {
		spec[0] += ";ssd"
	}
	if rng.IntN(10) < 7 {
		spec = append(spec, "vary=zone")
	}
	if rng.IntN(10) < 4 {
		spec = append(spec, fmt.Sprintf("replica:readers=%d;reader", rng.IntN(6)))
	}
	if rng.IntN(10) < 2 {
		spec = append(spec, fmt.Sprintf("replica:spare=%d", 1+rng.IntN(2)))
	}
	if rng.IntN(10) < 3 {
		spec = append(spec, "cover=edge")
	}
	if rng.IntN(20) == 0 {
		spec = append(spec, "member=x")
	}
	return shard(id, strings.Join(spec, " "))
}

// randomChange returns in with one random change to the topology, the
// tags or the replica statuses.
func randomChange(rng *rand.Rand, in Input) Input {
	out := in
	out.Hosts = slices.Clone(in.Hosts)
	out.Shards = slices.Clone(in.Shards)
	switch c := rng.IntN(6); {
	case len(out.Hosts) == 0 || c == 1:
		out.Hosts = append(out.Hosts, randomHost(rng, out.Hosts))
	case c == 0:
		out.Hosts = without(out.Hosts, out.Hosts[rng.IntN(len(out.Hosts))].ID)
	case c == 2:
		i := rng.IntN(len(out.Hosts))
		out.Hosts[i].Status = []string{registry.HostStatusActive, "down"}[rng.IntN(2)]
	case c == 3:
		s := &out.Shards[rng.IntN(len(out.Shards))]
		*s = randomShard(rng, s.ID)
	default:
		out = activate(out)
	}
	return out
}

// check verifies every shard of in with checkShard.
func check(t *testing.T, in Input) {
	t.Helper()
	for _, s := range in.Shards {
		if err := checkShard(in, s); err != nil {
			t.Fatalf("shard %d %v (status %q): %v\nhosts: %v\nreplicas: %v", s.ID, s.Tags, s.Status, err, in.Hosts, in.Replicas)
		}
	}
}

// checkShard is the naive reading of the placement rules: no host holds
// two replicas; and unless the shard is marked unsatisfied, it has exactly
// the members, groups and cover its tags ask for, on eligible hosts,
// members on distinct vary values, groups balanced over every vary value
// of their eligible hosts, and it is active when all replicas are.
func checkShard(in Input, s registry.Shard) error {
	rules, err := ParseRules(s.Tags)
	unsat := strings.HasPrefix(s.Status, "unsatisfied: ")
	switch {
	case err != nil && !unsat:
		return fmt.Errorf("malformed tags (%v) but not unsatisfied", err)
	case err != nil:
		return nil
	}
	hostByID := map[string]registry.Host{}
	for _, h := range in.Hosts {
		hostByID[h.ID] = h
	}
	var mine []registry.Replica
	holds := map[string]int{}
	active := true
	for _, r := range in.Replicas {
		if r.ShardID == s.ID && !r.IsWitness {
			mine = append(mine, r)
			holds[r.HostID]++
			active = active && r.Status == registry.ReplicaStatusActive
			if holds[r.HostID] > 1 {
				return fmt.Errorf("two replicas on host %s", r.HostID)
			}
		}
	}
	if unsat {
		return nil
	}
	ok := func(h registry.Host, filters []Filter) bool {
		if h.Status != "active" && h.Status != "new" || !slices.Contains(h.ShardTypes, s.Type) {
			return false
		}
		for _, f := range filters {
			if v, has := h.Tags[f.Key]; !has || f.Value != "" && f.Value != v {
				return false
			}
		}
		return true
	}
	value := func(h registry.Host) (string, bool) {
		if len(rules.Vary) == 0 {
			return h.ID, true
		}
		var vs []string
		for _, k := range rules.Vary {
			v, has := h.Tags[k]
			if !has {
				return "", false
			}
			vs = append(vs, v)
		}
		return fmt.Sprint(vs), true
	}
	checkGroup := func(g Group, members bool) error {
		counts := map[string]int{}
		n := 0
		for _, r := range mine {
			if r.IsNonVoting == members || r.IsNonVoting && r.Tags[TagGroup] != g.Name {
				continue
			}
			h, exists := hostByID[r.HostID]
			v, hasValue := value(h)
			if !exists || !hasValue || !ok(h, g.Filters) {
				return fmt.Errorf("group %q: replica %d on ineligible host %s", g.Name, r.ID, r.HostID)
			}
			counts[v]++
			n++
			if members && counts[v] > 1 {
				return fmt.Errorf("members share %s", v)
			}
		}
		if n != g.Count {
			return fmt.Errorf("group %q has %d replicas, want %d", g.Name, n, g.Count)
		}
		for _, h := range in.Hosts {
			v, hasValue := value(h)
			if members || !hasValue || !ok(h, g.Filters) || holds[h.ID] > 0 {
				continue
			}
			for u, c := range counts {
				if c-counts[v] > 1 {
					return fmt.Errorf("group %q unbalanced: %d in %s, %d in %s with free host %s", g.Name, c, u, counts[v], v, h.ID)
				}
			}
		}
		return nil
	}
	if err := checkGroup(rules.Members, true); err != nil {
		return err
	}
	for _, g := range rules.Groups {
		if err := checkGroup(g, false); err != nil {
			return err
		}
	}
	for _, r := range mine {
		g, tagged := r.Tags[TagGroup]
		known := !r.IsNonVoting || slices.ContainsFunc(rules.Groups, func(x Group) bool { return x.Name == g })
		if !known && (rules.Cover == nil || tagged && g != GroupCover || !ok(hostByID[r.HostID], rules.Cover)) {
			return fmt.Errorf("stray replica %d (%v) on %s", r.ID, r.Tags, r.HostID)
		}
	}
	for _, h := range in.Hosts {
		if rules.Cover != nil && ok(h, rules.Cover) && holds[h.ID] == 0 {
			return fmt.Errorf("cover host %s has no replica", h.ID)
		}
	}
	if active && s.Status != registry.ShardStatusActive {
		return fmt.Errorf("all replicas active but status %q", s.Status)
	}
	return nil
}
