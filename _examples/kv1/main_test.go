package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMainFlagErrors runs kv1's main in a child process with bad flags: it
// must exit with status 2 at once and say on stderr what is wrong.
func TestMainFlagErrors(t *testing.T) {
	if args, ok := os.LookupEnv("KV1_TEST_MAIN_ARGS"); ok {
		os.Args = append([]string{"kv1"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	// Addresses that bind nothing the test does not own: a kv1 that
	// accepted the flags would wait for peers until the child is killed.
	local := " -h 127.0.0.1:0 -r 127.0.0.1:0 -a 127.0.0.1:1 -p 127.0.0.1:1 -d " + t.TempDir()
	for _, tc := range []struct{ args, want string }{
		{"-s 0", "-s 0: want 1 to 99999 shards"},
		{"-s 100000", "-s 100000: want 1 to 99999 shards"},
		{"-t -1s", "-t -1s: want a positive request deadline"},
		{"-t 0s", "-t 0s: want a positive request deadline"},
		{"-s x", `invalid value "x" for flag -s`},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainFlagErrors$")
		cmd.Env = append(os.Environ(), "KV1_TEST_MAIN_ARGS="+tc.args+local)
		out, err := cmd.CombinedOutput()
		cancel()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("kv1 %s: exit status %d (err %v), output:\n%s\nwant status 2 and %q", tc.args, code, err, out, tc.want)
		}
	}
}
