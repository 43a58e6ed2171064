package test

import (
	"fmt"
	"hash/maphash"
	"sort"

	"github.com/anishathalye/porcupine"
)

// This file holds the sequential specification of kv1 (DESIGN §7) that the
// linearizability checker holds histories to: per key, a versioned register.
//
// A successful write's version is the raft index of its entry, which the
// client cannot know in advance, so the model accepts any version above the
// current one. An operation whose outcome is unknown (a timeout, a 503, a
// connection lost after the request was sent) may or may not have applied;
// the model keeps both possibilities, and when it applied with a version
// nobody has seen yet, it keeps only a lower bound of that version until a
// later operation reveals it.

// linOpKind is the kind of a kv1 operation.
type linOpKind uint8

// Kinds of linOp.
const (
	linGet linOpKind = iota // GET, linearizable or leader=true
	linPut                  // PUT: create (no ver) or compare-and-set (ver=N)
	linDel                  // DELETE, with or without ver
)

// linInput is the input of one operation on one key.
type linInput struct {
	Kind   linOpKind
	Key    string
	HasVer bool   // PUT: CAS on Ver; DELETE: only if the stored version is Ver
	Ver    uint64 // expected version, > 0 when HasVer
	Val    string // PUT: the value written, unique in a history
	Mode   string // GET: "" (linearizable) or "leader"; for the visualisation only
}

// linStatus is the outcome of an operation.
type linStatus uint8

// Outcomes of an operation.
const (
	linOK       linStatus = iota // 200: Ver and Val are the record read, written, or deleted
	linNotFound                  // 404
	linMismatch                  // 409: Ver is the stored version (0 when missing)
	linUnknown                   // timeout, 503, lost connection: may or may not have applied
)

// linOutput is the output of one operation.
type linOutput struct {
	Status linStatus
	Ver    uint64
	Val    string
	Why    string // linUnknown: the error or the answer
}

// linState is the state of one key. When Exact is false the key exists but
// its version is only known to be greater than Ver: a write with an unknown
// outcome applied with a version nobody has observed yet. When the key is
// missing, Ver is a floor: the version of the last record deleted, or a
// lower bound of it. Versions are raft indices, so a create after a delete
// writes a version above it; without the floor, a kv1 that reused versions
// after a delete (so that a compare-and-set on a version from before the
// delete succeeds on the new record) would pass.
type linState struct {
	Exists bool
	Ver    uint64
	Exact  bool
	Val    string
}

// linMissing is the state of a key that was never written.
var linMissing = linState{Exact: true}

// linDeleted returns the state of a key deleted when its version was ver
// (or above it, when that is only a lower bound).
func linDeleted(ver uint64) linState { return linState{Ver: ver, Exact: true} }

// verIs reports whether the key's stored version may be v; when it may, it
// returns the state refined to that exact version.
func (s linState) verIs(v uint64) (linState, bool) {
	if !s.Exists {
		return s, v == 0
	}
	if s.Exact {
		return s, v == s.Ver
	}
	if v <= s.Ver {
		return s, false
	}
	s.Ver, s.Exact = v, true
	return s, true
}

// preconditionHolds returns whether in's precondition may hold in s and, if
// so, s refined by it: a create needs a missing key, a CAS or versioned
// delete needs the stored version, an unversioned delete an existing key.
func (in linInput) preconditionHolds(s linState) (linState, bool) {
	switch {
	case in.Kind == linPut && !in.HasVer:
		return s, !s.Exists
	case in.HasVer:
		if !s.Exists {
			return s, false
		}
		return s.verIs(in.Ver)
	default:
		return s, s.Exists
	}
}

// linStep returns the states that may follow s when in gives out; none when
// out is impossible in s.
func linStep(s linState, in linInput, out linOutput) []linState {
	if in.Kind == linGet {
		switch out.Status {
		case linOK:
			if r, ok := s.verIs(out.Ver); ok && s.Exists && s.Val == out.Val {
				return []linState{r}
			}
		case linNotFound:
			if !s.Exists {
				return []linState{s}
			}
		}
		return nil
	}
	pre, holds := in.preconditionHolds(s)
	switch out.Status {
	case linOK:
		if !holds {
			return nil
		}
		if in.Kind == linPut {
			// The version of a write is the raft index of its entry,
			// later than the entry of the version it replaces.
			if out.Ver <= pre.Ver || out.Val != in.Val {
				return nil
			}
			return []linState{{Exists: true, Ver: out.Ver, Exact: true, Val: in.Val}}
		}
		// A delete answers the record it deleted.
		if _, ok := pre.verIs(out.Ver); !ok || pre.Val != out.Val {
			return nil
		}
		return []linState{linDeleted(out.Ver)}
	case linNotFound:
		if in.Kind == linDel && !s.Exists {
			return []linState{s}
		}
	case linMismatch:
		// out.Ver is the stored version, and the precondition fails
		// against it. A delete of a missing key is "not found" instead.
		if in.Kind == linDel && !in.HasVer {
			return nil
		}
		if !s.Exists {
			if in.Kind == linPut && in.HasVer && out.Ver == 0 {
				return []linState{s}
			}
			return nil
		}
		if in.HasVer && out.Ver == in.Ver {
			return nil
		}
		if r, ok := s.verIs(out.Ver); ok {
			return []linState{r}
		}
	case linUnknown:
		if !holds {
			return []linState{s}
		}
		if in.Kind == linDel {
			return []linState{s, linDeleted(pre.Ver)}
		}
		// Applied, its version is only known to exceed the one replaced.
		return []linState{s, {Exists: true, Ver: pre.Ver, Exact: false, Val: in.Val}}
	}
	return nil
}

// linSeed keys the hash of states.
var linSeed = maphash.MakeSeed()

// linModel is the porcupine model of kv1, partitioned by key.
var linModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() []any { return []any{linMissing} },
	Step: func(state, input, output any) []any {
		next := linStep(state.(linState), input.(linInput), output.(linOutput))
		out := make([]any, len(next))
		for i, s := range next {
			out[i] = s
		}
		return out
	},
	Hash: func(state any) uint64 {
		s := state.(linState)
		return maphash.Comparable(linSeed, s)
	},
	DescribeOperation: func(input, output any) string {
		return linDescribe(input.(linInput), output.(linOutput))
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		switch {
		case !s.Exists && s.Ver > 0:
			return fmt.Sprintf("missing (deleted v%d)", s.Ver)
		case !s.Exists:
			return "missing"
		case s.Exact:
			return fmt.Sprintf("v%d=%q", s.Ver, s.Val)
		default:
			return fmt.Sprintf("v>%d=%q", s.Ver, s.Val)
		}
	},
}

// linDescribe describes an operation for the visualisation.
func linDescribe(in linInput, out linOutput) string {
	var call string
	switch in.Kind {
	case linGet:
		call = "get"
		if in.Mode != "" {
			call += "[" + in.Mode + "]"
		}
	case linPut:
		call = fmt.Sprintf("put(%q)", in.Val)
	case linDel:
		call = "del"
	}
	if in.HasVer {
		call += fmt.Sprintf("@v%d", in.Ver)
	}
	var res string
	switch out.Status {
	case linOK:
		res = fmt.Sprintf("v%d=%q", out.Ver, out.Val)
	case linNotFound:
		res = "404"
	case linMismatch:
		res = fmt.Sprintf("409 (stored v%d)", out.Ver)
	case linUnknown:
		res = "? (" + out.Why + ")"
	}
	return in.Key + " " + call + " -> " + res
}
