package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// linTarget is a node the workload sends requests to. Gen counts the
// node's kills and starts, so that a read that saw the same Gen before and
// after its request knows which incarnation of the node answered it.
type linTarget struct {
	Node *kv1proc.Node
	Gen  *atomic.Uint64
}

// linTargets is the set of nodes clients choose from; faults change it
// while the workload runs.
type linTargets struct {
	mu    sync.Mutex
	nodes []linTarget
}

func (ts *linTargets) pick(rng *rand.Rand) linTarget {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.nodes[rng.IntN(len(ts.nodes))]
}

func (ts *linTargets) add(t linTarget) {
	ts.mu.Lock()
	ts.nodes = append(ts.nodes, t)
	ts.mu.Unlock()
}

func (ts *linTargets) remove(n *kv1proc.Node) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i, t := range ts.nodes {
		if t.Node == n {
			ts.nodes = append(ts.nodes[:i:i], ts.nodes[i+1:]...)
			return
		}
	}
}

// linWorkload is a bounded, concurrent client workload over a few keys.
type linWorkload struct {
	Clients  int           // concurrent clients
	Keys     []string      // contended keys
	Cold     int           // per client: keys created once and left alone
	Duration time.Duration // how long clients send requests
	MaxOps   int           // per client
	Timeout  time.Duration // per request
}

// linRequestTimeout bounds each request: above kv1's own 1 s deadline, so
// that a slow answer is kv1's 503, not a client timeout.
const linRequestTimeout = 2 * time.Second

// linHTTP is the HTTP client of the workload and of the final reads.
var linHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}

// run runs the workload against targets, recording into h, until the
// duration passed, every client made MaxOps requests, or ctx is done. It
// returns the answers that kv1 should never give (e.g. a 500).
func (w linWorkload) run(ctx context.Context, targets *linTargets, h *linHistory) []string {
	// Requests in flight at the end finish: only new ones stop.
	end := time.Now().Add(w.Duration)
	var wg sync.WaitGroup
	clients := make([]*linClient, w.Clients)
	for i := range w.Clients {
		c := &linClient{id: i, proc: i, procStep: w.Clients, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			lastVer: map[string]uint64{}, timeout: w.Timeout, maxCold: w.Cold}
		clients[i] = c
		wg.Go(func() {
			for n := 0; n < w.MaxOps && ctx.Err() == nil && time.Now().Before(end); n++ {
				if !c.step(ctx, targets.pick(c.rng), w.Keys, h) {
					// Nothing useful came back: do not spin on a dead node.
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	var odd []string
	for _, c := range clients {
		odd = append(odd, c.odd...)
	}
	return odd
}

// linClient is one sequential client of the workload.
type linClient struct {
	id       int // stable, for the stale rule
	proc     int // porcupine client, replaced after an unknown outcome
	procStep int
	seq      int
	rng      *rand.Rand
	lastVer  map[string]uint64 // the last version seen of each key, 0 when missing
	timeout  time.Duration
	cold     int // cold keys created so far
	maxCold  int
	odd      []string // answers kv1 should never give
}

// step sends one random request and records it. It returns whether the
// request got an answer from kv1.
func (c *linClient) step(ctx context.Context, t linTarget, keys []string, h *linHistory) bool {
	key := keys[c.rng.IntN(len(keys))]
	in := linInput{Key: key}
	switch p := c.rng.IntN(100); {
	case p < 2 && c.cold < c.maxCold:
		// A cold key: created once, then only read, at the end.
		c.cold++
		in.Key, in.Kind = fmt.Sprintf("/lin-cold-%d-%d", c.id, c.cold), linPut
	case p < 10:
		return c.staleRead(ctx, t, key, h)
	case p < 30:
		in.Kind = linGet
	case p < 50:
		in.Kind, in.Mode = linGet, "leader"
	case p < 70 && c.lastVer[key] != 0:
		in.Kind, in.HasVer, in.Ver = linPut, true, c.lastVer[key]
	case p < 85:
		in.Kind = linPut
	default:
		in.Kind = linDel
		if v := c.lastVer[key]; v != 0 && c.rng.IntN(2) == 0 {
			in.HasVer, in.Ver = true, v
		}
	}
	if in.Kind == linPut {
		c.seq++
		in.Val = fmt.Sprintf("c%d-%d", c.id, c.seq)
	}
	call := h.now()
	out, sent := c.do(ctx, t.Node, in)
	if !sent && in.Kind != linGet && out.Why == linRefused {
		h.refused.Add(1)
	}
	if !sent || in.Kind == linGet && out.Status == linUnknown {
		return false // never reached kv1, or a failed read: no effect
	}
	op := linOp{Client: c.proc, Node: t.Node.N, In: in, Out: out, Call: call, Return: h.now()}
	if out.Status == linUnknown {
		op.Return = linPending
		c.proc += c.procStep
	}
	h.add(op)
	c.learn(in, out)
	return out.Status != linUnknown
}

// learn remembers the version of key that out reveals.
func (c *linClient) learn(in linInput, out linOutput) {
	switch {
	case out.Status == linNotFound, out.Status == linOK && in.Kind == linDel:
		c.lastVer[in.Key] = 0
	case out.Status == linOK, out.Status == linMismatch:
		c.lastVer[in.Key] = out.Ver
	}
}

// staleRead reads key with stale=true and records a successful answer. An
// answer other than a record of key, 404 or 503 is one kv1 should never
// give, and is kept in c.odd.
func (c *linClient) staleRead(ctx context.Context, t linTarget, key string, h *linHistory) bool {
	gen := t.Gen.Load()
	call := h.now()
	u := t.Node.URL(key) + "?stale=true"
	status, body, err := linSend(ctx, c.timeout, http.MethodGet, u)
	if err != nil {
		return false
	}
	r := linStaleRead{Client: c.id, Node: t.Node.N, Gen: gen, Key: key, Call: call}
	switch status {
	case http.StatusOK:
		rec, err := linParseRecord(body)
		if err != nil || rec.Key != key {
			c.odd = append(c.odd, fmt.Sprintf("GET %s: %d %s", u, status, strings.TrimSpace(string(body))))
			return true
		}
		r.Found, r.Ver, r.Val = true, rec.Ver, rec.Val
	case http.StatusNotFound:
	case http.StatusServiceUnavailable:
		return true
	default:
		c.odd = append(c.odd, fmt.Sprintf("GET %s: %d %s", u, status, strings.TrimSpace(string(body))))
		return true
	}
	r.Return = h.now()
	if t.Gen.Load() == gen { // else another incarnation of the node may have answered
		h.addStale(r)
	}
	return true
}

// do sends in to node n and returns its outcome. sent is false when kv1
// certainly did not act on the request (see linNeverSent).
func (c *linClient) do(ctx context.Context, n *kv1proc.Node, in linInput) (out linOutput, sent bool) {
	q := url.Values{}
	method := http.MethodGet
	switch in.Kind {
	case linGet:
		if in.Mode == "leader" {
			q.Set("leader", "true")
		}
	case linPut:
		method = http.MethodPut
		q.Set("val", in.Val)
	case linDel:
		method = http.MethodDelete
	}
	if in.HasVer {
		q.Set("ver", strconv.FormatUint(in.Ver, 10))
	}
	u := n.URL(in.Key)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	status, body, err := linSend(ctx, c.timeout, method, u)
	if linNeverSent(status, body, err) {
		if err == nil && bytes.HasPrefix(body, []byte("Unavailable:")) {
			return linOutput{Why: linRefused}, false
		}
		return linOutput{}, false
	}
	out = linParseOutput(in, status, body, err)
	if err == nil && out.Status == linUnknown && status != http.StatusServiceUnavailable {
		c.odd = append(c.odd, fmt.Sprintf("%s %s: %d %s", method, u, status, strings.TrimSpace(string(body))))
	}
	return out, true
}

// linRefused is the Why of a request kv1 refused with a plain Unavailable.
const linRefused = "refused"

// linNeverSent reports whether an answer proves that kv1 did not act on
// the request: the connection was refused, the node answered that it is
// still starting, before its handler exists, or it answered Unavailable
// without saying that a write may have applied (Zongzi's ErrShardNotReady
// and the like: nothing was proposed, or what was proposed was dropped).
// Taking those at their word makes the check stricter: a write they
// refused that had applied after all would show up in later reads.
func linNeverSent(status int, body []byte, err error) bool {
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	return status == http.StatusServiceUnavailable && (bytes.HasPrefix(body, []byte("Starting:")) ||
		bytes.HasPrefix(body, []byte("Unavailable:")) && !bytes.Contains(body, []byte("may or may not")))
}

// linSend makes one request, bounded by timeout, and reads the body.
func linSend(ctx context.Context, timeout time.Duration, method, u string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := linHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// linParseOutput turns an answer into an outcome. Anything but a definite
// answer (200, 404, 409) is unknown: a write may or may not have applied.
func linParseOutput(in linInput, status int, body []byte, err error) linOutput {
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, so that reasons group
		}
		return linOutput{Status: linUnknown, Why: err.Error()}
	}
	switch status {
	case http.StatusOK:
		if rec, err := linParseRecord(body); err == nil && rec.Key == in.Key {
			return linOutput{Status: linOK, Ver: rec.Ver, Val: rec.Val}
		}
	case http.StatusNotFound:
		if in.Kind != linPut {
			return linOutput{Status: linNotFound}
		}
	case http.StatusConflict:
		if in.Kind != linGet {
			if stored, ok := linParseMismatch(body); ok {
				return linOutput{Status: linMismatch, Ver: stored}
			}
		}
	}
	return linOutput{Status: linUnknown, Why: fmt.Sprintf("%d %s", status, strings.TrimSpace(string(body)))}
}

// linRecord is kv1's JSON record.
type linRecord struct {
	Key string `json:"key"`
	Ver uint64 `json:"ver"`
	Val string `json:"val"`
}

func linParseRecord(body []byte) (linRecord, error) {
	var rec linRecord
	err := json.Unmarshal(body, &rec)
	return rec, err
}

// linParseMismatch parses "Version mismatch (N != stored)" and returns
// stored.
func linParseMismatch(body []byte) (uint64, bool) {
	s := strings.TrimSpace(string(body))
	i := strings.LastIndex(s, " != ")
	if !strings.HasPrefix(s, "Version mismatch (") || i < 0 || !strings.HasSuffix(s, ")") {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i+len(" != "):len(s)-1], 10, 64)
	return v, err == nil
}
