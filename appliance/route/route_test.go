package route

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

var now = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func upstream(name string, weight int, role config.Role) config.Upstream {
	u, _ := url.Parse("http://127.0.0.1:1/" + name)
	return config.Upstream{Name: name, URL: u, Weight: weight, Role: role, MaxFails: 1, FailTimeout: 10 * time.Second}
}

func plan(m state.Mode, us ...config.Upstream) *Plan {
	return NewPlan(&config.Config{Upstreams: us}, m, nil)
}

func picks(tab *Plan, n int) map[string]int {
	got := map[string]int{}
	for range n {
		var tried swrr.Set
		u := tab.Pick(&tried, now)
		if u == nil {
			got["<none>"]++
			continue
		}
		got[u.Name]++
		tab.Done(u, false, now)
	}
	return got
}

func TestModeDecidesWhichRoleGetsTraffic(t *testing.T) {
	tests := []struct {
		mode state.Mode
		want map[string]int
	}{
		{state.Canary, map[string]int{"v1": 20, "v2": 10}},
		{state.RolledBack, map[string]int{"v1": 30}},
		{state.Promoted, map[string]int{"v2": 30}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			r := NewRouter(plan(tt.mode, upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary)))
			got := picks(r.Plan(), 30)
			if len(got) != len(tt.want) || got["v1"] != tt.want["v1"] || got["v2"] != tt.want["v2"] {
				t.Fatalf("picks %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRollbackAppliesToThePickAfterItReturns(t *testing.T) {
	r := NewRouter(plan(state.Canary, upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary)))
	var stop atomic.Bool
	var picked atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var tried swrr.Set
				r.Plan().Pick(&tried, now)
				picked.Add(1)
			}
		}()
	}
	// The pickers are busy when the rollback comes.
	testkit.Eventually(t, 5*time.Second, "the pickers under way", func() bool { return picked.Load() >= 1000 })
	r.SetMode(state.RolledBack)
	if got := picks(r.Plan(), 100); got["v2"] != 0 {
		t.Errorf("after SetMode returned the canary still got %d picks", got["v2"])
	}
	stop.Store(true)
	wg.Wait()
}

func TestRetryPrefersStable(t *testing.T) {
	tab := plan(state.Canary, upstream("c1", 100, config.Canary), upstream("s1", 1, config.Stable), upstream("c2", 100, config.Canary))
	for range 20 {
		var tried swrr.Set
		tried.Add(0) // c1 failed
		if u := tab.PickRetry(&tried, tab.Mode, now); u.Name != "s1" {
			t.Fatalf("retry went to %s, want the stable s1", u.Name)
		}
	}
}

func TestRetryFallsBackToAnotherCanaryWhenPromoted(t *testing.T) {
	tab := plan(state.Promoted, upstream("c1", 1, config.Canary), upstream("s1", 1, config.Stable), upstream("c2", 1, config.Canary))
	var tried swrr.Set
	tried.Add(0)
	if u := tab.PickRetry(&tried, tab.Mode, now); u == nil || u.Name != "c2" {
		t.Fatalf("retry while promoted: %v, want c2", u)
	}
	if !tried.Has(2) {
		t.Error("the retry's pick was not added to tried")
	}
}

func TestCountersSurviveAReloadByName(t *testing.T) {
	old := plan(state.Canary, upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary))
	old.Upstreams[1].Stats.Classes[Class2xx].Add(7)
	next := NewPlan(&config.Config{Upstreams: []config.Upstream{
		upstream("v2", 3, config.Canary), upstream("v3", 1, config.Stable),
	}}, state.Canary, old)
	if got := next.Upstreams[0].Stats.Requests(); got != 7 {
		t.Errorf("v2 kept %d requests, want 7", got)
	}
	if got := next.Upstreams[1].Stats.Requests(); got != 0 {
		t.Errorf("new upstream v3 starts with %d requests", got)
	}
}

func TestCanaryPercent(t *testing.T) {
	tab := plan(state.Canary, upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary), upstream("off", 0, config.Canary))
	for mode, want := range map[state.Mode]float64{
		state.Canary: 100.0 / 3, state.RolledBack: 0, state.Promoted: 100, state.NoCanary: 0,
	} {
		if got := tab.WithMode(mode).CanaryPercent(now); got < want-0.01 || got > want+0.01 {
			t.Errorf("%s: %.2f%%, want %.2f%%", mode, got, want)
		}
	}
}

func TestAPublishedPlanNeverChanges(t *testing.T) {
	first := plan(state.Canary, upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary))
	r := NewRouter(first)
	r.SetMode(state.RolledBack)
	if first.Mode != state.Canary || r.Plan() == first || r.Plan().Mode != state.RolledBack {
		t.Fatalf("SetMode: the first plan says %s, the router's %s; want the first unchanged and a new plan rolled back",
			first.Mode, r.Plan().Mode)
	}
	// A request that started on the first plan still picks by it...
	if got := picks(first, 20); got["v2"] == 0 {
		t.Errorf("the first plan lost its canary: %v", got)
	}
	// ...but its retry follows the router's mode now.
	for range 10 {
		var tried swrr.Set
		tried.Add(0) // v1 failed
		if u := first.PickRetry(&tried, r.Plan().Mode, now); u != nil && u.Role == config.Canary {
			t.Fatalf("a retry after the rollback went to the canary %s", u.Name)
		}
	}
	next := plan(state.RolledBack, upstream("v1", 1, config.Stable), upstream("v2", 9, config.Canary))
	if old := r.Publish(next); old.Mode != state.RolledBack || r.Plan() != next {
		t.Fatal("Publish did not swap in the new plan and return the old one")
	}
	if got := picks(next, 20); got["v2"] != 0 {
		t.Errorf("a rolled-back plan picked the canary: %v", got)
	}
}

func BenchmarkSetMode(b *testing.B) {
	r := NewRouter(plan(state.Canary, upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary)))
	modes := []state.Mode{state.RolledBack, state.Canary}
	i := 0
	for b.Loop() {
		r.SetMode(modes[i&1])
		i++
	}
}

func TestRetryDoesNotForgiveAFailedStable(t *testing.T) {
	// The stable refused; the retry finds no other stable and goes to the
	// canary, but the stable's failure must stand.
	tab := plan(state.Canary, upstream("s1", 1, config.Stable), upstream("c1", 1, config.Canary))
	tab.Done(tab.Upstreams[0], true, now)
	var tried swrr.Set
	tried.Add(0)
	if u := tab.PickRetry(&tried, tab.Mode, now); u == nil || u.Name != "c1" {
		t.Fatalf("retry: %v, want c1", u)
	}
	if tab.Healthy(tab.Upstreams[0], now) {
		t.Fatal("the failed stable was forgiven by the retry")
	}
}

// TestStatusClassesAsMetricsLabelThem: an attempt counts under the class
// of its status code, or under failed without one; the classes' names are
// the metrics' class label values.
func TestStatusClassesAsMetricsLabelThem(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{0, "failed"}, {99, "failed"}, {100, "1xx"}, {204, "2xx"}, {302, "3xx"},
		{404, "4xx"}, {500, "5xx"}, {599, "5xx"}, {600, "failed"},
	} {
		var s Stats
		s.Record(now, tc.status, tc.status < 100 || tc.status >= 600, time.Millisecond)
		c := ClassOf(tc.status)
		if got := c.String(); got != tc.want {
			t.Errorf("status %d: class %q, want %q", tc.status, got, tc.want)
		}
		if s.Classes[c].Load() != 1 {
			t.Errorf("status %d: not counted under %s", tc.status, c)
		}
	}
	var names []string
	for c := range NumClasses {
		names = append(names, c.String())
	}
	if got := strings.Join(names, " "); got != "failed 1xx 2xx 3xx 4xx 5xx" {
		t.Errorf("the classes are %s", got)
	}
}

func TestStatsDeriveRequestsErrorsAndInFlightFromTheClasses(t *testing.T) {
	var s Stats
	for _, a := range []struct {
		status int
		failed bool
	}{{200, false}, {404, false}, {503, false}, {0, true}, {200, true}, {101, false}} {
		s.Begin()
		s.Record(time.Unix(0, 0), a.status, a.failed, time.Millisecond)
	}
	s.Begin() // ended without a record: a client that went away
	s.Abandon()
	s.Begin() // still in flight
	if got := s.Requests(); got != 6 {
		t.Errorf("Requests %d, want 6", got)
	}
	// The 503, and the two that got no whole answer, the 200 whose body
	// broke off included.
	if got := s.Errors(); got != 3 {
		t.Errorf("Errors %d, want 3", got)
	}
	if got := s.Classes[Class2xx].Load(); got != 1 {
		t.Errorf("2xx %d, want 1: a failed attempt is class failed", got)
	}
	if got := s.InFlight(); got != 1 {
		t.Errorf("InFlight %d, want 1", got)
	}
	if c, _, _ := s.Latency.Snapshot(); c == [len(c)]uint64{} {
		t.Error("no latency observed")
	}
}

// BenchmarkRecord is what the proxy does for every attempt: Begin, and
// Record when it ends.
func BenchmarkRecord(b *testing.B) {
	s := new(Stats)
	s.Window.Store(analysis.NewWindow(30 * time.Second))
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Begin()
		s.Record(now, 200, false, 3*time.Millisecond)
	}
}
