package zongzi

import (
	"errors"
	"fmt"
	"io"

	"github.com/zongzi-kv/zongzi/internal/registry"
)

// State is a read-only, snapshot-isolated view of the registry: it never
// changes after it is taken, and taking it never blocks the registry's
// writer. Records returned by its lookups are copies the caller owns.
//
// State.Save writes the registry as JSON lines: a header line, then every
// host, shard and replica by ID, each a JSON record.
type State = registry.State

// LoadState reads a registry saved by State.Save. A malformed one is
// ErrInvalidConfig; an error of r is returned wrapped.
func LoadState(r io.Reader) (*State, error) {
	s, err := registry.ReadState(r)
	if errors.Is(err, registry.ErrBadSnapshot) {
		return nil, fmt.Errorf("%w: load state: %w", ErrInvalidConfig, err)
	}
	if err != nil {
		return nil, fmt.Errorf("zongzi: load state: %w", err)
	}
	return s, nil
}
