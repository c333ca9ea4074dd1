package demo

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlaceIsTheSameEveryRun(t *testing.T) {
	run := testkit.SocketDir(t)
	t.Setenv("XDG_RUNTIME_DIR", run)
	for range 2 {
		if got, err := Place(); err != nil || got != filepath.Join(run, "canaryd-demo") {
			t.Fatalf("with XDG_RUNTIME_DIR: Place() = %q, %v; want %s/canaryd-demo", got, err, run)
		}
	}

	tmp := testkit.SocketDir(t)
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", tmp)
	want := filepath.Join(tmp, "canaryd-demo-"+strconv.Itoa(os.Getuid()))
	for range 2 {
		got, err := Place()
		if err != nil || got != want {
			t.Fatalf("without XDG_RUNTIME_DIR: Place() = %q, %v; want %s", got, err, want)
		}
		if fi, err := os.Stat(got); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, %v; want a directory of mode 0700", got, fi.Mode(), err)
		}
	}
	// Someone else's, or open to others: their socket could be there.
	if err := os.Chmod(want, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Place(); err == nil || !strings.Contains(err.Error(), "not a directory of yours alone") {
		t.Errorf("Place() with %s open to all: %v, want a refusal", want, err)
	}
}

func TestTemporaryFilesGoAtClose(t *testing.T) {
	place := testkit.SocketDir(t)
	// What a killed demo left: the next one starts afresh.
	if err := os.MkdirAll(filepath.Join(place, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(place, "config"), "left.toml", "garbage")
	d, err := Start(Options{Place: place})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Temporary || d.Socket != filepath.Join(place, "admin.sock") || d.Config != filepath.Join(place, "config", ConfigFile) {
		t.Errorf("Start: temporary %v, socket %s, config %s; want true and both in %s", d.Temporary, d.Socket, d.Config, place)
	}
	if _, err := os.Stat(filepath.Join(d.ConfigDir, "left.toml")); !os.IsNotExist(err) {
		t.Errorf("a killed demo's left.toml is still in the config (%v)", err)
	}
	if _, err := config.Load(d.ConfigDir); err != nil {
		t.Errorf("the demo's config: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{d.ConfigDir, d.StateDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("after Close, %s is still there (%v)", dir, err)
		}
	}
}

func TestADirKeepsTheUsersEditsAndGetsThisRunsAddresses(t *testing.T) {
	place, dir := testkit.SocketDir(t), t.TempDir()
	d, err := Start(Options{Place: place, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	mine := readFile(t, d.Config) + "# mine\n"
	writeFile(t, d.ConfigDir, ConfigFile, mine)
	backends := filepath.Join(d.ConfigDir, BackendsFile)
	writeFile(t, d.ConfigDir, BackendsFile, strings.Replace(readFile(t, backends), "weight = 5", "weight = 7", 1))

	// The backends' usual addresses taken: the next run serves elsewhere.
	for _, b := range Backends {
		if ln, err := net.Listen("tcp", b.Listen); err == nil {
			defer ln.Close()
		}
	}
	d, err = Start(Options{Place: place, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := readFile(t, d.Config); got != mine {
		t.Errorf("%s after a second run:\n%s\nwant the user's, as edited:\n%s", ConfigFile, got, mine)
	}
	if len(d.Taken) != len(Backends) {
		t.Errorf("Taken = %v, want both backends", d.Taken)
	}
	cfg, err := config.Load(d.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.Upstreams {
		if u.URL.Host != d.Addrs[u.Name] {
			t.Errorf("upstream %s: url %s, but it serves on %s", u.Name, u.URL, d.Addrs[u.Name])
		}
		if u.Name == "pong-v2" && u.Weight != 7 {
			t.Errorf("pong-v2: weight %d, want the user's 7", u.Weight)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{d.Config, backends, d.StateDir} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("after Close: %v; want the user's directory kept whole", err)
		}
	}
}

func TestStartRefusesARunningDemosPlace(t *testing.T) {
	place := testkit.SocketDir(t)
	ln, err := net.Listen("unix", filepath.Join(place, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.MkdirAll(filepath.Join(place, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(place, "config"), ConfigFile, "# the running demo's\n")
	d, err := Start(Options{Place: place})
	if err == nil {
		d.Close()
		t.Fatal("Start beside a live socket: no error, want a refusal")
	}
	if !strings.Contains(err.Error(), "another canaryd -demo is running") {
		t.Errorf("Start beside a live socket: %v", err)
	}
	if got := readFile(t, filepath.Join(place, "config", ConfigFile)); got != "# the running demo's\n" {
		t.Errorf("the running demo's config was touched: %q", got)
	}
}
