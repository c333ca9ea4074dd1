package main

// The verdict on the real binary and real sockets: steady traffic at 20
// requests a second against backends that fail at random and answer in
// lognormal times, as the acceptance checks of the verdict drive it.

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// steady sends GET / to addr at rate requests a second, each on its own,
// until stop is closed or max have gone; wait returns the answers' codes
// counted (0 for no answer).
type steady struct {
	mu    sync.Mutex
	codes map[int]int
	wg    sync.WaitGroup
	stop  chan struct{}
	done  chan struct{}
}

func startSteady(addr string, rate int, max int) *steady {
	s := &steady{codes: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for range max {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			s.wg.Go(func() {
				code := 0
				if resp, err := client.Get("http://" + addr + "/"); err == nil {
					resp.Body.Close()
					code = resp.StatusCode
				}
				s.mu.Lock()
				s.codes[code]++
				s.mu.Unlock()
			})
		}
	}()
	return s
}

// halt stops the load and returns the codes of every request it sent.
func (s *steady) halt() map[int]int {
	close(s.stop)
	<-s.done
	s.wg.Wait()
	return s.codes
}

// watched is what a watch of the status saw: every verdict state, whether
// the canary light was ever red, and when the first status of each kind
// came, from the watch's start.
type watched struct {
	states  map[string]int
	red     bool
	first   map[string]time.Duration // "red", "rolled_back", a verdict state
	last    admin.Status
	reasons []string
	log     *testkit.SyncBuffer // canaryd's journal, as text
}

// neverRed fails t unless the watch saw the light never red, no bad
// verdict and the canary still serving at the end.
func (w watched) neverRed(t *testing.T, what string) {
	t.Helper()
	if w.red || w.states["bad"] > 0 || w.last.State != "canary" {
		t.Errorf("%s: light red %v, %d bad verdicts, state %q; want never red, still the canary\n%s",
			what, w.red, w.states["bad"], w.last.State, strings.Join(w.reasons, "\n"))
	}
}

// watch reads the status four times a second, as long as d or until stop
// reports the latest status good to stop on.
func watch(t *testing.T, socket string, d time.Duration, stop func(admin.Status) bool) watched {
	t.Helper()
	c := adminAPI(socket)
	w := watched{states: map[string]int{}, first: map[string]time.Duration{}}
	start := time.Now()
	note := func(what string) {
		if _, ok := w.first[what]; !ok {
			w.first[what] = time.Since(start)
		}
	}
	for time.Since(start) < d {
		if st, ok := apiStatus(c); ok && st.Verdict != nil {
			w.last = st
			w.states[st.Verdict.State.String()]++
			note(st.Verdict.State.String())
			if st.LEDs.Canary == "red" {
				w.red = true
				note("red")
			}
			if st.State == "rolled_back" {
				note("rolled_back")
			}
			if n := len(w.reasons); n == 0 || w.reasons[n-1] != st.Verdict.Reason {
				w.reasons = append(w.reasons, st.Verdict.State.String()+": "+st.Verdict.Reason)
			}
			if stop != nil && stop(st) {
				return w
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return w
}

// scenario is canaryd in front of stable (weight 10) and canary (weight 5,
// or the canary URL dead when dead is set), with auto_rollback on and every
// other key of the verdict at its default, under 20 requests a second: the
// status watched for d or until stop, and the codes the clients got.
type scenario struct {
	stable, canary *testkit.Backend
	dead           bool
	d              time.Duration
	stop           func(admin.Status) bool
}

func (sc scenario) run(t *testing.T) (watched, map[int]int) {
	t.Helper()
	a := newAppliance(t)
	cfg := withCanary(a.config("v2", upstream{sc.stable, 10, "stable"}, upstream{sc.canary, 5, "canary"}), "auto_rollback = true")
	if sc.dead {
		cfg = strings.Replace(cfg, sc.canary.Addr(), testkit.FreeAddr(t), 1)
	}
	a.writeConfig(cfg)
	p := a.start()
	defer p.stop()
	load := startSteady(a.listen, 20, int(20*sc.d/time.Second))
	w := watch(t, a.socket, sc.d, sc.stop)
	codes := load.halt()
	w.log = p.stderr
	return w, codes
}

// TestAnEqualCanaryIsNeverRed: both versions failing 5% at random and
// answering in the same lognormal times, 20 requests a second for two
// minutes: never red, never rolled back, with auto_rollback on.
func TestAnEqualCanaryIsNeverRed(t *testing.T) {
	integration(t)
	t.Parallel()
	w, _ := scenario{
		stable: testkit.StartBackend(t, "v1", testkit.Fail(0.05), testkit.Lognormal(10*time.Millisecond, 1)),
		canary: testkit.StartBackend(t, "v2", testkit.Fail(0.05), testkit.Lognormal(10*time.Millisecond, 1)),
		d:      120 * time.Second,
	}.run(t)
	w.neverRed(t, "an equal canary")
	// Both failing at error_rate (5%) may well be called a shared failure.
	if v := w.last.Verdict; v == nil || (v.State.String() != "good" && v.State.String() != "shared_failure") || v.Evidence >= v.Threshold {
		t.Errorf("after two minutes: verdict %+v, want good or shared_failure, its evidence under its threshold", v)
	}
}

// TestACanaryFailing30PercentIsRolledBackWithin20s: a canary failing 30%
// of its requests beside a stable failing 5% is rolled back, by the
// analysis, within 20 s, and the journal says why with the numbers.
func TestACanaryFailing30PercentIsRolledBackWithin20s(t *testing.T) {
	integration(t)
	t.Parallel()
	w, _ := scenario{
		stable: testkit.StartBackend(t, "v1", testkit.Fail(0.05), testkit.Lognormal(10*time.Millisecond, 1)),
		canary: testkit.StartBackend(t, "v2", testkit.Fail(0.3), testkit.Lognormal(10*time.Millisecond, 1)),
		d:      30 * time.Second,
		stop:   func(st admin.Status) bool { return st.State == "rolled_back" },
	}.run(t)
	at, ok := w.first["rolled_back"]
	if !ok || at > 20*time.Second {
		t.Fatalf("a canary failing 30%% against 5%%: rolled back %v after %v; want within 20 s\n%s", ok, at, strings.Join(w.reasons, "\n"))
	}
	if l := w.last.Latch; l == nil || l.Cause != "auto" {
		t.Errorf("latch %+v, want one by the analysis (auto)", l)
	}
	if log := w.log.String(); !strings.Contains(log, "CAUSE=auto") || !strings.Contains(log, "EVIDENCE=") || !strings.Contains(log, "THRESHOLD=150") {
		t.Errorf("the rollback's journal entry lacks its evidence:\n%s", log)
	}
	t.Logf("rolled back after %v", at.Round(time.Millisecond))
}

// TestAFourTimesSlowerCanaryIsRedWithinAMinute: a canary whose answers
// take four times as long is judged bad within 60 s.
func TestAFourTimesSlowerCanaryIsRedWithinAMinute(t *testing.T) {
	integration(t)
	t.Parallel()
	w, _ := scenario{
		stable: testkit.StartBackend(t, "v1", testkit.Lognormal(10*time.Millisecond, 0.5)),
		canary: testkit.StartBackend(t, "v2", testkit.Lognormal(40*time.Millisecond, 0.5)),
		d:      70 * time.Second,
		stop:   func(st admin.Status) bool { return st.Verdict.State.String() == "bad" },
	}.run(t)
	at, ok := w.first["bad"]
	if !ok || at > 60*time.Second {
		t.Fatalf("a canary four times slower: bad %v after %v; want within 60 s\n%s", ok, at, strings.Join(w.reasons, "\n"))
	}
	if r := w.last.Verdict.Reason; !strings.Contains(r, "slow answers") {
		t.Errorf("reason %q: want it to be the slow answers", r)
	}
	t.Logf("bad after %v: %s", at.Round(time.Millisecond), w.last.Verdict.Reason)
}

// TestADeadCanaryIsRolledBackWhileClientsGet200: a canary upstream that
// refuses every connection leaves the rotation after its first failure;
// its probes fail beside the stable's, and it is rolled back within 30 s,
// while every client request is answered by the stable.
func TestADeadCanaryIsRolledBackWhileClientsGet200(t *testing.T) {
	integration(t)
	t.Parallel()
	w, codes := scenario{
		stable: testkit.StartBackend(t, "v1", testkit.Lognormal(10*time.Millisecond, 1)),
		canary: testkit.StartBackend(t, "v2"),
		dead:   true,
		d:      40 * time.Second,
		stop:   func(st admin.Status) bool { return st.State == "rolled_back" },
	}.run(t)
	served := 0
	for code, n := range codes {
		if code != http.StatusOK {
			t.Errorf("%d requests got %d, want every one answered 200", n, code)
		}
		served += n
	}
	at, ok := w.first["rolled_back"]
	if !ok || at > 30*time.Second {
		t.Fatalf("a dead canary: rolled back %v after %v; want within 30 s\n%s", ok, at, strings.Join(w.reasons, "\n"))
	}
	t.Logf("rolled back after %v, %d requests all answered 200: %s", at.Round(time.Millisecond), served, w.last.Verdict.Reason)
}

// TestASharedFailureIsNeverRed: both versions failing 60% for a minute is
// a shared failure, never bad, never rolled back.
func TestASharedFailureIsNeverRed(t *testing.T) {
	integration(t)
	t.Parallel()
	w, _ := scenario{
		stable: testkit.StartBackend(t, "v1", testkit.Fail(0.6), testkit.Lognormal(10*time.Millisecond, 1)),
		canary: testkit.StartBackend(t, "v2", testkit.Fail(0.6), testkit.Lognormal(10*time.Millisecond, 1)),
		d:      60 * time.Second,
	}.run(t)
	w.neverRed(t, "both failing 60%")
	if got := w.last.Verdict.State.String(); got != "shared_failure" {
		t.Errorf("verdict after a minute %s (%s), want shared_failure", got, w.last.Verdict.Reason)
	}
}

// TestTheVerdictSurvivesARestartAndStartsAfreshWithANewRelease: the
// evidence is kept in the state directory, so a canary judged bad is still
// red after a restart, before any new request; a new canary.version, and
// a resume of a bad canary that still serves, start it afresh.
func TestTheVerdictSurvivesARestartAndStartsAfreshWithANewRelease(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2", testkit.Status(http.StatusInternalServerError))
	cfg := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"})
	a.writeConfig(cfg)
	p := a.start()
	statuses(t, a.listen, 90)
	before := waitStatus(t, a.socket, "a bad verdict", func(s admin.Status) bool { return s.Verdict.State.String() == "bad" })
	p.stop()

	p = a.start()
	after := getStatus(t, a.socket)
	if after.Verdict.State.String() != "bad" || after.LEDs.Canary != "red" || after.Verdict.BadAt != before.Verdict.BadAt ||
		after.Verdict.Evidence < before.Verdict.Evidence || after.Verdict.Since != before.Verdict.Since {
		t.Errorf("after a restart: verdict %+v, light %q; want the verdict from before it, %+v, still red", after.Verdict, after.LEDs.Canary, before.Verdict)
	}

	mustCtl(t, a.socket, "resume")
	if st := getStatus(t, a.socket); st.Verdict.State.String() == "bad" || st.LEDs.Canary != "green" || st.Verdict.Evidence > 1 {
		t.Errorf("after a resume: verdict %+v, light %q; want it judged afresh, green", st.Verdict, st.LEDs.Canary)
	}
	statuses(t, a.listen, 90)
	waitStatus(t, a.socket, "bad again", func(s admin.Status) bool { return s.Verdict.State.String() == "bad" })

	v3 := strings.Replace(cfg, `version = "v2"`, `version = "v3"`, 1)
	a.writeConfig(v3)
	mustCtl(t, a.socket, "reload")
	st := getStatus(t, a.socket)
	if st.Verdict.State.String() == "bad" || st.Verdict.BadAt != "" || st.Verdict.Errors.Events != 0 || st.LEDs.Canary != "green" {
		t.Errorf("a new version: verdict %+v, light %q; want a new release, judged afresh", st.Verdict, st.LEDs.Canary)
	}

	// Another tolerance is another test: it starts from the reload.
	statuses(t, a.listen, 90)
	waitStatus(t, a.socket, "v3 bad", func(s admin.Status) bool { return s.Verdict.State.String() == "bad" })
	a.writeConfig(withCanary(v3, "tolerance = 2"))
	mustCtl(t, a.socket, "reload")
	if st := getStatus(t, a.socket); st.Verdict.State.String() == "bad" || st.Verdict.Errors.Threshold != 150 || !strings.Contains(p.stderr.String(), "canary.tolerance changed") {
		t.Errorf("a new tolerance: verdict %+v; want it judged afresh, and said", st.Verdict)
	}
	p.stop()
}
