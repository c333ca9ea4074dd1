package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// checkedBackend answers "/healthz" with 503 until it is made healthy, and
// every other path with its name, counting those requests.
type checkedBackend struct {
	*testkit.Server
	name    string
	healthy atomic.Bool
	hits    atomic.Int64
}

func startCheckedBackend(t *testing.T, name string) *checkedBackend {
	t.Helper()
	b := &checkedBackend{name: name}
	b.Server = testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !b.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.hits.Add(1)
		io.WriteString(w, name)
	}))
	return b
}

func TestACanaryJoinsWhenItsHealthCheckPassesAndRampsUpOverSlowStart(t *testing.T) {
	integration(t)
	v1 := testkit.StartBackend(t, "v1")
	v2 := startCheckedBackend(t, "v2")
	a := newAppliance(t)
	// Equal weights: without slow_start the canary would get half.
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}) + fmt.Sprintf(`
[[upstream]]
name = "v2"
url = "http://%s"
weight = 10
role = "canary"
health_path = "/healthz"
health_interval = "100ms"
slow_start = "20s"
`, v2.Addr()))
	p := a.start()
	defer p.stop()

	if got := sequence(t, a.listen, 50); count(got, "v2") != 0 || v2.hits.Load() != 0 {
		t.Fatalf("while its health path answers 503 the canary got %d of 50 requests", v2.hits.Load())
	}

	v2.healthy.Store(true)
	waitStatus(t, a.socket, "v2 healthy after its checks pass", func(st admin.Status) bool {
		i := slices.IndexFunc(st.Upstreams, func(u admin.Upstream) bool { return u.Name == "v2" })
		return i >= 0 && st.Upstreams[i].Healthy
	})
	// Over its first second or so it competes with weight 1 against 10.
	got := count(sequence(t, a.listen, 200), "v2")
	if got == 0 || got >= 50 {
		t.Errorf("the first 200 requests after the canary joined: %d to it, want some but well below its weight's 100", got)
	}
}
