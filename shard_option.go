package zongzi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/zongzi-kv/zongzi/internal/placement"
)

// ShardOption configures a shard created or updated through an agent. An
// option given a bad value makes the call return an error wrapping
// ErrInvalidConfig.
type ShardOption func(*Shard) error

// Placement tag keys. ShardCreate and ShardUpdate check a shard's
// placement tags, however set, and refuse bad ones with ErrInvalidConfig.
const (
	// TagPlacementMember: "<count>[;<filter>...]", the voting members.
	TagPlacementMember = placement.TagMember
	// TagPlacementReplica, then a group name: "<count>[;<filter>...]", a
	// group of non-voting replicas.
	TagPlacementReplica = placement.TagReplicaPrefix
	// TagPlacementVary: host tag keys, ';'-separated, whose values each
	// group is spread across.
	TagPlacementVary = placement.TagVary
	// TagPlacementCover: "<filter>[;<filter>...]", hosts that each get one
	// non-voting replica.
	TagPlacementCover = placement.TagCover
)

// WithName names the shard. Names are unique: creating a shard with a name
// that exists returns the existing shard. A name that is empty or holds a
// NUL byte is refused.
func WithName(name string) ShardOption {
	return func(s *Shard) error {
		if name == "" || strings.ContainsRune(name, 0) {
			return fmt.Errorf("%w: shard name %q is empty or holds a NUL", ErrInvalidConfig, name)
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
	return placementTag(TagPlacementMember, append([]string{strconv.Itoa(n)}, hostTags...))
}

// WithPlacementReplicas asks for n non-voting replicas, of the named group
// (letters, digits, '-', '_' and '.'; not "cover"), on hosts matching every
// host tag filter.
func WithPlacementReplicas(group string, n int, hostTags ...string) ShardOption {
	return placementTag(TagPlacementReplica+group, append([]string{strconv.Itoa(n)}, hostTags...))
}

// WithPlacementVary spreads each group of replicas across distinct values
// of these host tag keys; members never share a value. A key that is empty
// or holds a ',' (which the tag reads as two keys) is refused.
func WithPlacementVary(tagKeys ...string) ShardOption {
	for _, k := range tagKeys {
		if strings.TrimSpace(k) == "" || strings.Contains(k, ",") {
			return invalid("%s: tag key %q is empty or holds a ','", TagPlacementVary, k)
		}
	}
	return placementTag(TagPlacementVary, tagKeys)
}

// WithPlacementCover puts one non-voting replica on every host matching the
// host tag filters, present and future.
func WithPlacementCover(hostTags ...string) ShardOption {
	return placementTag(TagPlacementCover, hostTags)
}

// placementTag sets the placement tag key to parts joined by ';'. A part
// that holds a ';' would read as two, so it is refused here; the rules'
// meaning is checked by checkPlacement, once every option has applied.
func placementTag(key string, parts []string) ShardOption {
	for _, p := range parts {
		if strings.Contains(p, ";") {
			return invalid("%s: %q holds a ';'", key, p)
		}
	}
	return WithTag(key, strings.Join(parts, ";"))
}

// checkPlacement refuses a shard whose placement tags do not parse.
func checkPlacement(s Shard) error {
	if _, err := placement.ParseRules(s.Tags); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
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
