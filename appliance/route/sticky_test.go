package route

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

func stickyPlan(m state.Mode, version string, stableWeight, canaryWeight int) *Plan {
	cfg := &config.Config{
		Upstreams: []config.Upstream{upstream("v1", stableWeight, config.Stable), upstream("v2", canaryWeight, config.Canary)},
		Canary:    config.CanaryPolicy{Version: version, StickyHeader: "X-User-ID", OverrideHeader: "X-Canary"},
	}
	return NewPlan(cfg, m, nil)
}

func userKey(i int) []byte { return []byte("user-" + strconv.Itoa(i)) }

func TestUsersSplitWithinOnePointOfTheShare(t *testing.T) {
	const users = 100_000
	for _, w := range []struct{ stable, canary int }{{99, 1}, {9, 1}, {10, 5}, {1, 1}, {1, 3}} {
		p := stickyPlan(state.Canary, "v2", w.stable, w.canary)
		var canary int
		for i := range users {
			if p.Affinity(userKey(i), nil) == CanaryOnly {
				canary++
			}
		}
		want := 100 * float64(w.canary) / float64(w.stable+w.canary)
		if got := 100 * float64(canary) / users; math.Abs(got-want) > 1 {
			t.Errorf("weights %d:%d: %.2f%% of %d users on the canary, want %.2f%% ± 1", w.stable, w.canary, got, users, want)
		}
	}
}

func TestARisingShareOnlyAddsUsers(t *testing.T) {
	low, high := stickyPlan(state.Canary, "v2", 9, 1), stickyPlan(state.Canary, "v2", 1, 1)
	for i := range 20_000 {
		if low.Affinity(userKey(i), nil) == CanaryOnly && high.Affinity(userKey(i), nil) != CanaryOnly {
			t.Fatalf("user %d was on the canary at 10%% and is moved back at 50%%", i)
		}
	}
}

func TestEachVersionPicksItsOwnFirstUsers(t *testing.T) {
	v2, v3 := stickyPlan(state.Canary, "v2", 9, 1), stickyPlan(state.Canary, "v3", 9, 1)
	var both, either int
	for i := range 20_000 {
		a, b := v2.Affinity(userKey(i), nil) == CanaryOnly, v3.Affinity(userKey(i), nil) == CanaryOnly
		if a && b {
			both++
		}
		if a || b {
			either++
		}
	}
	// Independent 10% sets share about 1% of the users: a fifth of those
	// in either would be far from chance.
	if both*5 > either/2 {
		t.Errorf("v2's and v3's first 10%% share %d of %d users: the version does not change the set", both, either)
	}
}

func TestAffinityFollowsTheModeAndTheOverride(t *testing.T) {
	canaryUser := func(p *Plan) []byte {
		for i := 0; ; i++ {
			if Bucket(userKey(i), "v2") < p.split.share {
				return userKey(i)
			}
		}
	}
	serving := stickyPlan(state.Canary, "v2", 10, 5)
	key := canaryUser(serving)
	tests := []struct {
		mode     state.Mode
		key      []byte
		override string
		want     Affinity
	}{
		{state.Canary, key, "", CanaryOnly},
		{state.Canary, nil, "", Either},
		{state.Canary, key, "never", StableOnly},
		{state.Canary, nil, "always", CanaryOnly},
		{state.Canary, nil, "v2", Either}, // a value cannot name an upstream
		{state.RolledBack, key, "always", Either},
		{state.Promoted, key, "never", Either},
	}
	for _, tt := range tests {
		p := serving.WithMode(tt.mode)
		if got := p.Affinity(tt.key, []byte(tt.override)); got != tt.want {
			t.Errorf("%s, key %q, override %q: %v, want %v", tt.mode, tt.key, tt.override, got, tt.want)
		}
	}
	// Rolled back, a tester's "always" still picks only stable.
	rolled := serving.WithMode(state.RolledBack)
	for range 30 {
		var tried swrr.Set
		if u := rolled.PickFor(rolled.Affinity(key, []byte("always")), &tried, now); u.Role != config.Stable {
			t.Fatalf("rolled back, override always reached %s", u.Name)
		}
	}
}

func TestPickForKeepsAUserOnItsRole(t *testing.T) {
	p := NewPlan(&config.Config{
		Upstreams: []config.Upstream{
			upstream("s1", 3, config.Stable), upstream("s2", 1, config.Stable), upstream("c1", 1, config.Canary),
		},
		Canary: config.CanaryPolicy{Version: "v2", StickyCookie: "uid"},
	}, state.Canary, nil)
	got := map[string]int{}
	for range 40 {
		var tried swrr.Set
		got[p.PickFor(StableOnly, &tried, now).Name]++
	}
	// Among the stable upstreams, their own round-robin: 3 to 1.
	if got["c1"] != 0 || got["s1"] != 30 || got["s2"] != 10 {
		t.Errorf("40 stable-only picks: %v, want s1 30, s2 10, c1 none", got)
	}
	// The canary down: its users are served by stable rather than refused.
	p.Done(p.Upstreams[2], true, now)
	var tried swrr.Set
	if u := p.PickFor(CanaryOnly, &tried, now); u == nil || u.Role != config.Stable {
		t.Errorf("canary-only pick with the canary down: %v, want a stable upstream", u)
	}
}

func TestBucketDoesNotAllocate(t *testing.T) {
	key := []byte("user-123456")
	p := stickyPlan(state.Canary, "v2", 10, 5)
	if n := testing.AllocsPerRun(1000, func() { p.Affinity(key, []byte("never")) }); n != 0 {
		t.Errorf("Affinity allocates %v times", n)
	}
}

func BenchmarkBucket(b *testing.B) {
	key := []byte(fmt.Sprintf("user-%d", 123456))
	for b.Loop() {
		Bucket(key, "v2")
	}
}

func TestVersionHeaderIsInThePlanOnlyWithACanary(t *testing.T) {
	withCanary := []config.Upstream{upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary)}
	stableOnly := withCanary[:1]
	for _, c := range []struct {
		name          string
		ups           []config.Upstream
		header        string
		wantH, wantV  string
		wantVersioned bool
	}{
		{"canary and header", withCanary, "X-Canary-Version", "X-Canary-Version", "v2", true},
		{"header off", withCanary, "", "", "", false},
		{"no canary", stableOnly, "X-Canary-Version", "", "", false},
	} {
		cfg := &config.Config{Upstreams: c.ups, Canary: config.CanaryPolicy{Version: "v2", VersionHeader: c.header}}
		p := NewPlan(cfg, state.Canary, nil)
		if h, v := p.VersionHeader(), p.CanaryVersion(); (h != nil) != c.wantVersioned || string(h) != c.wantH || string(v) != c.wantV {
			t.Errorf("%s: VersionHeader %q (nil %v), CanaryVersion %q; want %q, %q", c.name, h, h == nil, v, c.wantH, c.wantV)
		}
		if got := p.WithMode(state.RolledBack).VersionHeader(); string(got) != c.wantH {
			t.Errorf("%s: rolled back plan: VersionHeader %q, want %q (the attempt decides, by role)", c.name, got, c.wantH)
		}
		if got := p.Version(); got != "v2" {
			t.Errorf("%s: Version %q, want v2", c.name, got)
		}
	}
}
