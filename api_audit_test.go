package zongzi_test

import (
	"errors"
	"net"
	"testing"

	"github.com/lni/dragonboat/v4/config"

	"github.com/zongzi-kv/zongzi"
)

// A bad address keeps its cause: the net package's error says what is wrong
// with it, and a caller can get at it with errors.As.
func TestBadAddressKeepsItsCause(t *testing.T) {
	_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithAddrApi("nope"))
	var addrErr *net.AddrError
	if !errors.Is(err, zongzi.ErrInvalidConfig) || !errors.As(err, &addrErr) {
		t.Fatalf("bad api address: %v, want ErrInvalidConfig wrapping a *net.AddrError", err)
	}
}

// A replica config Dragonboat refuses is refused by NewAgent: otherwise the
// agent starts and no guest replica ever does (the host controller only logs
// the error, again and again).
func TestReplicaConfigDragonboatRefusesIsInvalid(t *testing.T) {
	for name, cfg := range map[string]config.Config{
		"unknown snapshot compression": {SnapshotCompressionType: 99},
		"unknown entry compression":    {EntryCompressionType: 99},
		"tiny in-memory log":           {MaxInMemLogSize: 1},
		"witness with snapshots":       {IsWitness: true, SnapshotEntries: 10},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()), zongzi.WithReplicaConfig(cfg))
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()),
		zongzi.WithReplicaConfig(zongzi.DefaultReplicaConfig())); err != nil {
		t.Errorf("default replica config: %v", err)
	}
}

// A host tag key given twice with two values is refused, not settled by
// order: a host in two zones is a mistake placement would act on.
func TestHostTagGivenTwiceIsInvalid(t *testing.T) {
	for name, opts := range map[string][]zongzi.AgentOption{
		"one option":     {zongzi.WithHostTags("geo:zone=a", "geo:zone=b")},
		"two options":    {zongzi.WithHostTags("geo:zone=a"), zongzi.WithHostTags("geo:zone=b")},
		"flag and value": {zongzi.WithHostTags("ssd", "ssd=no")},
	} {
		_, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, append(opts, zongzi.WithDirRaft(t.TempDir()))...)
		if !errors.Is(err, zongzi.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := zongzi.NewAgent("kv1", []string{"127.0.0.1:1"}, zongzi.WithDirRaft(t.TempDir()),
		zongzi.WithHostTags("geo:zone=a", "geo:zone=a")); err != nil {
		t.Errorf("a tag repeated with its value: %v", err)
	}
}
