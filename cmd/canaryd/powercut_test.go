package main

// Power cuts: canaryd killed at random moments while it writes its state,
// and state files a failing SD card tore anyway.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/release"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// adminAPI is the admin API on the unix socket, spoken from the test
// itself: the kill loop sends commands faster than a canaryctl process
// starts.
func adminAPI(socket string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// post sends POST /v1/<op> and returns the status code, 0 when the daemon
// could not be reached or did not answer.
func post(c *http.Client, op string) int {
	resp, err := c.Post("http://canaryd/v1/"+op, "", nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// apiStatus is GET /v1/status, false until the daemon answers it.
func apiStatus(c *http.Client) (admin.Status, bool) {
	var st admin.Status
	resp, err := c.Get("http://canaryd/v1/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil
}

// rawDaemon is a canaryd the test kills: started without the harness's
// wait through canaryctl, and never reported one by one, as 200 of them
// would drown a failure.
type rawDaemon struct {
	cmd    *exec.Cmd
	stderr *testkit.SyncBuffer
	done   chan struct{}
}

func (a *appliance) startRaw(t *testing.T) *rawDaemon {
	t.Helper()
	d := &rawDaemon{
		cmd:    exec.Command(filepath.Join(bin, "canaryd"), "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim"),
		stderr: new(testkit.SyncBuffer),
		done:   make(chan struct{}),
	}
	d.cmd.Stderr, d.cmd.Env = d.stderr, env()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	return d
}

// ready waits until the daemon answers its status, at most 20 s.
func (d *rawDaemon) ready(t *testing.T, c *http.Client) admin.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, ok := apiStatus(c); ok {
			return st
		}
		select {
		case <-d.done:
			t.Fatalf("canaryd exited before it was ready: %v\n%s", d.cmd.ProcessState, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("canaryd not ready within 20 s\n%s", d.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill sends SIGKILL, the power cut as the process sees it, and waits for
// the exit.
func (d *rawDaemon) kill(t *testing.T) {
	t.Helper()
	d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("canaryd did not die of SIGKILL within 10 s")
	}
}

// stateFiles is what the state directory holds, by path relative to it:
// latch.json, rollout.json, canary.json and incidents/<id>.json, each
// checked for being whole and of its shape; corrupt and temporary list
// the files kept aside and the temporary files of an interrupted write.
type stateFiles struct {
	whole              map[string]bool
	corrupt, temporary []string
}

func readState(t *testing.T, dir string) stateFiles {
	t.Helper()
	f := stateFiles{whole: map[string]bool{}}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".corrupt"):
			f.corrupt = append(f.corrupt, rel)
			return nil
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-"):
			f.temporary = append(f.temporary, rel)
			return nil
		case rel == "journal" || strings.HasPrefix(rel, "journal"+string(filepath.Separator)):
			return nil // the journal file: appended to, not a state file
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if err := checkShape(rel, data); err != nil {
			t.Errorf("%s is not whole: %v\n%q", rel, err, data)
			return nil
		}
		f.whole[rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkShape says what is wrong with data as the content of the state
// file rel, nil when it is a whole file of its kind.
func checkShape(rel string, data []byte) error {
	strict := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return err
		}
		if dec.More() {
			return errors.New("more after the value")
		}
		return nil
	}
	switch {
	case rel == state.FileName:
		var l state.Latch
		if err := strict(&l); err != nil {
			return err
		}
		if l.Mode != "" && l.Mode != state.RolledBack || l.Mode == state.RolledBack && l.Version != "v2" {
			return fmt.Errorf("latch %+v: want none or a rollback of v2", l)
		}
	case rel == state.RolloutFileName:
		var r state.Rollout
		if err := strict(&r); err != nil {
			return err
		}
		if r.Version != "v2" || r.Step != 0 || r.Percent != 10 || r.Entered.IsZero() {
			return fmt.Errorf("rollout %+v: want v2 at its first step", r)
		}
	case rel == state.LiveFileName:
		var l state.Live
		if err := strict(&l); err != nil {
			return err
		}
		if l.Version != "v2" || l.Since.IsZero() {
			return fmt.Errorf("canary.json %+v: want v2 and a time", l)
		}
	case rel == state.EvidenceFileName:
		var e analysis.Evidence
		if err := strict(&e); err != nil {
			return err
		}
		if e.Version != "v2" || !e.Valid() {
			return fmt.Errorf("evidence of %q, valid %v: want v2's, whole", e.Version, e.Valid())
		}
	case filepath.Dir(rel) == incident.DirName && filepath.Ext(rel) == ".json":
		var r incident.Report
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if id := strings.TrimSuffix(filepath.Base(rel), ".json"); r.ID != id || r.Version != "v2" || r.RolledBack.IsZero() {
			return fmt.Errorf("report id %q, version %q, rolled back %v: want %s, v2, a time", r.ID, r.Version, r.RolledBack, id)
		}
	default:
		return errors.New("a file canaryd does not write")
	}
	return nil
}

// powerCutConfig is a canary with a rollout, so that a rollback writes the
// latch and an incident report, and a resume the latch, rollout.json and
// canary.json; few reports are kept, so that pruning runs too.
func powerCutConfig(a *appliance, v1, v2 *testkit.Backend) string {
	return withCanary(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}),
		"steps = [10, 50]", `step_interval = "1h"`) + "\n[incidents]\nkeep = 10\n"
}

// TestSIGKILLWhileWritingStateNeverTearsIt: canaryd is killed with SIGKILL
// 200 times, a few to tens of milliseconds into a storm of rollbacks and
// resumes, which write the latch, the rollout, canary.json and incident
// reports. After every kill each file is whole, the old version or the new,
// and none that was there is gone; every restart keeps none aside, removes
// what an interrupted write left, shows the state the latch file says, and
// serves.
func TestSIGKILLWhileWritingStateNeverTearsIt(t *testing.T) {
	integration(t)
	const kills = 200
	budget := time.Now().Add(90 * time.Second)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(powerCutConfig(a, v1, v2))
	api := adminAPI(a.socket)
	seen := map[string]bool{} // the state files written so far
	var midWrite, done, commands int
	for i := range kills {
		if time.Now().After(budget) {
			break
		}
		d := a.startRaw(t)
		st := d.ready(t, api)
		after := readState(t, a.stateDir)
		if len(after.corrupt) > 0 || len(after.temporary) > 0 {
			t.Fatalf("kill %d: the restart found torn files, kept aside %v, or left temporary files %v\n%s",
				i, after.corrupt, after.temporary, d.stderr)
		}
		var latch state.Latch
		if data, err := os.ReadFile(filepath.Join(a.stateDir, state.FileName)); err == nil {
			json.Unmarshal(data, &latch)
		}
		if want := latch.ModeFor(true); st.State != want {
			t.Fatalf("kill %d: state %q after the restart, want %q as latch.json says: %+v", i, st.State, want, latch)
		}
		if b := get(t, a.listen); b != "v1" && b != "v2" {
			t.Fatalf("kill %d: the proxy answered %q", i, b)
		}
		api.CloseIdleConnections()

		// The storm: rollback, resume, rollback, ... as fast as the daemon
		// acts, killed at a random moment after the first command.
		started := make(chan struct{})
		var wg sync.WaitGroup
		var sent int
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops := []string{"rollback", "resume"}
			if st.State == "rolled_back" {
				ops[0], ops[1] = ops[1], ops[0]
			}
			for n := 0; ; n++ {
				if n == 1 {
					close(started)
				}
				if post(api, ops[n%2]) == 0 {
					if n == 0 {
						close(started)
					}
					return // killed
				}
				sent++
			}
		}()
		<-started
		time.Sleep(time.Millisecond + rand.N(40*time.Millisecond))
		d.kill(t)
		wg.Wait()
		commands += sent
		api.CloseIdleConnections()

		got := readState(t, a.stateDir)
		if len(got.temporary) > 0 {
			midWrite++
		}
		for rel := range seen {
			if !got.whole[rel] && filepath.Dir(rel) != incident.DirName { // reports are pruned
				t.Fatalf("kill %d: %s was there, and is gone or torn after the kill", i, rel)
			}
		}
		for rel := range got.whole {
			seen[rel] = true
		}
		if t.Failed() {
			t.Fatalf("kill %d: torn state\n%s", i, d.stderr)
		}
		done++
	}
	for _, name := range []string{state.FileName, state.RolloutFileName, state.LiveFileName} {
		if !seen[name] {
			t.Errorf("%s was never written: the storm did not write what it is meant to", name)
		}
	}
	if done < kills/4 {
		t.Errorf("only %d kills within the 90 s budget, want %d", done, kills)
	}
	t.Logf("%d kills after %d commands; %d of them left a temporary file (killed mid-write), all removed at the restart; every file whole",
		done, commands, midWrite)
}

// TestGarbageStateFilesStartRolledBack: a state file that a failing SD
// card tore or filled with garbage is kept aside as *.corrupt with a
// journal entry, and canaryd starts rolled back, never the canary, until a
// resume; an unreadable incident report is kept aside and listed nowhere,
// and `canaryctl incidents` lists the others.
func TestGarbageStateFilesStartRolledBack(t *testing.T) {
	integration(t)
	half := func(b []byte) []byte { return b[:len(b)/2] }
	garbage := func([]byte) []byte { return []byte("\x00\xff\xfe\x13 not json at all") }
	empty := func([]byte) []byte { return nil }
	const report = "<report>" // the one incident report, whatever its id
	for _, tt := range []struct {
		name       string
		files      []string
		spoil      func([]byte) []byte
		rolledBack bool
	}{
		{"latch torn", []string{state.FileName}, half, true},
		{"latch garbage", []string{state.FileName}, garbage, true},
		{"rollout torn", []string{state.RolloutFileName}, half, true},
		{"rollout empty", []string{state.RolloutFileName}, empty, true},
		{"canary.json garbage", []string{state.LiveFileName}, garbage, true},
		{"evidence torn", []string{state.EvidenceFileName}, half, true},
		{"incident report torn", []string{report}, half, false},
		{"all of them garbage", []string{state.FileName, state.RolloutFileName, state.LiveFileName, state.EvidenceFileName, report}, garbage, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newAppliance(t)
			v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
			a.writeConfig(powerCutConfig(a, v1, v2))
			p := a.start()
			mustCtl(t, a.socket, "rollback")
			testkit.Eventually(t, 10*time.Second, "an incident report", func() bool { return len(incidentList(t, a.socket)) == 1 })
			mustCtl(t, a.socket, "resume")
			id := incidentList(t, a.socket)[0].ID
			p.stop()

			for _, name := range tt.files {
				if name == report {
					name = filepath.Join(incident.DirName, id+".json")
				}
				path := filepath.Join(a.stateDir, name)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tt.spoil(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p = a.start()
			st := getStatus(t, a.socket)
			if tt.rolledBack {
				requireRolledBack(t, st)
				if st.Latch == nil || st.Latch.Cause != state.CauseUnreadable || !strings.Contains(st.Message, "unreadable") {
					t.Errorf("latch %+v, message %q; want cause %q, said", st.Latch, st.Message, state.CauseUnreadable)
				}
				requireNoCanary(t, a, v2, 20)
			} else {
				requireCanary(t, st)
			}
			for _, name := range tt.files {
				if name == report {
					name = filepath.Join(incident.DirName, id+".json")
				}
				if _, err := os.Stat(filepath.Join(a.stateDir, name+".corrupt")); err != nil {
					t.Errorf("%s was not kept aside: %v", name, err)
				}
				// The entry was written before canaryd answered, but the
				// pipe from its stderr may not have delivered it yet.
				testkit.Eventually(t, 5*time.Second, "a journal entry naming "+name+".corrupt", func() bool {
					return strings.Contains(p.stderr.String(), name+".corrupt")
				})
			}
			testkit.Eventually(t, 5*time.Second, "a journal entry per file kept aside", func() bool {
				return strings.Count(p.stderr.String(), "MESSAGE_ID="+release.MsgUnreadable) >= len(tt.files)
			})
			if n := strings.Count(p.stderr.String(), "MESSAGE_ID="+release.MsgUnreadable); n != len(tt.files) {
				t.Errorf("%d journal entries with MESSAGE_ID=%s, want %d, one per file", n, release.MsgUnreadable, len(tt.files))
			}
			if list := incidentList(t, a.socket); slicesContainsID(list, id) == contains(tt.files, report) {
				t.Errorf("canaryctl incidents lists %+v: the report %s listed %v, want %v", list, id, !contains(tt.files, report), !contains(tt.files, report))
			}
			if tt.rolledBack {
				mustCtl(t, a.socket, "resume")
				if st := getStatus(t, a.socket); st.State != "canary" || st.Rollout == nil || st.Rollout.Step != 0 {
					t.Errorf("after a resume: state %q, rollout %+v; want the canary at its first step", st.State, st.Rollout)
				}
			}
			p.stop()
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func slicesContainsID(list []listed, id string) bool {
	for _, l := range list {
		if l.ID == id {
			return true
		}
	}
	return false
}
