package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Policy is how a canary is judged: the [canary] section's keys.
type Policy struct {
	// FalseAlarm is canary.false_alarm, α: the largest chance that a canary
	// as good as the stable is ever judged bad during its release.
	FalseAlarm float64
	// Tolerance is canary.tolerance: the canary may fail up to this many
	// times as often as the stable before the difference matters.
	Tolerance float64
	// ErrorRate is canary.error_rate: both versions failing at least this
	// often over the window is a shared failure; and a rollout step
	// advances only once a canary failing this often would have been found.
	ErrorRate float64
	// MinRequests is canary.min_requests: fewer canary requests since it
	// went live is not_enough_traffic, and a step needs this many.
	MinRequests int
	// LatencyRatio is canary.latency_ratio, 0 for off: a canary answer is
	// slow when it takes longer than this many times the stable's p90...
	LatencyRatio float64
	// LatencyFloor is canary.latency_floor: ...and longer than the stable's
	// p90 plus this, so that sub-millisecond noise never counts.
	LatencyFloor time.Duration
}

// ErrorsTolerance is the errors test's null: the tolerance, at least 1.
func (p Policy) ErrorsTolerance() float64 { return max(p.Tolerance, 1) }

// LatencyOn reports whether the latency test runs.
func (p Policy) LatencyOn() bool { return p.LatencyRatio > 0 }

// The false-alarm probability is split between the two tests, so that the
// chance that either ever turns bad on noise is at most FalseAlarm: errors
// get two thirds of it, being what a canary most often breaks.
const errorsShare = 2.0 / 3

// ErrorsThreshold is the evidence at which the errors test judges the
// canary bad: 1/α, or 1/(⅔α) beside the latency test.
func (p Policy) ErrorsThreshold() float64 {
	if !p.LatencyOn() {
		return 1 / p.FalseAlarm
	}
	return 1 / (errorsShare * p.FalseAlarm)
}

// LatencyThreshold is the evidence at which the latency test judges the
// canary bad: 1/(⅓α); +Inf when it is off.
func (p Policy) LatencyThreshold() float64 {
	if !p.LatencyOn() {
		return math.Inf(1)
	}
	return 1 / ((1 - errorsShare) * p.FalseAlarm)
}

// StableQuantile is the quantile of the stable's recent latency that sets
// what counts as slow: for a shift of a service's latency, the p90 gives
// the most evidence per request, against the p50 or the p99 (whose
// exceedances are too rare), with enough answers above it to matter.
const StableQuantile = 0.9

// LatencySamples is the fewest answers the stable needs in the window for
// its p90 to set what is slow; with fewer, nothing is.
const LatencySamples = 20

// Never is a latency threshold no answer exceeds: the latency test is off,
// or the stable has too few answers to say what slow is.
const Never = time.Duration(math.MaxInt64)

// Thresholds are how long an answer may take before it counts as slow, for
// each version: fixed before the answers they judge arrive, from the
// stable's latency over the window.
type Thresholds struct {
	Stable time.Duration // the stable's p90
	Canary time.Duration // the larger of ratio times it, and it plus the floor
}

// SlowThresholds are the thresholds the stable's recent answers set: the
// stable is slow above its p90, the canary above latency_ratio times that
// and above it plus latency_floor. A canary as fast as the stable is then
// slow less often than the stable, however the latencies are distributed;
// one slower by no more than the tolerance, as often at most.
func SlowThresholds(stable Counts, p Policy) Thresholds {
	if !p.LatencyOn() || stable.answers() < LatencySamples {
		return Thresholds{Stable: Never, Canary: Never}
	}
	q := stable.Quantile(StableQuantile)
	c := max(time.Duration(p.LatencyRatio*float64(q)), q+p.LatencyFloor)
	return Thresholds{Stable: q, Canary: c}
}

// Evidence is what the verdict knows of one canary release: its two tests
// and whether either has judged it bad. It starts afresh with each release
// (a new canary.version, a resume) and is persisted across restarts.
type Evidence struct {
	Version string    `json:"version"`
	Since   time.Time `json:"since"` // when the release began to serve
	Errors  Test      `json:"errors"`
	Latency Test      `json:"latency"`
	// Traffic is every tick's traffic tally added up: the requests each
	// version had since the release began, and their errors.
	Traffic Tally `json:"traffic"`
	// BadAt is when a test first reached its threshold; zero while none
	// has. A bad verdict stays for the release: the evidence moved it, and
	// only a new release (or a resume, which is one) clears it.
	BadAt time.Time `json:"bad_at,omitzero"`
	// BadTest is the test that did: "errors" or "latency".
	BadTest string `json:"bad_test,omitempty"`
}

// NewEvidence is the evidence of a release of version that began at since:
// none yet.
func NewEvidence(version string, since time.Time, p Policy) Evidence {
	return Evidence{Version: version, Since: since, Errors: NewTest(p.ErrorsTolerance()), Latency: NewTest(1)}
}

// Tick is what one tick of the verdict counted.
type Tick struct {
	// Traffic is the requests' attempts on each version and their errors.
	Traffic Tally
	// Probes are the probes of a canary out of the rotation, beside those
	// of stable upstreams, and their failures: a source of errors of its
	// own, judged at its own share.
	Probes Tally
	// Slow is the answers that were no error, and those slower than the
	// tick's thresholds.
	Slow Tally
}

// Observe takes the tallies of the tick ending at now, and those of more
// sources counted over the same stretch (the other members of a fleet,
// for its pooled verdict). Each source is judged at its own share: the
// events of independent sources, each split between the versions as its
// own share says, multiply their likelihood ratios, so the pooled test
// keeps the bound of one. It returns true when this tick made the verdict
// bad.
func (e *Evidence) Observe(now time.Time, t Tick, p Policy, more ...Tick) (turnedBad bool) {
	used := priorUsed(now.Sub(e.Since))
	errs, slow := []Tally{t.Traffic, t.Probes}, []Tally{t.Slow}
	for _, m := range more {
		errs, slow = append(errs, m.Traffic, m.Probes), append(slow, m.Slow)
		e.Traffic = e.Traffic.Add(m.Traffic.clean())
	}
	e.Errors.observe(used, errs)
	e.Latency.observe(used, slow)
	e.Traffic = e.Traffic.Add(t.Traffic.clean())
	if !e.BadAt.IsZero() {
		return false
	}
	switch {
	case e.Errors.Value() >= p.ErrorsThreshold():
		e.BadTest = "errors"
	case e.Latency.Value() >= p.LatencyThreshold():
		e.BadTest = "latency"
	default:
		return false
	}
	e.BadAt = now
	return true
}

// Valid reports whether e, read back from a file, is whole.
func (e *Evidence) Valid() bool {
	return e.Version != "" && !e.Since.IsZero() && e.Errors.Valid() && e.Latency.Valid() &&
		(e.BadAt.IsZero() == (e.BadTest == ""))
}

// State is the outcome of a verdict. The zero value is NotEnough: no
// verdict yet.
type State int

const (
	// NotEnough: the canary had too few requests for a verdict; the light
	// stays green.
	NotEnough State = iota
	// Good: no evidence that the canary fails more often, or answers more
	// slowly, than tolerated.
	Good
	// Bad: a sequential test found the canary worse than the stable beyond
	// its tolerance; the light turns red and, with auto_rollback, the
	// canary is rolled back.
	Bad
	// Shared: both versions fail at error_rate or more, alike, as when a
	// database both use is down. Rolling back would not help, so it is
	// reported, not acted upon.
	Shared
)

var stateNames = [...]string{
	NotEnough: "not_enough_traffic",
	Good:      "good",
	Bad:       "bad",
	Shared:    "shared_failure",
}

// States are all the verdicts, for a list of every value (the metrics'
// verdict label, the status page's).
func States() []State { return []State{NotEnough, Good, Bad, Shared} }

// String returns the name the status JSON and the metrics use: "good",
// "bad", "not_enough_traffic" or "shared_failure".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// MarshalText is the JSON's spelling, String's; a State outside the four
// is an error rather than a name no reader knows.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("analysis: no name for verdict %s", s)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads a name String returns.
func (s *State) UnmarshalText(text []byte) error {
	for i, name := range stateNames {
		if string(text) == name {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown verdict %q (want %s)", text, strings.Join(stateNames[:], ", "))
}

// Gauge is one test's evidence against the canary and the evidence at
// which it turns bad.
type Gauge struct {
	Evidence  float64
	Threshold float64 // +Inf for a test that is off
}

// Fraction is how far the evidence has gone towards the threshold on a log
// scale, where the test starts at 1: 0 or less for none, 1 at the
// threshold.
func (g Gauge) Fraction() float64 {
	if !g.on() {
		return 0
	}
	return math.Log(g.Evidence) / math.Log(g.Threshold)
}

// Verdict is a judgement of the canary.
type Verdict struct {
	State State
	// Reason is one line with the numbers behind State, for the status and
	// for the journal entry of an automatic rollback.
	Reason  string
	Errors  Gauge
	Latency Gauge
}

// Strongest is the gauge nearer its threshold: the one the verdict's
// evidence is quoted from; the errors' while neither has evidence.
func (v Verdict) Strongest() Gauge {
	if v.Latency.on() && v.Latency.Evidence > 1 && v.Latency.Fraction() > v.Errors.Fraction() {
		return v.Latency
	}
	return v.Errors
}

// on reports whether g is a test that runs: one with a threshold to reach.
func (g Gauge) on() bool { return g.Threshold > 1 && !math.IsInf(g.Threshold, 1) }

// Recent is the canary's and the stable's counts over canary.window, for
// a shared failure.
type Recent struct {
	Canary, Stable Counts
	Span           time.Duration
}

// Judge is the verdict on a release from its evidence, the window's counts
// and the thresholds the slow answers were judged by. prev is the verdict
// before, so that a shared failure, once seen, holds until either version
// recovers clearly: the verdict moves on evidence, never flickers.
func Judge(e *Evidence, w Recent, th Thresholds, prev State, p Policy) Verdict {
	v := Verdict{
		Errors:  Gauge{Evidence: e.Errors.Value(), Threshold: p.ErrorsThreshold()},
		Latency: Gauge{Evidence: e.Latency.Value(), Threshold: p.LatencyThreshold()},
	}
	errs := errorsSentence(e, v.Errors)
	lat := ""
	if p.LatencyOn() {
		lat = latencySentence(&e.Latency, v.Latency, th)
	}
	requests := e.Traffic.Canary
	switch {
	case !e.BadAt.IsZero():
		v.State = Bad
		v.Reason = errs
		if e.BadTest == "latency" {
			v.Reason = lat
		}
	case shared(w, prev, p):
		v.State = Shared
		r := e.Errors.Strongest()
		v.Reason = fmt.Sprintf("both versions fail: canary %s and stable %s of requests in the last %s, error_rate (%s) or more; canary %d of %d errors at a %s share, %s expected at equal rates: %s, bad at %s",
			pct(w.Canary.ErrorRate()), pct(w.Stable.ErrorRate()), w.Span, pct(p.ErrorRate),
			r.CanaryEvents, r.Events(), pct(r.Share()), num(r.Expected), Times(v.Errors.Evidence), Times(v.Errors.Threshold))
	case requests < uint64(max(p.MinRequests, 1)):
		v.State = NotEnough
		v.Reason = fmt.Sprintf("not enough traffic: the canary had %d requests, need %d", requests, max(p.MinRequests, 1))
	default:
		v.State = Good
		v.Reason = errs
		if lat != "" && v.Strongest() == v.Latency {
			v.Reason = lat
		}
	}
	return v
}

// shared reports whether both versions fail at error_rate or more over the
// window, each with min_requests requests in it; once shared, it holds
// until either fails at less than half of error_rate.
func shared(w Recent, prev State, p Policy) bool {
	enough := uint64(max(p.MinRequests, 1))
	if w.Canary.Requests < enough || w.Stable.Requests < enough {
		return false
	}
	level := p.ErrorRate
	if prev == Shared {
		level /= 2
	}
	return w.Canary.ErrorRate() >= level && w.Stable.ErrorRate() >= level
}

// errorsSentence says what the errors test saw, with the numbers of the
// stretch its evidence comes from: "canary 9 of 14 errors at a 33% share
// (4.7 expected at equal rates): 180x more likely than at equal rates; bad
// at 150x".
func errorsSentence(e *Evidence, g Gauge) string {
	r := e.Errors.Strongest()
	if r.Events() == 0 {
		return fmt.Sprintf("no errors in %d canary and %d stable requests: evidence %s; bad at %s",
			e.Traffic.Canary, e.Traffic.Stable, Times(g.Evidence), Times(g.Threshold))
	}
	return fmt.Sprintf("canary %d of %d errors at a %s share (%s expected at equal rates): %s more likely than at equal rates; bad at %s",
		r.CanaryEvents, r.Events(), pct(r.Share()), num(r.Expected), Times(g.Evidence), Times(g.Threshold))
}

// latencySentence says what the latency test saw, like errorsSentence,
// with the thresholds that make an answer slow.
func latencySentence(t *Test, g Gauge, th Thresholds) string {
	limits := ""
	if th.Stable != Never {
		limits = fmt.Sprintf("; slow means over %s for the canary, over %s (the stable's p90) for the stable", Millis(th.Canary), Millis(th.Stable))
	}
	r := t.Strongest()
	if r.Events() == 0 {
		return fmt.Sprintf("no slow answers yet%s: evidence %s; bad at %s", limits, Times(g.Evidence), Times(g.Threshold))
	}
	return fmt.Sprintf("canary %d of %d slow answers at a %s share (%s expected at equal latency%s): %s more likely than at equal latency; bad at %s",
		r.CanaryEvents, r.Events(), pct(r.Share()), num(r.Expected), limits, Times(g.Evidence), Times(g.Threshold))
}

// Times formats a likelihood ratio as people read one: "0.42x", "180x",
// "3.1e+07x".
func Times(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "never"
	case x < 10:
		return strconv.FormatFloat(x, 'g', 2, 64) + "x"
	case x < 1e6:
		return strconv.FormatFloat(math.Round(x), 'f', 0, 64) + "x"
	}
	return strconv.FormatFloat(x, 'g', 2, 64) + "x"
}

// Millis formats a latency in milliseconds with what precision it has.
func Millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'g', 3, 64) + " ms"
}

// pct formats a share as a percentage with what precision it needs: "33%",
// "5.0%", "0.25%".
func pct(f float64) string {
	p := 100 * f
	switch {
	case p >= 10 || p == 0:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case p >= 1:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'g', 2, 64) + "%"
}

// num formats an expected count: "4.7", "120".
func num(x float64) string {
	if x >= 100 {
		return strconv.FormatFloat(math.Round(x), 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}
