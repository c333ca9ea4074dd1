package route

import (
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

var now = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func upstream(name string, weight int, role config.Role) config.Upstream {
	u, _ := url.Parse("http://127.0.0.1:1/" + name)
	return config.Upstream{Name: name, URL: u, Weight: weight, Role: role, MaxFails: 1, FailTimeout: 10 * time.Second}
}

func table(us ...config.Upstream) *Table {
	return NewTable(&config.Config{Upstreams: us}, 1, nil)
}

func picks(tab *Table, n int) map[string]int {
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
			tab := table(upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary))
			r := NewRouter(tab, tt.mode)
			got := picks(r.Table(), 30)
			if len(got) != len(tt.want) || got["v1"] != tt.want["v1"] || got["v2"] != tt.want["v2"] {
				t.Fatalf("picks %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRollbackAppliesToThePickAfterItReturns(t *testing.T) {
	tab := table(upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary))
	r := NewRouter(tab, state.Canary)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var tried swrr.Set
				r.Table().Pick(&tried, now)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	r.SetMode(state.RolledBack)
	if got := picks(r.Table(), 100); got["v2"] != 0 {
		t.Errorf("after SetMode returned the canary still got %d picks", got["v2"])
	}
	stop.Store(true)
	wg.Wait()
}

func TestRetryPrefersStable(t *testing.T) {
	tab := table(upstream("c1", 100, config.Canary), upstream("s1", 1, config.Stable), upstream("c2", 100, config.Canary))
	NewRouter(tab, state.Canary)
	for range 20 {
		var tried swrr.Set
		tried.Add(0) // c1 failed
		if u := tab.PickRetry(&tried, now); u.Name != "s1" {
			t.Fatalf("retry went to %s, want the stable s1", u.Name)
		}
	}
}

func TestRetryFallsBackToAnotherCanaryWhenPromoted(t *testing.T) {
	tab := table(upstream("c1", 1, config.Canary), upstream("s1", 1, config.Stable), upstream("c2", 1, config.Canary))
	NewRouter(tab, state.Promoted)
	var tried swrr.Set
	tried.Add(0)
	if u := tab.PickRetry(&tried, now); u == nil || u.Name != "c2" {
		t.Fatalf("retry while promoted: %v, want c2", u)
	}
	if !tried.Has(2) {
		t.Error("the retry's pick was not added to tried")
	}
}

func TestCountersSurviveAReloadByName(t *testing.T) {
	old := table(upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary))
	old.Upstreams[1].Stats.Requests.Add(7)
	next := NewTable(&config.Config{Upstreams: []config.Upstream{
		upstream("v2", 3, config.Canary), upstream("v3", 1, config.Stable),
	}}, 2, old)
	if got := next.Upstreams[0].Stats.Requests.Load(); got != 7 {
		t.Errorf("v2 kept %d requests, want 7", got)
	}
	if got := next.Upstreams[1].Stats.Requests.Load(); got != 0 {
		t.Errorf("new upstream v3 starts with %d requests", got)
	}
}

func TestCanaryPercent(t *testing.T) {
	tab := table(upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary), upstream("off", 0, config.Canary))
	for mode, want := range map[state.Mode]float64{
		state.Canary: 100.0 / 3, state.RolledBack: 0, state.Promoted: 100, state.NoCanary: 0,
	} {
		if got := tab.CanaryPercent(mode); got < want-0.01 || got > want+0.01 {
			t.Errorf("%s: %.2f%%, want %.2f%%", mode, got, want)
		}
	}
}

func TestPublishSwapsTableAndKeepsMode(t *testing.T) {
	r := NewRouter(table(upstream("v1", 1, config.Stable), upstream("v2", 1, config.Canary)), state.RolledBack)
	next := table(upstream("v1", 1, config.Stable), upstream("v2", 9, config.Canary))
	r.Publish(next, r.Mode())
	if r.Table() != next {
		t.Fatal("table not swapped")
	}
	if got := picks(next, 20); got["v2"] != 0 {
		t.Errorf("published table ignores the rollback: %v", got)
	}
}

func BenchmarkSetMode(b *testing.B) {
	r := NewRouter(table(upstream("v1", 10, config.Stable), upstream("v2", 5, config.Canary)), state.Canary)
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
	tab := table(upstream("s1", 1, config.Stable), upstream("c1", 1, config.Canary))
	NewRouter(tab, state.Canary)
	tab.Done(tab.Upstreams[0], true, now)
	var tried swrr.Set
	tried.Add(0)
	if u := tab.PickRetry(&tried, now); u == nil || u.Name != "c1" {
		t.Fatalf("retry: %v, want c1", u)
	}
	if tab.Healthy(tab.Upstreams[0], now) {
		t.Fatal("the failed stable was forgiven by the retry")
	}
}
