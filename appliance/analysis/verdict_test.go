package analysis

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var policy = Policy{FalseAlarm: 0.01, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20,
	LatencyRatio: 1.5, LatencyFloor: time.Millisecond}

// release is a release that went live at t0, judged tick by tick.
type release struct {
	e    Evidence
	now  time.Time
	prev State
}

func newRelease() *release {
	return &release{e: NewEvidence("v2", t0, policy), now: t0}
}

// tick feeds one tick and returns its verdict.
func (r *release) tick(t Tick, recent Recent) Verdict {
	r.now = r.now.Add(250 * time.Millisecond)
	r.e.Observe(r.now, t, policy)
	v := Judge(&r.e, recent, Thresholds{Stable: Never, Canary: Never}, r.prev, policy)
	r.prev = v.State
	return v
}

// errorsTick is a tick of traffic: canary and stable attempts, and errors.
func errorsTick(canary, canaryErrors, stable, stableErrors uint64) Tick {
	t := Tally{Canary: canary, CanaryEvents: canaryErrors, Stable: stable, StableEvents: stableErrors}
	return Tick{Traffic: t, Slow: Tally{Canary: canary - canaryErrors, Stable: stable - stableErrors}}
}

// TestEveryTicksRatioHasExpectationAtMostOneUnderTheNull: for a canary as
// good as the stable, each tick multiplies every alternative's evidence by
// a factor whose expectation, whatever the common error rate and however
// the attempts split, is at most 1: what makes the test a supermartingale
// and Ville's inequality apply. Checked exactly, over every outcome of the
// binomial errors of a tick.
func TestEveryTicksRatioHasExpectationAtMostOneUnderTheNull(t *testing.T) {
	test := NewTest(1.25)
	for _, split := range [][2]int{{1, 0}, {1, 1}, {1, 4}, {2, 9}, {5, 5}, {1, 30}, {12, 3}} {
		for _, p := range []float64{0.001, 0.05, 0.3, 0.6, 0.99} {
			nc, ns := split[0], split[1]
			for k := range alternatives {
				var mean float64
				for ec := 0; ec <= nc; ec++ {
					for es := 0; es <= ns; es++ {
						prob := binomial(nc, ec, p) * binomial(ns, es, p)
						tally := Tally{Canary: uint64(nc), Stable: uint64(ns), CanaryEvents: uint64(ec), StableEvents: uint64(es)}
						lr := 1.0
						if ec+es > 0 {
							lr = test.ratio(k, tally)
						}
						mean += prob * lr
					}
				}
				if mean > 1+1e-9 {
					t.Errorf("%d canary, %d stable attempts failing at %g: alternative %g has E[ratio] = %.12f, want at most 1",
						nc, ns, p, alternatives[k], mean)
				}
			}
		}
	}
}

func binomial(n, k int, p float64) float64 {
	c := 1.0
	for i := range k {
		c = c * float64(n-i) / float64(i+1)
	}
	return c * math.Pow(p, float64(k)) * math.Pow(1-p, float64(n-k))
}

func TestRatioIsTheLikelihoodRatioOfWhoseTheEventsAre(t *testing.T) {
	test := NewTest(1.25)
	tally := Tally{Canary: 10, Stable: 20, CanaryEvents: 3, StableEvents: 2}
	rho := 10.0 / 30
	for k, m := range alternatives {
		theta := func(r float64) float64 { return rho * r / (rho*r + 1 - rho) }
		t1, t0 := theta(1.25*m), theta(1.25)
		want := math.Pow(t1/t0, 3) * math.Pow((1-t1)/(1-t0), 2)
		if got := test.ratio(k, tally); math.Abs(got/want-1) > 1e-12 {
			t.Errorf("alternative %g: ratio %v, want %v", m, got, want)
		}
		// Past 64 events it is worked out in logs: the same number.
		big := Tally{Canary: 100, Stable: 200, CanaryEvents: 30, StableEvents: 40}
		want = math.Pow(t1/t0, 30) * math.Pow((1-t1)/(1-t0), 40)
		if got := test.ratio(k, big); math.Abs(got/want-1) > 1e-9 {
			t.Errorf("alternative %g, 70 events: ratio %v, want %v", m, got, want)
		}
	}
}

func TestWithoutEventsThereIsNoEvidence(t *testing.T) {
	r := newRelease()
	for range 4 * 600 {
		r.tick(errorsTick(5, 0, 10, 0), Recent{})
	}
	if v := r.e.Errors.Value(); math.Abs(v-1) > 1e-9 {
		t.Errorf("10 minutes without an error: evidence %v, want 1", v)
	}
}

func TestADeadCanaryIsBadWithinSeconds(t *testing.T) {
	r := newRelease()
	// 20 requests a second, a third on the canary, every canary attempt
	// refused: it leaves the rotation after the first, and its probes
	// fail beside the stable's.
	v := r.tick(errorsTick(1, 1, 4, 0), Recent{})
	for i := 0; v.State != Bad; i++ {
		if i == 4*10 {
			t.Fatalf("a dead canary after 10 s: %v (%s)", v.State, v.Reason)
		}
		v = r.tick(Tick{Traffic: Tally{Stable: 5}, Probes: Tally{Canary: 1, CanaryEvents: 1, Stable: 3}}, Recent{})
	}
	if r.e.BadTest != "errors" || r.now.Sub(t0) > 3*time.Second {
		t.Errorf("bad after %v on %q, want within 3 s on errors", r.now.Sub(t0), r.e.BadTest)
	}
}

// TestBadStaysBad: the verdict moves on evidence once; a canary that
// recovers stays bad until the release ends.
func TestBadStaysBad(t *testing.T) {
	r := newRelease()
	var v Verdict
	for range 40 {
		v = r.tick(errorsTick(10, 10, 20, 0), Recent{})
	}
	if v.State != Bad {
		t.Fatalf("a canary failing everything: %v (%s)", v.State, v.Reason)
	}
	at := r.e.BadAt
	for range 4 * 600 {
		if v = r.tick(errorsTick(10, 0, 20, 2), Recent{}); v.State != Bad {
			t.Fatalf("recovered: %v (%s), want bad still", v.State, v.Reason)
		}
	}
	if !r.e.BadAt.Equal(at) {
		t.Errorf("bad at %v, then at %v: want the first time kept", at, r.e.BadAt)
	}
}

// TestASharedFailureStaysShared: both versions failing 60% is never bad,
// and once shared the verdict does not flicker.
func TestASharedFailureStaysShared(t *testing.T) {
	r := newRelease()
	var changes int
	prev := NotEnough
	var win Recent
	for i := range 4 * 120 {
		// 20 requests a second, a third on the canary; both fail about
		// 60%, the window counting the last 30 s.
		t := errorsTick(2, uint64(1+i%2), 3, uint64(1+(i/2)%3))
		if i%3 == 0 {
			t = errorsTick(1, 1, 4, 2)
		}
		win.Canary.Requests += t.Traffic.Canary
		win.Canary.Errors += t.Traffic.CanaryEvents
		win.Stable.Requests += t.Traffic.Stable
		win.Stable.Errors += t.Traffic.StableEvents
		v := r.tick(t, win)
		if v.State != prev {
			changes++
			prev = v.State
		}
		if v.State == Bad {
			break
		}
	}
	if prev != Shared || changes > 1 {
		t.Errorf("both failing 60%%: ended %v after %d changes, want shared_failure after one", prev, changes)
	}
}

func TestASharedFailureHoldsUntilHalfTheErrorRate(t *testing.T) {
	win := func(c, s float64) Recent {
		return Recent{Canary: Counts{Requests: 100, Errors: uint64(100 * c)}, Stable: Counts{Requests: 200, Errors: uint64(200 * s)}, Span: 30 * time.Second}
	}
	e := NewEvidence("v2", t0, policy)
	e.Traffic = Tally{Canary: 100, Stable: 200}
	judge := func(w Recent, prev State) State {
		return Judge(&e, w, Thresholds{Stable: Never, Canary: Never}, prev, policy).State
	}
	for _, tt := range []struct {
		name           string
		canary, stable float64
		prev, want     State
	}{
		{"both at error_rate", 0.05, 0.05, Good, Shared},
		{"one below", 0.04, 0.3, Good, Good},
		{"shared holds above half of it", 0.03, 0.03, Shared, Shared},
		{"and ends below", 0.02, 0.5, Shared, Good},
	} {
		if got := judge(win(tt.canary, tt.stable), tt.prev); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTheReasonSaysItInWords(t *testing.T) {
	r := newRelease()
	var v Verdict
	for i := 0; v.State != Bad; i++ {
		if i > 400 {
			t.Fatalf("a canary failing 50%% against 1%%: %v (%s)", v.State, v.Reason)
		}
		v = r.tick(errorsTick(2, uint64(i%2), 4, uint64(b(i%25 == 0))), Recent{})
	}
	for _, want := range []string{"canary ", " errors at a 33% share (", " expected at equal rates): ", "x more likely than at equal rates; bad at 150x"} {
		if !strings.Contains(v.Reason, want) {
			t.Errorf("reason %q lacks %q", v.Reason, want)
		}
	}
	if g := v.Strongest(); g.Evidence < 150 || g.Threshold != 150 {
		t.Errorf("gauge %+v, want the errors test past 150", g)
	}
}

func b(x bool) uint64 {
	if x {
		return 1
	}
	return 0
}

func TestNotEnoughTrafficUntilMinRequests(t *testing.T) {
	r := newRelease()
	for i := range 19 {
		if v := r.tick(errorsTick(1, 0, 2, 0), Recent{}); v.State != NotEnough {
			t.Fatalf("after %d canary requests: %v, want not_enough_traffic", i+1, v.State)
		}
	}
	if v := r.tick(errorsTick(1, 0, 2, 0), Recent{}); v.State != Good || !strings.Contains(v.Reason, "no errors in 20 canary and 40 stable requests") {
		t.Errorf("at min_requests: %v (%s), want good", v.State, v.Reason)
	}
}

func TestSlowThresholds(t *testing.T) {
	stable := Counts{Requests: 100}
	stable.Hist[windowBucket(20*time.Millisecond)] = 90
	stable.Hist[windowBucket(60*time.Millisecond)] = 10
	q := windowBound(windowBucket(20 * time.Millisecond))
	if got := SlowThresholds(stable, policy); got.Stable != q || got.Canary != time.Duration(1.5*float64(q)) {
		t.Errorf("p90 %v: thresholds %+v, want the p90 and 1.5 times it", q, got)
	}
	fast := Counts{Requests: 100}
	fast.Hist[windowBucket(300*time.Microsecond)] = 100
	q = windowBound(windowBucket(300 * time.Microsecond))
	if got := SlowThresholds(fast, policy); got.Stable != q || got.Canary != q+time.Millisecond {
		t.Errorf("a sub-millisecond p90 %v: thresholds %+v, want it and it plus the 1 ms floor", q, got)
	}
	few := Counts{Requests: 19}
	few.Hist[0] = 19
	if got := SlowThresholds(few, policy); got.Stable != Never || got.Canary != Never {
		t.Errorf("19 stable answers: %+v, want nothing slow", got)
	}
	off := policy
	off.LatencyRatio = 0
	if got := SlowThresholds(stable, off); got.Canary != Never {
		t.Errorf("latency_ratio 0: %+v, want nothing slow", got)
	}
}

func TestAThresholdIsSplitBetweenTheTests(t *testing.T) {
	if e, l := policy.ErrorsThreshold(), policy.LatencyThreshold(); math.Abs(e-150) > 1e-9 || math.Abs(l-300) > 1e-9 {
		t.Errorf("thresholds %v and %v, want 150 and 300: 1/α split two thirds, one third", e, l)
	}
	off := policy
	off.LatencyRatio = 0
	if e, l := off.ErrorsThreshold(), off.LatencyThreshold(); math.Abs(e-100) > 1e-9 || !math.IsInf(l, 1) {
		t.Errorf("without the latency test: %v and %v, want 100 and never", e, l)
	}
}

func TestEvidenceSurvivesItsFile(t *testing.T) {
	r := newRelease()
	for i := range 200 {
		r.tick(errorsTick(3, uint64(i%4/3), 6, uint64(i%9/8)), Recent{})
	}
	data, err := json.Marshal(r.e)
	if err != nil {
		t.Fatal(err)
	}
	var back Evidence
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r.e) || !back.Valid() {
		t.Errorf("read back %+v\nwant %+v", back, r.e)
	}
	for _, broken := range []string{`{}`, `{"version":"v2"}`, `{"version":"v2","since":"2026-12-01T10:00:00Z","errors":{"tolerance":0.5}}`} {
		var e Evidence
		if json.Unmarshal([]byte(broken), &e) == nil && e.Valid() {
			t.Errorf("%s is valid evidence", broken)
		}
	}
}

func TestSafetyNeedsMoreRequestsForRarerErrors(t *testing.T) {
	low := SafetyFor(policy, 0.1, 4, 1000, 20)
	if low.RuleOut != 0.05 || low.Needed == 0 {
		t.Errorf("stable at 0.4%%: %+v, want a 5%% error rate (error_rate) to rule out", low)
	}
	high := SafetyFor(policy, 0.1, 100, 1000, 20)
	if high.RuleOut != 0.25 {
		t.Errorf("stable at 10%%: rules out %v, want 25%% (twice the tolerance)", high.RuleOut)
	}
	none := SafetyFor(policy, 0.1, 0, 1000, 20)
	if none.Needed == 0 || none.Needed > low.Needed {
		t.Errorf("a stable without errors: %+v, want fewer requests than beside a failing one (%d)", none, low.Needed)
	}
	// A wider share needs more of the canary's requests (fewer stable
	// ones come with each to compare with), but fewer requests in all.
	if wide := SafetyFor(policy, 0.5, 4, 1000, 20); float64(wide.Needed)/0.5 >= float64(low.Needed)/0.1 {
		t.Errorf("at a 50%% share %d canary requests, at 10%% %d: want fewer requests in all at the wider share", wide.Needed, low.Needed)
	}
	if s := SafetyFor(policy, 0, 4, 1000, 20); s.Needed != 0 {
		t.Errorf("no share: %+v, want nothing to wait for", s)
	}
	if got := low.String(); got != "a 5.0% error rate (the stable's is 0.4%)" {
		t.Errorf("String() = %q", got)
	}
}

// TestStateNamesInStatusJSON: the verdict's names are the contract's, the
// same in String, in JSON both ways, and in States.
func TestStateNamesInStatusJSON(t *testing.T) {
	want := map[State]string{
		Good: "good", Bad: "bad", NotEnough: "not_enough_traffic", Shared: "shared_failure",
	}
	if got := States(); len(got) != len(want) {
		t.Errorf("States() = %v, want the %d verdicts", got, len(want))
	}
	for _, s := range States() {
		name, ok := want[s]
		if !ok {
			t.Errorf("States() has %d, which has no contract name", int(s))
			continue
		}
		if s.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), name)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("json.Marshal(%d) = %s, %v; want %q", int(s), b, err, name)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, s)
		}
	}
	var zero State
	if zero != NotEnough {
		t.Errorf("the zero State is %v, want not_enough_traffic", zero)
	}
	if got := State(9).String(); got != "State(9)" {
		t.Errorf("an unknown state's String() = %q, want State(9)", got)
	}
	if b, err := json.Marshal(State(9)); err == nil {
		t.Errorf("json.Marshal(State(9)) = %s, want an error", b)
	}
	var s State
	if err := json.Unmarshal([]byte(`"meh"`), &s); err == nil || !strings.Contains(err.Error(), `unknown verdict "meh"`) {
		t.Errorf("json.Unmarshal of an unknown verdict: %v, want an error naming it", err)
	}
}

func TestTimes(t *testing.T) {
	for x, want := range map[float64]string{0.4219: "0.42x", 1: "1x", 9.5: "9.5x", 180.4: "180x", 1.8e14: "1.8e+14x", math.Inf(1): "never"} {
		if got := Times(x); got != want {
			t.Errorf("Times(%v) = %q, want %q", x, got, want)
		}
	}
}
