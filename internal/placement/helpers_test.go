package placement

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// kv is the shard type of every synthetic shard and, unless told otherwise,
// of every synthetic host.
const kv = "kv"

// hosts builds active hosts running kv from a compact notation:
// "h1:zone=a,class=reader h2:zone=b h3". Pseudo-tags set other fields:
// "@status=new" the status, "@type=x" the only shard type ("@type=" none).
func hosts(spec string) []registry.Host {
	var hs []registry.Host
	for _, tok := range strings.Fields(spec) {
		id, tags, _ := strings.Cut(tok, ":")
		h := registry.Host{ID: id, Status: registry.HostStatusActive, ShardTypes: []string{kv}, Tags: map[string]string{}}
		for _, t := range strings.Split(tags, ",") {
			k, v, _ := strings.Cut(t, "=")
			switch k {
			case "":
			case "@status":
				h.Status = v
			case "@type":
				h.ShardTypes = strings.Fields(v)
			default:
				h.Tags[k] = v
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// shard builds a kv shard from placement tags without their "placement:"
// prefix: "member=3;geo:region=r vary=zone replica:readers=6;class=reader".
func shard(id uint64, spec string) registry.Shard {
	tags := map[string]string{}
	for _, tok := range strings.Fields(spec) {
		k, v, _ := strings.Cut(tok, "=")
		tags[tagPrefix+k] = v
	}
	return registry.Shard{ID: id, Type: kv, Name: fmt.Sprintf("kv-%05d", id), Status: registry.ShardStatusNew, Tags: tags}
}

// apply returns a copy of in with p applied the way the registry would:
// removals, additions with fresh IDs (status "new"), shard statuses.
func apply(in Input, p Plan) Input {
	out := Input{Hosts: slices.Clone(in.Hosts), Shards: slices.Clone(in.Shards)}
	next := uint64(0)
	for _, r := range in.Replicas {
		next = max(next, r.ID)
		if !slices.Contains(p.Remove, r.ID) {
			out.Replicas = append(out.Replicas, r)
		}
	}
	for _, r := range p.Add {
		next++
		r.ID = next
		r.Tags = maps.Clone(r.Tags)
		out.Replicas = append(out.Replicas, r)
	}
	for i, s := range out.Shards {
		if st, ok := p.Status[s.ID]; ok {
			out.Shards[i].Status = st
		}
	}
	return out
}

// activate returns a copy of in with every replica active, as once their
// hosts have started them.
func activate(in Input) Input {
	out := in
	out.Replicas = slices.Clone(in.Replicas)
	for i := range out.Replicas {
		out.Replicas[i].Status = registry.ReplicaStatusActive
	}
	return out
}

// converge places and applies until the plan is empty, failing the test
// after rounds plans that were not.
func converge(t *testing.T, in Input, rounds int) Input {
	t.Helper()
	for range rounds {
		p := Place(in)
		if p.Empty() {
			return in
		}
		in = apply(in, p)
	}
	if p := Place(in); !p.Empty() {
		t.Fatalf("no fixpoint after %d rounds; still planning %+v", rounds, p)
	}
	return in
}

// layout describes where the replicas of a shard are, by group, each
// replica named by its host's value of key (the host ID when key is ""):
// "members=a,b,c readers=a,b cover=e1". Gone hosts show as "?".
func layout(in Input, shardID uint64, key string) string {
	byID := map[string]registry.Host{}
	for _, h := range in.Hosts {
		byID[h.ID] = h
	}
	groups := map[string][]string{}
	for _, r := range in.Replicas {
		if r.ShardID != shardID {
			continue
		}
		g := "members"
		if r.IsNonVoting {
			g = cmp.Or(r.Tags[TagGroup], "untagged")
		}
		label := "?"
		if h, ok := byID[r.HostID]; ok {
			label = h.ID
			if key != "" {
				label = h.Tags[key]
			}
		}
		groups[g] = append(groups[g], label)
	}
	var parts []string
	for _, g := range slices.SortedFunc(maps.Keys(groups), func(a, b string) int {
		return cmp.Or(compareBool(a != "members", b != "members"), strings.Compare(a, b))
	}) {
		slices.Sort(groups[g])
		parts = append(parts, g+"="+strings.Join(groups[g], ","))
	}
	return strings.Join(parts, " ")
}

// hostsOf returns the IDs of the hosts of replicas, in order.
func hostsOf(rs []registry.Replica) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.HostID
	}
	return ids
}

// without returns hs without the host id.
func without(hs []registry.Host, id string) []registry.Host {
	return slices.DeleteFunc(slices.Clone(hs), func(h registry.Host) bool { return h.ID == id })
}
