package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format of kv1 commands, queries and results.
//
// Everything replicated or forwarded starts with codecVersion:
//
//	command:  version | op | flags | [ver if flags&flagVer] | key | val (put only)
//	query:    version | opGet | key
//	record:   version | ver | key | val    (Result.Data of resultOK)
//	mismatch: version | stored ver         (Result.Data of resultMismatch)
//
// where op and flags are one byte, ver is a uvarint, and key and val are
// uvarint(len) followed by the bytes. Decoders are strict: an unknown
// version, op or flag, a truncated field, trailing bytes or a uvarint not
// in its shortest form is an error, so each value has exactly one
// encoding. Decoded byte slices alias the input.
const codecVersion byte = 1

// Operations.
const (
	opPut    byte = 1 // command: create or compare-and-set a record
	opDelete byte = 2 // command: delete a record, compare-and-delete with flagVer
	opGet    byte = 3 // query: read a record
)

// flagVer marks a command that carries an expected version.
const flagVer byte = 1 << 0

// Result codes, the Value of a zongzi.Result.
const (
	resultOK         uint64 = 1 // Data is the record (as written, as read, or as deleted)
	resultNotFound   uint64 = 2 // no record; Data is empty
	resultMismatch   uint64 = 3 // expected version differs; Data is the stored version (0: none)
	resultBadCommand uint64 = 4 // the command or query could not be decoded; nothing changed
	resultTooLarge   uint64 = 5 // the command's key or value is over the limit; nothing changed
)

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("kv1: malformed encoding")

// command is a decoded command. key and val alias the encoded bytes.
type command struct {
	op     byte
	hasVer bool
	ver    uint64
	key    []byte
	val    []byte
}

// recordView is a decoded record. key and val alias the encoded bytes.
type recordView struct {
	ver uint64
	key []byte
	val []byte
}

// putSize is the exact length of an encoded put command.
func putSize(key, val string, hasVer bool, ver uint64) int {
	n := 3 + lenSize(len(key)) + lenSize(len(val))
	if hasVer {
		n += uvarintSize(ver)
	}
	return n
}

// deleteSize is the exact length of an encoded delete command.
func deleteSize(key string, hasVer bool, ver uint64) int {
	n := 3 + lenSize(len(key))
	if hasVer {
		n += uvarintSize(ver)
	}
	return n
}

// getSize is the exact length of an encoded get query.
func getSize(key string) int { return 2 + lenSize(len(key)) }

// appendPut appends a put command to dst. Without hasVer (or with ver 0)
// the put creates the key; with ver N it succeeds only if the stored
// version is N.
func appendPut(dst []byte, key, val string, hasVer bool, ver uint64) []byte {
	dst = appendHeader(dst, opPut, hasVer, ver)
	dst = appendString(dst, key)
	return appendString(dst, val)
}

// appendDelete appends a delete command to dst. With hasVer the delete
// succeeds only if the stored version is ver.
func appendDelete(dst []byte, key string, hasVer bool, ver uint64) []byte {
	dst = appendHeader(dst, opDelete, hasVer, ver)
	return appendString(dst, key)
}

// appendGet appends a get query to dst.
func appendGet(dst []byte, key string) []byte {
	dst = append(dst, codecVersion, opGet)
	return appendString(dst, key)
}

// appendRecord appends an encoded record to dst.
func appendRecord(dst []byte, ver uint64, key, val []byte) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, ver)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(val)))
	return append(dst, val...)
}

// recordSize is the exact length of an encoded record.
func recordSize(ver uint64, key, val []byte) int {
	return 1 + uvarintSize(ver) + lenSize(len(key)) + lenSize(len(val))
}

// appendMismatch appends the payload of a resultMismatch to dst.
func appendMismatch(dst []byte, stored uint64) []byte {
	dst = append(dst, codecVersion)
	return binary.AppendUvarint(dst, stored)
}

// decodeCommand decodes a command. It never panics; malformed input
// returns an error wrapping errMalformed.
func decodeCommand(b []byte) (command, error) {
	var c command
	d := decoder{b: b}
	d.version()
	c.op = d.byte()
	flags := d.byte()
	if d.err != nil {
		return c, d.err
	}
	if c.op != opPut && c.op != opDelete {
		return c, fmt.Errorf("%w: unknown command op %d", errMalformed, c.op)
	}
	if flags&^flagVer != 0 {
		return c, fmt.Errorf("%w: unknown command flags %#x", errMalformed, flags)
	}
	if flags&flagVer != 0 {
		c.hasVer = true
		c.ver = d.uvarint()
	}
	c.key = d.bytes()
	if c.op == opPut {
		c.val = d.bytes()
	}
	return c, d.end()
}

// decodeQuery decodes a get query and returns its key, which aliases b.
func decodeQuery(b []byte) ([]byte, error) {
	d := decoder{b: b}
	d.version()
	if op := d.byte(); d.err == nil && op != opGet {
		return nil, fmt.Errorf("%w: unknown query op %d", errMalformed, op)
	}
	key := d.bytes()
	return key, d.end()
}

// decodeRecord decodes a record.
func decodeRecord(b []byte) (recordView, error) {
	var r recordView
	d := decoder{b: b}
	d.version()
	r.ver = d.uvarint()
	r.key = d.bytes()
	r.val = d.bytes()
	return r, d.end()
}

// decodeMismatch decodes the payload of a resultMismatch: the stored version.
func decodeMismatch(b []byte) (uint64, error) {
	d := decoder{b: b}
	d.version()
	v := d.uvarint()
	return v, d.end()
}

// decoder reads fields from b, remembering the first error; once it has
// failed every read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
	d.b = nil
}

func (d *decoder) version() {
	if v := d.byte(); d.err == nil && v != codecVersion {
		d.err = fmt.Errorf("%w: unknown version %d", errMalformed, v)
		d.b = nil
	}
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintSize(v) {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length out of range")
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

func appendHeader(dst []byte, op byte, hasVer bool, ver uint64) []byte {
	if !hasVer {
		return append(dst, codecVersion, op, 0)
	}
	dst = append(dst, codecVersion, op, flagVer)
	return binary.AppendUvarint(dst, ver)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// lenSize is the encoded size of a length-prefixed field of n bytes.
func lenSize(n int) int { return uvarintSize(uint64(n)) + n }

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
