package main

import (
	"slices"
	"strings"
	"testing"
)

func TestByNode(t *testing.T) {
	for _, tc := range []struct {
		row  Row
		want string
	}{
		{Row{Node: 2, NodeCPUUS: []float64{1.23, 14, 0.96}}, "1.2 14.0* 1.0"},
		{Row{Node: 1, NodeCPUUS: []float64{30.04, 2.5, 2.5}}, "30.0* 2.5 2.5"},
		{Row{CPUUS: 16.5}, ""}, // a ceiling: no nodes
	} {
		if got := byNode(tc.row); got != tc.want {
			t.Errorf("byNode(%+v) = %q, want %q", tc.row, got, tc.want)
		}
	}
}

// A row whose requests failed (5xx, no answer, or a status code the load
// does not expect) misses its target even when it was fast: req/s and
// latency count every answer.
func TestRowCheckFailures(t *testing.T) {
	target := Target{MinRatio: 0.5, MaxCPUUS: 50}
	for _, tc := range []struct {
		row  Row
		miss bool
	}{
		{Row{Ratio: 1, CPUUS: 10, Codes: map[string]int{"200": 90, "409": 10}, Accepted: []string{"409"}}, false},
		{Row{Ratio: 1, CPUUS: 10, Codes: map[string]int{"200": 1, "409": 99}, Accepted: []string{"409"}}, false},
		{Row{Ratio: 1, CPUUS: 10, Codes: map[string]int{"200": 90, "409": 10}}, true}, // a CAS chain broken
		{Row{Ratio: 3, CPUUS: 2, Codes: map[string]int{"404": 100}}, true},            // a GET of a missing key
		{Row{Ratio: 3, CPUUS: 2, Codes: map[string]int{"400": 100}}, true},
		{Row{Ratio: 3, CPUUS: 2, Codes: map[string]int{"503": 100}}, true},
		{Row{Ratio: 1, CPUUS: 10, Codes: map[string]int{"200": 99}, Errors: 1}, true},
		{Row{Ratio: 1, CPUUS: 10, Codes: map[string]int{"200": 99, "202": 1}}, false},
	} {
		tc.row.Target = target
		tc.row.check()
		if got := slices.Contains(tc.row.Missed, "failures"); got != tc.miss {
			t.Errorf("%+v: missed %v, want failures: %v", tc.row.Codes, tc.row.Missed, tc.miss)
		}
	}
}

// The table says what the JSON says: a row without a target (a ceiling)
// shows no verdict, unless its requests failed.
func TestWriteTableVerdicts(t *testing.T) {
	rep := Report{Rows: []Row{
		{Name: "ceiling-ok", Codes: map[string]int{"200": 10}},
		{Name: "ceiling-failed", Codes: map[string]int{"200": 5, "503": 5}},
		{Name: "get-ok", Codes: map[string]int{"200": 10}, Ratio: 1, Target: Target{MinRatio: 0.8}},
	}}
	for i := range rep.Rows {
		rep.Rows[i].check()
	}
	var b strings.Builder
	rep.WriteTable(&b)
	// The target column writes "-" for none; the verdict comes after it.
	for name, want := range map[string]string{"ceiling-ok": "-", "ceiling-failed": "MISS failures", "get-ok": "ok"} {
		i := strings.Index(b.String(), name)
		if i < 0 {
			t.Fatalf("no row %s in\n%s", name, b.String())
		}
		line, _, _ := strings.Cut(b.String()[i:], "\n")
		if !strings.HasSuffix(strings.TrimSpace(line), want) {
			t.Errorf("row %s: %q, want it to end in %q", name, line, want)
		}
	}
}

// TestReportCheck holds startup, RSS and the data dir to the issue's
// targets; the data dir only after a million writes.
func TestReportCheck(t *testing.T) {
	ok := []Usage{{Node: 1, RSSMB: 64, DataMB: 122}, {Node: 2, RSSMB: 57, DataMB: 122}}
	big := []Usage{{Node: 1, RSSMB: 64, DataMB: 122}, {Node: 2, RSSMB: 151, DataMB: 201}}
	for _, tc := range []struct {
		rep  Report
		want []string
	}{
		{Report{StartupMS: 687, Writes: 1_000_000, Nodes: ok}, nil},
		{Report{StartupMS: 3001, Writes: 1_000_000, Nodes: big}, []string{"startup", "rss", "data"}},
		{Report{StartupMS: 687, Writes: 999_999, Nodes: big}, []string{"rss"}},
	} {
		tc.rep.check()
		if !slices.Equal(tc.rep.Missed, tc.want) {
			t.Errorf("startup %v ms, %d writes, nodes %v: missed %v, want %v", tc.rep.StartupMS, tc.rep.Writes, tc.rep.Nodes, tc.rep.Missed, tc.want)
		}
	}
}

// TestAnsweredWrites: the writes that count toward the data dir's million
// are those kv1 answered, applied (2xx) or rejected on their version
// (409); one that timed out (503) or got no answer may not be in the log.
func TestAnsweredWrites(t *testing.T) {
	if got := answeredWrites(map[string]int{"200": 1, "409": 329537, "503": 12}); got != 329538 {
		t.Errorf("answered writes = %d, want 329538", got)
	}
}
