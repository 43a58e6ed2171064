package placement

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// voters are three member hosts, one per zone, kept apart from the hosts
// of non-voting groups by the tag role.
const voters = "v1:zone=a,role=voter v2:zone=b,role=voter v3:zone=c,role=voter "

// TestPlaceFresh places one shard on an empty registry and checks where
// its replicas land, by zone (or host ID), and the shard status planned.
func TestPlaceFresh(t *testing.T) {
	tests := []struct {
		name   string
		hosts  string
		shard  string
		key    string // host tag the layout shows; "" for host IDs
		want   string
		status string // planned status of the shard; "" for unchanged
	}{{
		name:  "3 zones, members=3 vary=zone: one member per zone",
		hosts: "h1:zone=a h2:zone=b h3:zone=c",
		shard: "member=3 vary=zone", key: "zone",
		want: "members=a,b,c",
	}, {
		name:  "zones a,a,a,b,b,c, members=3 vary=zone: one in each of a, b, c",
		hosts: "h1:zone=a h2:zone=a h3:zone=a h4:zone=b h5:zone=b h6:zone=c",
		shard: "member=3 vary=zone", key: "zone",
		want: "members=a,b,c",
	}, {
		name:  "members=2 of 4 zones go to the first zones by host ID",
		hosts: "h1:zone=a h2:zone=b h3:zone=c h4:zone=d",
		shard: "member=2 vary=zone", key: "",
		want: "members=h1,h2",
	}, {
		name:  "no vary: members on distinct hosts, zones may repeat",
		hosts: "h1:zone=a h2:zone=a h3:zone=a h4:zone=b",
		shard: "member=3", key: "zone",
		want: "members=a,a,a",
	}, {
		name:  "two vary keys: distinct region and zone pairs",
		hosts: "h1:region=r1,zone=a h2:region=r1,zone=a h3:region=r2,zone=a h4:region=r1,zone=b",
		shard: "member=3 vary=region;zone", key: "",
		want: "members=h1,h3,h4",
	}, {
		name:  "filters pick hosts: members only in the region",
		hosts: "h1:region=us,zone=a h2:region=eu,zone=b h3:region=us,zone=b h4:region=us,zone=c h5:zone=d",
		shard: "member=3;region=us vary=zone", key: "",
		want: "members=h1,h3,h4",
	}, {
		name:  "key-only filter needs the key, any value",
		hosts: "h1:zone=a,ssd=yes h2:zone=b h3:zone=c,ssd=no",
		shard: "member=2;ssd vary=zone", key: "",
		want: "members=h1,h3",
	}, {
		name:  "host without the vary key is not eligible",
		hosts: "h1:zone=a h2 h3:zone=c",
		shard: "member=2 vary=zone", key: "",
		want: "members=h1,h3",
	}, {
		name:  "host without the shard type is not used",
		hosts: "h1:zone=a h2:zone=b h3:zone=c,@type=other h4:zone=c",
		shard: "member=3 vary=zone", key: "",
		want: "members=h1,h2,h4",
	}, {
		name:  "new hosts are eligible, other statuses are not",
		hosts: "h1:zone=a,@status=new h2:zone=b,@status=down h3:zone=b h4:zone=c,@status=",
		shard: "member=2 vary=zone", key: "",
		want: "members=h1,h3",
	}, {
		name:  "group of 6 over zones a,a,b,b,c,c: 2/2/2",
		hosts: voters + "r1:zone=a,role=reader r2:zone=a,role=reader r3:zone=b,role=reader r4:zone=b,role=reader r5:zone=c,role=reader r6:zone=c,role=reader",
		shard: "member=3;role=voter replica:readers=6;role=reader vary=zone", key: "zone",
		want: "members=a,b,c readers=a,a,b,b,c,c",
	}, {
		name:  "group of 6 over uneven zones a×4 b×2 c×3: still 2/2/2",
		hosts: voters + "r1:zone=a,role=reader r2:zone=a,role=reader r3:zone=a,role=reader r4:zone=a,role=reader r5:zone=b,role=reader r6:zone=b,role=reader r7:zone=c,role=reader r8:zone=c,role=reader r9:zone=c,role=reader",
		shard: "member=3;role=voter replica:readers=6;role=reader vary=zone", key: "zone",
		want: "members=a,b,c readers=a,a,b,b,c,c",
	}, {
		name:  "group of 4 over zones a×3 b c: 2/1/1",
		hosts: voters + "r1:zone=a,role=reader r2:zone=a,role=reader r3:zone=a,role=reader r4:zone=b,role=reader r5:zone=c,role=reader",
		shard: "member=3;role=voter replica:readers=4;role=reader vary=zone", key: "zone",
		want: "members=a,b,c readers=a,a,b,c",
	}, {
		name:  "group of 5 over zones a×5 b: a full zone b caps at 1",
		hosts: voters + "r1:zone=a,role=reader r2:zone=a,role=reader r3:zone=a,role=reader r4:zone=a,role=reader r5:zone=a,role=reader r6:zone=b,role=reader",
		shard: "member=3;role=voter replica:readers=5;role=reader vary=zone", key: "zone",
		want: "members=a,b,c readers=a,a,a,a,b",
	}, {
		name:  "two groups on one pool share it without doubling a host",
		hosts: voters + "r1:zone=a,role=reader r2:zone=b,role=reader r3:zone=c,role=reader r4:zone=a,role=reader",
		shard: "member=3;role=voter replica:fast=1;role=reader replica:slow=3;role=reader vary=zone", key: "",
		want: "members=v1,v2,v3 fast=r1 slow=r2,r3,r4",
	}, {
		name:  "cover: one non-voting replica on every matching host",
		hosts: "h1:zone=a h2:zone=b h3:zone=c e1:edge e2:edge,x=1 e3:edge",
		shard: "member=3 vary=zone cover=edge", key: "",
		want: "members=h1,h2,h3 cover=e1,e2,e3",
	}, {
		name:  "members first, cover fills the matching hosts left",
		hosts: "h1:zone=a,edge h2:zone=b,edge h3:zone=c,edge h4:zone=c,edge",
		shard: "member=3 vary=zone cover=edge", key: "",
		want: "members=h1,h2,h3 cover=h4",
	}, {
		name:  "never two replicas on one host: the group gets what is left",
		hosts: "h1 h2 h3 h4",
		shard: "member=3 replica:readers=3", key: "",
		want:   "members=h1,h2,h3",
		status: "unsatisfied: group readers needs 3 hosts, have 1",
	}, {
		name:  "unsatisfiable members: nothing placed, reason in status",
		hosts: "h1:zone=a h2:zone=a h3:zone=b",
		shard: "member=3 vary=zone", key: "zone",
		want:   "",
		status: "unsatisfied: members need 3 hosts with distinct zone, have 2",
	}, {
		name:  "unsatisfiable members with filters",
		hosts: "h1:geo:region=us-central1,geo:zone=a h2:geo:region=us-central1,geo:zone=b h3:geo:region=us-east1,geo:zone=c",
		shard: "member=3;geo:region=us-central1 vary=geo:zone", key: "",
		want:   "",
		status: "unsatisfied: members need 3 hosts with distinct geo:zone matching geo:region=us-central1, have 2",
	}, {
		name:  "unsatisfiable group, members still placed",
		hosts: voters + "r1:zone=a,role=reader",
		shard: "member=3;role=voter replica:readers=2;role=reader vary=zone", key: "",
		want:   "members=v1,v2,v3",
		status: "unsatisfied: group readers needs 2 hosts with zone matching role=reader, have 1",
	}, {
		name:  "unsatisfiable members hold back their hosts from later groups",
		hosts: "h1:zone=a h2:zone=b h3:zone=b",
		shard: "member=3 vary=zone replica:readers=1", key: "",
		want:   "",
		status: "unsatisfied: members need 3 hosts with distinct zone, have 2; group readers needs 1 hosts with zone, have 0",
	}, {
		name:  "malformed tags: nothing placed, parse error in status",
		hosts: "h1:zone=a h2:zone=b h3:zone=c",
		shard: "member=three vary=zone", key: "",
		want:   "",
		status: `unsatisfied: placement: invalid tags: placement:member="three": count "three" is not a whole number of at least 1`,
	}, {
		name:  "no placement tags: shard left alone",
		hosts: "h1:zone=a",
		shard: "", key: "",
		want: "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Hosts: hosts(tt.hosts), Shards: []registry.Shard{shard(1, tt.shard)}}
			p := Place(in)
			out := apply(in, p)
			if got := layout(out, 1, tt.key); got != tt.want {
				t.Errorf("layout = %q, want %q", got, tt.want)
			}
			if got := p.Status[1]; got != tt.status {
				t.Errorf("status = %q, want %q", got, tt.status)
			}
			if again := Place(out); !again.Empty() {
				t.Errorf("placing again plans %+v, want nothing", again)
			}
		})
	}
}

// TestPlacePrimeShardSkipped checks that shard 0 is never placed, even
// with placement tags.
func TestPlacePrimeShardSkipped(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=b h3:zone=c"), Shards: []registry.Shard{shard(0, "member=3")}}
	if p := Place(in); !p.Empty() {
		t.Fatalf("plan for the prime shard: %+v", p)
	}
}

// TestPlaceAddedHostInUsedZone checks that a 4th host in a zone that
// already has a member gets no member.
func TestPlaceAddedHostInUsedZone(t *testing.T) {
	in := converge(t, Input{Hosts: hosts("h1:zone=a h2:zone=b h3:zone=c"), Shards: []registry.Shard{shard(1, "member=3 vary=zone")}}, 1)
	in.Hosts = append(in.Hosts, hosts("h4:zone=a")...)
	if p := Place(in); !p.Empty() {
		t.Fatalf("plan after adding h4 in zone a: %+v", p)
	}
}

// TestPlaceRemoveExcess lowers members from 5 (no vary, zones a,a,b,b,c)
// to 3 with vary=zone: one member per zone stays, one removal a plan; of
// the two in zone a the one that is not active goes first, then of the
// two in zone b the newer.
func TestPlaceRemoveExcess(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=a h3:zone=b h4:zone=b h5:zone=c"), Shards: []registry.Shard{shard(1, "member=5")}}
	in = activate(converge(t, in, 1))
	in.Replicas[0].Status = registry.ReplicaStatusNew // on h1
	in.Shards[0] = shard(1, "member=3 vary=zone")
	for i, want := range []string{"members=h2,h3,h4,h5", "members=h2,h3,h5"} {
		p := Place(in)
		if len(p.Add) != 0 || len(p.Remove) != 1 {
			t.Fatalf("plan %d: %+v, want 1 removal only", i, p)
		}
		in = apply(in, p)
		if got := layout(in, 1, ""); got != want {
			t.Errorf("layout after plan %d = %q, want %q (h1 is not active, h4 is newer than h3)", i, got, want)
		}
	}
	if got, want := layout(in, 1, "zone"), "members=a,b,c"; got != want {
		t.Errorf("zones = %q, want %q", got, want)
	}
}

// TestPlaceRebalanceNewZone adds a third zone under a group of 6 balanced
// 3/3 over two zones: the group moves to 2/2/2. Counting only zones that
// already have replicas would leave it at 3/3/0.
func TestPlaceRebalanceNewZone(t *testing.T) {
	readers := "r1:zone=a,role=reader r2:zone=a,role=reader r3:zone=a,role=reader r4:zone=b,role=reader r5:zone=b,role=reader r6:zone=b,role=reader"
	in := Input{Hosts: hosts(voters + readers), Shards: []registry.Shard{shard(1, "member=3;role=voter replica:readers=6;role=reader vary=zone")}}
	in = converge(t, in, 1)
	if got, want := layout(in, 1, "zone"), "members=a,b,c readers=a,a,a,b,b,b"; got != want {
		t.Fatalf("before: %q, want %q", got, want)
	}
	in.Hosts = append(in.Hosts, hosts("r7:zone=c,role=reader r8:zone=c,role=reader r9:zone=c,role=reader")...)
	p := Place(in)
	if len(p.Add) != 2 || len(p.Remove) != 2 {
		t.Fatalf("plan %+v, want 2 moves", p)
	}
	out := apply(in, p)
	if got, want := layout(out, 1, "zone"), "members=a,b,c readers=a,a,b,b,c,c"; got != want {
		t.Errorf("after: %q, want %q", got, want)
	}
	if p := Place(out); !p.Empty() {
		t.Errorf("placing again plans %+v", p)
	}
}

// TestPlaceCoverNewHost checks that a host matching the cover filters
// that joins later gets exactly one non-voting cover replica.
func TestPlaceCoverNewHost(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=b h3:zone=c e1:edge"), Shards: []registry.Shard{shard(1, "member=3;zone vary=zone cover=edge")}}
	in = converge(t, in, 1)
	in.Hosts = append(in.Hosts, hosts("e2:edge h4:zone=c")...)
	p := Place(in)
	want := []registry.Replica{{ShardID: 1, HostID: "e2", IsNonVoting: true, Status: registry.ReplicaStatusNew, Tags: map[string]string{TagGroup: GroupCover}}}
	if fmt.Sprint(p.Add) != fmt.Sprint(want) || len(p.Remove) != 0 {
		t.Fatalf("plan %+v, want only %+v", p, want)
	}
	// A host that stops matching loses its cover replica.
	out := apply(in, p)
	delete(out.Hosts[3].Tags, "edge") // e1
	if p := Place(out); !slices.Equal(hostsOf(removed(out, p)), []string{"e1"}) || len(p.Add) != 0 {
		t.Fatalf("plan after e1 left the edge: %+v", p)
	}
}

// TestPlaceReplaceGoneHost deletes a member's host: its replica is removed
// and a new member is added on the spare host in the same zone, in one
// plan. A host that is no longer active but still registered counts as
// gone too, but its member stays until the new one is active: the new one
// joins the shard first, and the next plan removes the old.
func TestPlaceReplaceGoneHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func([]registry.Host) []registry.Host
		now  string // what the first plan removes
	}{
		{"deleted", func(hs []registry.Host) []registry.Host { return without(hs, "a1") }, "a1"},
		{"down", func(hs []registry.Host) []registry.Host { hs[0].Status = "down"; return hs }, ""},
	} {
		in := Input{Hosts: hosts("a1:zone=a b1:zone=b c1:zone=c a2:zone=a"), Shards: []registry.Shard{shard(1, "member=3 vary=zone")}}
		in = activate(converge(t, in, 1))
		if got, want := layout(in, 1, ""), "members=a1,b1,c1"; got != want {
			t.Fatalf("before: %q, want %q", got, want)
		}
		in.Hosts = tc.lose(slices.Clone(in.Hosts))
		p := Place(in)
		if got := strings.Join(hostsOf(removed(in, p)), ","); got != tc.now {
			t.Errorf("%s: removed replicas on %q, want %q", tc.name, got, tc.now)
		}
		if got := hostsOf(p.Add); !slices.Equal(got, []string{"a2"}) {
			t.Errorf("%s: added replicas on %v, want [a2]", tc.name, got)
		}
		in = activate(apply(in, p))
		if tc.now == "" {
			p = Place(in)
			if got := hostsOf(removed(in, p)); !slices.Equal(got, []string{"a1"}) || len(p.Add) != 0 {
				t.Errorf("%s: once a2 is active, plan %+v, want a1's member removed only", tc.name, p)
			}
			in = apply(in, p)
		}
		if got, want := layout(in, 1, "zone"), "members=a,b,c"; got != want {
			t.Errorf("%s: after: %q, want %q", tc.name, got, want)
		}
	}
}

// TestPlaceUnsatisfiedThenFixed loses the only host of a zone: nothing
// changes and the status says why; once a host joins that zone the member
// is replaced and the stale status goes back to "new".
func TestPlaceUnsatisfiedThenFixed(t *testing.T) {
	in := Input{Hosts: hosts("a1:zone=a b1:zone=b c1:zone=c"), Shards: []registry.Shard{shard(1, "member=3 vary=zone")}}
	in = converge(t, in, 1)
	in.Hosts = without(in.Hosts, "c1")
	p := Place(in)
	want := "unsatisfied: members need 3 hosts with distinct zone, have 2"
	if len(p.Add)+len(p.Remove) != 0 || p.Status[1] != want {
		t.Fatalf("plan %+v, want only status %q", p, want)
	}
	in = apply(in, p)
	if p := Place(in); !p.Empty() {
		t.Fatalf("placing again plans %+v", p)
	}
	in.Hosts = append(in.Hosts, hosts("c2:zone=c")...)
	p = Place(in)
	if len(p.Remove) != 1 || !slices.Equal(hostsOf(p.Add), []string{"c2"}) || p.Status[1] != registry.ShardStatusNew {
		t.Fatalf("plan %+v, want c1's replica replaced on c2, status new", p)
	}
}

// TestPlaceActive checks that a shard becomes active only once all its
// replicas exist and are active, and that active is then stable.
func TestPlaceActive(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=b h3:zone=c e1:edge"), Shards: []registry.Shard{shard(1, "member=3;zone vary=zone cover=edge")}}
	in = converge(t, in, 1)
	in.Replicas[3].Status = registry.ReplicaStatusActive
	if p := Place(in); !p.Empty() {
		t.Fatalf("plan with replicas not yet active: %+v", p)
	}
	in = activate(in)
	p := Place(in)
	if want := map[uint64]string{1: registry.ShardStatusActive}; fmt.Sprint(p) != fmt.Sprint(Plan{Status: want}) {
		t.Fatalf("plan %+v, want only status active", p)
	}
	if p := Place(apply(in, p)); !p.Empty() {
		t.Fatalf("placing again plans %+v", p)
	}
}

// TestPlaceStrayReplicas checks the replicas placement does not own:
// a non-voting replica of no known group and a second replica on one host
// are removed; a witness is left alone and keeps its host.
func TestPlaceStrayReplicas(t *testing.T) {
	in := Input{
		Hosts:  hosts("h1 h2 h3 h4 h5"),
		Shards: []registry.Shard{shard(1, "member=2 cover=edge")},
		Replicas: []registry.Replica{
			{ID: 1, ShardID: 1, HostID: "h1", Status: "active"},
			{ID: 2, ShardID: 1, HostID: "h1", Status: "active", IsNonVoting: true, Tags: map[string]string{TagGroup: "old"}},
			{ID: 3, ShardID: 1, HostID: "h2", Status: "active", IsNonVoting: true},
			{ID: 4, ShardID: 1, HostID: "h3", Status: "active", IsWitness: true},
			{ID: 5, ShardID: 1, HostID: "h4", Status: "active", IsNonVoting: true, Tags: map[string]string{TagGroup: "gone"}},
		},
	}
	p := Place(in)
	if !slices.Equal(p.Remove, []uint64{2, 3, 5}) || !slices.Equal(hostsOf(p.Add), []string{"h5"}) {
		t.Fatalf("plan %+v, want removals [2 3 5] and a member on h5", p)
	}
}

// TestPlaceAdoptsUntaggedCover checks that an untagged non-voting replica
// on a host matching the cover filters counts as its cover replica.
func TestPlaceAdoptsUntaggedCover(t *testing.T) {
	in := Input{
		Hosts:  hosts("h1:m e1:edge"),
		Shards: []registry.Shard{shard(1, "member=1;m cover=edge")},
		Replicas: []registry.Replica{
			{ID: 1, ShardID: 1, HostID: "h1", Status: "new"},
			{ID: 2, ShardID: 1, HostID: "e1", Status: "new", IsNonVoting: true},
		},
	}
	if p := Place(in); !p.Empty() {
		t.Fatalf("plan %+v, want nothing", p)
	}
}

// TestPlaceManyShardsSpread places 30 shards of 3 members over 9 hosts in
// 3 zones: every host gets 10 replicas and every shard one per zone.
func TestPlaceManyShardsSpread(t *testing.T) {
	in := Input{Hosts: hosts("a1:zone=a a2:zone=a a3:zone=a b1:zone=b b2:zone=b b3:zone=b c1:zone=c c2:zone=c c3:zone=c")}
	for id := uint64(1); id <= 30; id++ {
		in.Shards = append(in.Shards, shard(id, "member=3 vary=zone"))
	}
	in = converge(t, in, 1)
	load := map[string]int{}
	for _, r := range in.Replicas {
		load[r.HostID]++
	}
	for _, h := range in.Hosts {
		if load[h.ID] != 10 {
			t.Errorf("host %s holds %d replicas, want 10 (all: %v)", h.ID, load[h.ID], load)
		}
	}
	for _, s := range in.Shards {
		if got := layout(in, s.ID, "zone"); got != "members=a,b,c" {
			t.Errorf("shard %d: %q", s.ID, got)
		}
	}
}

// TestPlaceDeterministic checks that the order of the input does not
// change the plan and that the plan is sorted.
func TestPlaceDeterministic(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=b h3:zone=c h4:zone=a h5:zone=b e1:edge e2:edge")}
	for id := uint64(5); id >= 1; id-- {
		in.Shards = append(in.Shards, shard(id, "member=3 vary=zone replica:r=2;zone cover=edge"))
	}
	want := Place(in)
	slices.Reverse(in.Hosts)
	slices.Reverse(in.Shards)
	if got := Place(in); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("plan depends on input order:\n%+v\n%+v", got, want)
	}
	if !slices.IsSortedFunc(want.Add, func(a, b registry.Replica) int {
		return strings.Compare(fmt.Sprintf("%09d/%s", a.ShardID, a.HostID), fmt.Sprintf("%09d/%s", b.ShardID, b.HostID))
	}) {
		t.Errorf("Add not sorted: %v", want.Add)
	}
}

// removed returns the replicas of in that p removes.
func removed(in Input, p Plan) []registry.Replica {
	return slices.DeleteFunc(slices.Clone(in.Replicas), func(r registry.Replica) bool { return !slices.Contains(p.Remove, r.ID) })
}

// TestPlaceMovesMembersOneAtATime changes the hosts a shard's members must
// be on: the new members are added first, while the old ones stay, so that
// they join the shard instead of starting a new one; then the old ones go,
// one a plan, once the others are active.
func TestPlaceMovesMembersOneAtATime(t *testing.T) {
	in := Input{Hosts: hosts("u1:region=us u2:region=us u3:region=us e1:region=eu e2:region=eu e3:region=eu"),
		Shards: []registry.Shard{shard(1, "member=3;region=us")}}
	in = activate(converge(t, in, 1))
	in.Shards[0] = shard(1, "member=3;region=eu")
	p := Place(in)
	if got := hostsOf(p.Add); !slices.Equal(got, []string{"e1", "e2", "e3"}) || len(p.Remove) != 0 {
		t.Fatalf("first plan %+v, want members added on e1, e2 and e3 and none removed", p)
	}
	in = apply(in, p)
	if p := Place(in); len(p.Remove) != 0 {
		t.Fatalf("while the new members are not active: %+v, want no removal", p)
	}
	in = activate(in)
	for i := range 3 {
		p := Place(in)
		if len(p.Remove) != 1 || len(p.Add) != 0 {
			t.Fatalf("plan %d once the new members are active: %+v, want one removal", i, p)
		}
		in = activate(apply(in, p))
	}
	if got, want := layout(in, 1, ""), "members=e1,e2,e3"; got != want {
		t.Errorf("after: %q, want %q", got, want)
	}
	if p := Place(in); len(p.Add)+len(p.Remove) != 0 {
		t.Errorf("after the move: %+v, want no change of replicas", p)
	}
}

// TestPlaceVaryValuesWithNUL checks that hosts whose tuples of vary values
// differ are distinct buckets even when joining the values with NUL would
// make them equal: ("a\x00b", "c") and ("a", "b\x00c"). Host tag values
// may hold any byte. Two members have two distinct tuples to go to.
func TestPlaceVaryValuesWithNUL(t *testing.T) {
	hs := hosts("h1 h2")
	hs[0].Tags = map[string]string{"zone": "a\x00b", "rack": "c"}
	hs[1].Tags = map[string]string{"zone": "a", "rack": "b\x00c"}
	in := Input{Hosts: hs, Shards: []registry.Shard{shard(1, "member=2 vary=zone;rack")}}
	p := Place(in)
	if len(p.Add) != 2 || p.Status[1] != "" {
		t.Fatalf("plan %+v, want a member on each of h1 and h2", p)
	}
}

// TestPlaceRulesRemovedClearStatus: a shard whose placement could not be
// met keeps the reason in its status only while it has placement tags.
// Once its tags are removed (WithoutTag, to manage its replicas by hand)
// nothing is asked of placement, and the status goes back to "new"; it
// said "unsatisfied" forever.
func TestPlaceRulesRemovedClearStatus(t *testing.T) {
	in := Input{Hosts: hosts("h1:zone=a h2:zone=b"), Shards: []registry.Shard{shard(1, "member=3 vary=zone")}}
	in = converge(t, in, 2)
	if got := in.Shards[0].Status; !strings.HasPrefix(got, registry.ShardStatusUnsatisfied) {
		t.Fatalf("status %q, want unsatisfied", got)
	}
	in.Shards[0].Tags = map[string]string{"owner": "me"}
	p := Place(in)
	if want := (Plan{Status: map[uint64]string{1: registry.ShardStatusNew}}); fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("plan %+v, want only status new", p)
	}
	if p := Place(apply(in, p)); !p.Empty() {
		t.Fatalf("placing again plans %+v", p)
	}
}
