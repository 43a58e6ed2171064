package registry

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestSnapshotReplayDeterminism is the replica-agreement property: a
// replica that recovers from a snapshot taken at any point of the log and
// applies the rest ends, entry by entry, with the same results and the
// same saved bytes as one that applied the whole log. Random command
// sequences, fixed seed.
func TestSnapshotReplayDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for seq := range 200 {
		n := 10 + rng.IntN(50)
		cmds := make([][]byte, n)
		indexes := make([]uint64, n)
		results := make([]Result, n)
		full := New()
		states := []*State{full.State()} // states[k]: after the first k entries
		next := uint64(1)
		for i := range cmds {
			if i == 0 {
				cmds[i] = Command{Op: OpInit, Hosts: threeHosts(), Replicas: threePrimeReplicas()}.Encode()
			} else {
				cmds[i] = randomCommand(rng, full.State()).Encode()
			}
			indexes[i] = next
			next += 1 + uint64(rng.IntN(2)) // gaps: entries of other kinds
			results[i] = full.Apply(indexes[i], cmds[i])
			states = append(states, full.State())
		}
		for range 4 {
			k := rng.IntN(n + 1)
			t.Run(fmt.Sprintf("seq%d/cut%d", seq, k), func(t *testing.T) {
				snap := save(t, states[k])
				rec := New()
				if err := rec.Load(bytes.NewReader(snap)); err != nil {
					t.Fatalf("load snapshot at %d: %v\n%s", k, err, snap)
				}
				if got := save(t, rec.State()); !bytes.Equal(got, snap) {
					t.Fatalf("snapshot at %d saves differently once loaded:\n%s\nwant\n%s", k, got, snap)
				}
				for i := k; i < n; i++ {
					res := rec.Apply(indexes[i], cmds[i])
					if !reflect.DeepEqual(res, results[i]) {
						t.Fatalf("entry %d (%s): result %d %q after recovery, %d %q from the log",
							i, cmds[i], res.Value, res.Data, results[i].Value, results[i].Data)
					}
					want, got := save(t, states[i+1]), save(t, rec.State())
					if !bytes.Equal(got, want) {
						t.Fatalf("after entry %d (%s):\nrecovered:\n%s\nfrom the log:\n%s", i, cmds[i], got, want)
					}
				}
			})
		}
	}
}

// randomCommand returns a command over a small universe of IDs and names,
// mostly ones st has, so that commands often collide: valid ones, rejected
// ones, batches.
func randomCommand(rng *rand.Rand, st *State) Command {
	if rng.IntN(6) == 0 {
		c := Command{Op: OpBatch}
		for range 1 + rng.IntN(4) {
			c.Batch = append(c.Batch, randomSimpleCommand(rng, st))
		}
		return c
	}
	return randomSimpleCommand(rng, st)
}

func randomSimpleCommand(rng *rand.Rand, st *State) Command {
	hostID := func() string { return fmt.Sprintf("h%d", 1+rng.IntN(6)) }
	shardID := func() uint64 {
		if ss := st.Shards(); len(ss) > 0 && rng.IntN(4) != 0 {
			return ss[rng.IntN(len(ss))].ID
		}
		return uint64(rng.IntN(int(st.LastShardID()) + 3))
	}
	replicaID := func() uint64 {
		if rs := st.Replicas(); len(rs) > 0 && rng.IntN(4) != 0 {
			return rs[rng.IntN(len(rs))].ID
		}
		return uint64(rng.IntN(int(st.LastReplicaID()) + 3))
	}
	tags := func() map[string]string {
		if rng.IntN(3) == 0 {
			return nil
		}
		m := map[string]string{}
		for range rng.IntN(4) {
			m[fmt.Sprintf("k%d", rng.IntN(4))] = fmt.Sprintf("v%d", rng.IntN(3))
		}
		return m
	}
	name := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		return fmt.Sprintf("s%d", rng.IntN(6))
	}
	kinds := []Kind{KindHost, KindShard, KindReplica, "bogus"}
	switch rng.IntN(12) {
	case 0:
		return Command{Op: OpHostPut, Host: &Host{ID: hostID(), Status: HostStatusActive, Tags: tags(),
			ShardTypes: []string{"kv"}[:rng.IntN(2)]}}
	case 1:
		return Command{Op: OpHostDelete, HostID: hostID()}
	case 2, 3:
		s := &Shard{Name: name(), Type: "kv", Tags: tags(), Status: ShardStatusNew}
		c := Command{Op: OpShardPut, Shard: s}
		if rng.IntN(2) == 0 {
			s.ID = shardID()
			if old, ok := st.Shard(s.ID); ok && rng.IntN(2) == 0 {
				s.Name, c.IfUpdated = old.Name, old.Updated
			} else {
				c.IfUpdated = uint64(rng.IntN(2) * rng.IntN(30))
			}
		}
		return c
	case 4:
		return Command{Op: OpShardDelete, ShardID: shardID()}
	case 5, 6:
		r := &Replica{HostID: hostID(), ShardID: shardID(), Tags: tags(), Status: ReplicaStatusNew,
			IsNonVoting: rng.IntN(3) == 0, IsWitness: rng.IntN(8) == 0}
		switch rng.IntN(6) {
		case 0:
			r.ID = replicaID()
		case 1:
			r.ID = st.LastReplicaID() + 1 + uint64(rng.IntN(3))
		}
		return Command{Op: OpReplicaPut, Replica: r}
	case 7:
		return Command{Op: OpReplicaDelete, ReplicaID: replicaID()}
	case 8:
		return Command{Op: OpTagSet, Kind: kinds[rng.IntN(4)], HostID: hostID(), ShardID: shardID(), ReplicaID: replicaID(),
			Key: fmt.Sprintf("k%d", rng.IntN(4)), Value: fmt.Sprintf("v%d", rng.IntN(3))}
	case 9:
		return Command{Op: OpTagRemove, Kind: kinds[rng.IntN(4)], HostID: hostID(), ShardID: shardID(), ReplicaID: replicaID(),
			Key: fmt.Sprintf("k%d", rng.IntN(4))}
	case 10:
		return Command{Op: OpStatusSet, Kind: kinds[rng.IntN(4)], HostID: hostID(), ShardID: shardID(), ReplicaID: replicaID(),
			Status: []string{"new", "active", ""}[rng.IntN(3)]}
	default:
		return Command{Op: OpShardLeader, ShardID: shardID(), Leader: replicaID(), Term: uint64(rng.IntN(5))}
	}
}

// TestVersionsAreTheApplyingIndex: on every op, batches included, a record
// an entry inserts has Created and Updated equal to the entry's index, and
// one it changes keeps Created (unless the entry deleted it and inserted it
// again) and has Updated equal to the index; a record it leaves alone
// keeps both. Random command sequences, fixed seed.
func TestVersionsAreTheApplyingIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for seq := range 100 {
		s := New()
		s.Apply(1, Command{Op: OpInit, Hosts: threeHosts(), Replicas: threePrimeReplicas()}.Encode())
		for index := uint64(2); index < 62; index++ {
			before := s.State()
			cmd := randomCommand(rng, before)
			s.Apply(index, cmd.Encode())
			after := s.State()
			check := func(kind string, id any, old, rec any, existed bool, oc, c, u uint64) {
				t.Helper()
				switch {
				case !existed && (c != index || u != index):
					t.Fatalf("seq %d, %s: new %s %v: created %d, updated %d at index %d", seq, cmd.Op, kind, id, c, u, index)
				case existed && !reflect.DeepEqual(old, rec) && (u != index || c != oc && c != index):
					t.Fatalf("seq %d, %s: %s %v changed from %+v to %+v at index %d", seq, cmd.Op, kind, id, old, rec, index)
				}
			}
			for _, r := range after.Hosts() {
				o, ok := before.Host(r.ID)
				check("host", r.ID, o, r, ok, o.Created, r.Created, r.Updated)
			}
			for _, r := range after.Shards() {
				o, ok := before.Shard(r.ID)
				check("shard", r.ID, o, r, ok, o.Created, r.Created, r.Updated)
			}
			for _, r := range after.Replicas() {
				o, ok := before.Replica(r.ID)
				check("replica", r.ID, o, r, ok, o.Created, r.Created, r.Updated)
			}
		}
	}
}
