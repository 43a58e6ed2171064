package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zongzi-kv/zongzi/internal/freeport"
	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// mainArgsEnv carries the flags of kv1's main run in a child process.
const mainArgsEnv = "KV1_TEST_MAIN_ARGS"

// TestMainFlagErrors runs kv1's main in a child process with bad flags: it
// must exit with status 2 at once and say on stderr what is wrong.
func TestMainFlagErrors(t *testing.T) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = append([]string{"kv1"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	for _, tc := range []struct{ args, want string }{
		{"-s 0", "-s 0: want 1 to 99999 shards"},
		{"-s 100000", "-s 100000: want 1 to 99999 shards"},
		{"-t -1s", "-t -1s: want a positive request deadline"},
		{"-t 0s", "-t 0s: want a positive request deadline"},
		{"-s x", `invalid value "x" for flag -s`},
		{"-tls-cert c.pem", "-tls-cert without -tls-key, -tls-ca: give -tls-cert, -tls-key and -tls-ca together, or none"},
		{"-tls-cert c.pem -tls-key k.pem", "-tls-cert, -tls-key without -tls-ca: give"},
		{"-tls-ca ca.pem -tls-name kv1.test", "-tls-ca without -tls-cert, -tls-key: give"},
		{"-tls-name kv1.test", "-tls-name without -tls-cert, -tls-key and -tls-ca"},
	} {
		if code, out := runMain(t, tc.args); code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("kv1 %s: exit status %d, output:\n%s\nwant status 2 and %q", tc.args, code, out, tc.want)
		}
	}
}

// TestMainTLSFileErrors runs kv1's main in a child process with TLS files
// that it cannot use: it must exit with status 1 at start, naming the file.
func TestMainTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "cluster")
	cert, key, caFile := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")
	ca.WriteCertFiles(t, cert, key)
	ca.WriteCAFile(t, caFile)
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct{ args, want string }{
		{"-tls-cert " + missing + " -tls-key " + key + " -tls-ca " + caFile, "-tls-cert: open " + missing + ": no such file"},
		{"-tls-cert " + cert + " -tls-key " + key + " -tls-ca " + missing, "-tls-ca: open " + missing + ": no such file"},
		{"-tls-cert " + cert + " -tls-key " + key + " -tls-ca " + key, "-tls-ca " + key + ": no PEM certificate in it"},
	} {
		if code, out := runMain(t, tc.args); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("kv1 %s: exit status %d, output:\n%s\nwant status 1 and %q", tc.args, code, out, tc.want)
		}
	}
}

// runMain runs kv1's main in a child process (TestMainFlagErrors) with
// args, and returns its exit status and output. Addresses that bind nothing
// the test does not own come first: with -r 127.0.0.1:0, which Dragonboat
// refuses, a kv1 that accepted the flags exits with status 1 once its agent
// is made (waitingNode gives addresses on which it waits for its peers).
func runMain(t *testing.T, args string) (int, string) {
	t.Helper()
	local := "-h 127.0.0.1:0 -r 127.0.0.1:0 -a 127.0.0.1:1 -p 127.0.0.1:1 -d " + t.TempDir() + " "
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainFlagErrors$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+local+args)
	out, err := cmd.CombinedOutput()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Logf("kv1 %s: %v", args, err)
	}
	return code, string(out)
}

// TestMainHTTPListenError: a node whose HTTP address (-h) cannot be bound
// exits at start with status 1 and says so, before it waits for its peers
// (runMain's have none): it must not join the cluster to leave it at once.
func TestMainHTTPListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	want := "http: listen on -h " + addr
	if code, out := runMain(t, waitingNode(t)+" -h "+addr); code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "address already in use") {
		t.Errorf("kv1 -h %s (in use): exit status %d, output:\n%s\nwant status 1 and %q", addr, code, out, want)
	}
}

// TestMainHTTPServesIPv6: -h takes an IPv6 address, as net/http does: while
// the node waits for its peers, it answers 503 Starting there.
func TestMainHTTPServesIPv6(t *testing.T) {
	if os.Getenv(mainArgsEnv) != "" {
		t.Skip("in kv1's child process")
	}
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	startMain(t, waitingNode(t)+" -h "+addr+" -d "+t.TempDir(), addr)
}

// TestMainSecondInterrupt: a node whose shutdown is slow (here a client
// holds a request half sent, which the HTTP server waits for) ends at once
// when interrupted a second time, as a user who presses Ctrl-C twice
// expects.
func TestMainSecondInterrupt(t *testing.T) {
	if os.Getenv(mainArgsEnv) != "" {
		t.Skip("in kv1's child process")
	}
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	cmd, exited := startMain(t, waitingNode(t)+" -h "+addrs[0]+" -d "+t.TempDir(), addrs[0])
	conn, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: kv1\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server reads the request's start
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("kv1 exited (%v) at the first interrupt: its shutdown was not slow, the test shows nothing", err)
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Errorf("kv1 ended with %v at the second interrupt, want ended by SIGINT", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("kv1 still shutting down 3 s after a second interrupt")
	}
}

// startMain runs kv1's main in a child process with args, and waits until
// it answers 503 Starting on /healthz at addr: args must make a node that
// waits for its peers. The child is killed when the test ends; exited
// gives its end (put it back when read).
func startMain(t *testing.T, args, addr string) (cmd *exec.Cmd, exited chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainFlagErrors$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		exited <- <-exited
	})
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(string(b), "Starting") {
				t.Fatalf("GET /healthz on %s: %d %q, want 503 Starting", addr, resp.StatusCode, b)
			}
			return cmd, exited
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("kv1 -h %s exited (%v) before serving HTTP:\n%s", addr, err, out.String())
		case <-ctx.Done():
			t.Fatalf("kv1 -h %s served no HTTP in time (%v):\n%s", addr, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitingNode returns the flags of a node that starts, binding free raft
// and API ports, and then waits for its one peer, which is never there.
func waitingNode(t *testing.T) string {
	t.Helper()
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	return "-r " + addrs[0] + " -a " + addrs[1] + " -p 127.0.0.1:1"
}
