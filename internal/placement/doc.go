// Package placement decides where the replicas of guest shards belong.
//
// It is a pure function: Place takes the registry as it is (hosts, shards,
// replicas) and returns a Plan of replica additions, removals and shard
// status changes. It does no I/O, reads no clock and proposes nothing; the
// controller on the prime shard's leader turns the Plan into registry
// commands.
//
// # Model
//
// A shard declares its wanted replicas in tags (the README's placement
// rules), parsed once by ParseRules into Rules:
//
//	placement:member=3;geo:region=us-central1   3 voting members on matching hosts
//	placement:replica:readers=6;host:class=rd   6 non-voting replicas of group "readers"
//	placement:vary=geo:zone                      spread each group over distinct zones
//	placement:cover=host:group=edge              one non-voting replica on every matching host
//
// The voting members form one group and every placement:replica:<name> tag
// another; a non-voting replica records its group in the replica tag
// placement:group. Cover replicas belong to the reserved group "cover".
//
// A host is eligible for a group when it is "active" or "new", runs the
// shard's type, matches every filter of the group and has a value for every
// vary key. The hosts of a group fall into buckets by their vary values (by
// host when the shard has no vary keys). Members never share a bucket.
// Non-voting groups are balanced: the replica counts of any two buckets
// differ by at most one, unless the emptier bucket has no free host left.
// Buckets without replicas count, so a new zone draws replicas to it.
//
// # Reconciling one group
//
// Existing replicas on hosts that are gone or no longer eligible are
// removed and replaced. Then, one change at a time: members sharing a bucket
// are removed, excess replicas are removed from the most crowded bucket
// (a replica that is not "active" first, then the newest), missing ones
// are added to the least crowded bucket (on the host holding the fewest
// replicas of any shard, counting this plan's changes, then by host ID),
// and while the spread is off by two or more a replica moves from the most
// crowded bucket to the least crowded one.
//
// Members leave more slowly than that: one that would go stays while the
// plan adds a member to the shard or another member is not active, and a
// plan removes at most one (members of hosts no longer registered go at
// once). A shard's replacement members thus join it, the old ones still
// serving, before those leave one by one; replaced all in one plan, the
// new members would be the shard's oldest and start a new, empty group.
//
// Groups are placed in a fixed order: members, then non-voting groups by
// name, then cover. A host holds at most one replica of a shard, and a host
// that holds one at planning time (even one this plan removes) is not a
// candidate for another, so no plan both removes and adds on one host.
// A replica of a later group is never displaced to make room for an
// earlier one.
//
// # Unsatisfiable requests
//
// When a group cannot reach its count, the plan changes nothing in that
// group, the shard's status becomes "unsatisfied: <reason>", and the hosts
// the group could use are held back from the shard's later groups, so the
// reason stays the same until the topology changes. A shard becomes
// "active" once all its wanted replicas exist and are active; a stale
// "unsatisfied" status goes back to "new" while the replicas are placed,
// or once the shard's placement tags are removed.
//
// # Determinism
//
// The same Input always yields the same Plan. Applying a Plan that removes
// nothing and placing again yields a Plan that removes none of what it
// added: empty, or, once the added members are active, the removal of a
// member they replace. A Plan that removes replicas frees their hosts only
// for the next round.
package placement
