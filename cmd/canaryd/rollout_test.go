package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// withCanary adds lines to the [canary] section of config cfg.
// quickSafety lets a rollout step advance after few requests: a step waits
// until a canary failing at error_rate would have been found, which at the
// default 5% takes a few hundred canary requests; these tests are about the
// steps, not the verdict's power.
const quickSafety = "error_rate = 0.5"

func withCanary(cfg string, lines ...string) string {
	return strings.Replace(cfg, "[canary]\n", "[canary]\n"+strings.Join(lines, "\n")+"\n", 1)
}

// atStep waits until the rollout is at step (0-based).
func atStep(t *testing.T, socket string, step int) admin.Status {
	t.Helper()
	return waitStatus(t, socket, fmt.Sprintf("rollout at step %d", step), func(s admin.Status) bool {
		return s.Rollout != nil && s.Rollout.Step == step
	})
}

// withTraffic sends requests, 50 at a time, until the status meets ok: at
// most 1000 requests over 10 s, the bound of a hang.
func withTraffic(t *testing.T, a *appliance, what string, ok func(admin.Status) bool) admin.Status {
	t.Helper()
	var st admin.Status
	deadline := time.Now().Add(10 * time.Second)
	for range 20 {
		statuses(t, a.listen, 50)
		if st = getStatus(t, a.socket); ok(st) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ok(st) {
		t.Fatalf("%s: not with 1000 requests within 10 s; rollout %+v, state %s", what, st.Rollout, st.State)
	}
	return st
}

// TestRolloutStepsSmoothlyAdvancesAndSurvivesARestart: at 10%, exactly one
// keyless request in ten reaches the canary, never two in a row; a healthy
// canary moves to the next step after the interval; a restart keeps it.
func TestRolloutStepsSmoothlyAdvancesAndSurvivesARestart(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	cfg := withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
		"steps = [10, 50]", `step_interval = "1s"`, "min_requests = 20", quickSafety)
	a.writeConfig(cfg)
	p := a.start()

	st := getStatus(t, a.socket)
	if r := st.Rollout; r == nil || r.Step != 0 || r.Percent != 10 || r.NextAt == nil || r.Holding != "" || st.CanaryPercent != 10 {
		t.Fatalf("at start: canary_percent %v, rollout %+v; want step 0 at 10%%, a next_at, not holding", st.CanaryPercent, st.Rollout)
	}
	// 100 requests cannot give the canary the 20 it needs to move on.
	seq := sequence(t, a.listen, 100)
	canary := 0
	for i, name := range seq {
		if name == "v2" {
			canary++
			if i > 0 && seq[i-1] == "v2" {
				t.Errorf("requests %d and %d both reached the canary", i-1, i)
			}
		}
	}
	if canary != 10 {
		t.Errorf("the canary got %d of 100 keyless requests at 10%%, want exactly 10:\n%v", canary, seq)
	}

	// Enough traffic for a verdict: the interval passes and it advances.
	st = withTraffic(t, a, "rollout at step 1", func(s admin.Status) bool { return s.Rollout.Step == 1 })
	if r := st.Rollout; r.Percent != 50 || r.NextAt != nil || !strings.Contains(r.Holding, "canaryctl promote") || st.CanaryPercent != 50 {
		t.Errorf("at the last step: canary_percent %v, rollout %+v; want 50%%, no next_at, holding for canaryctl promote", st.CanaryPercent, st.Rollout)
	}
	if !strings.Contains(p.stderr.String(), "rollout: step 2 of 2, 50% of new requests to the canary") {
		t.Errorf("no journal entry for the step:\n%s", p.stderr)
	}
	entered := st.Rollout.Entered
	p.stop()

	p = a.start()
	st = getStatus(t, a.socket)
	if r := st.Rollout; r == nil || r.Step != 1 || r.Entered != entered || st.CanaryPercent != 50 {
		t.Errorf("after a restart: canary_percent %v, rollout %+v; want step 1 entered %s", st.CanaryPercent, st.Rollout, entered)
	}
	p.stop()
}

// TestFailingCanaryHoldsItsStep: a canary answering 500 stays at its
// first step with the light red, and the status says why.
func TestFailingCanaryHoldsItsStep(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2", testkit.Status(http.StatusInternalServerError))
	a.writeConfig(withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
		"steps = [10, 50]", `step_interval = "1s"`, "min_requests = 20"))
	p := a.start()

	statuses(t, a.listen, 300)
	st := waitStatus(t, a.socket, "canary light red", func(s admin.Status) bool { return s.LEDs.Canary == "red" })
	judgedPast(t, a.socket, time.Now(), 8) // two step intervals
	statuses(t, a.listen, 100)
	st = judgedPast(t, a.socket, time.Now(), 1)
	if r := st.Rollout; r.Step != 0 || r.NextAt != nil || !strings.HasPrefix(r.Holding, "the canary is failing: canary ") {
		t.Errorf("rollout %+v: want held at step 0, no next_at, holding with the verdict's reason", r)
	}
	if st.LEDs.Canary != "red" || st.State != "canary" {
		t.Errorf("state %s, canary light %s; want canary, red", st.State, st.LEDs.Canary)
	}
	if !strings.Contains(p.stderr.String(), "rollout holding at 10%: the canary is failing") {
		t.Errorf("no journal entry for the hold:\n%s", p.stderr)
	}
	p.stop()
}

// users sends one request for each of n users by X-User-ID and returns
// which backend answered each.
func users(t *testing.T, addr string, n int) []string {
	t.Helper()
	got := make([]string, n)
	for i := range got {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got[i] = strings.TrimSpace(string(body))
	}
	return got
}

// TestUsersSplitByIDAcrossSteps: 1000 users at 25% each see one version,
// about a quarter of them the canary; the next step moves nobody back;
// a new version picks a different first quarter.
func TestUsersSplitByIDAcrossSteps(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	base := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"})
	sticky := []string{`sticky_header = "X-User-ID"`, "steps = [25, 50]", "min_requests = 20", quickSafety}
	a.writeConfig(withCanary(base, append(sticky, `step_interval = "1h"`)...))
	p := a.start()

	first := users(t, a.listen, 1000)
	if again := users(t, a.listen, 1000); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Error("a user saw both versions at one step")
	}
	if n := count(first, "v2"); n < 220 || n > 280 {
		t.Errorf("%d of 1000 users on the canary at 25%%, want 220 to 280", n)
	}

	// A shorter interval: the step is due, and the canary is healthy.
	a.writeConfig(withCanary(base, append(sticky, `step_interval = "1s"`)...))
	atStep(t, a.socket, 1)
	half := users(t, a.listen, 1000)
	for i := range first {
		if first[i] == "v2" && half[i] != "v2" {
			t.Errorf("user-%d moved back from the canary to stable when the share rose", i)
		}
	}
	if n := count(half, "v2"); n < 460 || n > 540 {
		t.Errorf("%d of 1000 users on the canary at 50%%, want 460 to 540", n)
	}

	// A new version starts at the first step with users of its own.
	a.writeConfig(withCanary(strings.Replace(base, `version = "v2"`, `version = "v3"`, 1), append(sticky, `step_interval = "1h"`)...))
	atStep(t, a.socket, 0)
	next := users(t, a.listen, 1000)
	both := 0
	for i := range first {
		if first[i] == "v2" && next[i] == "v2" {
			both++
		}
	}
	if n := count(next, "v2"); n < 220 || n > 280 {
		t.Errorf("%d of 1000 users on the new version at 25%%, want 220 to 280", n)
	}
	// Independent sets of a quarter share about a sixteenth of the users.
	if both > 110 {
		t.Errorf("%d users are in the first quarter of both versions: the new version did not pick its own", both)
	}
	p.stop()
}

// TestPauseHoldsAndResumeReleasesTheRollout, through canaryctl and the
// state file: a pause survives a restart.
func TestPauseHoldsAndResumeReleasesTheRollout(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
		"steps = [10, 50]", `step_interval = "1s"`, "min_requests = 5", quickSafety))
	p := a.start()
	mustCtl(t, a.socket, "pause")
	statuses(t, a.listen, 200)
	if r := judgedPast(t, a.socket, time.Now(), 6).Rollout; r.Step != 0 || !r.Paused || !strings.HasPrefix(r.Holding, "paused") {
		t.Errorf("paused rollout %+v: want held at step 0", r)
	}
	p.stop()
	p = a.start()
	if r := getStatus(t, a.socket).Rollout; !r.Paused {
		t.Errorf("the pause did not survive a restart: %+v", r)
	}
	mustCtl(t, a.socket, "resume")
	withTraffic(t, a, "rollout at step 1", func(s admin.Status) bool { return s.Rollout.Step == 1 })
	p.stop()
}

// TestAutoPromoteAfterTheLastStep: promote = "auto" promotes a healthy
// canary once its last step has passed, latched with cause auto.
func TestAutoPromoteAfterTheLastStep(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
		"steps = [50]", `step_interval = "1s"`, "min_requests = 10", `promote = "auto"`, quickSafety))
	p := a.start()
	st := withTraffic(t, a, "promoted", func(s admin.Status) bool { return s.State == "promoted" })
	if st.Latch == nil || st.Latch.Cause != "auto" || st.CanaryPercent != 100 {
		t.Errorf("after the last step: latch %+v, canary_percent %v; want promoted by auto, 100", st.Latch, st.CanaryPercent)
	}
	if names := sequence(t, a.listen, 10); count(names, "v2") != 10 {
		t.Errorf("promoted, the canary got %d of 10", count(names, "v2"))
	}
	p.stop()
}
