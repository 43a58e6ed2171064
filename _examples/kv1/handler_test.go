package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi"
	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

const formType = "application/x-www-form-urlencoded"

// call is one HTTP request of a test.
type call struct {
	method, target, ctype, body string
}

// response is what a test checks of a response.
type response struct {
	code int
	body string
	hdr  http.Header
}

// do sends c to h over real HTTP: through kv1's HTTP server, on loopback,
// started for h on first use and stopped when t ends.
func do(t testing.TB, h *handler, c call) response {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	return send(t, serverOf(t, h), c.method, c.target, c.ctype, body)
}

// send makes one request to the server at base; a body of unknown length
// goes chunked.
func send(t testing.TB, base, method, target, ctype string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, base+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, body: string(b), hdr: resp.Header}
}

// servers are the base URLs of the handlers' servers that do started.
var servers sync.Map // *handler → string

// serverOf returns the base URL of h's server, starting it on first use.
func serverOf(t testing.TB, h *handler) string {
	if base, ok := servers.Load(h); ok {
		return base.(string)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h.serve, h.maxVal, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	base := "http://" + ln.Addr().String()
	servers.Store(h, base)
	t.Cleanup(func() {
		servers.Delete(h)
		http.DefaultClient.CloseIdleConnections()
		_ = srv.Shutdown()
		<-done
	})
	return base
}

// newTestHandler returns a handler over one fake shard whose first write
// gets index 6. Like a raft log, the fake gives every write an index,
// rejected ones too; test/e2e checks the real numbers on a real cluster.
func newTestHandler(t testing.TB, cfg handlerConfig) (*handler, *fakeClient) {
	t.Helper()
	f := newFakeClient(6)
	h, err := newHandler([]shardClient{f}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

func get(target string) call       { return call{method: http.MethodGet, target: target} }
func putReq(target string) call    { return call{method: http.MethodPut, target: target} }
func deleteReq(target string) call { return call{method: http.MethodDelete, target: target} }
func form(method, target, body string) call {
	return call{method: method, target: target, ctype: formType + ";charset=UTF-8", body: body}
}

// multipartType and multipartVal are a multipart/form-data body holding
// val, as a browser sends a FormData.
const (
	multipartType = "multipart/form-data; boundary=kv1"
	multipartVal  = "--kv1\r\nContent-Disposition: form-data; name=\"val\"\r\n\r\nv\r\n--kv1--\r\n"
)

const rec6 = `{"key":"/testkey","ver":6,"val":"testvalue"}` + "\n"

// TestHandlerContract covers every row of DESIGN §7 with exact bodies.
func TestHandlerContract(t *testing.T) {
	create := putReq("/testkey?val=testvalue")
	timeout := "Timeout: the write may or may not have been applied\n"
	for _, tc := range []struct {
		name     string
		before   []call            // made first, each must succeed
		fake     func(*fakeClient) // applied after before
		cfg      handlerConfig
		req      call
		code     int
		body     string
		hdr      map[string]string
		proposes int    // proposals made by req
		read     string // kind of read made by req, "" for none
	}{
		// GET
		{name: "get missing", req: get("/testkey"), code: 404, body: "Not found\n", read: "read"},
		{name: "get", before: []call{create}, req: get("/testkey"), code: 200, body: rec6, read: "read",
			hdr: map[string]string{"Content-Type": "application/json"}},
		{name: "get stale", before: []call{create}, req: get("/testkey?stale=true"), code: 200, body: rec6, read: "stale"},
		{name: "get stale missing", req: get("/testkey?stale=true"), code: 404, body: "Not found\n", read: "stale"},
		{name: "get stale=false", before: []call{create}, req: get("/testkey?stale=false"), code: 200, body: rec6, read: "read"},
		{name: "get leader", before: []call{create}, req: get("/testkey?leader=true"), code: 200, body: rec6, read: "leader"},
		{name: "get leader missing", req: get("/testkey?leader=1"), code: 404, body: "Not found\n", read: "leader"},
		{name: "get bad stale", req: get("/testkey?stale=yes"), code: 400, body: "Stale must be a boolean (true or false)\n"},
		{name: "get empty stale", req: get("/testkey?stale="), code: 400, body: "Stale must be a boolean (true or false)\n"},
		{name: "get bad leader", req: get("/testkey?leader=x"), code: 400, body: "Leader must be a boolean (true or false)\n"},
		{name: "get stale and leader", req: get("/testkey?stale=true&leader=true"), code: 400, body: "Stale and leader cannot both be true\n"},
		{name: "put stale and leader", req: putReq("/testkey?val=v&stale=true&leader=true"), code: 400, body: "Stale and leader cannot both be true\n"},
		{name: "delete stale and leader", before: []call{create}, req: deleteReq("/testkey?stale=true&leader=true"), code: 400,
			body: "Stale and leader cannot both be true\n"},
		{name: "get ignores a body", before: []call{create}, req: form("GET", "/testkey", "stale=bogus"), code: 200, body: rec6, read: "read"},
		// fasthttp parses a multipart body before the handler by default,
		// and answered 400 to one it could not parse.
		{name: "get ignores a multipart body", before: []call{create},
			req: call{method: "GET", target: "/testkey", ctype: multipartType, body: "not multipart"}, code: 200, body: rec6, read: "read"},

		// PUT: create
		{name: "create", req: create, code: 200, body: rec6, proposes: 1,
			hdr: map[string]string{"Content-Type": "application/json"}},
		{name: "create ver=0", req: putReq("/testkey?val=testvalue&ver=0"), code: 200, body: rec6, proposes: 1},
		{name: "create existing", before: []call{create}, req: putReq("/testkey?val=other"), code: 409,
			body: "Version mismatch (0 != 6)\n", proposes: 1},
		{name: "create existing ver=0", before: []call{create}, req: putReq("/testkey?val=other&ver=0"), code: 409,
			body: "Version mismatch (0 != 6)\n", proposes: 1},
		{name: "create empty value", req: putReq("/testkey"), code: 200,
			body: `{"key":"/testkey","ver":6,"val":""}` + "\n", proposes: 1},

		// PUT: compare-and-set
		{name: "cas", before: []call{create}, req: putReq("/testkey?val=v2&ver=6"), code: 200,
			body: `{"key":"/testkey","ver":7,"val":"v2"}` + "\n", proposes: 1},
		{name: "cas mismatch", before: []call{create}, req: putReq("/testkey?val=v2&ver=5"), code: 409,
			body: "Version mismatch (5 != 6)\n", proposes: 1},
		{name: "cas missing key", req: putReq("/testkey?val=v&ver=5"), code: 409,
			body: "Version mismatch (5 != 0)\n", proposes: 1},

		// PUT stale: fire-and-forget
		{name: "put stale", req: putReq("/testkey?val=v&stale=true"), code: 202, body: "Accepted\n", proposes: 1},
		{name: "put stale mismatch is still accepted", before: []call{create}, req: putReq("/testkey?val=v&stale=true"),
			code: 202, body: "Accepted\n", proposes: 1},

		// DELETE
		{name: "delete", before: []call{create}, req: deleteReq("/testkey"), code: 200, body: rec6, proposes: 1},
		{name: "delete missing", req: deleteReq("/testkey"), code: 404, body: "Not found\n", proposes: 1},
		{name: "delete cas", before: []call{create}, req: deleteReq("/testkey?ver=6"), code: 200, body: rec6, proposes: 1},
		{name: "delete cas mismatch", before: []call{create}, req: deleteReq("/testkey?ver=5"), code: 409,
			body: "Version mismatch (5 != 6)\n", proposes: 1},
		{name: "delete cas missing", req: deleteReq("/testkey?ver=5"), code: 404, body: "Not found\n", proposes: 1},
		{name: "delete stale", before: []call{create}, req: deleteReq("/testkey?stale=true"), code: 202, body: "Accepted\n", proposes: 1},
		{name: "delete form body", before: []call{create}, req: form("DELETE", "/testkey", "ver=6"), code: 200, body: rec6, proposes: 1},

		// bad ver
		{name: "ver not a number", req: putReq("/testkey?val=v&ver=abc"), code: 400, body: "Version must be uint64\n"},
		{name: "ver negative", req: putReq("/testkey?val=v&ver=-1"), code: 400, body: "Version must be uint64\n"},
		{name: "ver overflow", req: putReq("/testkey?val=v&ver=18446744073709551616"), code: 400, body: "Version must be uint64\n"},
		{name: "ver empty", req: putReq("/testkey?val=v&ver="), code: 400, body: "Version must be uint64\n"},
		{name: "ver float", req: putReq("/testkey?val=v&ver=1.5"), code: 400, body: "Version must be uint64\n"},
		{name: "ver max", req: putReq("/testkey?val=v&ver=18446744073709551615"), code: 409,
			body: "Version mismatch (18446744073709551615 != 0)\n", proposes: 1},
		{name: "delete bad ver", req: deleteReq("/testkey?ver=x"), code: 400, body: "Version must be uint64\n"},
		{name: "get bad ver", req: get("/testkey?ver=x"), code: 400, body: "Version must be uint64\n"},
		{name: "bad ver in body", req: form("PUT", "/testkey?val=v", "ver=x"), code: 400, body: "Version must be uint64\n"},

		// other methods
		{name: "post", req: call{method: "POST", target: "/testkey?val=v"}, code: 405, body: "Method not supported\n",
			hdr: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "patch", req: call{method: "PATCH", target: "/testkey"}, code: 405, body: "Method not supported\n",
			hdr: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "head", req: call{method: "HEAD", target: "/testkey"}, code: 405, body: "", // a HEAD answer has no body
			hdr: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "options", req: call{method: "OPTIONS", target: "/testkey"}, code: 405, body: "Method not supported\n",
			hdr: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "post empty key", req: call{method: "POST", target: "/"}, code: 405, body: "Method not supported\n"},

		// limits and the empty key
		{name: "value at the limit", req: putReq("/k?val=" + strings.Repeat("v", 1<<20)), code: 200,
			body: `{"key":"/k","ver":6,"val":"` + strings.Repeat("v", 1<<20) + `"}` + "\n", proposes: 1},
		{name: "value over the limit", req: putReq("/k?val=" + strings.Repeat("v", 1<<20+1)), code: 413,
			body: "Value too large (max 1048576 bytes)\n"},
		{name: "value over the limit in a body", req: form("PUT", "/k", "val="+strings.Repeat("v", 1<<20+1)), code: 413,
			body: "Value too large (max 1048576 bytes)\n"},
		{name: "body over the limit", req: form("PUT", "/k", "val="+strings.Repeat("%76", 1<<20+2000)), code: 413,
			body: "Value too large (max 1048576 bytes)\n"},
		{name: "small value limit", cfg: handlerConfig{MaxVal: 4}, req: putReq("/k?val=12345"), code: 413,
			body: "Value too large (max 4 bytes)\n"},
		// A handler with a higher limit proposes the value; the state
		// machine refuses it.
		{name: "value over the state machine's limit", cfg: handlerConfig{MaxVal: 2 << 20},
			req: putReq("/k?val=" + strings.Repeat("v", 1<<20+1)), code: 413,
			body: "Too large: the key or value is over the state machine's limit; nothing was applied\n", proposes: 1},
		{name: "key at the limit", req: putReq("/" + strings.Repeat("k", 1023)), code: 200,
			body: `{"key":"/` + strings.Repeat("k", 1023) + `","ver":6,"val":""}` + "\n", proposes: 1},
		{name: "key over the limit", req: putReq("/" + strings.Repeat("k", 1024)), code: 414,
			body: "Key too long (max 1024 bytes)\n"},
		{name: "get key over the limit", req: get("/" + strings.Repeat("k", 1024)), code: 414,
			body: "Key too long (max 1024 bytes)\n"},
		{name: "put empty key", req: putReq("/?val=v"), code: 400, body: "Key must not be empty\n"},
		{name: "get empty key", req: get("/"), code: 400, body: "Key must not be empty\n"},
		{name: "delete empty key", req: deleteReq("/"), code: 400, body: "Key must not be empty\n"},

		// server paths
		{name: "put healthz", req: putReq("/healthz?val=v"), code: 400,
			body: "Path /healthz is reserved for the server, not a key\n"},
		{name: "delete metrics", req: deleteReq("/metrics"), code: 400,
			body: "Path /metrics is reserved for the server, not a key\n"},
		{name: "put status", req: putReq("/_status"), code: 400, body: "Path /_status is reserved for the server, not a key\n"},
		{name: "put registry", req: putReq("/_registry"), code: 400, body: "Path /_registry is reserved for the server, not a key\n"},
		{name: "put reserved", req: putReq("/_anything?val=v"), code: 400, body: "Path /_anything is reserved for the server, not a key\n"},
		{name: "get reserved", req: get("/_anything"), code: 404, body: "Not found\n"},
		{name: "post healthz", req: call{method: "POST", target: "/healthz"}, code: 405, body: "Method not supported\n",
			hdr: map[string]string{"Allow": "GET"}},
		{name: "healthz", req: get("/healthz"), code: 200, body: "OK\n"},
		{name: "healthz not ready", cfg: handlerConfig{Healthz: func(context.Context) error { return zongzi.ErrAgentNotReady }},
			req: get("/healthz"), code: 503, body: "Not ready: zongzi: agent not ready\n", hdr: map[string]string{"Retry-After": "1"}},
		{name: "status", cfg: handlerConfig{Status: writeString(`{"hostID":"h","status":"ready","shards":[]}`)},
			req: get("/_status"), code: 200, body: `{"hostID":"h","status":"ready","shards":[]}` + "\n",
			hdr: map[string]string{"Content-Type": "application/json"}},
		{name: "status error", cfg: handlerConfig{Status: failWith(zongzi.ErrAgentNotReady)}, req: get("/_status"),
			code: 503, body: "Unavailable: zongzi: agent not ready\n", hdr: map[string]string{"Retry-After": "1"}},
		{name: "registry", cfg: handlerConfig{Registry: writeString("{\"index\":54}\n{\"id\":1}\n")},
			req: get("/_registry"), code: 200, body: "{\"index\":54}\n{\"id\":1}\n"},
		{name: "registry timeout", cfg: handlerConfig{Registry: failWith(zongzi.ErrTimeout)}, req: get("/_registry"),
			code: 503, body: "Timeout\n"},
		{name: "registry not configured", req: get("/_registry"), code: 404, body: "Not found\n"},

		// shard unavailable or deadline passed
		{name: "get shard not ready", fake: failBefore(zongzi.ErrShardNotReady), req: get("/testkey"), code: 503,
			body: "Unavailable: zongzi: shard not ready\n", hdr: map[string]string{"Retry-After": "1"}, read: "read"},
		{name: "put shard not found", fake: failBefore(fmt.Errorf("shard kv1-00001: %w", zongzi.ErrShardNotFound)),
			req: create, code: 503, body: "Unavailable: shard kv1-00001: zongzi: shard not found\n",
			hdr: map[string]string{"Retry-After": "1"}},
		{name: "put agent not ready", fake: failBefore(zongzi.ErrAgentNotReady), req: create, code: 503,
			body: "Unavailable: zongzi: agent not ready\n", hdr: map[string]string{"Retry-After": "1"}},
		{name: "put timeout after proposing", fake: failAfter(zongzi.ErrTimeout), req: create, code: 503,
			body: timeout, proposes: 1},
		{name: "put deadline after proposing", fake: failAfter(context.DeadlineExceeded), req: create, code: 503,
			body: timeout, proposes: 1},
		{name: "put real deadline", cfg: handlerConfig{Timeout: 20 * time.Millisecond}, fake: blocking, req: create,
			code: 503, body: timeout, proposes: 1},
		{name: "put stale timeout", fake: failAfter(zongzi.ErrTimeout), req: putReq("/testkey?val=v&stale=true"),
			code: 503, body: timeout, proposes: 1},
		{name: "delete timeout", before: []call{create}, fake: failAfter(zongzi.ErrTimeout), req: deleteReq("/testkey"),
			code: 503, body: timeout, proposes: 1},
		{name: "put outcome unknown", fake: failAfter(fmt.Errorf("shard 1: apply: %w: the replica closed with the proposal pending", zongzi.ErrOutcomeUnknown)),
			req: create, code: 503, proposes: 1,
			body: "Unavailable: shard 1: apply: zongzi: outcome unknown: the replica closed with the proposal pending; the write may or may not have been applied\n"},
		{name: "put other error", fake: failAfter(errors.New("connection reset")), req: create, code: 503,
			body: "Unavailable: connection reset; the write may or may not have been applied\n", proposes: 1},
		{name: "get timeout", fake: failBefore(zongzi.ErrTimeout), req: get("/testkey"), code: 503, body: "Timeout\n", read: "read"},
		{name: "put over the bus's limit", fake: failBefore(fmt.Errorf("bus: command of 4194305 bytes: %w", zongzi.ErrTooLarge)),
			req: create, code: 413, body: "Too large: bus: command of 4194305 bytes: zongzi: too large\n"},
		{name: "get real deadline", cfg: handlerConfig{Timeout: 20 * time.Millisecond}, fake: blocking,
			req: get("/testkey?stale=true"), code: 503, body: "Timeout\n", read: "stale"},

		// forms: query string or urlencoded body
		{name: "browser body", req: form("PUT", "/testkey", "val=hello+world%21&ver=0"), code: 200,
			body: `{"key":"/testkey","ver":6,"val":"hello world!"}` + "\n", proposes: 1},
		{name: "body wins over query", req: form("PUT", "/testkey?val=query", "val=body"), code: 200,
			body: `{"key":"/testkey","ver":6,"val":"body"}` + "\n", proposes: 1},
		{name: "body and query merge", before: []call{create}, req: form("PUT", "/testkey?ver=6", "val=merged"), code: 200,
			body: `{"key":"/testkey","ver":7,"val":"merged"}` + "\n", proposes: 1},
		{name: "bad body", req: form("PUT", "/testkey", "val=%zz"), code: 400,
			body: "Bad form body: invalid URL escape \"%zz\"\n"},
		{name: "bad query", req: putReq("/testkey?val=%zz"), code: 400,
			body: "Bad query string: invalid URL escape \"%zz\"\n"},
		{name: "unsupported body", req: call{method: "PUT", target: "/testkey", ctype: "text/plain", body: "val=v"},
			code: 415, body: "Unsupported body: send values in the query string or as application/x-www-form-urlencoded\n"},
		{name: "multipart body", req: call{method: "PUT", target: "/testkey", ctype: multipartType, body: multipartVal},
			code: 415, body: "Unsupported body: send values in the query string or as application/x-www-form-urlencoded\n"},
		{name: "malformed multipart body", req: call{method: "PUT", target: "/testkey", ctype: multipartType, body: "val=v"},
			code: 415, body: "Unsupported body: send values in the query string or as application/x-www-form-urlencoded\n"},
		{name: "delete malformed multipart body", before: []call{create},
			req:  call{method: "DELETE", target: "/testkey", ctype: multipartType, body: "ver=6"},
			code: 415, body: "Unsupported body: send values in the query string or as application/x-www-form-urlencoded\n"},
		{name: "unknown names ignored", req: putReq("/testkey?val=testvalue&x=1&&y"), code: 200, body: rec6, proposes: 1},
		{name: "first value wins", req: putReq("/testkey?val=testvalue&val=second"), code: 200, body: rec6, proposes: 1},

		// the key is the path as sent, percent-decoded
		{name: "key with dot segments", req: putReq("/a/../b?val=v"), code: 200,
			body: `{"key":"/a/../b","ver":6,"val":"v"}` + "\n", proposes: 1},
		{name: "key with two leading slashes", req: putReq("//a/b?val=v"), code: 200,
			body: `{"key":"//a/b","ver":6,"val":"v"}` + "\n", proposes: 1},
		{name: "escaped key", req: putReq("/a%2Fb%20c%3F?val=v"), code: 200,
			body: `{"key":"/a/b c?","ver":6,"val":"v"}` + "\n", proposes: 1},

		// keys and values must be valid UTF-8, or they would not read back as written
		{name: "escaped UTF-8", req: putReq("/%E2%9C%93?val=%C3%A9%F0%9F%8D%99"), code: 200,
			body: `{"key":"/✓","ver":6,"val":"é🍙"}` + "\n", proposes: 1},
		{name: "value not UTF-8", req: putReq("/testkey?val=%ff"), code: 400, body: "Value must be valid UTF-8\n"},
		{name: "value not UTF-8 in a body", req: form("PUT", "/testkey", "val=a%C0%AFb"), code: 400,
			body: "Value must be valid UTF-8\n"},
		{name: "value truncated UTF-8", req: putReq("/testkey?val=ok%E2%80"), code: 400, body: "Value must be valid UTF-8\n"},
		{name: "value surrogate", req: putReq("/testkey?val=%ED%A0%80"), code: 400, body: "Value must be valid UTF-8\n"},
		{name: "value not UTF-8 stale", req: putReq("/testkey?val=%ff&stale=true"), code: 400,
			body: "Value must be valid UTF-8\n"},
		{name: "value not UTF-8 cas", before: []call{create}, req: putReq("/testkey?val=%80&ver=6"), code: 400,
			body: "Value must be valid UTF-8\n"},
		{name: "put key not UTF-8", req: putReq("/a%ffb?val=v"), code: 400, body: "Key must be valid UTF-8\n"},
		{name: "put key not UTF-8 stale", req: putReq("/%C0%AF?val=v&stale=true"), code: 400, body: "Key must be valid UTF-8\n"},
		{name: "get key not UTF-8", req: get("/%ff"), code: 400, body: "Key must be valid UTF-8\n"},
		{name: "delete key not UTF-8", req: deleteReq("/k%E2%80"), code: 400, body: "Key must be valid UTF-8\n"},
		// a GET or DELETE has no value: its val, whatever it holds, is ignored (README)
		{name: "get ignores val", before: []call{create}, req: get("/testkey?val=%ff"), code: 200, body: rec6, read: "read"},
		{name: "delete ignores val", before: []call{create}, req: deleteReq("/testkey?val=%ff"), code: 200, body: rec6, proposes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f := newTestHandler(t, tc.cfg)
			for _, c := range tc.before {
				if r := do(t, h, c); r.code >= 300 {
					t.Fatalf("before %s %s: %d %s", c.method, c.target, r.code, r.body)
				}
			}
			if tc.fake != nil {
				tc.fake(f)
			}
			p0, r0 := f.counts()
			got := do(t, h, tc.req)
			if got.code != tc.code || got.body != tc.body {
				t.Errorf("got %d %q\nwant %d %q", got.code, trunc(got.body), tc.code, trunc(tc.body))
			}
			for k, v := range tc.hdr {
				if g := got.hdr.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			p1, r1 := f.counts()
			if p1-p0 != tc.proposes {
				t.Errorf("%d proposals, want %d", p1-p0, tc.proposes)
			}
			if tc.read == "" && r1 != r0 {
				t.Errorf("%d reads, want none", r1-r0)
			}
			if tc.read != "" && (r1-r0 != 1 || f.lastRead() != tc.read) {
				t.Errorf("%d reads, last %q, want one %q", r1-r0, f.lastRead(), tc.read)
			}
		})
	}
}

func TestRequestTarget(t *testing.T) {
	for _, tc := range []struct {
		target, path, query string
		ok                  bool
	}{
		{"/testkey?val=v&ver=6", "/testkey", "val=v&ver=6", true},
		{"/testkey", "/testkey", "", true},
		{"/a/../b//c", "/a/../b//c", "", true},
		{"//a/b?x", "//a/b", "x", true},
		{"/a?b?c", "/a", "b?c", true},
		{"/%E2%9C%93%2F?q=%zz", "/✓/", "q=%zz", true},
		{"/a%zz", "", "", false},
		{"http://host/k?v=1", "/k", "v=1", true},
		{"http://host?v=1", "/", "v=1", true},
		{"http://host", "/", "", true},
		{"*", "*", "", true},
		{"", "", "", true},
	} {
		path, query, ok := requestTarget([]byte(tc.target))
		if ok != tc.ok || (ok && (path != tc.path || query != tc.query)) {
			t.Errorf("%q: (%q, %q, %v), want (%q, %q, %v)", tc.target, path, query, ok, tc.path, tc.query, tc.ok)
		}
	}
}

// TestHandlerREADME replays the README's curl sequence on the fake shard:
// a rejected write consumes an index, so versions skip as in the README,
// from 6 here where the README's fresh cluster starts at 5.
func TestHandlerREADME(t *testing.T) {
	h, _ := newTestHandler(t, handlerConfig{})
	for _, s := range []struct {
		req  call
		code int
		body string
	}{
		{putReq("/testkey?val=testvalue"), 200, rec6},
		{putReq("/testkey?val=testvalue"), 409, "Version mismatch (0 != 6)\n"},
		{putReq("/testkey?val=testvalue2&ver=6"), 200, `{"key":"/testkey","ver":8,"val":"testvalue2"}` + "\n"},
		{putReq("/testkey?val=testvalue3&ver=6"), 409, "Version mismatch (6 != 8)\n"},
		{putReq("/testkey?val=testvalue3&ver=8"), 200, `{"key":"/testkey","ver":10,"val":"testvalue3"}` + "\n"},
		{get("/testkey?stale=true"), 200, `{"key":"/testkey","ver":10,"val":"testvalue3"}` + "\n"},
		{putReq("/testkey?val=fire&ver=10&stale=true"), 202, "Accepted\n"},
		{get("/testkey"), 200, `{"key":"/testkey","ver":11,"val":"fire"}` + "\n"},
		{deleteReq("/testkey?ver=11"), 200, `{"key":"/testkey","ver":11,"val":"fire"}` + "\n"},
		{get("/testkey"), 404, "Not found\n"},
	} {
		if got := do(t, h, s.req); got.code != s.code || got.body != s.body {
			t.Fatalf("%s %s: got %d %q, want %d %q", s.req.method, s.req.target, got.code, got.body, s.code, s.body)
		}
	}
}

// TestHandlerJSONEscaping checks that keys and values with characters JSON
// must escape give valid JSON that decodes to the stored text.
func TestHandlerJSONEscaping(t *testing.T) {
	h, _ := newTestHandler(t, handlerConfig{})
	got := do(t, h, putReq(`/%22q%22%5C%0A%E2%80%A8?val=%00%01%1f%7f%EF%BF%BD%3C%E2%80%A9%F0%9F%8D%99`))
	if got.code != 200 {
		t.Fatalf("put: %d %s", got.code, got.body)
	}
	var rec struct {
		Key string `json:"key"`
		Ver uint64 `json:"ver"`
		Val string `json:"val"`
	}
	if err := json.Unmarshal([]byte(got.body), &rec); err != nil {
		t.Fatalf("invalid JSON %q: %v", got.body, err)
	}
	if rec.Key != "/\"q\"\\\n\u2028" || rec.Val != "\x00\x01\x1f\x7f\ufffd<\u2029🍙" || rec.Ver != 6 {
		t.Fatalf("decoded %q %d %q", rec.Key, rec.Ver, rec.Val)
	}
	if strings.ContainsAny(got.body, "\u2028\u2029") {
		t.Fatalf("U+2028/2029 not escaped: %q", got.body)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t", "\x00\x7f\x80\xff", "é\u2028\u2029\U0001F359", "\xe2\x80", "a\xc0\xafb"} {
		got := appendJSONString(nil, []byte(s))
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("%q: decodes to %q, encoding/json to %q", s, a, b)
		}
	}
}

func TestHandlerMetrics(t *testing.T) {
	h, _ := newTestHandler(t, handlerConfig{})
	do(t, h, putReq("/testkey?val=testvalue"))
	do(t, h, putReq("/testkey?val=testvalue"))
	do(t, h, get("/testkey"))
	do(t, h, call{method: "BREW", target: "/testkey"})
	got := do(t, h, get("/metrics"))
	if got.code != 200 || !strings.HasPrefix(got.hdr.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", got.code, got.hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		"# TYPE kv1_http_requests_total counter\n",
		`kv1_http_requests_total{method="PUT",code="200"} 1` + "\n",
		`kv1_http_requests_total{method="PUT",code="409"} 1` + "\n",
		`kv1_http_requests_total{method="GET",code="200"} 1` + "\n",
		`kv1_http_requests_total{method="other",code="405"} 1` + "\n",
		"# TYPE kv1_http_request_duration_seconds histogram\n",
		`kv1_http_request_duration_seconds_bucket{method="GET",code="200",le="0.0001"} `,
		`kv1_http_request_duration_seconds_bucket{method="GET",code="200",le="+Inf"} 1` + "\n",
		`kv1_http_request_duration_seconds_count{method="PUT",code="409"} 1` + "\n",
		`kv1_http_request_duration_seconds_sum{method="PUT",code="409"} `,
		"go_goroutines ", // from VictoriaMetrics/metrics, where Dragonboat's metrics live
	} {
		if !strings.Contains(got.body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(got.body, `method="DELETE"`) {
		t.Error("metrics list a pair never seen")
	}
}

func TestHandlerShardRouting(t *testing.T) {
	fakes := []*fakeClient{newFakeClient(1), newFakeClient(1), newFakeClient(1), newFakeClient(1)}
	h, err := newHandler([]shardClient{fakes[0], fakes[1], fakes[2], fakes[3]}, handlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		key := fmt.Sprintf("/key%d", i)
		if r := do(t, h, putReq(key+"?val=v")); r.code != 200 {
			t.Fatalf("put %s: %d %s", key, r.code, r.body)
		}
		if r := do(t, h, get(key)); r.code != 200 {
			t.Fatalf("get %s: %d %s", key, r.code, r.body)
		}
	}
	for i, f := range fakes {
		if p, _ := f.counts(); p < 180 || p > 320 {
			t.Errorf("shard %d got %d of 1000 keys", i, p)
		}
	}
	// The mapping is part of the data layout: it must not change between builds.
	for key, want := range map[string]int{"/testkey": 0, "/a": 0, "/key0": 0, "/key1": 3, "/key2": 0, "/key3": 2, "/key4": 3, "/key5": 3, "/key6": 1} {
		got := h.shardFor(key).(*fakeClient)
		for i := range fakes {
			if got == fakes[i] && i != want {
				t.Errorf("%s → shard %d, want %d", key, i, want)
			}
		}
	}
	// The test harness (kv1bench, the chaos test) places keys as kv1 does.
	for i := range 1000 {
		key := fmt.Sprintf("/key%d", i)
		if got, want := h.shardFor(key), fakes[kv1proc.ShardOf(key, len(fakes))]; got != want {
			t.Fatalf("%s: kv1proc.ShardOf says shard %d, the handler another", key, kv1proc.ShardOf(key, len(fakes)))
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		shards []shardClient
		cfg    handlerConfig
	}{
		"no shards":        {nil, handlerConfig{}},
		"nil shard":        {[]shardClient{nil}, handlerConfig{}},
		"negative timeout": {[]shardClient{newFakeClient(1)}, handlerConfig{Timeout: -1}},
		"negative max key": {[]shardClient{newFakeClient(1)}, handlerConfig{MaxKey: -1}},
		"negative max val": {[]shardClient{newFakeClient(1)}, handlerConfig{MaxVal: -1}},
	} {
		if _, err := newHandler(tc.shards, tc.cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func writeString(s string) func(context.Context, io.Writer) error {
	return func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func failWith(err error) func(context.Context, io.Writer) error {
	return func(context.Context, io.Writer) error { return err }
}

func failBefore(err error) func(*fakeClient) { return func(f *fakeClient) { f.err = err } }
func failAfter(err error) func(*fakeClient)  { return func(f *fakeClient) { f.errAfter = err } }
func blocking(f *fakeClient)                 { f.block = true }

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestHandlerOverHTTP sends browser-style and curl-style requests through a
// real HTTP server and client.
func TestHandlerOverHTTP(t *testing.T) {
	h, _ := newTestHandler(t, handlerConfig{})
	base := serverOf(t, h)
	exchange := func(method, target, ctype string, body io.Reader) (int, string, http.Header) {
		t.Helper()
		r := send(t, base, method, target, ctype, body)
		return r.code, r.body, r.hdr
	}
	// fetch(url, {method: "PUT", body: new URLSearchParams({val: "a b&c"})})
	if code, body, _ := exchange("PUT", "/testkey", formType+";charset=UTF-8", strings.NewReader("val=a+b%26c")); code != 200 ||
		body != `{"key":"/testkey","ver":6,"val":"a b&c"}`+"\n" {
		t.Fatalf("browser PUT: %d %q", code, body)
	}
	// A chunked body of unknown length.
	chunked := io.MultiReader(strings.NewReader("val=x&"), strings.NewReader("ver=6"))
	if code, body, _ := exchange("PUT", "/testkey", formType, chunked); code != 200 ||
		body != `{"key":"/testkey","ver":7,"val":"x"}`+"\n" {
		t.Fatalf("chunked PUT: %d %q", code, body)
	}
	if code, body, _ := exchange("PUT", "/testkey", formType, strings.NewReader("val="+strings.Repeat("v", 4<<20))); code != 413 ||
		body != "Value too large (max 1048576 bytes)\n" {
		t.Fatalf("huge PUT: %d %q", code, body)
	}
	// A request line over headerLimit (a value that needs escapes, say)
	// gets 431 before the handler sees it (README); a header likewise.
	const want431 = "Request line and headers too large (max 1052672 bytes)\n"
	if code, body, _ := exchange("PUT", "/testkey?val="+strings.Repeat("%C3%A9", 1<<18), "", nil); code != 431 || body != want431 {
		t.Fatalf("PUT with a request line over the limit: %d %q", code, trunc(body))
	}
	req, err := http.NewRequest("GET", base+"/testkey", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Huge", strings.Repeat("h", headerLimit))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 431 || string(b) != want431 {
		t.Fatalf("GET with a header over the limit: %d %q %v", resp.StatusCode, trunc(string(b)), err)
	}
	if code, body, hdr := exchange("PATCH", "/testkey", "", nil); code != 405 || body != "Method not supported\n" ||
		hdr.Get("Allow") != "GET, PUT, DELETE" {
		t.Fatalf("PATCH: %d %q %v", code, body, hdr)
	}
	if code, body, _ := exchange("GET", "/testkey?stale=true", "", nil); code != 200 ||
		body != `{"key":"/testkey","ver":7,"val":"x"}`+"\n" {
		t.Fatalf("GET: %d %q", code, body)
	}
}

// TestHandlerRefusesEncodedBody: a form body with a Content-Encoding
// (gzip, say) is refused with 415 and nothing is proposed. Read as it
// came, its bytes hold no val, and the PUT would have stored an empty
// value and answered 200.
func TestHandlerRefusesEncodedBody(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte("val=hello")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, encoding, body string
		code                   int
		resp                   string
		proposes               int
	}{
		{"PUT", "gzip", gz.String(), 415, "Unsupported body: Content-Encoding gzip; send the body unencoded\n", 0},
		{"DELETE", "deflate", "ver=6", 415, "Unsupported body: Content-Encoding deflate; send the body unencoded\n", 0},
		{"PUT", "identity", "val=hello", 200, `{"key":"/testkey","ver":6,"val":"hello"}` + "\n", 1},
		{"PUT", "gzip", "", 200, `{"key":"/testkey","ver":6,"val":""}` + "\n", 1}, // no body to decode
	} {
		h, f := newTestHandler(t, handlerConfig{})
		req, err := http.NewRequest(tc.method, serverOf(t, h)+"/testkey", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", formType)
		req.Header.Set("Content-Encoding", tc.encoding)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.code || string(b) != tc.resp {
			t.Errorf("%s with Content-Encoding %s: got %d %q, want %d %q", tc.method, tc.encoding, resp.StatusCode, b, tc.code, tc.resp)
		}
		if p, _ := f.counts(); p != tc.proposes {
			t.Errorf("%s with Content-Encoding %s: %d proposals, want %d", tc.method, tc.encoding, p, tc.proposes)
		}
	}
}
