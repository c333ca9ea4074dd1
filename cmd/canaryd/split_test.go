package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// load sends n requests from 8 clients at once and returns how many did
// not come back 200.
func load(t *testing.T, addr string, n int) int {
	t.Helper()
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range n/8 + min(1, max(0, n%8-w)) {
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return failed
}

// TestASlowerCanaryTurnsTheLightRed: latency_ratio = 2 with a canary five
// times slower than stable is a bad verdict, and its reason says what was
// slow for each; a canary as fast as stable keeps the light green
// throughout.
func TestASlowerCanaryTurnsTheLightRed(t *testing.T) {
	integration(t)
	for _, tt := range []struct {
		name           string
		stable, canary time.Duration
		red            bool
	}{
		{"five times slower", 4 * time.Millisecond, 20 * time.Millisecond, true},
		{"as fast", 10 * time.Millisecond, 10 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newAppliance(t)
			v1 := testkit.StartBackend(t, "v1", testkit.Delay(tt.stable))
			v2 := testkit.StartBackend(t, "v2", testkit.Delay(tt.canary))
			a.writeConfig(withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
				"latency_ratio = 2", "min_requests = 20"))
			p := a.start()
			red := false
			for range 6 {
				if n := load(t, a.listen, 100); n != 0 {
					t.Fatalf("%d of 100 requests failed", n)
				}
				if st := judgedPast(t, a.socket, time.Now(), 1); st.LEDs.Canary == "red" {
					red = true
					if !strings.Contains(st.Verdict.Reason, "slow answers") || !strings.Contains(st.Verdict.Reason, "the stable's p90") {
						t.Errorf("the reason does not say what was slow: %q", st.Verdict.Reason)
					}
					break
				}
			}
			if red != tt.red {
				t.Errorf("canary %v against stable %v: light red %v, want %v; verdict %+v",
					tt.canary, tt.stable, red, tt.red, getStatus(t, a.socket).Verdict)
			}
			p.stop()
		})
	}
}

// TestAddingAndRemovingAStableMovesNoUser: editing the stable instances
// keeps every sticky user on their version, and no request fails. The
// canary's share is its step's, so the edit does not change it (without
// steps it is the share of the weights, which an added stable lowers).
func TestAddingAndRemovingAStableMovesNoUser(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	s1, s2, c := testkit.StartBackend(t, "s1"), testkit.StartBackend(t, "s2"), testkit.StartBackend(t, "c1")
	sticky := []string{`sticky_header = "X-User-ID"`, "steps = [25]"}
	one := withCanary(a.config("v2", upstream{s1, 10, "stable"}, upstream{c, 5, "canary"}), sticky...)
	two := withCanary(a.config("v2", upstream{s1, 10, "stable"}, upstream{s2, 10, "stable"}, upstream{c, 5, "canary"}), sticky...)
	a.writeConfig(one)
	p := a.start()

	version := func(names []string) []bool {
		canary := make([]bool, len(names))
		for i, n := range names {
			canary[i] = n == "c1"
		}
		return canary
	}
	before := version(users(t, a.listen, 300))
	for i, cfg := range []string{two, one} {
		stop := make(chan struct{})
		failures := make(chan int)
		go func() {
			failed := 0
			for {
				select {
				case <-stop:
					failures <- failed
					return
				default:
				}
				failed += load(t, a.listen, 16)
			}
		}()
		gen := getStatus(t, a.socket).Config.Generation
		a.writeConfig(cfg)
		waitStatus(t, a.socket, "the edit applied", func(s admin.Status) bool { return s.Config.Generation > gen })
		close(stop)
		if n := <-failures; n != 0 {
			t.Errorf("edit %d: %d requests failed during the reload", i+1, n)
		}
		after := version(users(t, a.listen, 300))
		for u := range before {
			if before[u] != after[u] {
				t.Errorf("edit %d: user-%d moved between versions", i+1, u)
			}
		}
	}
	p.stop()
}
