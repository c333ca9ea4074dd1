package main

// canaryd -demo as a newcomer runs it: the real binary, its banner read as
// they read it, its commands run as they would type them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/demo"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// demoRun is a running canaryd -demo and what its banner says.
type demoRun struct {
	*process
	banner string
	socket string // from the export CANARYD_SOCKET= line
	config string // the config file to edit
	status string // the status page's address
	ctl    string // canaryctl as the banner spells it
	env    []string
}

var (
	exportLine = regexp.MustCompile(`(?m)^\s+canaryctl:\s+export CANARYD_SOCKET=(\S+)\n\s+(\S+) status\n\s+(\S+) rollback `)
	configLine = regexp.MustCompile(`(?m)^\s+config:\s+(\S+)`)
	statusLine = regexp.MustCompile(`(?m)^\s+status page:\s+http://(\S+)/`)
)

// runDemo starts canaryd -demo args... with XDG_RUNTIME_DIR=run, as a
// user's session has one, and reads its banner.
func runDemo(t *testing.T, run string, args ...string) *demoRun {
	t.Helper()
	env := []string{"XDG_RUNTIME_DIR=" + run}
	p := startProcessEnv(t, env, "canaryd", append([]string{"-demo"}, args...)...)
	d := &demoRun{process: p, env: env}
	exited := false
	printed := testkit.Within(20*time.Second, func() bool {
		select {
		case <-p.done:
			exited = true
		default:
		}
		d.banner = p.stdout.String()
		return exited || strings.Contains(d.banner, "Ctrl-C")
	})
	if exited || !printed {
		t.Fatalf("canaryd -demo %s printed no banner within 20s (exited: %v, %v):\n%s\nstderr:\n%s",
			strings.Join(args, " "), exited, p.err, d.banner, p.stderr)
	}
	m := exportLine.FindStringSubmatch(d.banner)
	if m == nil || m[2] != m[3] {
		t.Fatalf("banner: no export CANARYD_SOCKET= line followed by CANARYCTL status and CANARYCTL rollback:\n%s", d.banner)
	}
	d.socket, d.ctl = m[1], m[2]
	if m := configLine.FindStringSubmatch(d.banner); m != nil {
		d.config = m[1]
	}
	if m := statusLine.FindStringSubmatch(d.banner); m != nil {
		d.status = m[1]
	}
	if n := strings.Count(d.banner, "\n"); n > 30 {
		t.Errorf("the banner is %d lines, want at most 30 for a newcomer to read:\n%s", n, d.banner)
	}
	return d
}

// canaryctl runs the banner's canaryctl with args, after the banner's
// export line, as the user would type them.
func (d *demoRun) canaryctl(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, append(slices.Clone(d.env), "CANARYD_SOCKET="+d.socket), d.ctl, args...)
}

// runEnv runs path args... to completion, for at most 30 s, with extra
// environment variables.
func runEnv(t *testing.T, extraEnv []string, path string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(env(), extraEnv...)
	err := cmd.Run()
	if _, exit := errors.AsType[*exec.ExitError](err); err != nil && (!exit || ctx.Err() != nil) {
		t.Fatalf("%s %s: %v", path, strings.Join(args, " "), err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// requireGone fails the test unless none of paths exists.
func requireGone(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %s is still there (%v)", what, p, err)
		}
	}
}

// hold listens on addr until the test ends, so that the demo finds it
// taken. Held by another process already, it is taken all the same.
func hold(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		return
	}
	t.Cleanup(func() { ln.Close() })
}

func TestDemoServesTenToFive(t *testing.T) {
	integration(t)
	run, addr := testkit.SocketDir(t), testkit.FreeAddr(t)
	place := filepath.Join(run, "canaryd-demo")
	adminFree := false
	if ln, err := net.Listen("tcp", demo.AdminListen); err == nil {
		ln.Close()
		adminFree = true
	}
	d := runDemo(t, run, "-listen", addr)

	if !strings.Contains(d.banner, "curl http://"+addr+"/ping\n") {
		t.Errorf("banner has no curl line for http://%s/ping:\n%s", addr, d.banner)
	}
	if strings.Contains(d.banner, "-socket") {
		t.Errorf("banner: canaryctl with -socket; want it after the export line, without:\n%s", d.banner)
	}
	if d.socket != filepath.Join(place, "admin.sock") {
		t.Errorf("export CANARYD_SOCKET=%s, want the same place every run, %s/admin.sock", d.socket, place)
	}
	if d.config != filepath.Join(place, "config", "canaryd.toml") || !strings.Contains(d.banner, "within a second") {
		t.Errorf("banner: config %q; want %s/config/canaryd.toml and that an edit applies within a second:\n%s", d.config, place, d.banner)
	}
	if adminFree && !strings.Contains(d.banner, demo.AdminListen+" is taken") && d.status != demo.AdminListen {
		t.Errorf("banner: status page on %q, want %s (it was free)", d.status, demo.AdminListen)
	}
	if resp, _ := testkit.Get(t, "http://"+d.status+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("the banner's status page http://%s/: %s", d.status, resp.Status)
	}

	want := strings.Fields("pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1")
	var got []string
	for range 15 {
		got = append(got, ping(t, addr))
	}
	if !slices.Equal(got, want) {
		t.Errorf("15 requests to the demo:\ngot  %v\nwant %v", got, want)
	}

	if r := d.canaryctl(t, "status"); r.code != 0 || !strings.Contains(r.stdout, "canary") || !strings.Contains(r.stdout, "pong-v2") {
		t.Errorf("the printed %s status: exit %d, stdout %q, stderr %q; want 0 and a status naming the canary pong-v2",
			d.ctl, r.code, r.stdout, r.stderr)
	}
	if r := d.canaryctl(t, "rollback"); r.code != 0 {
		t.Fatalf("the printed %s rollback: exit %d, stderr %q", d.ctl, r.code, r.stderr)
	}
	for range 15 {
		if got := ping(t, addr); got != "pong-v1" {
			t.Fatalf("a request after the printed rollback command reached %s, want only pong-v1", got)
		}
	}

	d.stop()
	requireGone(t, "after the demo stopped", filepath.Join(place, "config"), filepath.Join(place, "state"), d.socket)
}

func TestDemoStatusPageAndBackendsMoveOnlyWhenTheirPortIsTaken(t *testing.T) {
	integration(t)
	hold(t, demo.AdminListen)
	hold(t, demo.DefaultListen("pong-v1"))
	addr := testkit.FreeAddr(t)
	d := runDemo(t, testkit.SocketDir(t), "-listen", addr)

	page := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(demo.AdminListen) + ` is taken; the status page is on http://(\S+)/\n`).FindStringSubmatch(d.banner)
	if page == nil || page[1] != d.status || d.status == demo.AdminListen {
		t.Fatalf("banner with %s taken: want one line %q and the status page there:\n%s",
			demo.AdminListen, demo.AdminListen+" is taken; the status page is on …", d.banner)
	}
	if resp, _ := testkit.Get(t, "http://"+d.status+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("the status page at http://%s/: %s", d.status, resp.Status)
	}
	v1 := regexp.MustCompile(`(?m)^  127\.0\.0\.1:8001 is taken; pong-v1 serves on (\S+)\n`).FindStringSubmatch(d.banner)
	if v1 == nil {
		t.Fatalf("banner with 127.0.0.1:8001 taken: no line saying where pong-v1 serves:\n%s", d.banner)
	}
	if !strings.Contains(d.banner, "http://"+v1[1]+"/demo/fault") {
		t.Errorf("banner: pong-v1's fault controls are not at %s, where it serves:\n%s", v1[1], d.banner)
	}
	got := map[string]int{}
	for range 15 {
		got[ping(t, addr)]++
	}
	if got["pong-v1"] != 10 || got["pong-v2"] != 5 {
		t.Errorf("15 requests with pong-v1 moved: %v, want 10 pong-v1 and 5 pong-v2", got)
	}
	d.stop()
}

func TestDemoSocketIsTheSameEveryRunAndNotTakenFromARunningDemo(t *testing.T) {
	integration(t)
	run := testkit.SocketDir(t)
	first := runDemo(t, run, "-listen", testkit.FreeAddr(t))

	r := runEnv(t, first.env, filepath.Join(bin, "canaryd"), "-demo", "-listen", testkit.FreeAddr(t))
	if r.code != 1 || !strings.Contains(r.stderr, "another canaryd -demo is running") || !strings.Contains(r.stderr, first.socket) {
		t.Errorf("a second demo: exit %d, %q; want 1 and that another demo runs at %s", r.code, r.stderr, first.socket)
	}
	oneLine(t, "its stderr", r.stderr)
	if r := first.canaryctl(t, "status"); r.code != 0 {
		t.Errorf("the first demo after a second one was refused: canaryctl status: exit %d, %s", r.code, r.stderr)
	}
	first.stop()

	second := runDemo(t, run, "-listen", testkit.FreeAddr(t))
	if second.socket != first.socket || second.config != first.config {
		t.Errorf("a second run: socket %s, config %s; want the first run's %s and %s",
			second.socket, second.config, first.socket, first.config)
	}
	second.stop()
}

func TestDemoWithStateDirKeepsTheRollbackAndTheUsersEdits(t *testing.T) {
	integration(t)
	run, dir, addr := testkit.SocketDir(t), t.TempDir(), testkit.FreeAddr(t)
	first := runDemo(t, run, "-listen", addr, "-state-dir", dir)
	if want := filepath.Join(dir, "config", "canaryd.toml"); first.config != want {
		t.Fatalf("banner: config %s, want %s", first.config, want)
	}
	if r := first.canaryctl(t, "rollback"); r.code != 0 {
		t.Fatalf("%s rollback: exit %d, %s", first.ctl, r.code, r.stderr)
	}
	requireRolledBack(t, getStatus(t, first.socket))
	edited := readFile(t, first.config) + "# mine\n"
	writeFile(t, first.config, edited)
	backends := filepath.Join(dir, "config", demo.BackendsFile)
	writeFile(t, backends, strings.Replace(readFile(t, backends), "weight = 5", "weight = 7", 1))
	first.stop()
	for _, p := range []string{first.config, backends, filepath.Join(dir, "state")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after the demo stopped: %v; want -state-dir kept whole", err)
		}
	}

	hold(t, demo.DefaultListen("pong-v2")) // the url in the user's directory must follow
	second := runDemo(t, run, "-listen", addr, "-state-dir", dir)
	st := getStatus(t, second.socket)
	requireRolledBack(t, st)
	if !strings.Contains(second.banner, "rolled_back, as the last run left it") {
		t.Errorf("banner after a restart rolled back: it does not say so:\n%s", second.banner)
	}
	if got := readFile(t, second.config); got != edited {
		t.Errorf("canaryd.toml after a restart:\n%s\nwant the user's edit:\n%s", got, edited)
	}
	v2 := regexp.MustCompile(`(?m)^  127\.0\.0\.1:8002 is taken; pong-v2 serves on (\S+)\n`).FindStringSubmatch(second.banner)
	if v2 == nil {
		t.Fatalf("banner with 127.0.0.1:8002 taken: no line saying where pong-v2 serves:\n%s", second.banner)
	}
	for _, u := range st.Upstreams {
		if u.Name == "pong-v2" && (u.URL != "http://"+v2[1] || u.Weight != 7) {
			t.Errorf("pong-v2 after a restart: url %s, weight %d; want http://%s, where it serves, and the user's weight 7", u.URL, u.Weight, v2[1])
		}
	}
	if r := second.canaryctl(t, "resume"); r.code != 0 {
		t.Fatalf("%s resume: exit %d, %s", second.ctl, r.code, r.stderr)
	}
	got := map[string]int{}
	for range 17 {
		got[ping(t, addr)]++
	}
	if got["pong-v1"] != 10 || got["pong-v2"] != 7 {
		t.Errorf("17 requests after resume: %v, want 10 pong-v1 and 7 pong-v2 (the user's weight, at its new address)", got)
	}
	second.stop()
}

func TestDemoRefusesFlagsItCannotHonour(t *testing.T) {
	integration(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-config-dir", "/etc/canaryd"}, "-state-dir DIR"},
		{[]string{"-check-config", "/etc/canaryd"}, "-check-config"},
		{[]string{"-import-config", "/boot/canaryd"}, "-import-config"},
		{[]string{"-demo-backend", "pong-v1"}, "-demo-backend"},
		{[]string{"-listen", "18090"}, `-listen "18090"`},
		{[]string{"-listen", "127.0.0.1:99999"}, `-listen "127.0.0.1:99999"`},
	}
	run := testkit.SocketDir(t)
	for _, tt := range tests {
		args := append([]string{"-demo"}, tt.args...)
		r := runEnv(t, []string{"XDG_RUNTIME_DIR=" + run}, filepath.Join(bin, "canaryd"), args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, ".toml") {
			t.Errorf("canaryd %s: exit %d, %q; want 2 and a line about %s (not a config file's)",
				strings.Join(args, " "), r.code, r.stderr, tt.want)
		}
		oneLine(t, "its stderr", r.stderr)
	}
	requireGone(t, "after refusals", filepath.Join(run, "canaryd-demo"))
}

// `make demo | tee log`, then Ctrl-C: the terminal's SIGINT ends tee as
// well, and what canaryd writes next meets a closed pipe.
func TestDemoCleansUpAfterCtrlCUnderAPipe(t *testing.T) {
	integration(t)
	for _, both := range []bool{false, true} {
		name := "stdout"
		if both {
			name = "stdout and stderr" // make demo 2>&1 | tee log
		}
		t.Run(name, func(t *testing.T) {
			run := testkit.SocketDir(t)
			place := filepath.Join(run, "canaryd-demo")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			stderr := new(testkit.SyncBuffer)
			cmd := exec.Command(filepath.Join(bin, "canaryd"), "-demo", "-listen", testkit.FreeAddr(t))
			cmd.Env = append(env(), "XDG_RUNTIME_DIR="+run)
			cmd.Stdout, cmd.Stderr = w, stderr
			if both {
				cmd.Stderr = w
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			var waitErr error
			done := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
					<-done
				}
			})

			// tee reads the banner; then Ctrl-C ends tee and canaryd alike.
			banner := make(chan bool, 1)
			go func() {
				lines := bufio.NewScanner(r)
				for lines.Scan() {
					if strings.HasPrefix(lines.Text(), "Ctrl-C") {
						banner <- true
						return
					}
				}
				banner <- false
			}()
			select {
			case ok := <-banner:
				if !ok {
					t.Fatalf("the pipe closed before the banner's end; stderr:\n%s", stderr)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no banner within 20s; stderr:\n%s", stderr)
			}
			r.Close()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if waitErr != nil {
					t.Errorf("after SIGINT with its pipe closed: %v, want exit status 0; stderr:\n%s", waitErr, stderr)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("canaryd did not exit within 15s of SIGINT; stderr:\n%s", stderr)
			}
			requireGone(t, "after Ctrl-C under a closed pipe", filepath.Join(place, "config"),
				filepath.Join(place, "state"), filepath.Join(place, "admin.sock"))
		})
	}
}

func TestMakeDemoPassesListen(t *testing.T) {
	integration(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, tt := range []struct {
		vars []string
		want string
	}{
		{nil, "bin/canaryd -demo"},
		{[]string{"LISTEN=127.0.0.1:18090"}, "bin/canaryd -demo -listen 127.0.0.1:18090"},
	} {
		// -n: the commands make would run, none run.
		r := runEnv(t, nil, "make", append([]string{"-n", "--no-print-directory", "-C", "../..", "demo"}, tt.vars...)...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || lines[len(lines)-1] != tt.want {
			t.Errorf("make -n demo %s: exit %d, last command %q; want %q (stderr %q)",
				strings.Join(tt.vars, " "), r.code, lines[len(lines)-1], tt.want, r.stderr)
		}
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

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
