package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zongzi-kv/zongzi/internal/kv1proc"
)

// profileLeadIn is how long a profile waits after its load starts, so
// that it leaves out the load's ramp-up.
const profileLeadIn = time.Second

// profiler takes a CPU profile of every kv1 node while a load runs
// (-profile), from the net/http/pprof address each node serves.
type profiler struct {
	dir     string
	nodes   []*kv1proc.Node
	seconds int // length of each profile
	client  *http.Client
}

// newProfiler returns a profiler writing to dir whose profiles cover a
// load of the given duration, less a second at each end; a load bounded
// by its request count (duration 0) gets 5 s profiles.
func newProfiler(dir string, nodes []*kv1proc.Node, duration time.Duration) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	seconds := 5
	if duration > 0 {
		seconds = max(1, int((duration-2*profileLeadIn)/time.Second))
	}
	return &profiler{dir: dir, nodes: nodes, seconds: seconds, client: &http.Client{}}, nil
}

// start begins the profiles of the load called name, after the lead-in,
// and returns a function that waits for them to be written to
// dir/<name>-node<N>.pb.gz and returns the first error.
func (p *profiler) start(ctx context.Context, name string) (wait func() error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, n := range p.nodes {
		path := filepath.Join(p.dir, fmt.Sprintf("%s-node%d.pb.gz", slug(name), n.N))
		wg.Go(func() {
			if err := p.take(ctx, "http://"+n.Pprof, path); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	return func() error {
		wg.Wait()
		return first
	}
}

// take writes one CPU profile from the pprof server at base to path.
func (p *profiler) take(ctx context.Context, base, path string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(profileLeadIn):
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, p.seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// slug turns a load's name into a file name: lower-case letters and
// digits, with a single dash for every run of anything else.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}
