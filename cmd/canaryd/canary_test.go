package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startFailing serves 500 to every request, counting them, as a broken v2.
func startFailing(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		http.Error(w, name+" is broken", http.StatusInternalServerError)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// statuses sends n requests and returns the status codes.
func statuses(t *testing.T, addr string, n int) []int {
	t.Helper()
	codes := make([]int, n)
	for i := range codes {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[i] = resp.StatusCode
	}
	return codes
}

// eventually polls the status until ok holds, for up to 10 s: a bound
// for a hang, not a target; the machines CI runs on are shared.
func eventually(t *testing.T, socket string, what string, ok func(status) bool) status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := getStatus(t, socket)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s; status %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFailingCanaryTurnsTheLightRed(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := startBackend(t, "v1", 0, nil), startFailing(t, "v2")
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	p := a.start()

	statuses(t, a.listen, 90)
	st := eventually(t, a.socket, "canary light red", func(s status) bool { return s.LEDs.Canary == "red" })
	if st.State != "canary" {
		t.Errorf("auto_rollback is off but the state is %q", st.State)
	}
	if v2.hits.Load() != 30 {
		t.Errorf("the canary got %d of 90 requests, want 30", v2.hits.Load())
	}
	p.stop()
}

func TestAutoRollbackStopsTheErrors(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := startBackend(t, "v1", 0, nil), startFailing(t, "v2")
	cfg := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"})
	cfg = strings.Replace(cfg, "[canary]\n", "[canary]\nauto_rollback = true\n", 1)
	a.writeConfig(cfg)
	p := a.start()

	statuses(t, a.listen, 90)
	st := eventually(t, a.socket, "automatic rollback", func(s status) bool { return s.State == "rolled_back" })
	if st.LEDs.Canary != "red-blink" {
		t.Errorf("canary light %q after the rollback, want red-blink", st.LEDs.Canary)
	}
	hits := v2.hits.Load()
	for i, code := range statuses(t, a.listen, 60) {
		if code != http.StatusOK {
			t.Fatalf("request %d after the automatic rollback: %d", i, code)
		}
	}
	if v2.hits.Load() != hits {
		t.Errorf("the canary got %d requests after the rollback", v2.hits.Load()-hits)
	}
	if !strings.Contains(p.stderr.String(), "CAUSE=auto") || !strings.Contains(p.stderr.String(), "errors (") {
		t.Errorf("the rollback's log line lacks its cause and numbers:\n%s", p.stderr)
	}

	// A resume re-arms with a clean window: the errors that caused the
	// rollback do not roll it back again.
	mustCtl(t, a.socket, "resume")
	time.Sleep(4 * judgeEvery)
	if st := getStatus(t, a.socket); st.State != "canary" || st.LEDs.Canary != "green" {
		t.Errorf("after resume: state %q, canary light %q; want canary, green", st.State, st.LEDs.Canary)
	}
	p.stop()
}

// judgeEvery is how often canaryd judges the canary (appliance/daemon).
const judgeEvery = 250 * time.Millisecond

func TestRollbackSurvivesAConfigWithoutCanary(t *testing.T) {
	integration(t)
	a, v1, v2 := seed(t)
	p := a.start()
	mustCtl(t, a.socket, "rollback")
	a.writeConfig(a.config("", upstream{v1, 10, "stable"}))
	eventually(t, a.socket, "canary removed", func(s status) bool { return s.State == "stable" })
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	st := eventually(t, a.socket, "canary back", func(s status) bool { return len(s.Upstreams) == 2 })
	if st.State != "rolled_back" {
		t.Fatalf("the same canary version came back %q, want still rolled_back", st.State)
	}
	p.stop()
}
