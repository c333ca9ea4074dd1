package route

import (
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
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
	up := p.WithHealth("v2", true)
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
	if got := picks(up.WithHealth("v2", false), 10); got["v2"] != 0 {
		t.Errorf("after its check failed: %v", got)
	}
	if p.WithHealth("v1", true) != p || p.WithHealth("nobody", true) != p {
		t.Error("WithHealth of an upstream without a check made a new plan")
	}
}

func TestAReloadKeepsAPassedCheckUnlessTheCheckChanged(t *testing.T) {
	p := plan(state.Canary, upstream("v1", 1, config.Stable), checked("v2", 1, config.Canary)).WithHealth("v2", true)
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
