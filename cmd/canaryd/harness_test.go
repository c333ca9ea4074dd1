package main

// The harness for the integration tests: real backends on loopback, the
// real canaryd and canaryctl binaries, built once by TestMain, and a config
// and state directory per test, as an operator would have them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// bin holds the built canaryd and canaryctl; empty under -short, where no
// integration test runs.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "canaryd-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		bin = dir
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds both commands into dir, with the race detector when
// the tests have it: a race in the daemon then fails the exit-status check.
func buildBinaries(dir string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "github.com/canary-pi/canary-pi/cmd/canaryd", "github.com/canary-pi/canary-pi/cmd/canaryctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// integration skips t under -short: the ARM pass runs under qemu-user,
// where starting real processes and sockets is not what is being tested.
func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
}

// upstream is one [[upstream]] entry.
type upstream struct {
	b      *testkit.Backend
	weight int
	role   string
}

// appliance is one installation of canaryd: its config directory, state
// directory, admin socket and proxy address. A test may start it, stop it
// and start it again, as a reboot would.
type appliance struct {
	t         *testing.T
	configDir string
	stateDir  string
	socket    string
	listen    string
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	dir := t.TempDir()
	a := &appliance{
		t:         t,
		configDir: filepath.Join(dir, "canaryd"),
		stateDir:  filepath.Join(dir, "state"),
		socket:    filepath.Join(testkit.SocketDir(t), "admin.sock"),
		listen:    testkit.FreeAddr(t),
	}
	for _, d := range []string{a.configDir, a.stateDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// config is a complete canaryd.toml for this appliance. version is
// canary.version, left out when "".
func (a *appliance) config(version string, ups ...upstream) string {
	var s strings.Builder
	fmt.Fprintf(&s, "[proxy]\nlisten = %q\n\n[admin]\nsocket = %q\nlisten = \"\"\n", a.listen, a.socket)
	if version != "" {
		fmt.Fprintf(&s, "\n[canary]\nversion = %q\n", version)
	}
	for _, u := range ups {
		fmt.Fprintf(&s, "\n[[upstream]]\nname = %q\nurl = \"http://%s\"\nweight = %d\nrole = %q\n",
			u.b.Name, u.b.Addr(), u.weight, u.role)
	}
	return s.String()
}

// writeConfig replaces canaryd.toml. It writes a new file and renames it
// over the old one, as an editor or a package manager would, so that a
// daemon never reads half a file.
func (a *appliance) writeConfig(text string) {
	a.t.Helper()
	tmp := filepath.Join(a.configDir, ".canaryd.toml.new")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.configDir, "canaryd.toml")); err != nil {
		a.t.Fatal(err)
	}
}

// start runs canaryd on this appliance and returns once canaryctl reaches it.
func (a *appliance) start() *process {
	a.t.Helper()
	p := startProcess(a.t, "canaryd", "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim")
	p.waitReady(a.socket)
	return p
}

// env is the environment of the processes the tests start: the tests'
// own, without the settings that would send canaryd or canaryctl elsewhere.
func env() []string {
	// A race-enabled binary otherwise waits a second before exiting, for
	// late race reports; every canaryctl call would take that second.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), "CANARYD_SOCKET=", "STATE_DIRECTORY=", "GORACE="+gorace)
}

// process is a running canaryd.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *testkit.SyncBuffer
	stderr *testkit.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, once done is closed
}

// startProcess starts the built binary name with args. When the test ends
// the process is killed if still running, and its stderr is shown if the
// test failed.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, nil, name, args...)
}

// startProcessEnv is startProcess with extra environment variables.
func startProcessEnv(t *testing.T, extraEnv []string, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(env(), extraEnv...)
	return startCommand(t, cmd, name, args...)
}

// startCommand starts cmd, prepared by the caller (its environment, its
// inherited files), as startProcess does; name and args describe it in a
// failed test's log.
func startCommand(t *testing.T, cmd *exec.Cmd, name string, args ...string) *process {
	t.Helper()
	p := &process{
		t:      t,
		cmd:    cmd,
		stdout: new(testkit.SyncBuffer),
		stderr: new(testkit.SyncBuffer),
		done:   make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			// SIGTERM first, so that -demo removes its files.
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// waitReady polls `canaryctl status --json` on socket until it answers.
func (p *process) waitReady(socket string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-p.done:
			p.t.Fatalf("canaryd exited before it was ready: %v\n%s", p.err, p.stderr)
		default:
		}
		r := canaryctl(p.t, socket, "status", "--json")
		if r.code == 0 {
			return
		}
		if time.Now().After(deadline) || i == 1000 {
			p.t.Fatalf("canaryd not ready after %d tries: last canaryctl status: exit %d: %s", i+1, r.code, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits up to 15 s for the process to exit and returns its exit code.
func (p *process) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit within 15s", p.cmd.Path)
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	}
	p.t.Fatalf("waiting for %s: %v", p.cmd.Path, p.err)
	return -1
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		p.t.Fatalf("after SIGTERM, canaryd exited with status %d, want 0", code)
	}
}

// result is a finished canaryctl or canaryd run.
type result struct {
	code           int
	stdout, stderr string
}

// canaryctl runs canaryctl -socket socket args... to completion.
func canaryctl(t *testing.T, socket string, args ...string) result {
	t.Helper()
	return runBinary(t, "canaryctl", append([]string{"-socket", socket}, args...)...)
}

// runBinary runs a built binary to completion, for at most 30 s.
func runBinary(t *testing.T, name string, args ...string) result {
	t.Helper()
	return runCommand(t, filepath.Join(bin, name), args...)
}

func runCommand(t *testing.T, path string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = env()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
	default:
		t.Fatalf("%s %s: %v", path, strings.Join(args, " "), err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// mustCtl runs canaryctl and requires exit status 0.
func mustCtl(t *testing.T, socket string, args ...string) string {
	t.Helper()
	r := canaryctl(t, socket, args...)
	if r.code != 0 {
		t.Fatalf("canaryctl %s: exit %d, want 0; stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// getStatus is `canaryctl status --json`, decoded as the admin API's own
// type: a field the daemon does not have fails the decoding.
func getStatus(t *testing.T, socket string) admin.Status {
	t.Helper()
	out := mustCtl(t, socket, "status", "--json")
	var st admin.Status
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("canaryctl status --json: %v\n%s", err, out)
	}
	return st
}

// client sends the tests' requests to the proxy, one at a time.
var client = &http.Client{Timeout: 10 * time.Second}

// get requests / from the proxy at addr and returns the body, which is the
// name of the backend that answered.
func get(t *testing.T, addr string) string {
	t.Helper()
	resp, body := testkit.Get(t, "http://"+addr+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET http://%s/: %s: %s", addr, resp.Status, body)
	}
	return strings.TrimSpace(string(body))
}

// sequence sends n sequential requests to addr and returns who answered each.
func sequence(t *testing.T, addr string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = get(t, addr)
	}
	return names
}

// oneLine fails the test unless s is exactly one non-empty line.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || strings.TrimSpace(s) == "" {
		t.Errorf("%s = %q, want exactly one line", what, s)
	}
}
