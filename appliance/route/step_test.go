package route

import (
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// sequenceOf is who the plan picks for n keyless requests in a row.
func sequenceOf(p *Plan, n int) []string {
	seq := make([]string, n)
	for i := range seq {
		var tried swrr.Set
		u := p.Pick(&tried, now)
		p.Done(u, false, now)
		seq[i] = u.Name
	}
	return seq
}

// TestAStepSplitsTheRolesSmoothly: at a step, the canary gets the step's
// percent of keyless requests, evenly spaced, whatever the weights, and
// the round-robin inside each role keeps the weights.
func TestAStepSplitsTheRolesSmoothly(t *testing.T) {
	p := plan(state.Canary, upstream("s1", 2, config.Stable), upstream("s2", 1, config.Stable),
		upstream("c1", 5, config.Canary)).AtStep(10)
	seq := sequenceOf(p, 300)
	counts := map[string]int{}
	for i, name := range seq {
		counts[name]++
		if name == "c1" && i > 0 && seq[i-1] == "c1" {
			t.Errorf("picks %d and %d both went to the canary", i-1, i)
		}
	}
	if counts["c1"] != 30 || counts["s1"] != 180 || counts["s2"] != 90 {
		t.Errorf("300 picks at 10%% gave %v, want c1 30, s1 180, s2 90", counts)
	}
	if got := p.CanaryPercent(now); got != 10 {
		t.Errorf("canary percent %v at the 10%% step", got)
	}
}

// TestAStepFollowsTheMode: rolled back, the step's share goes to stable;
// promoted, everything to the canary.
func TestAStepFollowsTheMode(t *testing.T) {
	p := plan(state.Canary, upstream("s1", 10, config.Stable), upstream("c1", 5, config.Canary)).AtStep(50)
	for _, tt := range []struct {
		mode    state.Mode
		canary  int
		percent float64
	}{{state.RolledBack, 0, 0}, {state.Promoted, 20, 100}, {state.Canary, 10, 50}} {
		q := p.WithMode(tt.mode)
		n := 0
		for _, name := range sequenceOf(q, 20) {
			if name == "c1" {
				n++
			}
		}
		if n != tt.canary || q.CanaryPercent(now) != tt.percent {
			t.Errorf("%s: canary got %d of 20 (%v%%), want %d (%v%%)", tt.mode, n, q.CanaryPercent(now), tt.canary, tt.percent)
		}
	}
}

// TestUsersFollowTheStepsShare: with a sticky key, the bucket is judged
// against the step's share, not the weights'.
func TestUsersFollowTheStepsShare(t *testing.T) {
	p := stickyPlan(state.Canary, "v2", 10, 5).AtStep(5)
	canary := 0
	const n = 100000
	for i := range n {
		if p.Affinity(userKey(i), nil) == CanaryOnly {
			canary++
		}
	}
	if share := float64(canary) * 100 / n; share < 4 || share > 6 {
		t.Errorf("%.2f%% of users on the canary at the 5%% step, want 4 to 6", share)
	}
}

// TestANewVersionRampsUpToItsStep: with slow_start on the canary, a join
// (a new canary.version, a re-arm) starts its step's share small.
func TestANewVersionRampsUpToItsStep(t *testing.T) {
	c := upstream("c1", 5, config.Canary)
	c.SlowStart = 10 * time.Second
	p := plan(state.Canary, upstream("s1", 10, config.Stable), c).AtStep(50)
	p.Rotation().Join(config.Canary, now)
	canaryAt := func(at time.Time) int {
		n := 0
		for range 100 {
			var tried swrr.Set
			u := p.Pick(&tried, at)
			p.Done(u, false, at)
			if u.Name == "c1" {
				n++
			}
		}
		return n
	}
	if n := canaryAt(now.Add(time.Second)); n > 15 {
		t.Errorf("1 s into a 10 s slow start the canary got %d of 100 at the 50%% step, want at most 15", n)
	}
	if got := p.CanaryPercent(now.Add(time.Second)); got > 15 {
		t.Errorf("canary percent %v 1 s into the ramp", got)
	}
	if n := canaryAt(now.Add(11 * time.Second)); n != 50 {
		t.Errorf("after the slow start the canary got %d of 100 at the 50%% step, want 50", n)
	}
}
