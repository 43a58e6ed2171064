package placement

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Tag keys and values read from shards and written on replicas.
const (
	// TagMember declares a shard's voting members: "<count>[;<filter>...]".
	TagMember = "placement:member"
	// TagReplicaPrefix followed by a group name declares a group of
	// non-voting replicas: "<count>[;<filter>...]".
	TagReplicaPrefix = "placement:replica:"
	// TagVary lists the host tag keys, separated by ";" or ",", over whose
	// values each group of the shard is spread.
	TagVary = "placement:vary"
	// TagCover declares the filters ("<filter>[;<filter>...]") of hosts that
	// each get one non-voting replica of the shard.
	TagCover = "placement:cover"
	// TagGroup, on a non-voting replica, names the group it belongs to.
	TagGroup = "placement:group"
	// GroupCover is the TagGroup value of replicas placed by TagCover. It is
	// reserved: no replica group may have this name.
	GroupCover = "cover"

	tagPrefix = "placement:"
)

// ErrInvalidTags is wrapped by every error ParseRules returns.
var ErrInvalidTags = errors.New("placement: invalid tags")

// Rules is the typed form of a shard's placement tags.
type Rules struct {
	// Members is the group of voting members; its Name is empty.
	Members Group
	// Groups are the named groups of non-voting replicas, sorted by name.
	Groups []Group
	// Vary lists the host tag keys each group is spread over, in tag order.
	Vary []string
	// Cover holds the filters of hosts that each get one non-voting
	// replica; nil when the shard has no cover.
	Cover []Filter
}

// Group asks for Count replicas on hosts matching every filter.
type Group struct {
	// Name is the group name, empty for the voting members.
	Name string
	// Count is the number of replicas wanted.
	Count int
	// Filters must all match a host's tags for it to be eligible.
	Filters []Filter
}

// Filter is one condition on a host's tags.
type Filter struct {
	// Key is the tag key the host must have.
	Key string
	// Value is the value the tag must have; "" means any value.
	Value string
}

// Match reports whether tags satisfy the filter.
func (f Filter) Match(tags map[string]string) bool {
	v, ok := tags[f.Key]
	return ok && (f.Value == "" || v == f.Value)
}

// String formats the filter in tag syntax: "key=value", or "key".
func (f Filter) String() string {
	if f.Value == "" {
		return f.Key
	}
	return f.Key + "=" + f.Value
}

// matchAll reports whether tags satisfy every filter.
func matchAll(filters []Filter, tags map[string]string) bool {
	for _, f := range filters {
		if !f.Match(tags) {
			return false
		}
	}
	return true
}

// formatFilters formats filters in tag syntax, separated by ";".
func formatFilters(filters []Filter) string {
	s := make([]string, len(filters))
	for i, f := range filters {
		s[i] = f.String()
	}
	return strings.Join(s, ";")
}

// HasRules reports whether tags contain any placement tag, that is whether
// placement manages the shard at all.
func HasRules(tags map[string]string) bool {
	for k := range tags {
		if strings.HasPrefix(k, tagPrefix) {
			return true
		}
	}
	return false
}

// ParseRules parses a shard's placement tags; tags without the
// "placement:" prefix are ignored. A shard with placement tags must have
// TagMember with a count of at least 1. Unknown placement tags, malformed
// counts, filters or group names, and a group named GroupCover are errors
// wrapping ErrInvalidTags that name the offending tag.
func ParseRules(tags map[string]string) (Rules, error) {
	var r Rules
	members := false
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if !strings.HasPrefix(k, tagPrefix) {
			continue
		}
		v := tags[k]
		var err error
		switch {
		case k == TagMember:
			r.Members, err = parseGroup(v, 1)
			members = true
		case strings.HasPrefix(k, TagReplicaPrefix):
			var g Group
			g, err = parseGroup(v, 0)
			g.Name = strings.TrimPrefix(k, TagReplicaPrefix)
			if err == nil {
				err = checkGroupName(g.Name)
			}
			r.Groups = append(r.Groups, g) // sorted: keys are visited in order
		case k == TagVary:
			r.Vary, err = parseVary(v)
		case k == TagCover:
			r.Cover, err = parseCover(v)
		default:
			err = errors.New("unknown placement tag")
		}
		if err != nil {
			return Rules{}, fmt.Errorf("%w: %s=%q: %w", ErrInvalidTags, k, v, err)
		}
	}
	if !members && HasRules(tags) {
		return Rules{}, fmt.Errorf("%w: %s is required with any other placement tag", ErrInvalidTags, TagMember)
	}
	return r, nil
}

// parseGroup parses "<count>[;<filter>...]" with count >= minCount.
func parseGroup(v string, minCount int) (Group, error) {
	parts := strings.Split(v, ";")
	count := strings.TrimSpace(parts[0])
	n, err := strconv.Atoi(count)
	if err != nil || n < minCount {
		return Group{}, fmt.Errorf("count %q is not a whole number of at least %d", count, minCount)
	}
	filters, err := parseFilters(parts[1:])
	return Group{Count: n, Filters: filters}, err
}

// parseCover parses "<filter>[;<filter>...]"; at least one filter is needed.
func parseCover(v string) ([]Filter, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("cover needs at least one host filter")
	}
	return parseFilters(strings.Split(v, ";"))
}

// parseFilters parses "key=value" and "key" filters.
func parseFilters(parts []string) ([]Filter, error) {
	var filters []Filter
	for _, p := range parts {
		key, value, eq := strings.Cut(p, "=")
		f := Filter{Key: strings.TrimSpace(key), Value: strings.TrimSpace(value)}
		switch {
		case strings.TrimSpace(p) == "":
			return nil, errors.New("empty filter")
		case f.Key == "":
			return nil, fmt.Errorf("filter %q has no key", p)
		case eq && f.Value == "":
			return nil, fmt.Errorf("filter %q has an empty value (write %q to require only the key)", p, f.Key)
		}
		filters = append(filters, f)
	}
	return filters, nil
}

// parseVary parses tag keys separated by ";" or ",".
func parseVary(v string) ([]string, error) {
	var keys []string
	for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			continue
		case strings.Contains(k, "="):
			return nil, fmt.Errorf("%q is a filter; vary lists tag keys only", k)
		case slices.Contains(keys, k):
			return nil, fmt.Errorf("key %q is listed twice", k)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("vary needs at least one tag key")
	}
	return keys, nil
}

// checkGroupName accepts names of letters, digits, '-', '_' and '.', other
// than the reserved GroupCover.
func checkGroupName(name string) error {
	switch {
	case name == "":
		return errors.New("group name is empty")
	case name == GroupCover:
		return fmt.Errorf("group name %q is reserved for %s", name, TagCover)
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("group name %q may hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}
