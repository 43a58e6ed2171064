package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// kv1 serves its API with fasthttp rather than net/http: per request it
// allocates next to nothing and starts no goroutine, and it needs no
// background read of the connection while a handler waits for raft. On a
// linearizable GET that saved about a fifth of the three nodes' CPU (see
// the README's Performance section). The HTTP contract (kv1's README) is the
// handler's: keys are taken from the raw path, percent-decoded, exactly as
// net/http's URL.Path would have them.

// readTimeout is how long a client may take to send a whole request, a
// 1 MiB value included, before the server closes the connection.
const readTimeout = 10 * time.Second

// writeTimeout is how long a client may take to read a response, a 1 MiB
// value included: as long as it may take to send a request. A client that
// stops reading would otherwise hold its connection's goroutine and
// buffers for as long as it stays connected. A var for tests.
var writeTimeout = readTimeout

// headerLimit is the most bytes of request line and headers a request may
// have: net/http's default (1 MiB and 4 KiB of slack), so that a value of
// up to 1 MiB in the query string reaches the handler, which answers 413
// for one over the limit, if the value needs no escapes: one that does
// takes up to three bytes a byte, and a request line over headerLimit gets
// 431 before the handler sees it.
const headerLimit = 1<<20 + 4096

// Bounds of the lingering close after a body over the limit.
const (
	// lingerTime is how long the server reads what is left of the body.
	lingerTime = time.Second
	// lingerBytes is the most it reads.
	lingerBytes = 64 << 20
)

// newHTTPServer returns the server of serve, for values up to maxVal bytes;
// it logs connection errors to log at debug level. Requests it cannot read
// get the answers net/http gave: 413 for a body over the limit, 431 for
// headers over headerLimit, 400 otherwise.
func newHTTPServer(serve fasthttp.RequestHandler, maxVal int, log *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               serve,
		ErrorHandler:          requestError(maxVal),
		Logger:                serverLog{log},
		NoDefaultServerHeader: true,
		// The read buffer holds headerLimit bytes. It goes back to a pool
		// between requests: kept by each connection, hey's 64 connections
		// put 65 MB more on a node's RSS.
		ReadBufferSize:     headerLimit,
		ReduceMemoryUsage:  true,
		MaxRequestBodySize: bodyLimit(maxVal),
		ReadTimeout:        readTimeout,
		WriteTimeout:       writeTimeout,
		IdleTimeout:        2 * time.Minute,
		CloseOnShutdown:    true,

		// fasthttp parses a multipart/form-data body before the handler
		// by default, and answers 400 to one it cannot parse; the
		// handler refuses any body but an urlencoded one with 415, and
		// ignores a GET's.
		DisablePreParseMultipartForm: true,
	}
}

// requestError answers a request the server could not read.
func requestError(maxVal int) func(rc *fasthttp.RequestCtx, err error) {
	tooLarge := &httpError{status: http.StatusRequestEntityTooLarge,
		msg: "Value too large (max " + strconv.Itoa(maxVal) + " bytes)"}
	return func(rc *fasthttp.RequestCtx, err error) {
		var small *fasthttp.ErrSmallBuffer
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			writeError(rc, tooLarge)
			lingeringClose(rc)
		case errors.As(err, &small):
			writeError(rc, &httpError{status: http.StatusRequestHeaderFieldsTooLarge,
				msg: "Request line and headers too large (max " + strconv.Itoa(headerLimit) + " bytes)"})
			lingeringClose(rc)
		default:
			writeError(rc, &httpError{status: http.StatusBadRequest, msg: "Bad request: " + err.Error()})
		}
	}
}

// lingeringClose sends the response now, then reads what is left of the
// request for a while before the server closes the connection. The server
// refused the request before reading all of it; closing a socket with unread data
// makes the kernel reset the connection, and the client, still sending,
// would lose the response to the reset. net/http lingers likewise.
func lingeringClose(rc *fasthttp.RequestCtx) {
	conn := rc.Conn()
	rc.SetConnectionClose()
	bw := bufio.NewWriter(conn)
	if rc.Response.Write(bw) != nil || bw.Flush() != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, conn, lingerBytes)
	// The server writes the response again once this returns; the
	// connection's write side is closed by then, so that write fails
	// and nothing more is sent.
}

// serverLog passes fasthttp's own log lines (connection errors) to slog.
type serverLog struct{ log *slog.Logger }

// Printf implements fasthttp.Logger.
func (l serverLog) Printf(format string, args ...any) {
	l.log.Debug("kv1: http: " + fmt.Sprintf(format, args...))
}

// serveStarting answers every request while the node is starting.
func serveStarting(rc *fasthttp.RequestCtx) {
	writeError(rc, &httpError{status: http.StatusServiceUnavailable, retry: true,
		msg: "Starting: this node is not ready yet, retry shortly"})
}
