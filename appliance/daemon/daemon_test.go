package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
	"github.com/canary-pi/canary-pi/gpio/led"
	"github.com/canary-pi/canary-pi/gpio/panel"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// handPanel is a panel whose presses the test sends itself, at a moment it
// knows: the debounced edge.
type handPanel struct {
	panel.Absent
	presses chan panel.Press
}

func (h *handPanel) Presses() <-chan panel.Press { return h.presses }

// started runs a daemon with a stable and a canary upstream (nothing
// listens on them: these tests never proxy) and the given panel.
func started(t testing.TB, p panel.Panel) *Daemon {
	t.Helper()
	return startedWith(t, p, func(string) {})
}

// startedWith is started with setup run on the config directory before
// the daemon starts.
func startedWith(t testing.TB, p panel.Panel, setup func(configDir string)) *Daemon {
	t.Helper()
	dir := t.TempDir()
	sock := testkit.SocketDir(t)
	cfg := fmt.Sprintf(`[proxy]
listen = "127.0.0.1:0"
[admin]
socket = %q
listen = ""
[canary]
version = "v2"
[[upstream]]
name = "v1"
url = "http://127.0.0.1:9"
weight = 10
role = "stable"
[[upstream]]
name = "v2"
url = "http://127.0.0.1:9"
weight = 5
role = "canary"
`, filepath.Join(sock, "admin.sock"))
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "conf", "canaryd.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	setup(filepath.Join(dir, "conf"))
	d, err := New(Options{ConfigDir: filepath.Join(dir, "conf"), StateDir: filepath.Join(dir, "state"),
		Panel: p, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// canaryPickable reports whether a new request could get the canary now.
func canaryPickable(d *Daemon) bool {
	plan := d.router.Plan()
	for range 3 { // 10:5 gives the canary one pick in three
		var tried swrr.Set
		if u := plan.Pick(&tried, time.Now()); u != nil && u.Role == "canary" {
			return true
		}
	}
	return false
}

// A canary with a health_path takes traffic only once its check passes,
// and leaves the rotation when it fails, while stable keeps serving.
func TestACanaryJoinsWhenItsHealthCheckPasses(t *testing.T) {
	var status atomic.Int32
	var checked atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checked.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer canary.Close()
	d := startedWith(t, panel.Absent{}, func(dir string) {
		path := filepath.Join(dir, "canaryd.toml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(data), `url = "http://127.0.0.1:9"
weight = 5`, fmt.Sprintf("url = %q\nweight = 5\nhealth_path = \"/healthz\"\nhealth_interval = \"100ms\"", canary.URL), 1)
		if text == string(data) {
			t.Fatal("the canary upstream was not rewritten")
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	healthy := func() bool { return d.Status().Upstreams[1].Healthy }
	testkit.Eventually(t, 10*time.Second, "three failed checks", func() bool { return checked.Load() >= 3 })
	if canaryPickable(d) || healthy() {
		t.Fatal("the canary takes traffic before its health check passed")
	}
	status.Store(http.StatusOK)
	testkit.Eventually(t, 10*time.Second, "the canary to join after two passed checks", func() bool { return canaryPickable(d) && healthy() })
	status.Store(http.StatusInternalServerError)
	testkit.Eventually(t, 10*time.Second, "the canary to leave after three failed checks", func() bool { return !canaryPickable(d) && !healthy() })
}

func TestButtonPressRollsBackAndLongPressResumes(t *testing.T) {
	hand := &handPanel{presses: make(chan panel.Press)}
	d := started(t, hand)
	hand.presses <- panel.Press{}
	testkit.Eventually(t, 10*time.Second, "the press to roll back", func() bool { return d.router.Plan().Mode == state.RolledBack })
	if canaryPickable(d) {
		t.Fatal("the canary can still be picked after the press")
	}
	if st := d.Status(); st.Latch == nil || st.Latch.Cause != "button" {
		t.Fatalf("latch %+v, want one caused by the button", st.Latch)
	}
	hand.presses <- panel.Press{} // a press during a rollback changes nothing
	hand.presses <- panel.Press{Long: true}
	testkit.Eventually(t, 10*time.Second, "the long press to resume", func() bool { return d.router.Plan().Mode == state.Canary })
}

func TestBootPartitionRefusalShowsUntilTheConfigChanges(t *testing.T) {
	const refusal = "/boot/firmware/canaryd refused, /etc/canaryd keeps its config: canaryd.toml:3: bad"
	var confDir string
	d := startedWith(t, panel.Absent{}, func(dir string) {
		confDir = dir
		if err := os.WriteFile(filepath.Join(dir, config.RefusedFile), []byte(refusal+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	st := d.Status()
	if st.Config.Error != refusal || st.LEDs.Status != led.GreenBlink {
		t.Fatalf("after a refused import: config.error %q, status LED %s; want the refusal and green-blink",
			st.Config.Error, st.LEDs.Status)
	}
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.Config.Error != refusal {
		t.Fatalf("a reload of the same directory cleared the refusal: config.error %q", st.Config.Error)
	}
	path := filepath.Join(confDir, "canaryd.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "weight = 10", "weight = 20", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.Config.Error != "" || st.LEDs.Status != led.Green {
		t.Fatalf("after a changed config applied: config.error %q, status LED %s; want none and green",
			st.Config.Error, st.LEDs.Status)
	}
}

// The guarantee the routing plan exists for: once Rollback returns, no new
// pick goes to a canary, while reloads publish new plans and requests pick
// from whichever plan is current.
func TestNoCanaryPickAfterRollbackWhileReloadsRace(t *testing.T) {
	var confDir string
	d := startedWith(t, panel.Absent{}, func(dir string) { confDir = dir })
	path := filepath.Join(confDir, "canaryd.toml")
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // reloads: the canary's weight moves between 1 and 9
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			text := strings.Replace(string(base), "weight = 5", fmt.Sprintf("weight = %d", 1+i%9), 1)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := d.Reload(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 2 { // load: picks from the current plan all along
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var tried swrr.Set
				plan := d.router.Plan()
				if u := plan.Pick(&tried, time.Now()); u != nil {
					plan.Done(u, false, time.Now())
				}
			}
		})
	}
	for round := range 50 {
		if err := d.Rollback(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			var tried swrr.Set
			if u := d.router.Plan().Pick(&tried, time.Now()); u != nil && u.Role == config.Canary {
				t.Fatalf("round %d: a pick after Rollback returned went to the canary %s", round, u.Name)
			}
		}
		if err := d.Resume(ctx, "test"); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}

// BenchmarkButtonToRollback measures the daemon's share of a button press:
// from the debounced press arriving to the moment no new request can pick
// the canary (the panel's share, edge to delivery, is the panel package.s
// BenchmarkPressDelivery). The latch's fsync comes after and is not in it.
func BenchmarkButtonToRollback(b *testing.B) {
	hand := &handPanel{presses: make(chan panel.Press)}
	d := started(b, hand)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		hand.presses <- panel.Press{}
		for d.router.Plan().Mode != state.RolledBack {
			runtime.Gosched()
		}
		total += time.Since(start)
		b.StopTimer()
		if err := d.Resume(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/press")
}

// The admin API's tests and canaryctl's run against admintest's fake, so
// the fake must answer each command as the daemon does, refusals included.
func TestTheAdminFakeAnswersAsTheDaemon(t *testing.T) {
	d := started(t, &handPanel{presses: make(chan panel.Press)})
	fake := admintest.NewController(admintest.Canary())
	ctx := context.Background()
	steps := []struct {
		name string
		do   func(admin.Controller) error
	}{
		{"rollback", func(c admin.Controller) error { return c.Rollback(ctx, "command") }},
		{"rollback again", func(c admin.Controller) error { return c.Rollback(ctx, "api") }},
		{"promote while rolled back", func(c admin.Controller) error { return c.Promote(ctx, "command") }},
		{"resume", func(c admin.Controller) error { return c.Resume(ctx, "command") }},
		{"resume again", func(c admin.Controller) error { return c.Resume(ctx, "command") }},
		{"promote", func(c admin.Controller) error { return c.Promote(ctx, "api") }},
		{"promote again", func(c admin.Controller) error { return c.Promote(ctx, "command") }},
		{"rollback a promotion", func(c admin.Controller) error { return c.Rollback(ctx, "command") }},
		{"pause", func(c admin.Controller) error { return c.Pause(ctx) }},
	}
	// seen is what a client sees of a status and an answer; the latch's
	// time is the fake's own.
	seen := func(c admin.Controller, err error) string {
		st := c.Status()
		s := fmt.Sprintf("error %v; state %s, canary %v%%, lights %+v, message %q", err, st.State, st.CanaryPercent, st.LEDs, st.Message)
		if st.Latch != nil {
			s += fmt.Sprintf(", latch %s %s by %s", st.Latch.State, st.Latch.Version, st.Latch.Cause)
		}
		return s
	}
	for _, step := range steps {
		real, fakes := seen(d, step.do(d)), seen(fake, step.do(fake))
		if real != fakes {
			t.Errorf("%s:\n daemon: %s\n fake:   %s", step.name, real, fakes)
		}
	}
}

// TestARollbackWhoseReportAKillLostIsReportedAtTheNextStart: the latch was
// saved and canaryd died before the report was written; the next start
// writes the report from what the state dir knows, once.
func TestARollbackWhoseReportAKillLostIsReportedAtTheNextStart(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var stateDir string
	setup := func(configDir string) {
		stateDir = filepath.Join(filepath.Dir(configDir), "state")
		store, _, _, err := state.Open(stateDir, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SaveLive(state.Live{Version: "v2", Since: at.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := store.Save(state.Latch{Mode: state.RolledBack, Version: "v2", Cause: state.CauseButton, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	d := startedWith(t, panel.Absent{}, setup)
	list, err := d.Incidents()
	if err != nil || len(list) != 1 {
		t.Fatalf("reports after the restart: %v, %v; want the one recovered", list, err)
	}
	s := list[0]
	if !s.RolledBack.Equal(at) || s.Version != "v2" || s.Cause != state.CauseButton || !s.Started.Equal(at.Add(-time.Hour)) {
		t.Errorf("recovered report %+v, want v2 by button, started an hour before %v, rolled back then", s, at)
	}
	r, err := d.Incident(s.ID)
	if err != nil || !strings.Contains(r.Note, "before its report was written") {
		t.Errorf("the report's note %q (%v) does not say it was recovered", r.Note, err)
	}

}
