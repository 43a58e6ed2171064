package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

func TestElections(t *testing.T) {
	before := map[uint64]uint64{0: 2, 1: 2, 2: 3, 3: 2}
	after := map[uint64]uint64{0: 2, 1: 4, 2: 4, 4: 7} // shard 3 gone, 4 new
	if got := elections(before, after); got != 3 {
		t.Errorf("elections = %d, want 3 (shard 1 two, shard 2 one; a shard not in both counts none)", got)
	}
	if got := elections(after, after); got != 0 {
		t.Errorf("elections with no term change = %d, want 0", got)
	}
}

// TestFirstPutAfterAnUnknownOutcome: a node that is still starting may
// take a write in and answer it only after the client gave up (or answer
// 503 once its own deadline passed), and the write applies all the same.
// Sent again, the same create is answered 409 for good (kv1 has no blind
// overwrite), and the startup was never measured: kv1bench waited its two
// minutes and failed. Each attempt must create a key of its own.
func TestFirstPutAfterAnUnknownOutcome(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = map[string]bool{}
		slow = true // the first write is answered late
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "want PUT", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		exists, late := keys[r.URL.Path], slow
		keys[r.URL.Path], slow = true, false
		mu.Unlock()
		if exists {
			http.Error(w, "Version mismatch (0 != 7)", http.StatusConflict)
			return
		}
		if late {
			// Written, but answered past the client's deadline.
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			http.Error(w, "deadline passed: the write may or may not have applied", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"key":"k","ver":7,"val":"up"}`))
	}))
	defer srv.Close()
	nodes := []*kv1proc.Node{{N: 1, HTTP: strings.TrimPrefix(srv.URL, "http://")}}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	if err := firstPut(ctx, nodes, startupKey, func() error { return nil }); err != nil {
		t.Fatalf("a node that answers every new write: %v", err)
	}
}

// TestCreateKeyAfterAnUnknownOutcome: the GET loads' key is written once
// before them, on a cluster that has just started; a write answered 503
// (deadline passed, outcome unknown) failed the whole run, though it may
// have written the key, and the next attempt would say so with a 409.
func TestCreateKeyAfterAnUnknownOutcome(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		exists := keys[r.URL.Path]
		keys[r.URL.Path] = true
		mu.Unlock()
		if exists {
			http.Error(w, "Version mismatch (0 != 7)", http.StatusConflict)
			return
		}
		http.Error(w, "deadline passed: the write may or may not have applied", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	n := &kv1proc.Node{N: 1, HTTP: strings.TrimPrefix(srv.URL, "http://")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := createKey(ctx, n, getKey, "benchmark"); err != nil {
		t.Fatalf("a key written by an attempt answered 503: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !keys[getKey] {
		t.Errorf("keys written: %v, want %s", keys, getKey)
	}
}
