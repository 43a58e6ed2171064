package zongzi

import (
	"fmt"
	"strconv"
	"strings"
)

// ShardOption configures a shard created or updated through an agent. An
// option given a bad value makes the call return an error wrapping
// ErrInvalidConfig.
type ShardOption func(*Shard) error

// Placement tag keys (DESIGN §5).
const (
	TagPlacementMember  = "placement:member"
	TagPlacementReplica = "placement:replica:"
	TagPlacementVary    = "placement:vary"
	TagPlacementCover   = "placement:cover"
)

// WithName names the shard. Names are unique: creating a shard with a name
// that exists returns the existing shard.
func WithName(name string) ShardOption {
	return func(s *Shard) error {
		if name == "" {
			return fmt.Errorf("%w: empty shard name", ErrInvalidConfig)
		}
		s.Name = name
		return nil
	}
}

// WithTag sets a tag on the shard.
func WithTag(key, value string) ShardOption {
	return func(s *Shard) error {
		if key == "" {
			return fmt.Errorf("%w: empty tag key", ErrInvalidConfig)
		}
		setTag(s, key, value)
		return nil
	}
}

// WithoutTag removes a tag from the shard, e.g. a placement rule in
// ShardUpdate.
func WithoutTag(key string) ShardOption {
	return func(s *Shard) error {
		if key == "" {
			return fmt.Errorf("%w: empty tag key", ErrInvalidConfig)
		}
		delete(s.Tags, key)
		return nil
	}
}

// WithPlacementMembers asks for n voting members on hosts matching every
// host tag filter ("key=value" or "key").
func WithPlacementMembers(n int, hostTags ...string) ShardOption {
	return placementCount(TagPlacementMember, n, hostTags)
}

// WithPlacementReplicas asks for n non-voting replicas, of the named group,
// on hosts matching every host tag filter.
func WithPlacementReplicas(group string, n int, hostTags ...string) ShardOption {
	if group == "" || strings.ContainsAny(group, ":;=") || group == "cover" {
		return invalid("replica group %q must be non-empty, not \"cover\", and without ':', ';' or '='", group)
	}
	return placementCount(TagPlacementReplica+group, n, hostTags)
}

// WithPlacementVary spreads each group of replicas across distinct values
// of these host tag keys; members never share a value.
func WithPlacementVary(tagKeys ...string) ShardOption {
	if err := checkFilters(tagKeys); err != nil || len(tagKeys) == 0 {
		return invalid("vary needs tag keys, got %q", tagKeys)
	}
	return WithTag(TagPlacementVary, strings.Join(tagKeys, ";"))
}

// WithPlacementCover puts one non-voting replica on every host matching the
// host tag filters, present and future.
func WithPlacementCover(hostTags ...string) ShardOption {
	if err := checkFilters(hostTags); err != nil || len(hostTags) == 0 {
		return invalid("cover needs host tag filters, got %q", hostTags)
	}
	return WithTag(TagPlacementCover, strings.Join(hostTags, ";"))
}

func placementCount(key string, n int, hostTags []string) ShardOption {
	if n < 1 {
		return invalid("%s count %d must be at least 1", key, n)
	}
	if err := checkFilters(hostTags); err != nil {
		return invalid("%s: %v", key, err)
	}
	return WithTag(key, strings.Join(append([]string{strconv.Itoa(n)}, hostTags...), ";"))
}

func checkFilters(filters []string) error {
	for _, f := range filters {
		if k, _, _ := strings.Cut(f, "="); k == "" || strings.Contains(f, ";") {
			return fmt.Errorf("bad host tag filter %q", f)
		}
	}
	return nil
}

func invalid(format string, args ...any) ShardOption {
	err := fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	return func(*Shard) error { return err }
}

func setTag(s *Shard, key, value string) {
	if s.Tags == nil {
		s.Tags = map[string]string{}
	}
	s.Tags[key] = value
}
