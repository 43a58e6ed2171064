package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// heyBinary builds the module's hey tool (`go tool hey`) and returns the
// path of its binary, so that each load starts hey without the go command.
func heyBinary(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "-n", "hey").Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n hey: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// runHey runs the hey binary with args and returns its parsed summary and
// its output.
func runHey(ctx context.Context, hey string, args ...string) (Result, string, error) {
	cmd := exec.CommandContext(ctx, hey, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, string(out), fmt.Errorf("hey %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	r, err := parseHey(string(out))
	if err != nil {
		return Result{}, string(out), fmt.Errorf("hey %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return r, string(out), nil
}

// Lines of hey's summary that parseHey reads.
var (
	heyTotal   = regexp.MustCompile(`^\s*Total:\s+([\d.]+) secs`)
	heyRPS     = regexp.MustCompile(`^\s*Requests/sec:\s+([\d.]+)`)
	heyLatency = regexp.MustCompile(`^\s*(\d+)%+ in ([\d.]+) secs`)
	heyCount   = regexp.MustCompile(`^\s*\[(\d+)\]\s+(.*)$`)
)

// parseHey reads hey's text summary: the total time, requests per second,
// the 50th and 99th latency percentiles, and the status code and error
// distributions.
func parseHey(out string) (Result, error) {
	r := Result{Codes: map[int]int{}, Errors: map[string]int{}}
	var section string
	var haveRPS bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Status code distribution:"), strings.HasPrefix(line, "Error distribution:"):
			section = line
			continue
		case line != "" && line[0] != ' ':
			section = ""
		}
		if m := heyTotal.FindStringSubmatch(line); m != nil && r.Elapsed == 0 {
			secs, _ := strconv.ParseFloat(m[1], 64)
			r.Elapsed = time.Duration(secs * float64(time.Second))
		}
		if m := heyRPS.FindStringSubmatch(line); m != nil {
			r.RPS, _ = strconv.ParseFloat(m[1], 64)
			haveRPS = true
		}
		if m := heyLatency.FindStringSubmatch(line); m != nil {
			secs, _ := strconv.ParseFloat(m[2], 64)
			d := time.Duration(secs * float64(time.Second))
			switch m[1] {
			case "50":
				r.P50 = d
			case "99":
				r.P99 = d
			}
		}
		m := heyCount.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		switch {
		case strings.HasPrefix(section, "Status"):
			code := n
			count, err := strconv.Atoi(strings.TrimSuffix(m[2], " responses"))
			if err != nil {
				return r, fmt.Errorf("status line %q: %w", line, err)
			}
			r.Codes[code] += count
			r.Requests += count
		case strings.HasPrefix(section, "Error"):
			r.Errors[m[2]] += n
			r.Requests += n
		}
	}
	if !haveRPS {
		return r, fmt.Errorf("no Requests/sec in hey's output")
	}
	// hey's Requests/sec counts every request, but its status code
	// distribution only the first heyMaxKept responses: past them, the
	// count comes from the rate and the time, which hey prints to four
	// decimals (a few requests either way).
	coded := 0
	for _, n := range r.Codes {
		coded += n
	}
	if coded >= heyMaxKept {
		if n := int(math.Round(r.RPS * r.Elapsed.Seconds())); n > r.Requests {
			r.Uncoded = n - r.Requests
			r.Requests = n
		}
	}
	return r, nil
}

// heyMaxKept is how many responses hey keeps the status code and latency
// of (maxRes in its requester package); it counts the rest in its rate.
const heyMaxKept = 1_000_000
