package main

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCodecCommandRoundTrip(t *testing.T) {
	big := strings.Repeat("v", 300)
	for _, tc := range []struct {
		name   string
		op     byte
		key    string
		val    string
		hasVer bool
		ver    uint64
	}{
		{"create", opPut, "/k", "v", false, 0},
		{"create ver 0", opPut, "/k", "v", true, 0},
		{"cas", opPut, "/k", "v", true, 6},
		{"cas max", opPut, "/k", big, true, math.MaxUint64},
		{"empty val", opPut, "/k", "", false, 0},
		{"empty key", opPut, "", "", false, 0},
		{"delete", opDelete, "/k", "", false, 0},
		{"delete cas", opDelete, "/k", "", true, 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.op == opPut {
				b = appendPut(nil, tc.key, tc.val, tc.hasVer, tc.ver)
				if len(b) != putSize(tc.key, tc.val, tc.hasVer, tc.ver) {
					t.Errorf("putSize = %d, encoded %d", putSize(tc.key, tc.val, tc.hasVer, tc.ver), len(b))
				}
			} else {
				b = appendDelete(nil, tc.key, tc.hasVer, tc.ver)
				if len(b) != deleteSize(tc.key, tc.hasVer, tc.ver) {
					t.Errorf("deleteSize = %d, encoded %d", deleteSize(tc.key, tc.hasVer, tc.ver), len(b))
				}
			}
			if b[0] != codecVersion {
				t.Fatalf("first byte %d, want version %d", b[0], codecVersion)
			}
			c, err := decodeCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.op != tc.op || c.hasVer != tc.hasVer || c.ver != tc.ver || string(c.key) != tc.key || string(c.val) != tc.val {
				t.Fatalf("decoded %+v, want %+v", c, tc)
			}
			// Every strict prefix is truncated, every extension has trailing bytes.
			for i := range len(b) {
				if _, err := decodeCommand(b[:i]); !errors.Is(err, errMalformed) {
					t.Fatalf("prefix %d: err = %v, want errMalformed", i, err)
				}
			}
			if _, err := decodeCommand(append(b, 0)); !errors.Is(err, errMalformed) {
				t.Fatalf("trailing byte: err = %v", err)
			}
		})
	}
}

func TestCodecCommandMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             {},
		"version":           {2, opPut, 0, 0, 0},
		"op":                {codecVersion, 9, 0, 0, 0},
		"get as command":    {codecVersion, opGet, 0, 0},
		"flags":             {codecVersion, opPut, 2, 0, 0},
		"key length":        {codecVersion, opPut, 0, 5, 'a'},
		"huge length":       {codecVersion, opPut, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"uvarint overflow":  {codecVersion, opPut, flagVer, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0},
		"non-minimal":       {codecVersion, opPut, flagVer, 0x80, 0x00, 0, 0},
		"delete with val":   {codecVersion, opDelete, 0, 1, 'k', 1, 'v'},
		"put without val":   {codecVersion, opPut, 0, 1, 'k'},
		"unterminated uvar": {codecVersion, opPut, flagVer, 0x80},
	} {
		if _, err := decodeCommand(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
}

func TestCodecQueryRoundTrip(t *testing.T) {
	for _, key := range []string{"", "/k", strings.Repeat("k", 1024)} {
		b := appendGet(nil, key)
		if len(b) != getSize(key) {
			t.Errorf("getSize = %d, encoded %d", getSize(key), len(b))
		}
		k, err := decodeQuery(b)
		if err != nil || string(k) != key {
			t.Fatalf("decodeQuery = %q, %v", k, err)
		}
		if _, err := decodeQuery(append(b, 0)); !errors.Is(err, errMalformed) {
			t.Fatalf("trailing byte: err = %v", err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":      {},
		"version":    {0, opGet, 0},
		"op":         {codecVersion, opPut, 0},
		"truncated":  {codecVersion, opGet},
		"key length": {codecVersion, opGet, 2, 'k'},
	} {
		if _, err := decodeQuery(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
}

func TestCodecRecordAndMismatch(t *testing.T) {
	key, val := []byte("/testkey"), []byte("testvalue")
	b := appendRecord(nil, 6, key, val)
	if len(b) != recordSize(6, key, val) {
		t.Errorf("recordSize = %d, encoded %d", recordSize(6, key, val), len(b))
	}
	rv, err := decodeRecord(b)
	if err != nil || rv.ver != 6 || !bytes.Equal(rv.key, key) || !bytes.Equal(rv.val, val) {
		t.Fatalf("decodeRecord = %+v, %v", rv, err)
	}
	for i := range len(b) {
		if _, err := decodeRecord(b[:i]); err == nil {
			t.Fatalf("prefix %d decoded", i)
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, math.MaxUint64} {
		got, err := decodeMismatch(appendMismatch(nil, v))
		if err != nil || got != v {
			t.Fatalf("decodeMismatch(%d) = %d, %v", v, got, err)
		}
	}
	if _, err := decodeMismatch(nil); err == nil {
		t.Fatal("empty mismatch decoded")
	}
}

// TestCodecAppendsToBuffer checks that encoders append to the caller's
// buffer without allocating when it has room.
func TestCodecAppendsToBuffer(t *testing.T) {
	buf := make([]byte, 3, 256)
	copy(buf, "abc")
	b := appendPut(buf, "/k", "v", true, 7)
	if string(b[:3]) != "abc" || &b[0] != &buf[0] {
		t.Fatal("appendPut did not append to the caller's buffer")
	}
	allocs := testing.AllocsPerRun(100, func() {
		b = appendPut(buf[:0], "/key", "value", true, 12345)
		b = appendDelete(b[:0], "/key", true, 12345)
		b = appendGet(b[:0], "/key")
		_, _ = decodeQuery(b)
	})
	if allocs != 0 {
		t.Fatalf("encode/decode allocates %v times", allocs)
	}
}
