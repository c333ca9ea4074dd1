package config

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/demo"
)

// seedConfigs are the configs people really write: the package's example,
// the reference's full example (docs/configuration.md), the README's, the
// contract's example, the demo's, and the tests' smallest.
func seedConfigs(t testing.TB) map[string]string {
	t.Helper()
	seeds := map[string]string{"contract": contractExample, "minimal": minimal}
	example, err := os.ReadFile("../../packaging/canaryd.toml")
	if err != nil {
		t.Fatal(err)
	}
	seeds["example"] = string(example)
	for name, path := range map[string]string{"reference": "../../docs/configuration.md", "readme": "../../README.md"} {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, toml, ok := strings.Cut(string(doc), "```toml\n")
		toml, _, ok2 := strings.Cut(toml, "```")
		if !ok || !ok2 {
			t.Fatalf("%s: no ```toml block", path)
		}
		seeds[name] = toml
	}
	// The demo's directory as one file: its files in the order Load reads them.
	files := demo.Files("/run/user/1000/canaryd-demo/admin.sock")
	for _, name := range slices.Sorted(maps.Keys(files)) {
		seeds["demo"] += files[name] + "\n"
	}
	return seeds
}

// TestTheSeedConfigsLoad: the fuzzer starts from configs that are valid.
func TestTheSeedConfigsLoad(t *testing.T) {
	stubLookup(t, nil)
	for name, text := range seedConfigs(t) {
		if _, err := Load(writeDir(t, map[string]string{"canaryd.toml": text})); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// rejection is what every refusal of a one-file directory starts with: the
// file and, but for a key missing from the whole file, its line.
var rejection = regexp.MustCompile(`^canaryd\.toml(:[1-9][0-9]*)?: \S`)

// FuzzLoad feeds the loader any bytes as a config file: it never panics,
// and whatever it refuses, it refuses in one line naming the file, and the
// line where there is one.
func FuzzLoad(f *testing.F) {
	// No fuzzed name waits on DNS: names resolve to nothing.
	stubLookup(f, nil)
	for _, text := range seedConfigs(f) {
		f.Add([]byte(text))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			msg := err.Error()
			if !rejection.MatchString(msg) || strings.Contains(msg, "\n") {
				t.Fatalf("refusal %q: want one line starting with canaryd.toml:LINE:", msg)
			}
			return
		}
		if c.Proxy.Listen == "" || len(c.Upstreams) == 0 || len(c.Files) != 1 {
			t.Fatalf("accepted a config without proxy.listen or upstreams: %+v", c)
		}
	})
}
