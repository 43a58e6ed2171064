package registry

import "fmt"

// edit applies change to a copy of the record addressed by c.Kind and the
// matching ID field of c, and stores it if it differs. Tag and status
// commands for the three kinds share this path.
func (t *tx) edit(c Command, change func(commonFields)) error {
	table, old, err := t.target(c)
	if err != nil {
		return err
	}
	rec := old.clone()
	change(rec.common())
	return t.write(table, old, rec)
}

// target returns the table and the stored record addressed by c.
func (t *tx) target(c Command) (string, record, error) {
	switch c.Kind {
	case KindHost:
		if h := t.host(c.HostID); h != nil {
			return tableHosts, h, nil
		}
		return "", nil, fmt.Errorf("registry: host %q not found", c.HostID)
	case KindShard:
		if s := t.shard(c.ShardID); s != nil {
			return tableShards, s, nil
		}
		return "", nil, fmt.Errorf("registry: shard %d not found", c.ShardID)
	case KindReplica:
		if r := t.replica(c.ReplicaID); r != nil {
			return tableReplicas, r, nil
		}
		return "", nil, fmt.Errorf("registry: replica %d not found", c.ReplicaID)
	}
	return "", nil, fmt.Errorf("%w: unknown kind %q", ErrBadCommand, c.Kind)
}

// setTag returns a change setting tag key to value.
func setTag(key, value string) func(commonFields) {
	return func(c commonFields) {
		if *c.tags == nil {
			*c.tags = map[string]string{}
		}
		(*c.tags)[key] = value
	}
}

// removeTag returns a change removing tag key.
func removeTag(key string) func(commonFields) {
	return func(c commonFields) { delete(*c.tags, key) }
}

// setStatus returns a change setting the status.
func setStatus(status string) func(commonFields) {
	return func(c commonFields) { *c.status = status }
}

// setLeader records the leader and term reported for shard id, unless the
// term is older than the stored one.
func (t *tx) setLeader(id, leader, term uint64) error {
	old := t.shard(id)
	if old == nil {
		return fmt.Errorf("registry: shard %d not found", id)
	}
	if term < old.Term {
		return nil
	}
	s := copyOf(old)
	s.Leader, s.Term = leader, term
	return t.write(tableShards, old, &s)
}
