package placement

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// bucket holds the eligible hosts of a group that share one vary value.
type bucket struct {
	hosts []*host            // eligible hosts, ascending ID
	kept  []registry.Replica // the group's existing replicas here, not yet removed
	n     int                // the group's replicas here, counting this plan's changes
}

// spread is one group of one shard being placed.
type spread struct {
	*shardPlan
	group   string // "" for the voting members
	limit   int    // most replicas of the group per bucket
	buckets []bucket
}

// placeGroup reconciles the replicas of one group (the voting members when
// nonVoting is false) with g, spreading them over the shard's vary keys.
// When g.Count cannot be reached it changes nothing, records the reason and
// holds back the hosts the group could use from the shard's later groups.
func (sp *shardPlan) placeGroup(g Group, nonVoting bool, have []registry.Replica) {
	s := &spread{shardPlan: sp, group: g.Name, limit: 1}
	if nonVoting {
		s.limit = math.MaxInt
	}
	gone := s.fill(g.Filters, have)
	if capacity := s.capacity(); capacity < g.Count {
		sp.reasons = append(sp.reasons, shortage(g, sp.rules.Vary, capacity))
		s.holdBack()
		return
	}
	if !nonVoting {
		defer sp.holdVoterRemovals(have, len(sp.plan.Remove), len(sp.plan.Add))
	}
	for _, r := range gone {
		sp.remove(r)
	}
	total := len(have) - len(gone)
	for {
		if b, i := s.worst(true); b != nil { // members sharing a vary value
			s.drop(b, i)
			total--
			continue
		}
		if total > g.Count {
			s.drop(s.worst(false))
			total--
			continue
		}
		to, h := s.best()
		if h == nil {
			break // only when total == g.Count: capacity was checked
		}
		if total < g.Count {
			s.put(to, h)
			total++
			continue
		}
		if from, i := s.worst(false); from != nil && from.n-to.n >= 2 {
			s.drop(from, i)
			s.put(to, h)
			continue
		}
		break
	}
	for i := range s.buckets {
		b := &s.buckets[i]
		for _, r := range b.kept {
			sp.keep(r)
		}
	}
}

// holdVoterRemovals takes back the removals of voting members that this
// plan made after it had removeFrom removals and addFrom additions, but
// one: a shard keeps its voters until their replacements have joined, and
// loses at most one a plan. A member on a host that is still registered is
// removed only when the plan adds no member to the shard and every other
// member is active; at most one such member goes. Members of hosts no
// longer registered go at once. Were every member replaced in one plan,
// the new ones would be the shard's oldest replicas and would start a new,
// empty group instead of joining the old one.
func (sp *shardPlan) holdVoterRemovals(have []registry.Replica, removeFrom, addFrom int) {
	byID := make(map[uint64]registry.Replica, len(have))
	for _, r := range have {
		byID[r.ID] = r
	}
	removing := map[uint64]bool{}
	for _, id := range sp.plan.Remove[removeFrom:] {
		if _, ok := byID[id]; ok {
			removing[id] = true
		}
	}
	addsMember := false
	for _, r := range sp.plan.Add[addFrom:] {
		addsMember = addsMember || !r.IsNonVoting
	}
	allowed := 0
	kept := sp.plan.Remove[:removeFrom]
	for _, id := range sp.plan.Remove[removeFrom:] {
		r, voter := byID[id]
		if !voter || sp.byID[r.HostID] == nil {
			kept = append(kept, id)
			continue
		}
		othersActive := true
		for _, o := range have {
			if o.ID != id && !removing[o.ID] && !isActive(o) {
				othersActive = false
			}
		}
		if !addsMember && othersActive && allowed == 0 {
			allowed++
			kept = append(kept, id)
			continue
		}
		sp.byID[r.HostID].load++ // it stays
		sp.settled = false       // the shard is not where its rules want it yet
	}
	sp.plan.Remove = kept
}

// fill makes a bucket for every vary value of the group's eligible hosts
// and sorts the group's replicas into the buckets of their hosts. It
// returns the replicas whose host is gone or no longer eligible.
func (s *spread) fill(filters []Filter, have []registry.Replica) (gone []registry.Replica) {
	pl := s.pool(filters)
	s.buckets = make([]bucket, len(pl.buckets))
	for i, hosts := range pl.buckets {
		s.buckets[i].hosts = hosts
	}
	for _, r := range have {
		if v, ok := s.bucketKey(s.byID[r.HostID], filters); ok {
			b := &s.buckets[pl.index[v]]
			b.kept = append(b.kept, r)
			b.n++
		} else {
			gone = append(gone, r)
		}
	}
	return gone
}

// pool holds the hosts eligible for a group, by bucket. Groups with the
// same shard type, vary keys and filters share one.
type pool struct {
	buckets [][]*host      // hosts by bucket (ascending ID), buckets in order of their first host
	index   map[string]int // bucket key to position in buckets
}

// pool returns the pool of a group of the shard with these filters.
func (sp *shardPlan) pool(filters []Filter) *pool {
	key := sp.shard.Type + "\x00" + strings.Join(sp.rules.Vary, ",") + "\x00" + formatFilters(filters)
	if pl := sp.pools[key]; pl != nil {
		return pl
	}
	pl := &pool{index: make(map[string]int)}
	for _, h := range sp.hosts {
		if v, ok := sp.bucketKey(h, filters); ok {
			i, seen := pl.index[v]
			if !seen {
				i = len(pl.buckets)
				pl.index[v] = i
				pl.buckets = append(pl.buckets, nil)
			}
			pl.buckets[i] = append(pl.buckets[i], h)
		}
	}
	sp.pools[key] = pl
	return pl
}

// bucketKey returns the bucket of h in a group with these filters: its
// values of the vary keys, or its ID when the shard has none. ok is false
// when h (maybe nil) is not eligible or lacks a vary key.
func (sp *shardPlan) bucketKey(h *host, filters []Filter) (v string, ok bool) {
	if !sp.eligible(h, filters) {
		return "", false
	}
	switch vary := sp.rules.Vary; len(vary) {
	case 0:
		return h.ID, true
	case 1:
		v, ok = h.Tags[vary[0]]
		return v, ok
	default:
		// Quoted, so that distinct tuples make distinct keys whatever
		// bytes the values hold (joined with NUL, ("a\x00b", "c") and
		// ("a", "b\x00c") would share a bucket).
		values := make([]string, len(vary))
		for i, k := range vary {
			v, ok := h.Tags[k]
			if !ok {
				return "", false
			}
			values[i] = strconv.Quote(v)
		}
		return strings.Join(values, ","), true
	}
}

// capacity returns how many replicas the group could have: per bucket its
// own replicas plus the hosts free of the shard, at most limit.
func (s *spread) capacity() int {
	total := 0
	for i := range s.buckets {
		b := &s.buckets[i]
		free := 0
		for _, h := range b.hosts {
			if !h.occupied {
				free++
			}
		}
		total += min(s.limit, len(b.kept)+free)
	}
	return total
}

// holdBack marks all the group's hosts occupied for the rest of the shard.
func (s *spread) holdBack() {
	for i := range s.buckets {
		b := &s.buckets[i]
		for _, h := range b.hosts {
			h.occupied = true
		}
	}
}

// worst returns the replica to remove first, as its bucket and index in
// kept: from the most crowded bucket (only among buckets over the limit
// when over is set), one that is not active before one that is, then the
// newest. The bucket is nil when there is none.
func (s *spread) worst(over bool) (worst *bucket, at int) {
	for i := range s.buckets {
		b := &s.buckets[i]
		if over && b.n <= s.limit {
			continue
		}
		for j, r := range b.kept {
			if worst == nil || cmp.Or(
				cmp.Compare(worst.n, b.n),
				compareBool(isActive(r), isActive(worst.kept[at])),
				cmp.Compare(worst.kept[at].ID, r.ID),
			) < 0 {
				worst, at = b, j
			}
		}
	}
	return worst, at
}

// best returns the host to add a replica on, with its bucket: in the least
// crowded bucket with room, the host holding the fewest replicas of any
// shard, then the lowest host ID. The host is nil when there is none.
func (s *spread) best() (best *bucket, on *host) {
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.n >= s.limit {
			continue
		}
		for _, h := range b.hosts {
			if h.occupied || on != nil && (b.n > best.n || b.n == best.n && (h.load > on.load || h.load == on.load && h.ID > on.ID)) {
				continue
			}
			best, on = b, h
		}
	}
	return best, on
}

// drop plans the removal of b.kept[i].
func (s *spread) drop(b *bucket, i int) {
	s.remove(b.kept[i])
	b.kept = append(b.kept[:i], b.kept[i+1:]...)
	b.n--
}

// put plans a new replica of the group on h, in bucket b.
func (s *spread) put(b *bucket, h *host) {
	s.add(h, s.group)
	b.n++
}

// shortage explains why group g cannot reach its count.
func shortage(g Group, vary []string, have int) string {
	var b strings.Builder
	if g.Name == "" {
		fmt.Fprintf(&b, "members need %d hosts", g.Count)
		if len(vary) > 0 {
			b.WriteString(" with distinct " + strings.Join(vary, ","))
		}
	} else {
		fmt.Fprintf(&b, "group %s needs %d hosts", g.Name, g.Count)
		if len(vary) > 0 {
			b.WriteString(" with " + strings.Join(vary, ","))
		}
	}
	if len(g.Filters) > 0 {
		b.WriteString(" matching " + formatFilters(g.Filters))
	}
	fmt.Fprintf(&b, ", have %d", have)
	return b.String()
}
