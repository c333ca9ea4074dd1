package docgen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated docs (make docs) instead of comparing them")

// Root is the repository's top directory, where docs/ is: the first
// directory up from the test's own (its package's) with a go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("docgen: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Check fails t when the file at path (relative to the repository) is not
// want, saying how to regenerate it; with -update it writes want there.
func Check(t testing.TB, path string, want []byte) {
	t.Helper()
	full := filepath.Join(Root(t), path)
	if *update {
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(full)
	if err != nil {
		t.Fatalf("%s: %v: generate it with make docs", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale (it differs from what its source makes, first at line %d): regenerate it with make docs", path, firstDiff(got, want))
	}
}

// firstDiff is the first line where a and b differ, from 1.
func firstDiff(a, b []byte) int {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// RequireMan is the environment variable that makes a missing man or groff
// fail Renders instead of skipping it.
const RequireMan = "CANARYPI_REQUIRE_MAN"

// Renders fails t when the manual page at path does not render without a
// warning, as lintian checks it (man --warnings, which runs groff -ww), or
// when groff -man -ww finds something to say. Without man and groff it
// skips, unless $CANARYPI_REQUIRE_MAN is 1.
func Renders(t *testing.T, path string) {
	t.Helper()
	var ran bool
	for _, tool := range []struct {
		name string
		args []string
	}{
		{"groff", []string{"-man", "-Tutf8", "-ww", "-z", path}},
		{"man", []string{"--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path}},
	} {
		bin, err := exec.LookPath(tool.name)
		if err != nil {
			continue
		}
		ran = true
		cmd := exec.Command(bin, tool.args...)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MAN_KEEP_STDERR=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("%s %s: %v\n%s", tool.name, strings.Join(tool.args, " "), err, stderr.String())
		}
	}
	if !ran {
		if os.Getenv(RequireMan) == "1" {
			t.Fatalf("neither man nor groff is installed, and $%s=1 (apt-get install man-db groff-base)", RequireMan)
		}
		t.Skip("neither man nor groff is installed (apt-get install man-db groff-base)")
	}
}
