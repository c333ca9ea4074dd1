package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// statuses sends n requests and returns the status codes.
func statuses(t *testing.T, addr string, n int) []int {
	t.Helper()
	codes := make([]int, n)
	for i := range codes {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[i] = resp.StatusCode
	}
	return codes
}

// waitStatus polls the status until ok holds, for up to 10 s: a bound
// for a hang, not a target; the machines CI runs on are shared.
func waitStatus(t *testing.T, socket string, what string, ok func(admin.Status) bool) admin.Status {
	t.Helper()
	var st admin.Status
	if !testkit.Within(10*time.Second, func() bool { st = getStatus(t, socket); return ok(st) }) {
		last, _ := json.Marshal(st)
		t.Fatalf("%s: not within 10 s; status %s", what, last)
	}
	return st
}

// judgedPast waits until the daemon has judged the canary after at, and
// ticks more after that: what a sleep of that many ticks meant, counted on
// the daemon's own clock, however loaded the machine.
func judgedPast(t *testing.T, socket string, at time.Time, ticks int) admin.Status {
	t.Helper()
	after := at.Add(time.Duration(ticks) * judgeEvery)
	return waitStatus(t, socket, fmt.Sprintf("the canary judged %d ticks after %v", ticks, at.Format(time.RFC3339Nano)), func(s admin.Status) bool {
		if s.Verdict == nil {
			return false
		}
		judged, err := time.Parse(time.RFC3339Nano, s.Verdict.JudgedAt)
		return err == nil && judged.After(after)
	})
}

func TestFailingCanaryTurnsTheLightRed(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2", testkit.Status(http.StatusInternalServerError))
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	p := a.start()

	statuses(t, a.listen, 90)
	st := waitStatus(t, a.socket, "canary light red", func(s admin.Status) bool { return s.LEDs.Canary == "red" })
	if st.State != "canary" {
		t.Errorf("auto_rollback is off but the state is %q", st.State)
	}
	if v2.Hits() != 30 {
		t.Errorf("the canary got %d of 90 requests, want 30", v2.Hits())
	}
	p.stop()
}

func TestAutoRollbackStopsTheErrors(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2", testkit.Status(http.StatusInternalServerError))
	cfg := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"})
	cfg = strings.Replace(cfg, "[canary]\n", "[canary]\nauto_rollback = true\n", 1)
	a.writeConfig(cfg)
	p := a.start()

	statuses(t, a.listen, 90)
	st := waitStatus(t, a.socket, "automatic rollback", func(s admin.Status) bool { return s.State == "rolled_back" })
	if st.LEDs.Canary != "red-blink" {
		t.Errorf("canary light %q after the rollback, want red-blink", st.LEDs.Canary)
	}
	hits := v2.Hits()
	for i, code := range statuses(t, a.listen, 60) {
		if code != http.StatusOK {
			t.Fatalf("request %d after the automatic rollback: %d", i, code)
		}
	}
	if v2.Hits() != hits {
		t.Errorf("the canary got %d requests after the rollback", v2.Hits()-hits)
	}
	if !strings.Contains(p.stderr.String(), "CAUSE=auto") || !strings.Contains(p.stderr.String(), "errors at a 33% share") ||
		!strings.Contains(p.stderr.String(), "EVIDENCE=") {
		t.Errorf("the rollback's log line lacks its cause and numbers:\n%s", p.stderr)
	}

	// A resume re-arms with a clean window: the errors that caused the
	// rollback do not roll it back again.
	resumed := time.Now()
	mustCtl(t, a.socket, "resume")
	if st := judgedPast(t, a.socket, resumed, 4); st.State != "canary" || st.LEDs.Canary != "green" {
		t.Errorf("after resume: state %q, canary light %q; want canary, green", st.State, st.LEDs.Canary)
	}
	p.stop()
}

// judgeEvery is how often canaryd judges the canary (appliance/daemon).
const judgeEvery = 250 * time.Millisecond

func TestRollbackSurvivesAConfigWithoutCanary(t *testing.T) {
	integration(t)
	a, v1, v2 := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "rollback")
	a.writeConfig(a.config("", upstream{v1, 10, "stable"}))
	waitStatus(t, a.socket, "canary removed", func(s admin.Status) bool { return s.State == "stable" })
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	st := waitStatus(t, a.socket, "canary back", func(s admin.Status) bool { return len(s.Upstreams) == 2 })
	if st.State != "rolled_back" {
		t.Fatalf("the same canary version came back %q, want still rolled_back", st.State)
	}
	p.stop()
}
