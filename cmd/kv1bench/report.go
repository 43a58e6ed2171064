package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one benchmark run: what bench/results.json holds.
type Report struct {
	Time      time.Time `json:"time"`
	Machine   Machine   `json:"machine"`
	Settings  Settings  `json:"settings"`
	StartupMS float64   `json:"startupMs"` // processes started → first successful PUT
	Platform  Platform  `json:"platform"`
	// CeilingRPS is the mean of the ceiling's runs, first and last: the
	// denominator of every row's ratio.
	CeilingRPS float64 `json:"ceilingRps"`
	Rows       []Row   `json:"rows"`
	// Writes counts the PUTs of the run that kv1 answered 2xx or 409:
	// raft entries applied, or rejected by the state machine on their
	// version. A PUT without an answer, or answered 5xx, may or may not
	// have been written, and is not counted.
	Writes int     `json:"writes"`
	Nodes  []Usage `json:"nodes"` // after the whole benchmark
	// LoadAvg is the machine's 1-minute load average before the cluster
	// started and after the last load: other work on the machine skews
	// every figure.
	LoadAvg [2]float64 `json:"loadAvg"`
	// Missed are the targets outside the rows not met: "startup",
	// "rss", and "data" (checked only after dataTargetWrites writes).
	Missed []string `json:"missed,omitempty"`
}

// The targets outside the rows.
const (
	maxStartupMS     = 3000 // processes started → first successful PUT
	maxRSSMB         = 150  // per node, after the whole benchmark
	maxDataMB        = 200  // per node on disk (du), after dataTargetWrites
	dataTargetWrites = 1_000_000
)

// check fills r.Missed with the targets on startup, memory and disk that
// r does not meet. The data dir's target holds after a million writes, so
// a run with fewer is not held to it.
func (r *Report) check() {
	if r.StartupMS > maxStartupMS {
		r.Missed = append(r.Missed, "startup")
	}
	var rss, data float64
	for _, u := range r.Nodes {
		rss, data = max(rss, u.RSSMB), max(data, u.DataMB)
	}
	if rss > maxRSSMB {
		r.Missed = append(r.Missed, "rss")
	}
	if r.Writes >= dataTargetWrites && data > maxDataMB {
		r.Missed = append(r.Missed, "data")
	}
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpuModel"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
	Commit string `json:"commit"`
}

// Settings are the load settings of the run.
type Settings struct {
	Concurrency int    `json:"concurrency"`
	Requests    int    `json:"requests,omitempty"` // per row; 0 when rows run for Duration
	Duration    string `json:"duration,omitempty"`
	Shards      int    `json:"shards"`
	Fill        int    `json:"fill,omitempty"` // writes in all before memory and disk are measured
	// Profiled says the nodes ran a CPU profiler during their loads
	// (-profile): its sampling is in those rows' CPU per request.
	Profiled bool `json:"profiled,omitempty"`
}

// Row is one load: its throughput next to the ceiling's, its latency, its
// answers, and the CPU the servers spent per request.
type Row struct {
	Name     string         `json:"name"`
	Requests int            `json:"requests"`
	Seconds  float64        `json:"seconds"`
	RPS      float64        `json:"rps"`
	Ratio    float64        `json:"ratio"` // RPS over the ceiling's
	P50MS    float64        `json:"p50Ms"`
	P99MS    float64        `json:"p99Ms"`
	Codes    map[string]int `json:"codes"`
	// Uncoded counts the responses whose status code hey did not keep
	// (past its first million); p50 and p99 leave them out too.
	Uncoded int     `json:"uncodedResponses,omitempty"`
	Errors  int     `json:"errors"`
	CPUUS   float64 `json:"cpuUsPerRequest"` // servers' user+system CPU
	// Node is the kv1 node the requests went to, and NodeCPUUS each
	// node's part of CPUUS, node 1 first; both are empty for a ceiling.
	Node      int       `json:"node,omitempty"`
	NodeCPUUS []float64 `json:"cpuUsPerRequestByNode,omitempty"`
	// Elections counts the terms the kv1 cluster's shards went through
	// during the load; with none, leaders stayed where they were.
	Elections int    `json:"elections"`
	Target    Target `json:"target"`
	// Accepted are the status codes other than 2xx that the load's
	// requests are meant to get: 409 for a PUT that creates a key that
	// exists. Any other answer is a failure.
	Accepted []string `json:"acceptedCodes,omitempty"`
	// Missed are the targets not met, and "failures": no answer, or a
	// status code neither 2xx nor accepted.
	Missed []string `json:"missed,omitempty"`
}

// Target is what a row should reach; zero fields set no target.
type Target struct {
	MinRatio float64 `json:"minRatio,omitempty"`
	MaxP99MS float64 `json:"maxP99Ms,omitempty"`
	MaxCPUUS float64 `json:"maxCpuUs,omitempty"`
}

// String returns the target in the table's notation.
func (t Target) String() string {
	var s []string
	if t.MinRatio > 0 {
		s = append(s, fmt.Sprintf("≥%.2f×", t.MinRatio))
	}
	if t.MaxP99MS > 0 {
		s = append(s, fmt.Sprintf("p99≤%gms", t.MaxP99MS))
	}
	if t.MaxCPUUS > 0 {
		s = append(s, fmt.Sprintf("≤%gµs", t.MaxCPUUS))
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " ")
}

// check fills r.Missed with the targets r does not meet.
func (r *Row) check() {
	t := r.Target
	if t.MinRatio > 0 && r.Ratio < t.MinRatio {
		r.Missed = append(r.Missed, "ratio")
	}
	if t.MaxP99MS > 0 && r.P99MS > t.MaxP99MS {
		r.Missed = append(r.Missed, "p99")
	}
	if t.MaxCPUUS > 0 && r.CPUUS > t.MaxCPUUS {
		r.Missed = append(r.Missed, "cpu")
	}
	// Throughput and latency count every answer: a node that fails fast,
	// or answers 404 or 400 to what it should serve, would meet them.
	failed := r.Errors
	for c, n := range r.Codes {
		if !(len(c) == 3 && c[0] == '2') && !slices.Contains(r.Accepted, c) {
			failed += n
		}
	}
	if failed > 0 {
		r.Missed = append(r.Missed, "failures")
	}
}

// answeredWrites counts the PUTs among codes (status code → responses)
// that reached the state machine: those answered 2xx or 409.
func answeredWrites(codes map[string]int) int {
	n := 0
	for c, k := range codes {
		if (len(c) == 3 && c[0] == '2') || c == "409" {
			n += k
		}
	}
	return n
}

// Usage is one node's memory and disk use.
type Usage struct {
	Node   int     `json:"node"`
	RSSMB  float64 `json:"rssMb"`
	DataMB float64 `json:"dataMb"` // allocated on disk, as du counts
	// DataSizeMB is the size of the files, without the space
	// preallocated for write-ahead logs.
	DataSizeMB float64 `json:"dataSizeMb"`
}

// loadAvg returns the machine's 1-minute load average, 0 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// machine describes this machine and checkout.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			m.Commit += "-dirty"
		}
	}
	return m
}

// WriteTable writes the report as one aligned table.
func (r *Report) WriteTable(w io.Writer) {
	m := r.Machine
	load := r.Settings.Duration + " per load"
	if r.Settings.Requests > 0 {
		load = fmt.Sprintf("%d requests per load", r.Settings.Requests)
	}
	fmt.Fprintf(w, "kv1bench %s: %d CPUs (%s), %s, linux %s, commit %s\n", r.Time.Format(time.DateTime), m.CPUs, m.Model, m.Go, m.Kernel, m.Commit)
	if r.Settings.Profiled {
		load += ", nodes profiled during their loads"
	}
	fmt.Fprintf(w, "3 kv1 nodes, %d shards, -c %d, %s; load average %.2f before, %.2f after\n",
		r.Settings.Shards, r.Settings.Concurrency, load, r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "startup (processes start → first PUT 200): %.2f s (target ≤ %d s)\n", r.StartupMS/1000, maxStartupMS/1000)
	p := r.Platform
	fmt.Fprintf(w, "fdatasync after a 4 KiB append: %.0f µs, %.0f µs CPU; after a 4 KiB overwrite: %.0f µs, %.0f µs CPU\n",
		p.FsyncUS, p.FsyncCPUUS, p.OverwriteSyncUS, p.OverwriteSyncCPUUS)
	fmt.Fprintf(w, "idle cluster: %.1f%% of a core", p.IdleCPUPct)
	if len(p.IdleNodeCPUPct) > 0 {
		fmt.Fprintf(w, " (by node: %s)", strings.Join(oneDecimal(p.IdleNodeCPUPct), " "))
	}
	if r.CeilingRPS > 0 {
		fmt.Fprintf(w, ", %.1f µs per request at the ceiling's rate", p.IdleCPUPct/100*1e6/r.CeilingRPS)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "load\treq/s\t×ceil\tp50 ms\tp99 ms\tCPU µs/req\tby node\tcodes\telections\ttarget\t\t")
	for _, row := range r.Rows {
		// A row without a target has no "ok", but its failures show: a
		// ceiling that failed is a wrong denominator for every ratio.
		verdict := "ok"
		if row.Target == (Target{}) {
			verdict = ""
		}
		if len(row.Missed) > 0 {
			verdict = "MISS " + strings.Join(row.Missed, ",")
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%d\t%s\t%s\t\n", row.Name, row.RPS, row.Ratio,
			row.P50MS, row.P99MS, row.CPUUS, byNode(row), codes(row), row.Elections, row.Target, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nafter %d writes (targets: RSS ≤ %d MB; data ≤ %d MB on disk after %d writes):\n", r.Writes, maxRSSMB, maxDataMB, dataTargetWrites)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tRSS MB\tdata MB (du)\tdata MB (file sizes)\t")
	for _, u := range r.Nodes {
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t\n", u.Node, u.RSSMB, u.DataMB, u.DataSizeMB)
	}
	tw.Flush()
	switch {
	case len(r.Missed) > 0:
		fmt.Fprintf(w, "MISS %s\n", strings.Join(r.Missed, ","))
	case r.Writes < dataTargetWrites:
		fmt.Fprintf(w, "startup and RSS ok; data not checked (fewer than %d writes)\n", dataTargetWrites)
	default:
		fmt.Fprintln(w, "startup, RSS and data ok")
	}
}

// oneDecimal writes each of vs with one decimal.
func oneDecimal(vs []float64) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%.1f", v)
	}
	return s
}

// byNode writes each node's part of a row's CPU per request, node 1 first,
// with a star on the node the requests went to: "1.2 14.0* 1.1".
func byNode(r Row) string {
	s := oneDecimal(r.NodeCPUUS)
	if r.Node >= 1 && r.Node <= len(s) {
		s[r.Node-1] += "*"
	}
	return strings.Join(s, " ")
}

// codes writes a row's status code counts, then its errors, compactly.
func codes(r Row) string {
	var s []string
	for _, c := range slices.Sorted(maps.Keys(r.Codes)) {
		s = append(s, fmt.Sprintf("%s:%d", c, r.Codes[c]))
	}
	if r.Uncoded > 0 {
		s = append(s, fmt.Sprintf("?:%d", r.Uncoded))
	}
	if r.Errors > 0 {
		s = append(s, fmt.Sprintf("err:%d", r.Errors))
	}
	return strings.Join(s, " ")
}

// WriteJSON writes the report as indented JSON to path, creating its
// directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
