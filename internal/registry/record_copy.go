package registry

import (
	"maps"
	"slices"
	"strings"
)

// record is implemented by *Host, *Shard and *Replica, so that versions,
// tags and status are handled by one code path for the three kinds.
type record interface {
	// common returns pointers to the fields every record has.
	common() commonFields
	// clone returns a copy that shares no map or slice with the receiver.
	clone() record
	// normalize replaces empty maps and slices by nil, so that a record
	// equals itself after a JSON round trip.
	normalize()
}

// commonFields points at the fields shared by every record.
type commonFields struct {
	created, updated *uint64
	status           *string
	tags             *map[string]string
}

func (h *Host) common() commonFields {
	return commonFields{&h.Created, &h.Updated, &h.Status, &h.Tags}
}

func (s *Shard) common() commonFields {
	return commonFields{&s.Created, &s.Updated, &s.Status, &s.Tags}
}

func (r *Replica) common() commonFields {
	return commonFields{&r.Created, &r.Updated, &r.Status, &r.Tags}
}

func (h *Host) clone() record {
	c := *h
	c.Tags = maps.Clone(h.Tags)
	c.ShardTypes = slices.Clone(h.ShardTypes)
	return &c
}

func (s *Shard) clone() record {
	c := *s
	c.Tags = maps.Clone(s.Tags)
	return &c
}

func (r *Replica) clone() record {
	c := *r
	c.Tags = maps.Clone(r.Tags)
	return &c
}

func (h *Host) normalize() {
	normalizeTags(h.common())
	if len(h.ShardTypes) == 0 {
		h.ShardTypes = nil
	}
}

func (s *Shard) normalize() { normalizeTags(s.common()) }

func (r *Replica) normalize() { normalizeTags(r.common()) }

func normalizeTags(c commonFields) {
	if len(*c.tags) == 0 {
		*c.tags = nil
	}
}

// recordPtr is the pointer type of a record type T.
type recordPtr[T any] interface {
	*T
	record
}

// copyOf returns a copy of the stored record p that the caller may modify.
func copyOf[T any, P recordPtr[T]](p *T) T {
	return *P(p).clone().(P)
}

// copies returns copies of the stored records ps, or nil when there are none.
func copies[T any, P recordPtr[T]](ps []*T) []T {
	if len(ps) == 0 {
		return nil
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = copyOf[T, P](p)
	}
	return out
}

// validKey reports whether s can be a memdb string key: host IDs must be,
// and shard names must be unless empty (unnamed shards are not indexed).
func validKey(s string) bool {
	return s != "" && !strings.ContainsRune(s, 0)
}
