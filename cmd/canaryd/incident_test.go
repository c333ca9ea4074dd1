package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// served is one request of the mixed run: its id, and who served it.
type served struct {
	id, method, backend string
}

// mixedRun sends n requests, GETs and POSTs in turn, each with its own
// X-Request-Id and a query string, and checks that every response carried
// its id back.
func mixedRun(t *testing.T, addr, prefix string, n int) []served {
	t.Helper()
	out := make([]served, n)
	for i := range out {
		method := http.MethodGet
		var body io.Reader
		if i%2 == 1 {
			method, body = http.MethodPost, strings.NewReader(`{"order":`+fmt.Sprint(i)+`}`)
		}
		id := fmt.Sprintf("%s-%04d", prefix, i)
		req, _ := http.NewRequest(method, "http://"+addr+"/orders?secret=hunter2&n="+fmt.Sprint(i), body)
		req.Header.Set("X-Request-Id", id)
		req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i%7))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); got != id {
			t.Errorf("%s %d: the response carried X-Request-Id %q, want %q", method, i, got, id)
		}
		out[i] = served{id, method, strings.TrimSpace(string(b))}
	}
	return out
}

type listed struct {
	ID         string `json:"id"`
	Cause      string `json:"cause"`
	Version    string `json:"version"`
	Started    string `json:"started"`
	RolledBack string `json:"rolled_back"`
}

func incidentList(t *testing.T, socket string) []listed {
	t.Helper()
	var list []listed
	if err := json.Unmarshal([]byte(mustCtl(t, socket, "incidents", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestARollbackWritesWhatTheCanaryTouched: the report names every POST
// the canary served by request id, none the stable served, and no query
// string; it survives a restart; a second rollback writes a second one.
func TestARollbackWritesWhatTheCanaryTouched(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}), `sticky_header = "X-User-ID"`))
	p := a.start()

	run := mixedRun(t, a.listen, "first", 60)
	mustCtl(t, a.socket, "rollback")
	var list []listed
	testkit.Eventually(t, 10*time.Second, "one incident report", func() bool { list = incidentList(t, a.socket); return len(list) == 1 })
	in := list[0]
	if in.Cause != "command" || in.Version != "v2" || in.Started == "" || in.RolledBack == "" {
		t.Errorf("listed %+v", in)
	}
	raw := mustCtl(t, a.socket, "incident", in.ID, "--json")
	if strings.Contains(raw, "secret") || strings.Contains(raw, "hunter2") || strings.Contains(raw, "?") {
		t.Errorf("a query string is in the report:\n%s", raw)
	}
	var report struct {
		Requests []struct {
			RequestID string `json:"request_id"`
			Method    string `json:"method"`
			Path      string `json:"path"`
			Status    int    `json:"status"`
			Time      string `json:"time"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(raw), &report); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, r := range run {
		if r.method == http.MethodPost && r.backend == "v2" {
			want[r.id] = true
		}
	}
	if len(want) == 0 {
		t.Fatal("the canary served no POST: the test proves nothing")
	}
	got := map[string]bool{}
	for _, r := range report.Requests {
		got[r.RequestID] = true
		if !want[r.RequestID] {
			t.Errorf("the report lists %s %s, which the canary did not serve as a POST", r.Method, r.RequestID)
		}
		if r.Method != http.MethodPost || r.Path != "/orders" || r.Status != http.StatusOK || r.Time == "" {
			t.Errorf("request %+v", r)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("the report lacks the canary's POST %s", id)
		}
	}
	if text := mustCtl(t, a.socket, "incident", in.ID); !strings.Contains(text, in.ID) || !strings.Contains(text, "v2") {
		t.Errorf("the text report lacks its id or version:\n%s", text)
	}
	if csv := mustCtl(t, a.socket, "incident", in.ID, "--csv"); strings.Count(csv, "\n") != len(want)+1 {
		t.Errorf("the CSV has %d lines for %d requests:\n%s", strings.Count(csv, "\n"), len(want), csv)
	}
	if !strings.Contains(p.stderr.String(), "INCIDENT="+in.ID) {
		t.Errorf("no journal entry for the incident:\n%s", p.stderr)
	}
	p.stop()

	p = a.start()
	if list := incidentList(t, a.socket); len(list) != 1 || list[0].ID != in.ID {
		t.Fatalf("after a restart: %+v", list)
	}
	mustCtl(t, a.socket, "resume")
	mixedRun(t, a.listen, "second", 20)
	mustCtl(t, a.socket, "rollback")
	testkit.Eventually(t, 10*time.Second, "a second incident report", func() bool { list = incidentList(t, a.socket); return len(list) == 2 })
	second := mustCtl(t, a.socket, "incident", list[0].ID, "--json")
	if strings.Contains(second, "first-") || !strings.Contains(second, "second-") {
		t.Errorf("the second report is not of the re-armed canary's requests alone:\n%s", second)
	}
	p.stop()
}
