package main

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// params are the form values of a key request.
type params struct {
	val    string // PUT: the value; absent means empty
	hasVer bool   // ver was given
	ver    uint64 // expected version
	stale  bool   // GET: read from any replica; PUT/DELETE: return once committed
	leader bool   // GET: read from the shard's leader
}

// rawParams are the unparsed form values; a field is set once, so the first
// occurrence in the first source scanned wins.
type rawParams struct {
	val, ver, stale, leader          string
	hasVal, hasVer, hasStale, hasLdr bool
}

// Fixed client errors of form parsing.
var (
	errBadVer         = &httpError{status: http.StatusBadRequest, msg: "Version must be uint64"}
	errBadStale       = &httpError{status: http.StatusBadRequest, msg: "Stale must be a boolean (true or false)"}
	errBadLeader      = &httpError{status: http.StatusBadRequest, msg: "Leader must be a boolean (true or false)"}
	errStaleAndLeader = &httpError{status: http.StatusBadRequest, msg: "Stale and leader cannot both be true"}
	errContentType    = &httpError{status: http.StatusUnsupportedMediaType, msg: "Unsupported body: send values in the query string or as application/x-www-form-urlencoded"}
)

// params reads the form values of a request: from an
// application/x-www-form-urlencoded body (PUT and DELETE only), then from
// query, the raw query string; a value in the body wins over the same value
// in the query string, as with net/http's Request.FormValue. Unknown names
// are ignored.
func (h *handler) params(rc *fasthttp.RequestCtx, query string) (params, *httpError) {
	var raw rawParams
	if rc.IsPut() || rc.IsDelete() {
		if herr := h.scanBody(rc, &raw); herr != nil {
			return params{}, herr
		}
	}
	if err := scanForm(query, &raw); err != nil {
		return params{}, &httpError{status: http.StatusBadRequest, msg: "Bad query string: " + err.Error()}
	}
	var p params
	var err error
	p.val = raw.val
	if raw.hasVer {
		p.hasVer = true
		if p.ver, err = strconv.ParseUint(raw.ver, 10, 64); err != nil {
			return params{}, errBadVer
		}
	}
	if raw.hasStale {
		if p.stale, err = strconv.ParseBool(raw.stale); err != nil {
			return params{}, errBadStale
		}
	}
	if raw.hasLdr {
		if p.leader, err = strconv.ParseBool(raw.leader); err != nil {
			return params{}, errBadLeader
		}
	}
	return p, nil
}

// scanBody reads an urlencoded body into raw. A non-empty body of any other
// type, or with a content coding (Content-Encoding: gzip, say), is refused
// with 415 rather than read as it came, so that no value is silently lost:
// the bytes of a gzipped form hold no val, and the PUT would store an
// empty value. The server has read the whole body already, refusing one
// over bodyLimit(h.maxVal) with 413 (see newHTTPServer).
func (h *handler) scanBody(rc *fasthttp.RequestCtx, raw *rawParams) *httpError {
	body := rc.PostBody()
	if len(body) == 0 {
		return nil
	}
	if ce := strings.TrimSpace(string(rc.Request.Header.ContentEncoding())); ce != "" && !strings.EqualFold(ce, "identity") {
		return &httpError{status: http.StatusUnsupportedMediaType,
			msg: "Unsupported body: Content-Encoding " + ce + "; send the body unencoded"}
	}
	ct := string(rc.Request.Header.ContentType())
	if ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			ct = mt
		}
	}
	if ct != "application/x-www-form-urlencoded" {
		return errContentType
	}
	if len(body) > bodyLimit(h.maxVal) {
		return h.errValTooLarge()
	}
	if err := scanForm(string(body), raw); err != nil {
		return &httpError{status: http.StatusBadRequest, msg: "Bad form body: " + err.Error()}
	}
	return nil
}

// bodyLimit bounds an urlencoded body with values up to maxVal bytes: the
// largest value, percent-encoded, plus room for the other fields.
func bodyLimit(maxVal int) int { return 3*maxVal + 4096 }

// scanForm scans an urlencoded string (a=1&b=2) for the names kv1 knows,
// setting each field of raw not set already. Unlike url.ParseQuery it builds
// no map and allocates only to unescape a value that has escapes. Every
// pair must unescape cleanly.
func scanForm(s string, raw *rawParams) error {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(name)
		if err != nil {
			return err
		}
		var dst *string
		var has *bool
		switch name {
		case "val":
			dst, has = &raw.val, &raw.hasVal
		case "ver":
			dst, has = &raw.ver, &raw.hasVer
		case "stale":
			dst, has = &raw.stale, &raw.hasStale
		case "leader":
			dst, has = &raw.leader, &raw.hasLdr
		}
		value, err = url.QueryUnescape(value)
		if err != nil {
			return err
		}
		if has != nil && !*has {
			*dst, *has = value, true
		}
	}
	return nil
}
