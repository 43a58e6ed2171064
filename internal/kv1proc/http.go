package kv1proc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Response is an HTTP answer of a node, read in full.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// String returns the status and body, for test failure messages.
func (r Response) String() string { return fmt.Sprintf("%d %q", r.Status, r.Body) }

// httpClient sends the helpers' requests; its timeout bounds every request
// even when the caller's context has no deadline.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// Do sends method target to node n, where target is a path with an optional
// query string ("/k?val=v"). A non-nil form is sent as an
// application/x-www-form-urlencoded body. It returns the whole answer, or
// the transport error (e.g. connection refused while the node is down).
func (n *Node) Do(ctx context.Context, method, target string, form url.Values) (Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL(target), body)
	if err != nil {
		return Response{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("kv1proc: read %s %s: %w", method, target, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, nil
}

// HostStatus is a node's /_status answer: its view of every shard.
type HostStatus struct {
	HostID string        `json:"hostID"`
	Status string        `json:"status"`
	Shards []ShardStatus `json:"shards"`
}

// ShardStatus is one shard in /_status. Leader is the leader's replica ID
// (0 when unknown) and Replica the local replica's ID (0 when none).
type ShardStatus struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	Leader    uint64 `json:"leader"`
	Term      uint64 `json:"term"`
	Replica   uint64 `json:"replica"`
	NonVoting bool   `json:"nonVoting"`
}

// Shard returns the status of shard id and whether it is listed.
func (s HostStatus) Shard(id uint64) (ShardStatus, bool) {
	for _, sh := range s.Shards {
		if sh.ID == id {
			return sh, true
		}
	}
	return ShardStatus{}, false
}

// HostStatus fetches and decodes node n's /_status.
func (n *Node) HostStatus(ctx context.Context) (HostStatus, error) {
	var st HostStatus
	r, err := n.Do(ctx, http.MethodGet, "/_status", nil)
	if err != nil {
		return st, err
	}
	if r.Status != http.StatusOK {
		return st, fmt.Errorf("kv1proc: node %d /_status: %v", n.N, r)
	}
	if err := json.Unmarshal([]byte(r.Body), &st); err != nil {
		return st, fmt.Errorf("kv1proc: node %d /_status: %w", n.N, err)
	}
	return st, nil
}
