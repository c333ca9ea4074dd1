package route

import (
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

func checked(name string, weight int, role config.Role) config.Upstream {
	u := upstream(name, weight, role)
	u.HealthPath, u.HealthInterval = "/healthz", 2e9
	return u
}

func TestAnUpstreamWithAHealthCheckWaitsForItToPass(t *testing.T) {
	p := plan(state.Canary, upstream("v1", 1, config.Stable), checked("v2", 1, config.Canary))
	if got := picks(p, 20); got["v2"] != 0 {
		t.Fatalf("before its check passed, v2 got %d of 20 picks", got["v2"])
	}
	if p.Healthy(p.Upstreams[1], now) {
		t.Error("an unchecked upstream shows as healthy")
	}
	up := p.WithHealth("v2", true, now)
	if got := picks(up, 20); got["v2"] != 10 {
		t.Errorf("after its check passed: %v, want 10 each", got)
	}
	if got := picks(p, 20); got["v2"] != 0 {
		t.Error("WithHealth changed the plan it was called on")
	}
	// Rolled back, a healthy canary still gets nothing; back down, neither.
	if got := picks(up.WithMode(state.RolledBack), 10); got["v2"] != 0 {
		t.Errorf("rolled back: %v", got)
	}
	if got := picks(up.WithHealth("v2", false, now), 10); got["v2"] != 0 {
		t.Errorf("after its check failed: %v", got)
	}
	if p.WithHealth("v1", true, now) != p || p.WithHealth("nobody", true, now) != p {
		t.Error("WithHealth of an upstream without a check made a new plan")
	}
}

func TestAReloadKeepsAPassedCheckUnlessTheCheckChanged(t *testing.T) {
	p := plan(state.Canary, upstream("v1", 1, config.Stable), checked("v2", 1, config.Canary)).WithHealth("v2", true, now)
	same := NewPlan(&config.Config{Upstreams: []config.Upstream{upstream("v1", 5, config.Stable), checked("v2", 3, config.Canary)}}, state.Canary, p)
	if !same.Healthy(same.Upstreams[1], now) {
		t.Error("a reload that changed only weights put v2 out until its next check")
	}
	moved := checked("v2", 3, config.Canary)
	moved.HealthPath = "/ready"
	other := NewPlan(&config.Config{Upstreams: []config.Upstream{upstream("v1", 5, config.Stable), moved}}, state.Canary, p)
	if other.Healthy(other.Upstreams[1], now) {
		t.Error("a new health_path kept the old check's outcome")
	}
}

// picksBetween picks once every step from start until end and counts the
// picks by upstream name.
func picksBetween(p *Plan, start, end time.Time, step time.Duration) map[string]int {
	got := map[string]int{}
	for t := start; t.Before(end); t = t.Add(step) {
		var tried swrr.Set
		u := p.Pick(&tried, t)
		got[u.Name]++
		p.Done(u, false, t)
	}
	return got
}

func TestAnUpstreamThatPassesItsCheckRampsUpOverSlowStart(t *testing.T) {
	canary := checked("v2", 10, config.Canary)
	canary.SlowStart = 10 * time.Second
	p := plan(state.Canary, upstream("v1", 10, config.Stable), canary)
	// Long before its check passes, v1 has the traffic to itself.
	picksBetween(p, now, now.Add(time.Minute), time.Second)
	passed := now.Add(time.Minute)
	up := p.WithHealth("v2", true, passed)
	first := picksBetween(up, passed, passed.Add(time.Second), 10*time.Millisecond)
	// Its weight's share is half; ramping from 0 to 1 of 10 it gets at most
	// one pick in eleven.
	if first["v2"]*11 > first["v1"]+first["v2"]+1 {
		t.Errorf("first second after its check passed: %v, want v2 well below half", first)
	}
	ramped := picksBetween(up, passed.Add(10*time.Second), passed.Add(12*time.Second), 10*time.Millisecond)
	if ramped["v2"] != ramped["v1"] {
		t.Errorf("after slow_start: %v, want half each", ramped)
	}
}

func TestJoinRampsUpARoleAgain(t *testing.T) {
	canary := upstream("v2", 10, config.Canary)
	canary.SlowStart = 10 * time.Second
	p := plan(state.Canary, upstream("v1", 10, config.Stable), canary)
	picksBetween(p, now, now.Add(20*time.Second), 100*time.Millisecond)
	rearmed := now.Add(time.Minute)
	p.Rotation().Join(config.Canary, rearmed)
	if got := picksBetween(p, rearmed, rearmed.Add(time.Second), 10*time.Millisecond); got["v2"]*11 > got["v1"]+got["v2"]+1 {
		t.Errorf("first second after Join: %v, want v2 well below half", got)
	}
}

func TestAReloadDuringSlowStartKeepsTheRampGoing(t *testing.T) {
	canary := checked("v2", 10, config.Canary)
	canary.SlowStart = 10 * time.Second
	cfg := &config.Config{Upstreams: []config.Upstream{upstream("v1", 10, config.Stable), canary}}
	p := NewPlan(cfg, state.Canary, nil).WithHealth("v2", true, now)
	picksBetween(p, now, now.Add(9*time.Second), 100*time.Millisecond)
	// Reloaded 9 s in: a restarted ramp would give v2 at most 1 in 11.
	reloaded := NewPlan(cfg, state.Canary, p)
	got := picksBetween(reloaded, now.Add(9*time.Second), now.Add(10*time.Second), 10*time.Millisecond)
	if got["v2"]*3 < got["v1"]+got["v2"] {
		t.Errorf("the second after a reload 9 s into a 10 s slow_start: %v, want v2 near half", got)
	}
}
