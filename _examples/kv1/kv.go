package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/zongzi-kv/zongzi"
)

// Fixed errors of key requests.
var (
	errMethod        = &httpError{status: http.StatusMethodNotAllowed, msg: "Method not supported"}
	errEmptyKey      = &httpError{status: http.StatusBadRequest, msg: "Key must not be empty"}
	errKeySlash      = &httpError{status: http.StatusBadRequest, msg: "Key must start with /"}
	errKeyUTF8       = &httpError{status: http.StatusBadRequest, msg: "Key must be valid UTF-8"}
	errValUTF8       = &httpError{status: http.StatusBadRequest, msg: "Value must be valid UTF-8"}
	errWriteTimeout  = &httpError{status: http.StatusServiceUnavailable, msg: "Timeout: the write may or may not have been applied", retry: true}
	errWriteCanceled = &httpError{status: http.StatusServiceUnavailable, msg: "Canceled: the write may or may not have been applied", retry: true}
	errReadTimeout   = &httpError{status: http.StatusServiceUnavailable, msg: "Timeout", retry: true}
	errReadCanceled  = &httpError{status: http.StatusServiceUnavailable, msg: "Canceled", retry: true}
	errBadResult     = &httpError{status: http.StatusInternalServerError, msg: "Internal error: undecodable result from the state machine"}
	errBadCommand    = &httpError{status: http.StatusInternalServerError, msg: "Internal error: the state machine could not decode the request; nothing was applied"}
	errTooLarge      = &httpError{status: http.StatusRequestEntityTooLarge, msg: "Too large: the key or value is over the state machine's limit; nothing was applied"}
)

// accepted is the body of a write answered once committed (stale=true).
const accepted = "Accepted"

// serveKey serves GET, PUT and DELETE of a key, the URL path; query is
// the raw query string. A key or value that is not valid UTF-8 is refused
// with 400: a record goes out as JSON text, where such bytes would come
// back as U+FFFD, not as written.
func (h *handler) serveKey(rc *fasthttp.RequestCtx, key, query string) int {
	if !rc.IsGet() && !rc.IsPut() && !rc.IsDelete() {
		rc.Response.Header.Set("Allow", hdrAllowKey)
		return writeError(rc, errMethod)
	}
	switch {
	case key == "" || key == "/":
		return writeError(rc, errEmptyKey)
	case key[0] != '/':
		return writeError(rc, errKeySlash)
	case len(key) > h.maxKey:
		return writeError(rc, h.errKeyTooLong())
	case !utf8.ValidString(key):
		return writeError(rc, errKeyUTF8)
	}
	p, herr := h.params(rc, query)
	if herr != nil {
		return writeError(rc, herr)
	}
	if p.stale && p.leader { // contradictory for a read, and for a write
		return writeError(rc, errStaleAndLeader)
	}
	ctx := h.deadlines.context()
	switch {
	case rc.IsGet():
		return h.get(ctx, rc, key, p)
	case rc.IsPut():
		if len(p.val) > h.maxVal {
			return writeError(rc, h.errValTooLarge())
		}
		if !utf8.ValidString(p.val) {
			return writeError(rc, errValUTF8)
		}
		cmd := appendPut(make([]byte, 0, putSize(key, p.val, p.hasVer, p.ver)), key, p.val, p.hasVer, p.ver)
		return h.write(ctx, rc, key, cmd, p)
	default:
		cmd := appendDelete(make([]byte, 0, deleteSize(key, p.hasVer, p.ver)), key, p.hasVer, p.ver)
		return h.write(ctx, rc, key, cmd, p)
	}
}

// get reads key: linearizably, from any replica (stale) or from the leader.
func (h *handler) get(ctx context.Context, rc *fasthttp.RequestCtx, key string, p params) int {
	q := appendGet(make([]byte, 0, getSize(key)), key)
	s := h.shardFor(key)
	var value uint64
	var data []byte
	var err error
	if p.leader {
		value, data, err = s.LeaderRead(ctx, q)
	} else {
		value, data, err = s.Read(ctx, q, p.stale)
	}
	if err != nil {
		return writeError(rc, clientError(err, false))
	}
	return writeResult(rc, value, data, p)
}

// write proposes cmd to the shard of key. With stale it answers 202 once
// the command is committed; otherwise it waits for the result. A DELETE
// answers the record as it was before the delete.
func (h *handler) write(ctx context.Context, rc *fasthttp.RequestCtx, key string, cmd []byte, p params) int {
	s := h.shardFor(key)
	if p.stale {
		if err := s.Commit(ctx, cmd); err != nil {
			return writeError(rc, clientError(err, true))
		}
		return writeText(rc, http.StatusAccepted, accepted)
	}
	value, data, err := s.Apply(ctx, cmd)
	if err != nil {
		return writeError(rc, clientError(err, true))
	}
	return writeResult(rc, value, data, p)
}

// writeResult turns a state machine result into a response.
func writeResult(rc *fasthttp.RequestCtx, value uint64, data []byte, p params) int {
	switch value {
	case resultOK:
		rv, err := decodeRecord(data)
		if err != nil {
			return writeError(rc, errBadResult)
		}
		return writeRecord(rc, http.StatusOK, rv)
	case resultNotFound:
		return writeError(rc, errNotFound)
	case resultMismatch:
		stored, err := decodeMismatch(data)
		if err != nil {
			return writeError(rc, errBadResult)
		}
		want := uint64(0)
		if p.hasVer {
			want = p.ver
		}
		return writeText(rc, http.StatusConflict,
			"Version mismatch ("+strconv.FormatUint(want, 10)+" != "+strconv.FormatUint(stored, 10)+")")
	case resultBadCommand:
		return writeError(rc, errBadCommand)
	case resultTooLarge:
		return writeError(rc, errTooLarge)
	}
	return writeError(rc, &httpError{status: http.StatusInternalServerError,
		msg: "Internal error: unknown result code " + strconv.FormatUint(value, 10)})
}

// clientError maps an error of a shard client to a response. write says
// whether a command may have been proposed, so that the body can say the
// outcome is unknown.
func clientError(err error, write bool) *httpError {
	switch {
	case errors.Is(err, zongzi.ErrShardNotFound), errors.Is(err, zongzi.ErrShardNotReady),
		errors.Is(err, zongzi.ErrAgentNotReady), errors.Is(err, zongzi.ErrRejected):
		return &httpError{status: http.StatusServiceUnavailable, msg: "Unavailable: " + err.Error(), retry: true}
	case errors.Is(err, zongzi.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		if write {
			return errWriteTimeout
		}
		return errReadTimeout
	case errors.Is(err, context.Canceled):
		if write {
			return errWriteCanceled
		}
		return errReadCanceled
	case write && errors.Is(err, zongzi.ErrTooLarge): // not proposed
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: "Too large: " + err.Error()}
	}
	msg := "Unavailable: " + err.Error()
	if write {
		msg += "; the write may or may not have been applied"
	}
	return &httpError{status: http.StatusServiceUnavailable, msg: msg, retry: true}
}

// errKeyTooLong is the response to a key over the limit.
func (h *handler) errKeyTooLong() *httpError {
	return &httpError{status: http.StatusRequestURITooLong,
		msg: "Key too long (max " + strconv.Itoa(h.maxKey) + " bytes)"}
}

// errValTooLarge is the response to a value over the limit.
func (h *handler) errValTooLarge() *httpError {
	return &httpError{status: http.StatusRequestEntityTooLarge,
		msg: "Value too large (max " + strconv.Itoa(h.maxVal) + " bytes)"}
}
