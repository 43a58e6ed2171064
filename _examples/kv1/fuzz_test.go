package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/zongzi-kv/zongzi"
)

// quiet silences the state machine's log of rejected commands.
func quiet(sm zongzi.StateMachine) zongzi.StateMachine {
	sm.(*stateMachine).log = slog.New(slog.DiscardHandler)
	return sm
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(appendPut(nil, "/k", "v", false, 0))
	f.Add(appendPut(nil, "/k", "v", true, 1<<40))
	f.Add(appendDelete(nil, "/k", true, 6))
	f.Add([]byte{codecVersion, opPut, flagVer, 0x80, 0x00, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sm := quiet(newStateMachine(1, 1))
		sm.Update([]zongzi.Entry{{Index: 1, Cmd: appendPut(nil, "/k", "v", false, 0)}})
		c, err := decodeCommand(b)
		out := sm.Update([]zongzi.Entry{{Index: 2, Cmd: b}})
		code := out[0].Result.Value
		if err != nil {
			if code != resultBadCommand {
				t.Fatalf("undecodable command gave result %d", code)
			}
			return
		}
		var again []byte
		if c.op == opPut {
			again = appendPut(nil, string(c.key), string(c.val), c.hasVer, c.ver)
		} else {
			again = appendDelete(nil, string(c.key), c.hasVer, c.ver)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, input %x", again, b)
		}
		if over := len(c.key) > defaultMaxKey || len(c.val) > defaultMaxVal; over != (code == resultTooLarge) {
			t.Fatalf("command with a %d-byte key and a %d-byte value gave result %d", len(c.key), len(c.val), code)
		}
		if code != resultOK && code != resultNotFound && code != resultMismatch && code != resultTooLarge {
			t.Fatalf("decodable command gave result %d", code)
		}
	})
}

func FuzzDecodeQuery(f *testing.F) {
	f.Add(appendGet(nil, "/k"))
	f.Add(appendGet(nil, ""))
	f.Add([]byte{codecVersion, opGet, 5, 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		sm := newStateMachine(1, 1)
		key, err := decodeQuery(b)
		r := sm.Query(context.Background(), b)
		if err != nil {
			if r.Value != resultBadCommand {
				t.Fatalf("undecodable query gave result %d", r.Value)
			}
			return
		}
		if again := appendGet(nil, string(key)); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, input %x", again, b)
		}
		if r.Value != resultNotFound {
			t.Fatalf("query of an empty store gave result %d", r.Value)
		}
	})
}

// fuzzAllowed are the status codes the handler may answer with a fake
// client that never fails.
var fuzzAllowed = map[int]bool{200: true, 202: true, 400: true, 404: true, 405: true, 409: true, 413: true, 414: true, 415: true}

// fuzzRefused are the codes of requests that must propose nothing.
var fuzzRefused = map[int]bool{400: true, 405: true, 413: true, 414: true, 415: true}

// FuzzHandler sends random requests through the handler, over a real
// state machine holding /k at version 6: it must never panic, answer with
// an allowed code and a newline-terminated body, propose nothing for a
// bad request or a GET, and write valid JSON records holding the key and
// value as sent.
func FuzzHandler(f *testing.F) {
	f.Add("PUT", "/k", "val=v&ver=6", byte(0), []byte(nil))
	f.Add("GET", "/k", "stale=true", byte(0), []byte(nil))
	f.Add("DELETE", "/k", "ver=6", byte(1), []byte("ver=5"))
	f.Add("PUT", "/\xff\"", "", byte(2), []byte("val=%00%ff"))
	f.Add("PUT", "/k", "", byte(3), []byte("raw"))
	f.Add("BREW", "/_status", "", byte(0), []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query string, ctype byte, body []byte) {
		fc := newFakeClient(6)
		quiet(fc.sm)
		h, err := newHandler([]shardClient{fc}, handlerConfig{
			MaxKey:   64,
			MaxVal:   64,
			Healthz:  func(context.Context) error { return nil },
			Status:   writeString(`{"status":"ready"}`),
			Registry: writeString(`{"index":1}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, h, putReq("/k?val=v")); r.code != 200 {
			t.Fatalf("setup: %d %s", r.code, r.body)
		}
		// The request as the server hands it over: the target is the
		// path, percent-encoded, and the raw query string.
		var req fasthttp.Request
		req.Header.SetMethod(method)
		target := (&url.URL{Path: path}).EscapedPath()
		if query != "" {
			target += "?" + query
		}
		req.SetRequestURI(target)
		req.SetBody(body)
		switch ctype % 4 {
		case 1:
			req.Header.SetContentType(formType)
		case 2:
			req.Header.SetContentType(formType + "; charset=UTF-8")
		case 3:
			req.Header.SetContentType("text/plain")
		}
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		p0, _ := fc.counts()
		h.serve(&rc)
		p1, _ := fc.counts()
		code, out := rc.Response.StatusCode(), string(rc.Response.Body())

		if !fuzzAllowed[code] {
			t.Fatalf("%s %q ?%q: status %d %q", method, path, query, code, out)
		}
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("%s %q ?%q: body %q lacks a final newline", method, path, query, out)
		}
		if (fuzzRefused[code] || method == http.MethodGet) && p1 != p0 {
			t.Fatalf("%s %q ?%q: status %d but %d proposals", method, path, query, code, p1-p0)
		}
		if code == 200 && !isServerPath(path) {
			var r struct {
				Key string `json:"key"`
				Ver uint64 `json:"ver"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("invalid JSON %q: %v", out, err)
			}
			if r.Key != path {
				t.Fatalf("record key %q, path %q", r.Key, path)
			}
			// Bytes that are not UTF-8 are refused, never replaced.
			if strings.Contains(out, `\ufffd`) {
				t.Fatalf("record %q has a replaced byte", out)
			}
		}
	})
}

func FuzzRecoverFromSnapshot(f *testing.F) {
	sm := newStateMachine(1, 1)
	sm.Update([]zongzi.Entry{{Index: 1, Cmd: put("/a", "1")}, {Index: 2, Cmd: put("/b", "")}})
	c, _ := sm.PrepareSnapshot()
	var buf bytes.Buffer
	sm.SaveSnapshot(c, &buf, nil)
	f.Add(buf.Bytes())
	f.Add([]byte{snapshotVersion, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sm := newStateMachine(1, 1)
		if err := sm.RecoverFromSnapshot(bytes.NewReader(b), nil); err != nil {
			return
		}
		c, err := sm.PrepareSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := sm.SaveSnapshot(c, &buf, nil); err != nil {
			t.Fatal(err)
		}
		again := newStateMachine(1, 2)
		if err := again.RecoverFromSnapshot(&buf, nil); err != nil {
			t.Fatalf("saved snapshot does not recover: %v", err)
		}
	})
}
