package main

// Integration tests: the real canaryd and canaryctl binaries, real
// backends, driven as an operator would drive the appliance.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// seedSequence is what 10:5 gives, request by request, as in nginx.
var seedSequence = strings.Fields("v1 v2 v1 v1 v2 v1 v1 v2 v1 v1 v2 v1 v1 v2 v1")

// seed is an appliance configured as the seed demo: v1 stable at weight
// 10, v2 the canary at weight 5, canary.version "v2".
func seed(t *testing.T) (a *appliance, v1, v2 *testkit.Backend) {
	t.Helper()
	v1 = testkit.StartBackend(t, "v1")
	v2 = testkit.StartBackend(t, "v2")
	a = newAppliance(t)
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	return a, v1, v2
}

// count is how many of names are name.
func count(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

// requireNoCanary sends n requests and requires that none reaches canary.
func requireNoCanary(t *testing.T, a *appliance, canary *testkit.Backend, n int) {
	t.Helper()
	before := canary.Hits()
	got := sequence(t, a.listen, n)
	if hits := canary.Hits() - before; hits != 0 || count(got, canary.Name) != 0 {
		t.Fatalf("%d requests after the rollback: the canary backend got %d of them: %v", n, hits, got)
	}
}

func requireRolledBack(t *testing.T, st admin.Status) {
	t.Helper()
	if st.State != "rolled_back" || st.LEDs.Canary != "red-blink" || st.CanaryPercent != 0 {
		t.Fatalf("status: state %q, leds.canary %q, canary_percent %v; want rolled_back, red-blink, 0",
			st.State, st.LEDs.Canary, st.CanaryPercent)
	}
}

func requireCanary(t *testing.T, st admin.Status) {
	t.Helper()
	if st.State != "canary" || st.LEDs.Canary != "green" || st.CanaryPercent == 0 {
		t.Fatalf("status: state %q, leds.canary %q, canary_percent %v; want canary, green, more than 0",
			st.State, st.LEDs.Canary, st.CanaryPercent)
	}
}

// ping is GET /ping as the seed's curl does it: the message of the JSON
// answer, {"message":"pong-v1"}.
func ping(t *testing.T, addr string) string {
	t.Helper()
	resp, body := testkit.Get(t, "http://"+addr+"/ping")
	var answer struct{ Message string }
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/json; charset=utf-8" ||
		json.Unmarshal(body, &answer) != nil {
		t.Fatalf("GET /ping: %s, Content-Type %q, %q; want 200 and the seed's JSON", resp.Status, ct, body)
	}
	return answer.Message
}

func TestDemoBackendServesAlone(t *testing.T) {
	integration(t)
	addr := testkit.FreeAddr(t)
	p := startProcess(t, "canaryd", "-demo-backend", "pong-v2", "-listen", addr)
	listening := testkit.Within(10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !listening {
		t.Fatalf("canaryd -demo-backend did not listen on %s within 10 s: %s", addr, p.stderr.String())
	}
	if got := ping(t, addr); got != "pong-v2" {
		t.Errorf("GET /ping answered %q, want pong-v2", got)
	}
	if resp, _ := testkit.Get(t, "http://"+addr+"/status/503"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /status/503: %s, want 503", resp.Status)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}

	r := runBinary(t, "canaryd", "-demo-backend", "pong-v3")
	if r.code != 2 || !strings.Contains(r.stderr, "-listen") {
		t.Errorf("-demo-backend pong-v3 without -listen: exit %d, %q; want 2 and a word about -listen", r.code, r.stderr)
	}
	oneLine(t, "its stderr", r.stderr)
}

// TestCheckConfigChecksWhatAStartChecks: -check-config takes a directory or
// one file; it says valid only for what would start, so a LAN admin config
// whose token file is missing is refused as the start refuses it.
func TestCheckConfigChecksWhatAStartChecks(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	good := a.config("v2", upstream{b: testkit.StartBackend(t, "v1"), weight: 10, role: "stable"})
	a.writeConfig(good)
	if r := runBinary(t, "canaryd", "-check-config", a.configDir); r.code != 0 || !strings.Contains(r.stdout, "valid: 1 upstream in 1 file") {
		t.Errorf("-check-config of a valid directory: exit %d, stdout %q, stderr %q; want 0 and \"valid: 1 upstream in 1 file\"", r.code, r.stdout, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "pi.toml")
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runBinary(t, "canaryd", "-check-config", file); r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Errorf("-check-config of a file: exit %d, stdout %q, stderr %q; want 0 and \"valid\"", r.code, r.stdout, r.stderr)
	}

	a.writeConfig("[proxy]\nlisten = 8080\n")
	r := runBinary(t, "canaryd", "-check-config", a.configDir)
	if r.code != 1 || !strings.Contains(r.stderr, "canaryd.toml:2") {
		t.Errorf("-check-config of a broken file: exit %d, stderr %q; want 1 and the file and line", r.code, r.stderr)
	}
	oneLine(t, "its stderr", r.stderr)

	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	lan := strings.Replace(good, "[admin]\n", "[admin]\ntoken_file = \"admin.token\"\n", 1)
	lan = strings.Replace(lan, `listen = ""`, fmt.Sprintf("listen = \"0.0.0.0:%s\"", port), 1)
	a.writeConfig(lan)
	c := runBinary(t, "canaryd", "-check-config", a.configDir)
	s := runBinary(t, "canaryd", "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim")
	if c.code != 1 || !strings.Contains(c.stderr, "admin.token_file") || !strings.Contains(c.stderr, "no such file") {
		t.Errorf("-check-config of a LAN admin config without its token file: exit %d, stderr %q; want 1 and admin.token_file", c.code, c.stderr)
	}
	if s.code == 0 || strings.TrimSpace(s.stderr) != strings.TrimSpace(c.stderr) {
		t.Errorf("the start: exit %d, stderr %q; want the refusal -check-config gave, %q", s.code, s.stderr, c.stderr)
	}
	oneLine(t, "its stderr", c.stderr)
}

// TestStartWithoutAConfigSaysWhatToWrite: no config directory, or one with
// no config file, is one line that names the file to write and the demo.
func TestStartWithoutAConfigSaysWhatToWrite(t *testing.T) {
	integration(t)
	empty := t.TempDir()
	for _, dir := range []string{filepath.Join(empty, "missing"), empty} {
		r := runBinary(t, "canaryd", "-config-dir", dir, "-state-dir", t.TempDir(), "-gpio", "off")
		if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(dir, "canaryd.toml")) || !strings.Contains(r.stderr, "canaryd -demo") {
			t.Errorf("-config-dir %s: exit %d, stderr %q; want 1, the file to write and canaryd -demo", dir, r.code, r.stderr)
		}
		oneLine(t, "its stderr", r.stderr)
	}
}

// TestADemoBackendStartsOnlyWhileTheConfigProxiesToIt: the demo units'
// ExecCondition passes for the packaged example config, whose upstreams are
// the demo backends, and fails once the config proxies elsewhere.
func TestADemoBackendStartsOnlyWhileTheConfigProxiesToIt(t *testing.T) {
	integration(t)
	example, err := os.ReadFile("../../packaging/canaryd.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(string(example))
	for _, b := range []string{"pong-v1", "pong-v2"} {
		if r := runBinary(t, "canaryd", "-demo-backend", b, "-demo-used-by", dir); r.code != 0 {
			t.Errorf("%s with the example config: exit %d, %q; want 0", b, r.code, r.stdout)
		}
	}
	write(strings.ReplaceAll(string(example), "127.0.0.1:8001", "127.0.0.1:9001"))
	r := runBinary(t, "canaryd", "-demo-backend", "pong-v1", "-demo-used-by", dir)
	if r.code != 1 || !strings.Contains(r.stdout, "no upstream in "+dir+" is at 127.0.0.1:8001") {
		t.Errorf("pong-v1 with a config proxying elsewhere: exit %d, %q; want 1 and why", r.code, r.stdout)
	}
	if r := runBinary(t, "canaryd", "-demo-backend", "pong-v2", "-demo-used-by", dir); r.code != 0 {
		t.Errorf("pong-v2, still proxied to: exit %d, %q; want 0", r.code, r.stdout)
	}
}

func TestImportConfigInstallsAValidCopyAndRefusesABrokenOne(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	good := a.config("v2", upstream{b: testkit.StartBackend(t, "v1"), weight: 10, role: "stable"})
	a.writeConfig(good)
	card := t.TempDir()
	edited := strings.Replace(good, "weight = 10", "weight = 20", 1)
	if err := os.WriteFile(filepath.Join(card, "canaryd.toml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runBinary(t, "canaryd", "-import-config", card, "-config-dir", a.configDir); r.code != 0 || !strings.Contains(r.stdout, "installed") {
		t.Fatalf("-import-config of a valid copy: exit %d, stdout %q, stderr %q; want 0 and installed", r.code, r.stdout, r.stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(a.configDir, "canaryd.toml")); string(data) != edited {
		t.Fatalf("the config dir after the import:\n%s\nwant the card's copy", data)
	}

	if err := os.WriteFile(filepath.Join(card, "canaryd.toml"), []byte("[proxy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, "canaryd", "-import-config", card, "-config-dir", a.configDir)
	if r.code != 0 || !strings.Contains(r.stderr, "refused") {
		t.Errorf("-import-config of a broken copy: exit %d, stderr %q; want 0 (canaryd starts anyway) and refused", r.code, r.stderr)
	}
	oneLine(t, "its stderr", r.stderr)
	if data, _ := os.ReadFile(filepath.Join(a.configDir, "canaryd.toml")); string(data) != edited {
		t.Fatalf("a refused copy changed the config dir:\n%s", data)
	}
	p := a.start()
	if st := getStatus(t, a.socket); st.LEDs.Status != "green-blink" || !strings.Contains(st.Config.Error, "refused") {
		t.Errorf("canaryd after a refused import: leds.status %q, config.error %q; want green-blink and the refusal",
			st.LEDs.Status, st.Config.Error)
	}
	p.stop()
}

func TestRollbackByCommandAndButton(t *testing.T) {
	integration(t)
	tests := []struct {
		name     string
		rollback []string
		resume   []string
	}{
		{"command", []string{"rollback"}, []string{"resume"}},
		{"button", []string{"button"}, []string{"button", "--long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, v1, v2 := seed(t)
			p := a.start()

			mustCtl(t, a.socket, tt.rollback...)
			requireRolledBack(t, getStatus(t, a.socket))
			requireNoCanary(t, a, v2, 60)
			if st := getStatus(t, a.socket); st.Upstreams[1].Requests != 0 {
				t.Errorf("status: canary requests = %d after the rollback, want 0", st.Upstreams[1].Requests)
			}

			mustCtl(t, a.socket, tt.resume...)
			requireCanary(t, getStatus(t, a.socket))
			before := v2.Hits()
			got := sequence(t, a.listen, 15)
			if hits := v2.Hits() - before; hits < 4 || hits > 6 {
				t.Errorf("15 requests after %q: the canary got %d, want its share of 10:5 (about 5): %v",
					strings.Join(tt.resume, " "), hits, got)
			}
			if v1.Hits() == 0 {
				t.Errorf("the stable backend got no request at all")
			}
			p.stop()
		})
	}
}

func TestRollbackSurvivesRestart(t *testing.T) {
	integration(t)
	a, _, v2 := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "rollback")
	p.stop()

	p = a.start()
	requireRolledBack(t, getStatus(t, a.socket))
	requireNoCanary(t, a, v2, 30)
	p.stop()
}

func TestSameVersionReloadKeepsRollbackNewVersionRearms(t *testing.T) {
	integration(t)
	a, v1, v2 := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "rollback")

	a.writeConfig(a.config("v2", upstream{v1, 3, "stable"}, upstream{v2, 2, "canary"}))
	mustCtl(t, a.socket, "reload")
	st := getStatus(t, a.socket)
	if st.Config.Generation != 2 || st.Upstreams[0].Weight != 3 || st.Upstreams[1].Weight != 2 {
		t.Fatalf("after reload: generation %d, weights %d:%d; want generation 2 and 3:2",
			st.Config.Generation, st.Upstreams[0].Weight, st.Upstreams[1].Weight)
	}
	requireRolledBack(t, st)
	requireNoCanary(t, a, v2, 30)

	// SIGHUP reloads too, without waiting for anyone: wait for the weights.
	a.writeConfig(a.config("v2", upstream{v1, 4, "stable"}, upstream{v2, 1, "canary"}))
	p.signal(syscall.SIGHUP)
	st = waitStatus(t, a.socket, "SIGHUP to apply the weights 4:1", func(s admin.Status) bool { return s.Upstreams[0].Weight == 4 })
	requireRolledBack(t, st)
	requireNoCanary(t, a, v2, 30)

	a.writeConfig(a.config("v3", upstream{v1, 3, "stable"}, upstream{v2, 2, "canary"}))
	mustCtl(t, a.socket, "reload")
	st = getStatus(t, a.socket)
	requireCanary(t, st)
	if st.CanaryVersion != "v3" {
		t.Errorf("canary_version = %q, want v3", st.CanaryVersion)
	}
	if got := sequence(t, a.listen, 15); count(got, "v2") != 6 {
		t.Errorf("15 requests at 3:2 after the new version: %v, want 6 to the canary", got)
	}
	p.stop()
}

func TestPromoteSendsEverythingToCanary(t *testing.T) {
	integration(t)
	a, v1, _ := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "promote")
	st := getStatus(t, a.socket)
	if st.State != "promoted" || st.CanaryPercent != 100 || st.LEDs.Canary != "off" {
		t.Fatalf("after promote: state %q, canary_percent %v, leds.canary %q; want promoted, 100, off",
			st.State, st.CanaryPercent, st.LEDs.Canary)
	}
	if got := sequence(t, a.listen, 30); count(got, "v2") != 30 || v1.Hits() != 0 {
		t.Errorf("30 requests after promote: %v (stable got %d), want all to v2", got, v1.Hits())
	}
	p.stop()
}

func TestPromoteWhileRolledBackIsRefused(t *testing.T) {
	integration(t)
	a, _, v2 := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "rollback")

	r := canaryctl(t, a.socket, "promote")
	if r.code != 1 {
		t.Errorf("canaryctl promote while rolled back: exit %d, want 1", r.code)
	}
	oneLine(t, "its stderr", r.stderr)
	if !strings.Contains(r.stderr, "resume") {
		t.Errorf("its stderr = %q, want the reason to mention resume", r.stderr)
	}
	requireRolledBack(t, getStatus(t, a.socket))
	requireNoCanary(t, a, v2, 30)
	p.stop()
}

// configErrors is canaryd_config_errors_total: the reloads rejected so far.
func configErrors(t *testing.T, socket string) int {
	t.Helper()
	resp, err := adminAPI(socket).Get("http://canaryd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "canaryd_config_errors_total "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("canaryd_config_errors_total %q", v)
			}
			return n
		}
	}
	t.Fatal("no canaryd_config_errors_total in /metrics")
	return 0
}

func TestBrokenConfigNeverReplacesGoodOne(t *testing.T) {
	integration(t)
	a, v1, v2 := seed(t)
	p := a.start()

	good := a.config("v2", upstream{v1, 1, "stable"}, upstream{v2, 1, "canary"})
	// The key lands in the last [[upstream]], on the line after good's last.
	broken := good + "colour = \"blue\"\n"
	where := fmt.Sprintf("canaryd.toml:%d:", strings.Count(good, "\n")+1)
	a.writeConfig(broken)
	r := canaryctl(t, a.socket, "reload")
	if r.code != 1 {
		t.Errorf("reload of a broken config: exit %d, want 1", r.code)
	}
	oneLine(t, "its stderr", r.stderr)
	if !strings.Contains(r.stderr, where) || !strings.Contains(r.stderr, "colour") {
		t.Errorf("its stderr = %q, want the reason at %s naming the key colour", r.stderr, where)
	}
	st := getStatus(t, a.socket)
	if !strings.Contains(st.Config.Error, where) || st.LEDs.Status != "green-blink" || st.Config.Generation != 1 {
		t.Errorf("status: config.error %q, leds.status %q, generation %d; want the error at %s, green-blink, 1",
			st.Config.Error, st.LEDs.Status, st.Config.Generation, where)
	}
	if got := sequence(t, a.listen, 15); !slices.Equal(got, seedSequence) {
		t.Errorf("15 requests with the broken config on disk:\ngot  %v\nwant %v (the old 10:5)", got, seedSequence)
	}
	// The same failure, written again and reloaded again, is not logged
	// again: neither by the reload nor by the watcher's own, once it came.
	rejected := configErrors(t, a.socket)
	a.writeConfig(broken)
	canaryctl(t, a.socket, "reload")
	testkit.Eventually(t, 10*time.Second, "the reload and the watcher's both rejected", func() bool {
		return configErrors(t, a.socket) >= rejected+2
	})
	if n := strings.Count(p.stderr.String(), "config rejected"); n != 1 {
		t.Errorf("%d config-rejected log entries for one distinct failure, want 1", n)
	}

	a.writeConfig(good)
	mustCtl(t, a.socket, "reload")
	st = getStatus(t, a.socket)
	if st.Config.Error != "" || st.LEDs.Status != "green" || st.Config.Generation != 2 {
		t.Errorf("after the fix: config.error %q, leds.status %q, generation %d; want \"\", green, 2",
			st.Config.Error, st.LEDs.Status, st.Config.Generation)
	}
	if got, want := sequence(t, a.listen, 4), strings.Fields("v1 v2 v1 v2"); !slices.Equal(got, want) {
		t.Errorf("4 requests at the fixed 1:1: %v, want %v", got, want)
	}
	p.stop()
}

func TestStartupFailures(t *testing.T) {
	integration(t)
	// Each setup prepares the appliance and returns canaryd's extra
	// arguments and what its stderr must name.
	tests := []struct {
		name    string
		setup   func(t *testing.T, a *appliance) (args []string, want string)
		oneLine bool
	}{
		{
			name: "no config dir",
			setup: func(t *testing.T, a *appliance) ([]string, string) {
				missing := filepath.Join(a.configDir, "missing")
				return []string{"-config-dir", missing}, missing
			},
			oneLine: true,
		},
		{
			name: "empty config dir",
			setup: func(t *testing.T, a *appliance) ([]string, string) {
				return nil, a.configDir
			},
			oneLine: true,
		},
		{
			name: "invalid config",
			setup: func(t *testing.T, a *appliance) ([]string, string) {
				cfg := a.config("", upstream{testkit.StartBackend(t, "v1"), 1, "stable"})
				a.writeConfig(cfg + "wieght = 3\n")
				return nil, fmt.Sprintf("canaryd.toml:%d:", strings.Count(cfg, "\n")+1)
			},
			oneLine: true,
		},
		{
			name: "port in use",
			setup: func(t *testing.T, a *appliance) ([]string, string) {
				ln, err := net.Listen("tcp", a.listen)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				a.writeConfig(a.config("", upstream{testkit.StartBackend(t, "v1"), 1, "stable"}))
				return nil, a.listen
			},
			oneLine: true,
		},
		{
			name: "bad flag",
			setup: func(t *testing.T, a *appliance) ([]string, string) {
				return []string{"-no-such-flag"}, "no-such-flag"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAppliance(t)
			extra, want := tt.setup(t, a)
			args := append([]string{"-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim"}, extra...)
			r := runBinary(t, "canaryd", args...)
			if r.code == 0 {
				t.Errorf("canaryd %s: exit 0, want non-zero", strings.Join(args, " "))
			}
			if tt.oneLine {
				oneLine(t, "stderr", r.stderr)
			}
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr = %q, want it to name %q", r.stderr, want)
			}
			if _, err := os.Stat(a.socket); !os.IsNotExist(err) {
				t.Errorf("canaryd did not start but left its socket %s behind (%v)", a.socket, err)
			}
		})
	}
}

func TestCanaryctlUnreachableExitsTwo(t *testing.T) {
	integration(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, socket string)
	}{
		{"no socket file", func(t *testing.T, socket string) {}},
		{"a socket nobody listens on", func(t *testing.T, socket string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(testkit.SocketDir(t), "admin.sock")
			tt.setup(t, socket)
			for _, cmd := range [][]string{{"status"}, {"status", "--json"}, {"rollback"}} {
				r := canaryctl(t, socket, cmd...)
				if r.code != 2 {
					t.Errorf("canaryctl %s: exit %d, want 2", strings.Join(cmd, " "), r.code)
				}
				oneLine(t, "stderr", r.stderr)
				if !strings.Contains(r.stderr, socket) {
					t.Errorf("stderr = %q, want it to name the socket %s", r.stderr, socket)
				}
			}
		})
	}
}

func TestSigtermFinishesInFlightRequest(t *testing.T) {
	integration(t)
	started := make(chan struct{}, 1)
	slow := testkit.StartBackend(t, "slow", testkit.Delay(time.Second), testkit.Started(started))
	a := newAppliance(t)
	a.writeConfig(a.config("", upstream{slow, 1, "stable"}))
	p := a.start()

	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := client.Get("http://" + a.listen + "/")
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answers <- answer{code: resp.StatusCode, body: string(body), err: err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the backend within 10s")
	}
	p.signal(syscall.SIGTERM)

	select {
	case ans := <-answers:
		if ans.err != nil || ans.code != http.StatusOK || strings.TrimSpace(ans.body) != "slow" {
			t.Errorf("the request in flight at SIGTERM: status %d, body %q, error %v; want 200 slow", ans.code, ans.body, ans.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the request in flight at SIGTERM got no answer within 15s")
	}
	if code := p.wait(); code != 0 {
		t.Errorf("after SIGTERM, canaryd exited with status %d, want 0", code)
	}
}

// TestStartupRefusesAnAdminListenOffLoopbackWithoutAToken: on every
// interface without admin.token_file canaryd does not start, says why in
// one line at the file and line, and -check-config says the same; with a
// token it starts, and its admin listener wants the token and its own
// names; a reload back to no token is refused and the running config
// keeps serving.
func TestStartupRefusesAnAdminListenOffLoopbackWithoutAToken(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	adminAddr := net.JoinHostPort("0.0.0.0", port)
	base := a.config("", upstream{testkit.StartBackend(t, "v1"), 1, "stable"})
	open := strings.Replace(base, `listen = ""`, fmt.Sprintf("listen = %q", adminAddr), 1)
	where := fmt.Sprintf("canaryd.toml:%d:", strings.Count(base[:strings.Index(base, `listen = ""`)], "\n")+1)
	a.writeConfig(open)

	r := runBinary(t, "canaryd", "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim")
	if r.code == 0 || !strings.Contains(r.stderr, where) || !strings.Contains(r.stderr, "set admin.token_file") {
		t.Errorf("start on %s without a token: exit %d, stderr %q; want non-zero, %s and admin.token_file", adminAddr, r.code, r.stderr, where)
	}
	oneLine(t, "its stderr", r.stderr)
	c := runBinary(t, "canaryd", "-check-config", a.configDir)
	if why := strings.TrimPrefix(strings.TrimSpace(c.stderr), "canaryd: "); c.code != 1 || !strings.HasPrefix(why, where) || !strings.Contains(r.stderr, why) {
		t.Errorf("-check-config: exit %d, stderr %q; want 1 and the reason the start gave", c.code, c.stderr)
	}

	if err := os.WriteFile(filepath.Join(a.configDir, "admin.token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.writeConfig(strings.Replace(open, "[admin]\n", "[admin]\ntoken_file = \"admin.token\"\n", 1))
	p := a.start()
	local := "http://127.0.0.1:" + port
	call := func(method, path, host, token string) int {
		t.Helper()
		req, err := http.NewRequest(method, local+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		method, path, host, token string
		want                      int
	}{
		{"GET", "/", "127.0.0.1:" + port, "", 200},
		{"GET", "/v1/status", "127.0.0.1:" + port, "", 401},
		{"GET", "/metrics", "localhost:" + port, "", 401},
		{"GET", "/v1/status", "127.0.0.1:" + port, "s3cret", 200},
		{"POST", "/v1/rollback", "127.0.0.1:" + port, "wrong", 401},
		{"POST", "/v1/rollback", "evil.example:" + port, "s3cret", 421},
		{"GET", "/v1/status", "evil.example", "s3cret", 421},
	} {
		if got := call(c.method, c.path, c.host, c.token); got != c.want {
			t.Errorf("%s %s with Host %s and token %q: %d, want %d", c.method, c.path, c.host, c.token, got, c.want)
		}
	}
	if st := getStatus(t, a.socket); st.State != "stable" || st.Latch != nil {
		t.Errorf("after refused changes: state %q, latch %+v; want stable and no latch", st.State, st.Latch)
	}

	a.writeConfig(open)
	rr := canaryctl(t, a.socket, "reload")
	if rr.code != 1 || !strings.Contains(rr.stderr, "set admin.token_file") {
		t.Errorf("reload to no token: exit %d, stderr %q; want 1 and the reason", rr.code, rr.stderr)
	}
	if got := call("GET", "/v1/status", "127.0.0.1:"+port, ""); got != 401 {
		t.Errorf("after the refused reload, status without the token: %d, want 401 (the old config)", got)
	}
	p.stop()
}
