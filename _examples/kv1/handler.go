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
	"net/url"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
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

// handler serves the kv1 HTTP API (README.md): keys are URL paths, spread
// over shards by a hash of the key; /healthz, /metrics and paths starting
// with /_ are server paths.
type handler struct {
	shards    []shardClient
	deadlines requestDeadlines // bound each request by the configured timeout
	maxKey    int
	maxVal    int
	healthz   func(ctx context.Context) error
	status    func(ctx context.Context, w io.Writer) error
	reg       func(ctx context.Context, w io.Writer) error
	metrics   httpMetrics
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
		maxKey:  cmp.Or(cfg.MaxKey, defaultMaxKey),
		maxVal:  cmp.Or(cfg.MaxVal, defaultMaxVal),
		healthz: cfg.Healthz,
		status:  cfg.Status,
		reg:     cfg.Registry,
	}
	timeout := cmp.Or(cfg.Timeout, defaultTimeout)
	h.deadlines.timeout, h.deadlines.width = timeout, timeout/100
	return h, nil
}

// serve serves one request and records its method, status and latency.
func (h *handler) serve(rc *fasthttp.RequestCtx) {
	start := time.Now()
	var code int
	path, query, ok := requestTarget(rc.Request.Header.RequestURI())
	switch {
	case !ok:
		code = writeError(rc, errBadPath)
	case isServerPath(path):
		code = h.serveServer(rc, path)
	default:
		code = h.serveKey(rc, path, query)
	}
	h.metrics.observe(methodIndex(rc.Method()), code, time.Since(start))
}

// errBadPath answers a path that does not percent-decode.
var errBadPath = &httpError{status: http.StatusBadRequest, msg: "Bad path: invalid URL escape"}

// requestTarget splits a request line's target into its path,
// percent-decoded, and its raw query string, as net/http's URL.Path and
// URL.RawQuery have them. fasthttp's own URI would remove dot segments and
// repeated slashes from the path, and take "//a/b" for host a and path
// /b, which would change the key. ok is false when the path does not
// decode.
func requestTarget(target []byte) (path, query string, ok bool) {
	// The absolute form, http://host/path?query (RFC 9112 §3.2.2).
	if i := bytes.Index(target, []byte("://")); i > 0 && target[0] != '/' {
		target = target[i+3:]
		if j := bytes.IndexAny(target, "/?"); j >= 0 {
			target = target[j:]
		} else {
			target = nil
		}
		if len(target) == 0 || target[0] == '?' {
			target = append([]byte("/"), target...)
		}
	}
	rawPath, rawQuery, _ := bytes.Cut(target, []byte("?"))
	query = string(rawQuery)
	if bytes.IndexByte(rawPath, '%') < 0 {
		return string(rawPath), query, true
	}
	path, err := url.PathUnescape(string(rawPath))
	return path, query, err == nil
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
func (h *handler) serveServer(rc *fasthttp.RequestCtx, path string) int {
	switch {
	case rc.IsGet():
	case rc.IsPut(), rc.IsDelete():
		return writeError(rc, &httpError{status: http.StatusBadRequest,
			msg: "Path " + path + " is reserved for the server, not a key"})
	default:
		rc.Response.Header.Set("Allow", hdrAllowPath)
		return writeError(rc, errMethod)
	}
	ctx := h.deadlines.context()
	switch path {
	case "/healthz":
		if h.healthz != nil {
			if err := h.healthz(ctx); err != nil {
				return writeError(rc, &httpError{status: http.StatusServiceUnavailable, msg: "Not ready: " + err.Error(), retry: true})
			}
		}
		return writeText(rc, http.StatusOK, "OK")
	case "/metrics":
		rc.SetContentType(hdrMetrics)
		rc.SetStatusCode(http.StatusOK)
		h.metrics.writePrometheus(rc)
		metrics.WritePrometheus(rc, true)
		return http.StatusOK
	case "/_status":
		return writeBuffered(ctx, rc, h.status, hdrJSON)
	case "/_registry":
		return writeBuffered(ctx, rc, h.reg, hdrNDJSON)
	}
	return writeError(rc, errNotFound)
}

// writeBuffered runs fn into a buffer and writes it, or writes fn's error:
// a half-written body is never sent.
func writeBuffered(ctx context.Context, rc *fasthttp.RequestCtx, fn func(context.Context, io.Writer) error, contentType string) int {
	if fn == nil {
		return writeError(rc, errNotFound)
	}
	var buf bytes.Buffer
	if err := fn(ctx, &buf); err != nil {
		return writeError(rc, clientError(err, false))
	}
	if b := buf.Bytes(); len(b) == 0 || b[len(b)-1] != '\n' {
		buf.WriteByte('\n')
	}
	rc.SetContentType(contentType)
	rc.SetStatusCode(http.StatusOK)
	rc.Response.AppendBody(buf.Bytes())
	return http.StatusOK
}
