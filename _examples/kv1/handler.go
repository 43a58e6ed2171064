package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
)

// shardClient is what the handler needs of a shard; *zongzi.ShardClient
// implements it. Apply proposes and waits for the result, Commit proposes
// and waits for the commit only; Read is linearizable unless stale;
// LeaderRead is served by the shard's leader. The handler does not reuse a
// command or query slice after passing it.
type shardClient interface {
	Apply(ctx context.Context, cmd []byte) (value uint64, data []byte, err error)
	Commit(ctx context.Context, cmd []byte) error
	Read(ctx context.Context, query []byte, stale bool) (value uint64, data []byte, err error)
	LeaderRead(ctx context.Context, query []byte) (value uint64, data []byte, err error)
}

// Defaults of handlerConfig.
const (
	defaultTimeout = time.Second
	defaultMaxKey  = 1 << 10
	defaultMaxVal  = 1 << 20
)

// handlerConfig configures newHandler. Zero values take the defaults.
type handlerConfig struct {
	// Timeout bounds each request (default 1 s).
	Timeout time.Duration
	// MaxKey is the longest key in bytes, the leading "/" included (default 1 KiB).
	MaxKey int
	// MaxVal is the longest value in bytes (default 1 MiB).
	MaxVal int
	// Healthz returns nil when this node can serve, else the reason. Nil: always ready.
	Healthz func(ctx context.Context) error
	// Status writes this host's view as JSON (the /_status body). It must not block.
	Status func(ctx context.Context, w io.Writer) error
	// Registry writes the registry snapshot, read linearizably (the /_registry body).
	Registry func(ctx context.Context, w io.Writer) error
}

// handler serves the kv1 HTTP API (DESIGN §7): keys are URL paths, spread
// over shards by a hash of the key; /healthz, /metrics and paths starting
// with /_ are server paths.
type handler struct {
	shards  []shardClient
	timeout time.Duration
	maxKey  int
	maxVal  int
	healthz func(ctx context.Context) error
	status  func(ctx context.Context, w io.Writer) error
	reg     func(ctx context.Context, w io.Writer) error
	metrics httpMetrics
}

// newHandler returns the handler of the kv1 API over shards. The order of
// shards decides where each key lives, so it must be the same on every
// node (e.g. sorted by shard name).
func newHandler(shards []shardClient, cfg handlerConfig) (*handler, error) {
	if len(shards) == 0 {
		return nil, errors.New("kv1: no shards")
	}
	for i, s := range shards {
		if s == nil {
			return nil, fmt.Errorf("kv1: shard %d is nil", i)
		}
	}
	if cfg.Timeout < 0 || cfg.MaxKey < 0 || cfg.MaxVal < 0 {
		return nil, fmt.Errorf("kv1: negative timeout (%v), key limit (%d) or value limit (%d)", cfg.Timeout, cfg.MaxKey, cfg.MaxVal)
	}
	h := &handler{
		shards:  append([]shardClient(nil), shards...),
		timeout: cmp.Or(cfg.Timeout, defaultTimeout),
		maxKey:  cmp.Or(cfg.MaxKey, defaultMaxKey),
		maxVal:  cmp.Or(cfg.MaxVal, defaultMaxVal),
		healthz: cfg.Healthz,
		status:  cfg.Status,
		reg:     cfg.Registry,
	}
	return h, nil
}

// ServeHTTP serves one request and records its method, status and latency.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var code int
	if isServerPath(r.URL.Path) {
		code = h.serveServer(w, r)
	} else {
		code = h.serveKey(w, r)
	}
	h.metrics.observe(r.Method, code, time.Since(start))
}

// shardFor returns the shard of key: the high bits of xxh64(key) times the
// shard count (Lemire's multiply-shift range reduction), stable across
// processes and builds.
func (h *handler) shardFor(key string) shardClient {
	hi, _ := bits.Mul64(xxhash.Sum64String(key), uint64(len(h.shards)))
	return h.shards[hi]
}

// isServerPath reports whether path is reserved for the server.
func isServerPath(path string) bool {
	return path == "/healthz" || path == "/metrics" || strings.HasPrefix(path, "/_")
}

// Fixed errors of server paths.
var (
	errNotFound = &httpError{status: http.StatusNotFound, msg: "Not found"}
)

// serveServer serves /healthz, /metrics, /_status and /_registry, refuses
// writes to any server path with 400, and answers 404 for the other
// reserved paths.
func (h *handler) serveServer(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.Path
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut, http.MethodDelete:
		return writeError(w, &httpError{status: http.StatusBadRequest,
			msg: "Path " + path + " is reserved for the server, not a key"})
	default:
		w.Header()["Allow"] = hdrAllowPath
		return writeError(w, errMethod)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	switch path {
	case "/healthz":
		if h.healthz != nil {
			if err := h.healthz(ctx); err != nil {
				return writeError(w, &httpError{status: http.StatusServiceUnavailable, msg: "Not ready: " + err.Error(), retry: true})
			}
		}
		return writeText(w, http.StatusOK, "OK")
	case "/metrics":
		w.Header()["Content-Type"] = hdrMetrics
		w.WriteHeader(http.StatusOK)
		h.metrics.writePrometheus(w)
		metrics.WritePrometheus(w, true)
		return http.StatusOK
	case "/_status":
		return writeBuffered(ctx, w, h.status, hdrJSON)
	case "/_registry":
		return writeBuffered(ctx, w, h.reg, hdrNDJSON)
	}
	return writeError(w, errNotFound)
}

// writeBuffered runs fn into a buffer and writes it, or writes fn's error:
// a half-written body is never sent.
func writeBuffered(ctx context.Context, w http.ResponseWriter, fn func(context.Context, io.Writer) error, contentType []string) int {
	if fn == nil {
		return writeError(w, errNotFound)
	}
	var buf bytes.Buffer
	if err := fn(ctx, &buf); err != nil {
		return writeError(w, clientError(err, false))
	}
	if b := buf.Bytes(); len(b) == 0 || b[len(b)-1] != '\n' {
		buf.WriteByte('\n')
	}
	w.Header()["Content-Type"] = contentType
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return http.StatusOK
}
