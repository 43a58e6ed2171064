package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestFlagDefaultsMatchMakefile: kv1's flag defaults are what the example's
// Makefile gives node 1 (DESIGN §7), so that `kv1` with no flags is
// `make test-node-1`, data dir included.
func TestFlagDefaultsMatchMakefile(t *testing.T) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	assign := regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*[?:]?=\s*(.*)$`)
	var recipe []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if m := assign.FindStringSubmatch(lines[i]); m != nil {
			vars[m[1]] = strings.TrimSpace(m[2])
		}
		if strings.HasPrefix(lines[i], "$(NODES): test-node-%:") {
			for i++; i < len(lines) && strings.HasPrefix(lines[i], "\t"); i++ {
				recipe = append(recipe, strings.TrimSuffix(strings.TrimSpace(lines[i]), "\\"))
			}
		}
	}
	if recipe == nil {
		t.Fatal("Makefile: no recipe for $(NODES): test-node-%")
	}
	// Node 1's command line, expanded as make would: $(or $(TMPDIR),/tmp)
	// is os.TempDir(), which reads TMPDIR likewise.
	cmd := strings.ReplaceAll(strings.Join(recipe, " "), "$*", "1")
	for k, v := range vars {
		vars[k] = strings.ReplaceAll(v, "$(or $(TMPDIR),/tmp)", os.TempDir())
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z0-9_-]+)\)`)
	for range 10 {
		cmd = ref.ReplaceAllStringFunc(cmd, func(s string) string {
			if v, ok := vars[s[2:len(s)-1]]; ok {
				return v
			}
			return s
		})
	}
	if strings.Contains(cmd, "$") {
		t.Fatalf("Makefile: node 1's command %q does not expand", cmd)
	}
	fields := strings.Fields(cmd)
	fromMake, err := parseFlags(fields[1:]) // without the binary
	if err != nil {
		t.Fatalf("flags of make test-node-1 %q: %v", fields[1:], err)
	}
	defaults, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if defaults != fromMake {
		t.Errorf("kv1's defaults\n%+v\ndiffer from make test-node-1's flags (%s)\n%+v", defaults, cmd, fromMake)
	}
}
