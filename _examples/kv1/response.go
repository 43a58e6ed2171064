package main

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// httpError is a response for a request that did not succeed: a status
// code and a one-line message (the body is the message and a newline).
type httpError struct {
	status int
	msg    string
	retry  bool // send Retry-After: 1
}

// Error returns the message.
func (e *httpError) Error() string { return e.msg }

// Header values of the responses.
const (
	hdrText      = "text/plain; charset=utf-8"
	hdrJSON      = "application/json"
	hdrNDJSON    = "application/x-ndjson"
	hdrMetrics   = "text/plain; version=0.0.4; charset=utf-8"
	hdrAllowKey  = "GET, PUT, DELETE"
	hdrAllowPath = "GET"
)

// bufPool holds response buffers of record bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooled is the capacity above which a buffer is left to the collector.
const maxPooled = 64 << 10

// writeError writes e and returns its status.
func writeError(rc *fasthttp.RequestCtx, e *httpError) int {
	if e.retry {
		rc.Response.Header.Set("Retry-After", "1")
	}
	return writeText(rc, e.status, e.msg)
}

// writeText writes a text/plain response: msg and a newline.
func writeText(rc *fasthttp.RequestCtx, status int, msg string) int {
	rc.Response.Header.Set("X-Content-Type-Options", "nosniff")
	rc.SetContentType(hdrText)
	rc.SetStatusCode(status)
	rc.Response.AppendBodyString(msg)
	rc.Response.AppendBodyString("\n")
	return status
}

// writeRecord writes a record as a JSON object and a newline.
func writeRecord(rc *fasthttp.RequestCtx, status int, rv recordView) int {
	rc.SetContentType(hdrJSON)
	rc.SetStatusCode(status)
	bp := bufPool.Get().(*[]byte)
	b := appendRecordJSON((*bp)[:0], rv)
	rc.Response.AppendBody(b)
	putBuf(bp, b)
	return status
}

func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= maxPooled {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// appendRecordJSON appends {"key":…,"ver":…,"val":…} and a newline.
func appendRecordJSON(dst []byte, rv recordView) []byte {
	dst = append(dst, `{"key":`...)
	dst = appendJSONString(dst, rv.key)
	dst = append(dst, `,"ver":`...)
	dst = strconv.AppendUint(dst, rv.ver, 10)
	dst = append(dst, `,"val":`...)
	dst = appendJSONString(dst, rv.val)
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Bytes that are not valid
// UTF-8 become U+FFFD, one per byte, as with encoding/json (the handler
// refuses such keys and values, so only a record an older kv1 wrote can
// hold them); control characters, U+2028 and U+2029 are escaped, so the
// output is valid JSON (and JavaScript) for any input.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
