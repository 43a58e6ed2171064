package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ceilingBody is what the ceiling server answers: 19 bytes, as in the
// reference measurements.
const ceilingBody = "ceiling: 19 bytes!\n"

// Servers of a ceiling.
const (
	// netHTTP is the ceiling the ratios are to: the trivial
	// net/http server.
	netHTTP = "net/http"
	// fastHTTP is the same server on kv1's HTTP library, for comparison.
	fastHTTP = "fasthttp"
)

// serveCeiling serves ceilingBody with server (netHTTP or fastHTTP) on the
// listener inherited as file descriptor 3 until the process is killed. It
// is kv1bench's -ceiling mode.
func serveCeiling(server string) error {
	ln, err := net.FileListener(os.NewFile(3, "ceiling"))
	if err != nil {
		return fmt.Errorf("ceiling: listener: %w", err)
	}
	switch server {
	case netHTTP:
		return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, ceilingBody)
		}))
	case fastHTTP:
		return fasthttp.Serve(ln, func(rc *fasthttp.RequestCtx) {
			rc.SetContentType("text/plain; charset=utf-8")
			rc.WriteString(ceilingBody)
		})
	}
	return fmt.Errorf("ceiling: unknown server %q", server)
}

// ceiling is a trivial HTTP server in a process of its own, so its CPU is
// accounted apart from the load generator's.
type ceiling struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startCeiling re-executes kv1bench in -ceiling mode with server on a
// loopback port and waits until it answers.
func startCeiling(ctx context.Context, server string) (*ceiling, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ceiling %s: %w", server, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ceiling %s: %w", server, err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("ceiling %s: %w", server, err)
	}
	defer f.Close()
	cmd := exec.Command(self, "-ceiling", server)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ceiling %s: start: %w", server, err)
	}
	c := &ceiling{URL: "http://" + ln.Addr().String() + "/", cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(c.URL)
		if err == nil {
			resp.Body.Close()
			return c, nil
		}
		select {
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		case <-c.done:
			return nil, fmt.Errorf("ceiling server exited: %v", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PID returns the ceiling server's process ID.
func (c *ceiling) PID() int { return c.cmd.Process.Pid }

// Stop kills the ceiling server and waits for it to exit.
func (c *ceiling) Stop() {
	_ = c.cmd.Process.Kill()
	<-c.done
}
