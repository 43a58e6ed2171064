package kv1proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file reads what a process costs from Linux's /proc: the benchmark
// charges server CPU time to requests and reports memory and disk use.

// clockTicks returns the kernel's clock ticks per second (getconf CLK_TCK),
// in which /proc/PID/stat counts CPU time; 100 when getconf fails.
var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
})

// ErrExited says that a process whose cost was asked for has exited: it
// is gone, or a zombie not yet waited for.
var ErrExited = errors.New("kv1proc: the process has exited")

// ProcessCPU returns the user plus system CPU time process pid has used,
// from /proc/PID/stat, or ErrExited once it has exited.
func ProcessCPU(pid int) (time.Duration, error) {
	f, err := statFields(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (f[0] == "Z" || f[0] == "X")) {
		err = ErrExited
	}
	if err != nil {
		return 0, fmt.Errorf("kv1proc: cpu of %d: %w", pid, err)
	}
	// utime (field 14) and stime (15).
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("kv1proc: cpu of %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks()), nil
}

// statFields returns the fields of a /proc stat file from field 3 (the
// state) on. The command name before them (field 2) is in parentheses and
// may hold spaces.
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed %s: %q", path, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("malformed %s: %q", path, b)
	}
	return f, nil
}

// stopped says whether every thread of process pid is stopped by a
// signal (state T in /proc/PID/task/TID/stat).
func stopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		f, err := statFields(filepath.Join(dir, t.Name(), "stat"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return false, err
		}
		if f[0] != "T" {
			return false, nil
		}
	}
	return true, nil
}

// ProcessRSS returns the resident set size (VmRSS) of process pid in
// bytes, from /proc/PID/status.
func ProcessRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("kv1proc: rss of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("kv1proc: rss of %d: %q: %w", pid, line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("kv1proc: rss of %d: no VmRSS in status", pid)
}

// DiskUsage returns the disk space the files under dir occupy, in bytes:
// allocated blocks, as du counts them (directories included), and the
// regular files' sizes, which leave out space preallocated for logs and
// the directories.
func DiskUsage(dir string) (allocated, size int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			var info fs.FileInfo
			if info, err = d.Info(); err == nil {
				allocated += blocks(info)
				if info.Mode().IsRegular() {
					size += info.Size()
				}
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walk: a compacted or rolled file
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("kv1proc: disk usage of %s: %w", dir, err)
	}
	return allocated, size, nil
}

// blocks returns the disk space of a file: its blocks where the system
// says, else its size.
func blocks(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
