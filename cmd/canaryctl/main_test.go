package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/state"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// daemon serves the real admin API over a unix socket in front of a fake
// controller, as canaryd would.
func daemon(t *testing.T, st admin.Status) (*admintest.Controller, string) {
	t.Helper()
	ctl := admintest.NewController(st)
	return ctl, admintest.Serve(t, admin.NewHandler(ctl, admin.HandlerOptions{Cause: "command"}))
}

type result struct {
	code           int
	stdout, stderr string
}

// canaryctl runs the command line args with the environment env.
func canaryctl(env map[string]string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// oneLine fails the test unless s is exactly one line starting with prefix.
func oneLine(t *testing.T, what, s, prefix string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !strings.HasPrefix(s, prefix) {
		t.Errorf("%s = %q, want one line starting with %q", what, s, prefix)
	}
}

func TestCommandsPrintTheirEffect(t *testing.T) {
	tests := []struct {
		args []string
		call string
		want string
	}{
		{[]string{"rollback"}, "Rollback(command)", "rolled back: all traffic to stable (canary v2 latched)\n"},
		{[]string{"resume"}, "Resume(command)", "resumed: canary v2 gets 33.3% of new requests\n"},
		{[]string{"promote"}, "Promote(command)", "promoted: canary v2 takes all traffic\n"},
		{[]string{"reload"}, "Reload()", "reloaded: config generation 2, canary v2 gets 33.3% of new requests\n"},
		{[]string{"button"}, "Button(short)", "button pressed: all traffic to stable (canary v2 latched)\n"},
		{[]string{"button", "--long"}, "Button(long)", "button long-pressed: canary v2 gets 33.3% of new requests\n"},
		{[]string{"button", "-long"}, "Button(long)", "button long-pressed: canary v2 gets 33.3% of new requests\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ctl, socket := daemon(t, admintest.Canary())
			r := canaryctl(nil, append([]string{"-socket", socket}, tt.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if r.stdout != tt.want {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.want)
			}
			if got := ctl.Calls(); !slices.Equal(got, []string{tt.call}) {
				t.Errorf("calls = %q, want [%q]", got, tt.call)
			}
		})
	}
}

func TestRefusalExits1WithTheReason(t *testing.T) {
	ctl, socket := daemon(t, admintest.Canary())
	if r := canaryctl(nil, "-socket", socket, "rollback"); r.code != 0 {
		t.Fatalf("rollback: exit %d, %s", r.code, r.stderr)
	}
	r := canaryctl(nil, "-socket", socket, "promote")
	if r.code != 1 {
		t.Errorf("promote while rolled back: exit %d, want 1", r.code)
	}
	if r.stderr != "canaryctl: canary v2 is rolled back: resume first\n" {
		t.Errorf("stderr = %q, want the daemon's reason", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}

	ctl.Refuse("Reload", errors.New("canaryd.toml:4: unknown key \"listn\"\ncanaryd.toml:9: bad url"))
	r = canaryctl(nil, "-socket", socket, "reload")
	if r.code != 1 {
		t.Errorf("refused reload: exit %d, want 1", r.code)
	}
	oneLine(t, "refused reload's stderr", r.stderr, `canaryctl: canaryd.toml:4: unknown key "listn"; canaryd.toml:9`)
}

// Without canary.steps there is nothing to pause: canaryd refuses.
func TestPauseExits1WithoutARollout(t *testing.T) {
	ctl, socket := daemon(t, admintest.Canary())
	r := canaryctl(nil, "-socket", socket, "pause")
	if r.code != 1 {
		t.Errorf("pause: exit %d, want 1", r.code)
	}
	if want := "canaryctl: no progressive rollout is configured (canary.steps): nothing to pause\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if got := ctl.Calls(); !slices.Equal(got, []string{"Pause()"}) {
		t.Errorf("calls = %q, want [Pause()]", got)
	}
}

func TestPauseAndResumeARollout(t *testing.T) {
	next := "2026-12-01T10:05:00Z"
	st := admintest.Canary()
	st.CanaryPercent = 10
	st.Rollout = &admin.Rollout{Steps: []float64{10, 50}, Percent: 10, Entered: "2026-12-01T10:00:00Z", NextAt: &next}
	ctl, socket := daemon(t, st)

	r := canaryctl(nil, "-socket", socket, "pause")
	if r.code != 0 || r.stdout != "paused: canary v2 gets 10% of new requests; rollout step 1 of 2 (10%) since 2026-12-01T10:00:00Z, holding: paused: canaryctl resume lets it go on\n" {
		t.Errorf("pause: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := ctl.Status().Rollout; !got.Paused || got.NextAt != nil {
		t.Errorf("after pause, rollout %+v: want paused, no next_at", got)
	}
	r = canaryctl(nil, "-socket", socket, "resume")
	if r.code != 0 || strings.Contains(r.stdout, "paused") || ctl.Status().Rollout.Paused {
		t.Errorf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := ctl.Calls(); !slices.Equal(got, []string{"Pause()", "Resume(command)"}) {
		t.Errorf("calls = %q", got)
	}
	ctl.Rollback(t.Context(), "command")
	if r := canaryctl(nil, "-socket", socket, "pause"); r.code != 1 || !strings.Contains(r.stderr, "rolled back: nothing to pause") {
		t.Errorf("pause while rolled back: exit %d, %q", r.code, r.stderr)
	}
}

func TestRolloutLine(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 50, 0, time.UTC)
	next := "2026-12-01T10:05:00Z"
	base := admin.Rollout{Steps: []float64{1, 5, 25}, Step: 1, Percent: 5, Entered: "2026-12-01T10:00:00Z"}
	for _, tt := range []struct {
		name string
		edit func(*admin.Rollout)
		want string
	}{
		{"on schedule", func(r *admin.Rollout) { r.NextAt = &next }, "step 2 of 3 (5%) since 2026-12-01T10:00:00Z, next 25% in 4m10s at 2026-12-01T10:05:00Z"},
		{"holding", func(r *admin.Rollout) { r.Holding = "the canary is failing: 9 errors" }, "step 2 of 3 (5%) since 2026-12-01T10:00:00Z, holding: the canary is failing: 9 errors"},
		{"due", func(r *admin.Rollout) { past := "2026-12-01T09:00:00Z"; r.NextAt = &past }, "step 2 of 3 (5%) since 2026-12-01T10:00:00Z, next 25% due now at 2026-12-01T09:00:00Z"},
		{"last step", func(r *admin.Rollout) { r.Step, r.Percent = 2, 25 }, "step 3 of 3 (25%) since 2026-12-01T10:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.edit(&r)
			if got := rolloutLine(&r, now); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestUnreachableDaemonExits2WithOneLine(t *testing.T) {
	socket := filepath.Join(testkit.SocketDir(t), "admin.sock")
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"rollback"}, {"incidents"}} {
		r := canaryctl(nil, append([]string{"-socket", socket}, args...)...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		oneLine(t, "stderr", r.stderr, "canaryctl: cannot reach canaryd at "+socket+": no such file or directory (is canaryd running? try -socket or $CANARYD_SOCKET)")
		if r.stdout != "" {
			t.Errorf("%v: stdout = %q, want nothing", args, r.stdout)
		}
	}
}

func TestSocketComesFromFlagThenEnvironmentThenDefault(t *testing.T) {
	_, socket := daemon(t, admintest.Canary())
	missing := filepath.Join(testkit.SocketDir(t), "admin.sock")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"environment", map[string]string{"CANARYD_SOCKET": socket}, []string{"status"}, 0},
		{"flag beats environment", map[string]string{"CANARYD_SOCKET": missing}, []string{"-socket", socket, "status"}, 0},
		{"flag after the command", map[string]string{"CANARYD_SOCKET": missing}, []string{"status", "-socket", socket}, 0},
		{"environment used", map[string]string{"CANARYD_SOCKET": missing}, []string{"status"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := canaryctl(tt.env, tt.args...)
			if r.code != tt.want {
				t.Errorf("exit %d (stderr %q), want %d", r.code, r.stderr, tt.want)
			}
		})
	}
	if config.DefaultSocket != "/run/canaryd/admin.sock" {
		t.Errorf("default socket = %q, want the contract's /run/canaryd/admin.sock", config.DefaultSocket)
	}
}

func TestStatusSummary(t *testing.T) {
	st := admintest.Canary()
	st.Config.Generation = 3
	_, socket := daemon(t, st)
	r := canaryctl(nil, "-socket", socket, "status")
	if r.code != 0 {
		t.Fatalf("exit %d, %s", r.code, r.stderr)
	}
	want := `state     canary (v2), canary gets 33.3% of new requests
config    generation 3, ok
leds      status green, canary green
daemon    canaryd test, proxy on 127.0.0.1:8080, gpio sim, up since 2025-01-02T03:04:05Z
upstream  role    weight  requests  errors  healthy  url
w1        stable  10      120       0       yes      http://127.0.0.2:8001
w2        canary  5       60        3       yes      http://127.0.0.3:8002
`
	if r.stdout != want {
		t.Errorf("status printed\n%s\nwant\n%s", r.stdout, want)
	}
}

func TestStatusShowsLatchAndRejectedConfig(t *testing.T) {
	st := admintest.Canary()
	st.Config.Error = `canaryd.toml:4: unknown key "listn"`
	st.LEDs.Status = "green-blink"
	ctl, socket := daemon(t, st)
	if r := canaryctl(nil, "-socket", socket, "button"); r.code != 0 {
		t.Fatalf("button: exit %d, %s", r.code, r.stderr)
	}
	r := canaryctl(nil, "-socket", socket, "status")
	for _, line := range []string{
		"state     rolled_back (v2), all traffic to stable (canary latched)\n",
		"latch     rolled_back v2 by the button at 2025-01-02T03:04:05Z\n",
		"config    generation 1, REJECTED: canaryd.toml:4: unknown key \"listn\" (serving the last good config)\n",
		"leds      status green-blink, canary red-blink\n",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("status lacks %q:\n%s", line, r.stdout)
		}
	}
	if got := ctl.Calls(); !slices.Equal(got, []string{"Button(short)"}) {
		t.Errorf("calls = %q; status must not change anything", got)
	}
}

func TestStatusJSONIsTheDaemonsObjectIndented(t *testing.T) {
	_, socket := daemon(t, admintest.Canary())
	for _, args := range [][]string{{"status", "--json"}, {"status", "-json"}, {"-socket", socket, "status", "--json"}} {
		r := canaryctl(map[string]string{"CANARYD_SOCKET": socket}, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, %s", args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "{\n  \"state\": \"canary\",\n") {
			t.Errorf("%v: stdout is not indented JSON starting with state:\n%s", args, r.stdout)
		}
		var got struct {
			State         string  `json:"state"`
			CanaryVersion string  `json:"canary_version"`
			CanaryPercent float64 `json:"canary_percent"`
			LEDs          struct {
				Status, Canary string
			} `json:"leds"`
			Upstreams []map[string]any `json:"upstreams"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, r.stdout)
		}
		if got.State != "canary" || got.CanaryVersion != "v2" || got.CanaryPercent != 33.3 ||
			got.LEDs.Canary != "green" || len(got.Upstreams) != 2 || got.Upstreams[1]["name"] != "w2" {
			t.Errorf("%v: decoded %+v", args, got)
		}
	}
}

// olderController is the controller of a canaryd without incident reports.
type olderController struct{ admin.Controller }

func TestIncidentsOfACanarydWithoutThem(t *testing.T) {
	socket := admintest.Serve(t, admin.NewHandler(olderController{admintest.NewController(admintest.Canary())}, admin.HandlerOptions{Cause: "command"}))
	for _, args := range [][]string{{"incidents"}, {"incidents", "--json"}, {"incident", "7"}, {"incident", "7", "--csv"}} {
		r := canaryctl(nil, append([]string{"-socket", socket}, args...)...)
		if r.code != 1 {
			t.Errorf("%v: exit %d, want 1", args, r.code)
		}
		if r.stderr != "canaryctl: incidents are not recorded by this canaryd yet\n" {
			t.Errorf("%v: stderr = %q", args, r.stderr)
		}
	}
}

// withIncidents is a daemon with two incident reports.
func withIncidents(t *testing.T) string {
	t.Helper()
	ctl, socket := daemon(t, admintest.Canary())
	ctl.SetIncidents(
		admintest.Report("v2", time.Date(2026, 12, 1, 10, 15, 0, 0, time.UTC)),
		admintest.Report("v3", time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)))
	return socket
}

func TestIncidentsListsTheReportsNewestFirst(t *testing.T) {
	r := canaryctl(nil, "-socket", withIncidents(t), "incidents")
	want := "id                   version  cause   started               rolled back           writes  users\n" +
		"20261201T110000Z-v3  v3       button  2026-12-01T10:45:00Z  2026-12-01T11:00:00Z  2       2\n" +
		"20261201T101500Z-v2  v2       button  2026-12-01T10:00:00Z  2026-12-01T10:15:00Z  2       2\n" +
		"writes: the POST, PUT, PATCH and DELETE requests the canary served; `canaryctl incident ID` lists them\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("incidents: exit %d, stdout\n%s\nwant\n%s(stderr %q)", r.code, r.stdout, want, r.stderr)
	}
}

func TestIncidentsWhenThereAreNone(t *testing.T) {
	_, socket := daemon(t, admintest.Canary())
	if r := canaryctl(nil, "-socket", socket, "incidents"); r.code != 0 || r.stdout != "no incidents: no rollbacks yet\n" {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	if r := canaryctl(nil, "-socket", socket, "incidents", "--json"); r.code != 0 || r.stdout != "[]\n" {
		t.Errorf("--json: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestIncidentsJSONHasTheContractFields(t *testing.T) {
	r := canaryctl(nil, "-socket", withIncidents(t), "incidents", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 || len(list) != 2 {
		t.Fatalf("exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	for _, in := range list {
		for _, k := range []string{"id", "cause", "version", "started", "rolled_back"} {
			if _, ok := in[k]; !ok {
				t.Errorf("an incident without %q: %v", k, in)
			}
		}
	}
}

func TestIncidentPrintsOneReport(t *testing.T) {
	socket := withIncidents(t)
	tests := []struct {
		name string
		args []string
		want []string // in the output, in this order
	}{
		{"text", []string{"incident", "20261201T101500Z-v2"}, []string{
			"incident  20261201T101500Z-v2\n", "version   v2, rolled back by the button\n",
			"live      from 2026-12-01T10:00:00Z to 2026-12-01T10:15:00Z (15m0s)\n",
			"users     2: alice, bob\n", "r-2", "POST", "/orders", "r-3", "PUT", "/orders/7"}},
		{"flag first", []string{"incident", "--csv", "20261201T101500Z-v2"}, []string{
			"time,request_id,method,path,status,bytes_in,bytes_out,duration_ms,upstream,user\n",
			"2026-12-01T10:00:02Z,r-2,POST,/orders,201,12,34,5,w2,alice\n",
			"2026-12-01T10:00:03Z,r-3,PUT,/orders/7,502,12,34,5,w2,bob\n"}},
		{"json", []string{"incident", "20261201T101500Z-v2", "--json"}, []string{
			`"id": "20261201T101500Z-v2"`, `"requests": [`, `"time": "2026-12-01T10:00:02Z"`, `"request_id": "r-2"`, `"method": "POST"`, `"path": "/orders"`, `"status": 201`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := canaryctl(nil, append([]string{"-socket", socket}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			rest := r.stdout
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q after what came before:\n%s", w, r.stdout)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestIncidentRefusals(t *testing.T) {
	socket := withIncidents(t)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown id", []string{"incident", "20261201T101500Z-v9"}, "canaryctl: no such incident: \"20261201T101500Z-v9\""},
		{"unknown id as CSV", []string{"incident", "nope", "--csv"}, "canaryctl: no such incident: \"nope\""},
		{"both formats", []string{"incident", "20261201T101500Z-v2", "--json", "--csv"}, "canaryctl: incident: --json or --csv, not both\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := canaryctl(nil, append([]string{"-socket", socket}, tt.args...)...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, tt.stderr) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", r.code, r.stdout, r.stderr, tt.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, 2, "usage: canaryctl"},
		{"unknown command", []string{"frobnicate"}, 2, "canaryctl: unknown command \"frobnicate\"\nusage: canaryctl"},
		{"unknown global flag", []string{"-frob", "status"}, 2, "canaryctl: flag provided but not defined: -frob\nusage:"},
		{"unknown flag of a command", []string{"status", "--yaml"}, 1, "canaryctl status: flag provided but not defined: -yaml (usage: canaryctl status [--json])\n"},
		{"missing argument", []string{"incident"}, 1, "canaryctl incident: want 1 argument(s), got 0 (usage: canaryctl incident [--json|--csv] ID)\n"},
		{"extra argument", []string{"rollback", "now"}, 1, "canaryctl rollback: want 0 argument(s), got 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A socket that would answer, to show that nothing is sent.
			ctl, socket := daemon(t, admintest.Canary())
			r := canaryctl(map[string]string{"CANARYD_SOCKET": socket}, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			if !strings.HasPrefix(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to start with %q", r.stderr, tt.stderr)
			}
			if len(ctl.Calls()) != 0 {
				t.Errorf("calls = %q, want none", ctl.Calls())
			}
		})
	}
}

func TestHelpPrintsTheUsageAndExits0(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
		// No daemon needed.
		r := canaryctl(map[string]string{"CANARYD_SOCKET": "/nonexistent/admin.sock"}, args...)
		if r.code != 0 || r.stderr != "" || r.stdout != usage() {
			t.Errorf("%v: exit %d, stderr %q, stdout\n%s\nwant 0, nothing and the usage", args, r.code, r.stderr, r.stdout)
		}
	}
	want := `usage: canaryctl [-socket PATH] COMMAND [flags]

commands:
  button [--long]          press the button: roll back (--long: resume)
  fleet [--json]           the members of this fleet's release
  from-nginx FILE [--canary ADDR]... [--upstream NAME]
                           print a canaryd.toml equivalent to an nginx config
  help [COMMAND]           this list, or one command's line
  incident [--json|--csv] ID
                           one report: text, JSON, or its writes as CSV
`
	if !strings.HasPrefix(usage(), want) {
		t.Errorf("usage starts\n%s\nwant\n%s", usage(), want)
	}
}

// The usage is made from the table: every command has its line there.
func TestEveryCommandHasAHelpLine(t *testing.T) {
	for name, cmd := range commands() {
		if cmd.help == "" || strings.Contains(cmd.help, "\n") || len(cmd.help) > 52 {
			t.Errorf("%s: help %q: want one line of at most 52 bytes (the usage's lines fit 80 columns)", name, cmd.help)
		}
		if !strings.Contains(usage(), "\n  "+cmd.line(name)+"\n") {
			t.Errorf("%s: the usage has no line %q", name, cmd.line(name))
		}
	}
}

func TestHelpCommandPrintsOneCommandsLine(t *testing.T) {
	r := canaryctl(nil, "help", "status")
	if want := "status [--json]          what the appliance is doing\n"; r.code != 0 || r.stderr != "" || r.stdout != want {
		t.Errorf("help status: exit %d, stderr %q, stdout %q; want 0, nothing and %q", r.code, r.stderr, r.stdout, want)
	}
	for name, cmd := range commands() {
		if r := canaryctl(nil, "help", name); r.code != 0 || r.stdout != cmd.line(name)+"\n" {
			t.Errorf("help %s: exit %d, stdout %q; want 0 and its line of the usage", name, r.code, r.stdout)
		}
	}

	r = canaryctl(nil, "help", "frobnicate")
	if want := "canaryctl: unknown command \"frobnicate\"\n" + usage(); r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("help frobnicate: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", r.code, r.stdout, r.stderr)
	}
	r = canaryctl(nil, "help", "status", "rollback")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "canaryctl: help: want a command or none") {
		t.Errorf("help status rollback: exit %d, stderr %q; want 1 and why", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		// No daemon needed.
		r := canaryctl(map[string]string{"CANARYD_SOCKET": "/nonexistent/admin.sock"}, args...)
		if r.code != 0 || r.stdout != "canaryctl dev\n" {
			t.Errorf("%v: exit %d, stdout %q; want 0 and %q", args, r.code, r.stdout, "canaryctl dev\n")
		}
	}
}

// TestPermissionDeniedSaysWhichGroupToJoin runs canaryctl as nobody
// against sockets it may not connect to: it exits 2 with one line that
// says what to do, naming the socket's group, or the package's when the
// socket is root's own.
func TestPermissionDeniedSaysWhichGroupToJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds canaryctl")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run canaryctl as another user")
	}
	nogroup, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup: %v", err)
	}
	ngid, _ := strconv.Atoi(nogroup.Gid)
	// A directory every user may enter, for the binary and the sockets.
	dir, err := os.MkdirTemp("", "canaryctl-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "canaryctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name  string
		mode  os.FileMode
		gid   int
		group string
	}{
		{"root's own socket", 0o600, 0, "canaryctl"},
		{"a group socket", 0o660, ngid, "nogroup"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".sock")
			ln, err := net.Listen("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := os.Chown(socket, 0, tt.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(socket, tt.mode); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-socket", socket, "status")
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			// nobody, in no group that owns the socket.
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65533, Groups: []uint32{}}}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			code := 0
			if exit, ok := errors.AsType[*exec.ExitError](err); ok {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("canaryctl: permission denied on %s: run as root or add yourself to group %s (sudo usermod -aG %s $USER, then log in again)\n", socket, tt.group, tt.group)
			if code != 2 || stderr.String() != want || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr:\n%q\nwant exit 2 and\n%q", code, stdout.String(), stderr.String(), want)
			}
		})
	}
}

func TestFleetListsTheMembersOfTheRelease(t *testing.T) {
	ctl, socket := daemon(t, admintest.Canary())
	step := 1
	ctl.SetMembers(
		admin.FleetMember{Name: "shop-1", Self: true, Connected: true, LastSeen: "2026-12-01T10:00:00Z", State: state.Canary,
			Verdict: "good", CanaryVersion: "v2", CanaryPercent: 50, Step: &step, RequestsPerMinute: 1200},
		admin.FleetMember{Name: "shop-2", LastSeen: "2026-12-01T09:58:00Z", State: state.RolledBack, Verdict: "bad", CanaryVersion: "v2"})
	r := canaryctl(nil, "-socket", socket, "fleet")
	want := "member         connected  last seen             state        verdict  canary  step  requests/min\n" +
		"shop-1 (this)  yes        2026-12-01T10:00:00Z  canary       good     v2 50%  2     1200\n" +
		"shop-2         no         2026-12-01T09:58:00Z  rolled_back  bad      v2 0%   -     0\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("fleet: exit %d, stdout\n%s\nwant\n%s(stderr %q)", r.code, r.stdout, want, r.stderr)
	}
	r = canaryctl(nil, "-socket", socket, "fleet", "--json")
	var members []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &members); err != nil || r.code != 0 || len(members) != 2 {
		t.Fatalf("fleet --json: exit %d, %v, %q", r.code, err, r.stdout)
	}
	for _, field := range []string{"name", "connected", "state", "verdict", "last_seen"} {
		if _, ok := members[1][field]; !ok {
			t.Errorf("fleet --json: a member without %q: %v", field, members[1])
		}
	}
}

func TestFleetOnACanarydInNoFleetIsRefusedInOneLine(t *testing.T) {
	_, socket := daemon(t, admintest.Canary())
	r := canaryctl(nil, "-socket", socket, "fleet")
	if r.code != 1 || r.stderr != "canaryctl: "+admin.NoFleet+"\n" {
		t.Errorf("fleet in no fleet: exit %d, stderr %q", r.code, r.stderr)
	}
}
