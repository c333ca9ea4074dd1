package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestSplitFollowsWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []int // of backends a (stable), b, c (canary)
		want    string
	}{
		// The seed demo: v1 weight 10, v2 weight 5.
		{"demo 10:5", []int{10, 5}, "a b a a b a a b a a b a a b a"},
		// The worked example in nginx's ngx_http_upstream_round_robin.c.
		{"nginx 5:1:1", []int{5, 1, 1}, "a a b a c a a a a b a c a a"},
		{"even", []int{1, 1, 1}, "a b c a b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ups []config.Upstream
			for i, w := range tt.weights {
				name := string(rune('a' + i))
				role := config.Canary
				if i == 0 {
					role = config.Stable
				}
				ups = append(ups, upstream(name, role, w, testkit.StartBackend(t, name).Addr()))
			}
			r := startProxy(t, defaults, ups...)
			c := newClient(t)
			var got []string
			for range strings.Count(tt.want, " ") + 1 {
				status, body := get(t, c, r.url("/"))
				if status != http.StatusOK {
					t.Fatalf("status %d, body %q", status, body)
				}
				got = append(got, body)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got  %s\nwant %s", g, tt.want)
			}
		})
	}
}

func TestRollbackModeSendsNothingToCanary(t *testing.T) {
	r := startProxy(t, defaults,
		stable("v1", 10, testkit.StartBackend(t, "v1").Addr()),
		canary("v2", 5, testkit.StartBackend(t, "v2").Addr()))
	c := newClient(t)
	count := func(n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			status, body := get(t, c, r.url("/"))
			if status != http.StatusOK {
				t.Fatalf("status %d, body %q", status, body)
			}
			seen[body]++
		}
		return seen
	}

	r.router.SetMode(state.RolledBack)
	if seen := count(50); seen["v2"] != 0 || seen["v1"] != 50 {
		t.Errorf("rolled back: %v, want all 50 on v1", seen)
	}
	r.router.SetMode(state.Promoted)
	if seen := count(50); seen["v2"] != 50 {
		t.Errorf("promoted: %v, want all 50 on v2", seen)
	}
	r.router.SetMode(state.Canary)
	if seen := count(15); seen["v1"] != 10 || seen["v2"] != 5 {
		t.Errorf("canary again: %v, want v1 10 and v2 5", seen)
	}
}

// A rollback is a switch for new requests: one in flight on the canary
// finishes there.
func TestRollbackLetsRequestsInFlightFinish(t *testing.T) {
	started, release := make(chan struct{}), newGate()
	defer release.open()
	slow := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		release.wait()
		w.Write([]byte("v2"))
	}))
	r := startProxy(t, defaults,
		canary("v2", 1, slow.Addr()),
		stable("v1", 1, testkit.StartBackend(t, "v1").Addr()))

	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, err := newClient(t).Get(r.url("/"))
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			b = []byte(err.Error())
		}
		done <- result{resp.StatusCode, string(b)}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the canary")
	}
	r.router.SetMode(state.RolledBack)
	c := newClient(t)
	for range 10 {
		if _, body := get(t, c, r.url("/")); body != "v1" {
			t.Fatalf("a new request after the rollback went to %q", body)
		}
	}
	release.open()
	select {
	case res := <-done:
		if res.status != http.StatusOK || res.body != "v2" {
			t.Errorf("the request in flight got %d %q, want 200 from v2", res.status, res.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight did not finish")
	}
}

// A reload publishes a new table; upstreams it keeps keep their pools, so
// their warm connections carry on.
func TestReloadKeepsWarmConnections(t *testing.T) {
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	r := startProxy(t, defaults, stable("v1", 1, v1.Addr()))
	c := newClient(t)
	for range 5 {
		get(t, c, r.url("/"))
	}

	cfg := &config.Config{Upstreams: []config.Upstream{
		stable("v1", 1, v1.Addr()), canary("v2", 1, v2.Addr()),
	}}
	next := route.NewPlan(cfg, state.Canary, r.router.Plan())
	r.proxy.Prepare(next)
	old := r.router.Publish(next)
	r.proxy.Retire(old, next)

	seen := map[string]int{}
	for range 10 {
		_, body := get(t, c, r.url("/"))
		seen[body]++
	}
	if seen["v1"] != 5 || seen["v2"] != 5 {
		t.Errorf("after the reload: %v, want 5 each", seen)
	}
	if n := v1.Conns(); n != 1 {
		t.Errorf("v1 saw %d connections across the reload, want 1", n)
	}
	if n := r.requests(t, "v1"); n != 10 {
		t.Errorf("v1 counted %d requests, want 10: its counters survive the reload", n)
	}
}

// Many clients at once while the mode flips: every request is answered and
// the race detector finds nothing.
func TestConcurrentRequestsWhileModeChanges(t *testing.T) {
	r := startProxy(t, defaults,
		stable("v1", 10, testkit.StartBackend(t, "v1").Addr()),
		canary("v2", 5, testkit.StartBackend(t, "v2").Addr()))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		modes := []state.Mode{state.RolledBack, state.Promoted, state.Canary}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				r.router.SetMode(modes[i%len(modes)])
			}
		}
	})
	var clients sync.WaitGroup
	for range 8 {
		clients.Go(func() {
			c := newClient(t)
			for range 50 {
				resp, err := c.Get(r.url("/"))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
	if got := r.requests(t, "v1") + r.requests(t, "v2"); got != 400 {
		t.Errorf("%d requests counted, want 400", got)
	}
}

// Users by key, through the proxy: the header or else the cookie keeps a
// user on one version, a tester's override picks one, a rollback moves
// everyone back.
func TestStickyUsersStayOnTheirVersion(t *testing.T) {
	ups := []config.Upstream{
		stable("v1", 10, testkit.StartBackend(t, "v1").Addr()),
		canary("v2", 5, testkit.StartBackend(t, "v2").Addr()),
	}
	r := startProxy(t, defaults, ups...)
	cfg := &config.Config{Upstreams: ups, Canary: config.CanaryPolicy{
		Version: "v2", StickyHeader: "X-User-ID", StickyCookie: "uid", OverrideHeader: "X-Canary"}}
	next := route.NewPlan(cfg, state.Canary, r.router.Plan())
	r.proxy.Prepare(next)
	r.router.Publish(next)

	c := newClient(t)
	send := func(header, value string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, r.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if header == "Cookie" {
			req.AddCookie(&http.Cookie{Name: "uid", Value: value})
		} else if header != "" {
			req.Header.Set(header, value)
		}
		status, body := do(t, c, req)
		if status != http.StatusOK {
			t.Fatalf("status %d, body %q", status, body)
		}
		return body
	}
	users := map[string]int{}
	for u := range 60 {
		key := "user-" + string(rune('A'+u%26)) + string(rune('a'+u/26))
		first := send("X-User-ID", key)
		users[first]++
		for range 4 {
			if got := send("X-User-ID", key); got != first {
				t.Fatalf("user %s saw %s, then %s", key, first, got)
			}
		}
		if got := send("Cookie", key); got != first {
			t.Fatalf("user %s by cookie saw %s, by header %s: one key, one bucket", key, got, first)
		}
	}
	if users["v1"] == 0 || users["v2"] == 0 {
		t.Errorf("60 users: %v; want both versions to have some", users)
	}
	for range 5 {
		if got := send("X-Canary", "always"); got != "v2" {
			t.Fatalf("override always reached %s", got)
		}
		if got := send("X-Canary", "never"); got != "v1" {
			t.Fatalf("override never reached %s", got)
		}
	}
	r.router.SetMode(state.RolledBack)
	for u := range 30 {
		if got := send("X-User-ID", "user-"+string(rune('A'+u))); got != "v1" {
			t.Fatalf("rolled back, a user reached %s", got)
		}
	}
	if got := send("X-Canary", "always"); got != "v1" {
		t.Fatalf("rolled back, override always reached %s", got)
	}
}
