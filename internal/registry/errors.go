package registry

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with
// context, so callers test them with errors.Is.
var (
	// ErrBadCommand: a command cannot be decoded or is invalid.
	ErrBadCommand = errors.New("registry: bad command")
	// ErrRejected: an applied command was rejected; see Result.Err.
	ErrRejected = errors.New("registry: command rejected")
	// ErrBadSnapshot: a snapshot given to Load is malformed or inconsistent.
	ErrBadSnapshot = errors.New("registry: bad snapshot")
)
