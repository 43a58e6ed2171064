package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

func TestSlug(t *testing.T) {
	for name, want := range map[string]string{
		"GET linearizable, follower": "get-linearizable-follower",
		"GET stale=true, follower":   "get-stale-true-follower",
		"PUT CAS distinct keys":      "put-cas-distinct-keys",
		"  ceiling (net/http, 19 B)": "ceiling-net-http-19-b",
	} {
		if got := slug(name); got != want {
			t.Errorf("slug(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestProfiler takes a profile, through net/http/pprof as kv1 serves it,
// of this test process as if it were two nodes, and checks that each file
// is a gzipped profile.
func TestProfiler(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	nodes := []*kv1proc.Node{{N: 1, Pprof: addr}, {N: 2, Pprof: addr}}
	dir := filepath.Join(t.TempDir(), "profiles")
	p, err := newProfiler(dir, nodes, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.seconds != 1 {
		t.Errorf("a 3 s load gets %d s profiles, want 1", p.seconds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A process runs one CPU profile at a time: of the two "nodes" here,
	// one gets its profile and the other an error, which start reports.
	err = p.start(ctx, "GET stale=true, follower")()
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("two profiles of one process at once: error %v, want one about profiling already in use", err)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "get-stale-true-follower-node*.pb.gz")); len(got) != 1 {
		t.Errorf("profiles written: %q, want one", got)
	}
	p.nodes = nodes[:1]
	if err := p.start(ctx, "PUT CAS distinct keys")(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "put-cas-distinct-keys-node1.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("the profile is not gzipped: %d bytes, starting %x", len(b), b[:min(len(b), 2)])
	}
}
