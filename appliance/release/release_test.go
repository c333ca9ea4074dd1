package release

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// memStore is a Store in memory, as a fleet's shared store would be one
// more implementation of it.
type memStore struct {
	mu       sync.Mutex
	latch    state.Latch
	rollout  state.Rollout
	live     state.Live
	evidence *analysis.Evidence
	saves    int
}

func (m *memStore) Save(l state.Latch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latch, m.saves = l, m.saves+1
	return nil
}
func (m *memStore) LoadRollout() state.Rollout        { return m.rollout }
func (m *memStore) SaveRollout(r state.Rollout) error { m.rollout = r; return nil }
func (m *memStore) LoadLive() state.Live              { return m.live }
func (m *memStore) SaveLive(l state.Live) error       { m.live = l; return nil }
func (m *memStore) LoadEvidence() (analysis.Evidence, bool) {
	if m.evidence == nil {
		return analysis.Evidence{}, false
	}
	return *m.evidence, true
}
func (m *memStore) SaveEvidence(e analysis.Evidence) error { m.evidence = &e; return nil }

// memReports are incident reports in memory.
type memReports struct {
	mu      sync.Mutex
	reports []incident.Report
}

func (r *memReports) Write(rep incident.Report, keep int, maxBytes int64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
	return "mem:" + rep.ID, nil
}

func (r *memReports) List() ([]incident.Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var list []incident.Summary
	for _, rep := range r.reports {
		list = append(list, incident.Summary{Header: rep.Header})
	}
	return list, nil
}

func (r *memReports) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reports)
}

// lights remembers what the panel was told to show.
type lights struct{ status, canary led.Pattern }

func (l *lights) Show(status, canary led.Pattern) { l.status, l.canary = status, canary }

type noEngine struct{}

func (noEngine) Prepare(*route.Plan)         {}
func (noEngine) Retire(old, cur *route.Plan) {}

// rig is a Controller on fakes, with a config of a stable and a canary.
type rig struct {
	*Controller
	store   *memStore
	reports *memReports
	lights  *lights
}

func newRig(t *testing.T, store *memStore, reports *memReports) *rig {
	t.Helper()
	return newRigIn(t, store, reports, nil)
}

// newRigIn is newRig in a fleet whose evidence pool is.
func newRigIn(t *testing.T, store *memStore, reports *memReports, pool Fleet) *rig {
	t.Helper()
	r := &rig{store: store, reports: reports, lights: &lights{}}
	r.Controller = New(Deps{Router: route.NewRouter(nil), Engine: noEngine{}, Store: store, Lights: r.lights,
		Reports: reports, Marks: history.New(), Journal: journal.New(100, 0), Log: slog.New(slog.DiscardHandler),
		Fleet: pool}, store.latch)
	r.Configure(testConfig("v2"), time.Now())
	return r
}

// testConfig is a config with a stable and a canary upstream of version.
func testConfig(version string) *config.Config {
	u := func(name string, role config.Role, weight int) config.Upstream {
		return config.Upstream{Name: name, URL: &url.URL{Scheme: "http", Host: "127.0.0.1:9"}, Weight: weight, Role: role,
			MaxFails: 1, FailTimeout: 10 * time.Second}
	}
	return &config.Config{Upstreams: []config.Upstream{u("v1", config.Stable, 10), u("v2", config.Canary, 5)},
		Canary: config.CanaryPolicy{Version: version, FalseAlarm: 0.01, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20,
			Window: 30 * time.Second, LatencyRatio: 1.5, LatencyFloor: time.Millisecond, Promote: "manual"},
		Incidents: config.Incidents{Keep: 10, MaxBytes: 1 << 20}, Digest: [32]byte{byte(len(version))}}
}

func TestAPressRollsBackAndALongOneResumes(t *testing.T) {
	r := newRig(t, &memStore{}, &memReports{})
	if err := r.Press(false); err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if r.store.latch.Mode != state.RolledBack || r.store.latch.Cause != state.CauseButton || r.lights.canary != led.RedBlink {
		t.Errorf("after a press: latch %+v, canary light %s; want rolled back by the button, red blinking", r.store.latch, r.lights.canary)
	}
	if r.reports.count() != 1 {
		t.Errorf("%d incident reports, want 1", r.reports.count())
	}
	if err := r.Press(true); err != nil {
		t.Fatal(err)
	}
	if r.store.latch.Latched() || r.lights.canary != led.Green {
		t.Errorf("after a long press: latch %+v, canary light %s; want none, green", r.store.latch, r.lights.canary)
	}
}

// TestARollbackWhoseReportAKillLostIsReportedOnce: the store kept a rollback
// but no report: taking the release up writes the report, once.
func TestARollbackWhoseReportAKillLostIsReportedOnce(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	store := &memStore{latch: state.Latch{Mode: state.RolledBack, Version: "v2", Cause: state.CauseButton, At: at},
		live: state.Live{Version: "v2", Since: at.Add(-time.Hour)}}
	reports := &memReports{}
	newRig(t, store, reports)
	if reports.count() != 1 || !strings.Contains(reports.reports[0].Note, "before its report was written") ||
		!reports.reports[0].Started.Equal(at.Add(-time.Hour)) {
		t.Fatalf("reports %+v: want the one recovered, started an hour before", reports.reports)
	}
	newRig(t, store, reports)
	if reports.count() != 1 {
		t.Errorf("%d reports after a second start, want still 1", reports.count())
	}
}

// TestTheVerdictIsTakenUpFromTheStore: a release judged bad before a
// restart is red after it, and a new version starts it afresh.
func TestTheVerdictIsTakenUpFromTheStore(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	bad := analysis.NewEvidence("v2", since, policyOf(testConfig("v2")))
	bad.BadAt, bad.BadTest = since.Add(time.Second), "errors"
	store := &memStore{live: state.Live{Version: "v2", Since: since}, evidence: &bad}
	r := newRig(t, store, &memReports{})
	if st := r.Status(time.Now()); st.Verdict == nil || st.Verdict.State != analysis.Bad || r.lights.canary != led.Red {
		t.Fatalf("after taking up a bad release: status %+v, light %s; want bad, red", st.Verdict, r.lights.canary)
	}
	r.Configure(testConfig("v3"), time.Now())
	if st := r.Status(time.Now()); st.Verdict.State == analysis.Bad || r.lights.canary != led.Green || store.live.Version != "v3" {
		t.Errorf("a new version: verdict %v, light %s, live %+v; want judged afresh", st.Verdict.State, r.lights.canary, store.live)
	}
}

// TestOperationsAreSerialised: rollbacks, resumes and ticks from many
// goroutines leave a latch and lights that agree (run with -race).
func TestOperationsAreSerialised(t *testing.T) {
	r := newRig(t, &memStore{}, &memReports{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				switch (i + j) % 3 {
				case 0:
					r.Rollback(state.CauseCommand)
				case 1:
					r.Resume(state.CauseCommand)
				default:
					r.Tick(time.Now())
				}
			}
		})
	}
	wg.Wait()
	r.Wait()
	st := r.Status(time.Now())
	want := map[state.Mode]led.Pattern{state.RolledBack: led.RedBlink, state.Canary: led.Green}[st.State]
	if r.lights.canary != want || st.LEDs.Canary != want {
		t.Errorf("state %s: light %s, status says %s; want %s", st.State, r.lights.canary, st.LEDs.Canary, want)
	}
	if got := fmt.Sprint(r.store.latch.Mode == state.RolledBack); got != fmt.Sprint(st.State == state.RolledBack) {
		t.Errorf("the saved latch %+v disagrees with the state %s", r.store.latch, st.State)
	}
}
