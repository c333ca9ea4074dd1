package analysis

import (
	"math"
	"time"
)

// Tally is what one kind of attempt showed during one tick of the verdict:
// how many attempts each version had, and how many of those were events:
// errors, or answers slower than the tick's latency thresholds. Tallies of
// several sources (upstreams of a role, Pis of a fleet) simply add.
type Tally struct {
	Canary       uint64 `json:"canary"`        // attempts on canary upstreams
	Stable       uint64 `json:"stable"`        // attempts on stable upstreams
	CanaryEvents uint64 `json:"canary_events"` // of the canary's attempts, the events
	StableEvents uint64 `json:"stable_events"` // of the stable's, the events
}

// Add returns the sum of t and o.
func (t Tally) Add(o Tally) Tally {
	return Tally{Canary: t.Canary + o.Canary, Stable: t.Stable + o.Stable,
		CanaryEvents: t.CanaryEvents + o.CanaryEvents, StableEvents: t.StableEvents + o.StableEvents}
}

// clean is t with no side having more events than attempts: counters read
// one after the other, while requests finish, may disagree by a few.
func (t Tally) clean() Tally {
	t.CanaryEvents = min(t.CanaryEvents, t.Canary)
	t.StableEvents = min(t.StableEvents, t.Stable)
	return t
}

// share is the canary's share of the attempts, 0 without any.
func (t Tally) share() float64 {
	if t.Canary+t.Stable == 0 {
		return 0
	}
	return float64(t.Canary) / float64(t.Canary+t.Stable)
}

// alternatives are the ratios, as multiples of the tolerance, that the test
// weighs the evidence for: a canary whose events are 1.25 to 300 times as
// frequent as tolerated. Between them, none is more than 1.5 times its
// neighbour, which costs a regression between two at most a few percent of
// its detection time, and the largest stands for a dead canary, whose every
// attempt fails. Each has the same prior weight, 1/len.
var alternatives = [...]float64{1.3, 1.7, 2.5, 4, 8, 30, 300}

// nAlt is how many alternatives the test weighs.
const nAlt = len(alternatives)

// The prior on when a regression begins: with probability startMass at the
// canary's start (a bad build is bad from its first request), else at a
// later moment, spread with a tail heavy enough that a regression hours into
// a release is still found, at the cost of more evidence (see priorUsed).
const (
	startMass  = 0.9
	laterScale = 60 // seconds
)

// priorUsed is the prior probability that the regression began at or before
// since, the time since the canary went live.
func priorUsed(since time.Duration) float64 {
	s := max(since.Seconds(), 0)
	return startMass + (1-startMass)*(1-1/(1+math.Log1p(s/laterScale)))
}

// Run is what a stretch of ticks showed one test: the attempts, and the
// events with how many of them were the canary's and how many would have
// been under equal rates. It is what a verdict's reason quotes.
type Run struct {
	Tally
	// Expected is how many of the events would have been the canary's if
	// its rate were the stable's: each tick's events times its share.
	Expected float64 `json:"expected"`
	// LR is the likelihood ratio the stretch carries for the alternative
	// whose run it is; it decides where a run starts (0 for an empty run).
	LR float64 `json:"lr"`
}

// add counts tally into r; the likelihood ratio is the caller's.
func (r *Run) add(t Tally) {
	r.Tally = r.Tally.Add(t)
	r.Expected += t.share() * float64(t.CanaryEvents+t.StableEvents)
}

// Events is how many events the run holds, the canary's and the stable's.
func (r Run) Events() uint64 { return r.CanaryEvents + r.StableEvents }

// Share is the canary's share of the run's attempts, 0 without any.
func (r Run) Share() float64 { return r.Tally.share() }

// Test is an anytime-valid sequential test of one kind of event (errors, or
// slow answers) between the canary and the stable: its value is the
// evidence, as a likelihood ratio, that the canary's events are more than
// Tolerance times as frequent as the stable's. Under the null, the chance
// that the value ever reaches 1/α, however long the test runs and however
// often it is read, is at most α (Ville's inequality). See the package doc.
//
// A Test is a plain value: the caller owns it, persists it as JSON, and
// passes it the tallies of each tick in time order.
type Test struct {
	Tolerance float64 `json:"tolerance"`
	// S holds, for each alternative, the sum over the possible starts of a
	// regression of the start's prior weight times the likelihood ratio of
	// everything since that start (Shiryaev and Roberts' statistic,
	// weighted so that it stays a test martingale).
	S [nAlt]float64 `json:"s"`
	// Used is the prior weight of the starts so far: the rest, 1-Used,
	// stands for regressions that have not begun, whose ratio is 1.
	Used float64 `json:"used"`
	// Runs are, for each alternative, the ticks since its evidence last
	// stood at its lowest (a CUSUM), for the reason's numbers.
	Runs [nAlt]Run `json:"runs"`
	// Total is everything the test saw.
	Total Run `json:"total"`
}

// NewTest is a test that has seen nothing, with the tolerance r0: ratios
// up to r0 are the null, the canary "as good as the stable".
func NewTest(r0 float64) Test { return Test{Tolerance: max(r0, 1)} }

// Observe takes one tick's tallies (of the same kind of event, from
// different sources: the traffic, the probes of a canary out of the
// rotation), the tick ending at since, the time since the canary went live.
// Each tally is judged at its own share, so sources whose events differ in
// nature are never mixed.
func (t *Test) Observe(since time.Duration, tallies ...Tally) {
	t.observe(priorUsed(since), tallies)
}

// observe is Observe with the prior weight of the starts up to the tick's
// end, used, worked out by the caller (once for both tests of a tick).
func (t *Test) observe(used float64, tallies []Tally) {
	start := max(used-t.Used, 0)
	t.Used += start
	lr := [nAlt]float64{}
	for k := range lr {
		lr[k] = 1
	}
	for i, tally := range tallies {
		tally = tally.clean()
		tallies[i] = tally
		t.Total.add(tally)
		if tally.CanaryEvents+tally.StableEvents == 0 {
			continue
		}
		for k := range alternatives {
			lr[k] *= t.ratio(k, tally)
		}
	}
	for k := range alternatives {
		t.S[k] = min((t.S[k]+start)*lr[k], maxEvidence)
		// A run starts at 1 and ends when its evidence is gone.
		r := &t.Runs[k]
		next := max(r.LR, 1) * lr[k]
		if next <= 1 {
			*r = Run{}
			continue
		}
		for _, tally := range tallies {
			r.add(tally)
		}
		r.LR = min(next, maxEvidence)
	}
}

// maxEvidence bounds a likelihood ratio, so that it stays a finite number
// in JSON; a test that far past its threshold has long decided.
const maxEvidence = 1e300

// ratio is the likelihood ratio of one tally under alternative k against
// the null: given that an event happened, it is the canary's with
// probability θ(r) = ρr/(ρr+1−ρ) when the canary's rate is r times the
// stable's and ρ is the canary's share of the attempts. Over a tally's
// events that is m^c / d^e, with m = r/r₀, c the canary's events, e all of
// them and d = (1+ρ(r−1))/(1+ρ(r₀−1)).
func (t *Test) ratio(k int, tally Tally) float64 {
	rho := tally.share()
	r0 := t.Tolerance
	m := alternatives[k]
	d := (1 + rho*(r0*m-1)) / (1 + rho*(r0-1))
	c, e := tally.CanaryEvents, tally.CanaryEvents+tally.StableEvents
	if e > 64 {
		return math.Exp(float64(c)*math.Log(m) - float64(e)*math.Log(d))
	}
	return pow(m, c) / pow(d, e)
}

// pow is x to the power n by squaring: exact enough, and quicker than
// math.Pow for the few events of a tick.
func pow(x float64, n uint64) float64 {
	p := 1.0
	for n > 0 {
		if n&1 == 1 {
			p *= x
		}
		x *= x
		n >>= 1
	}
	return p
}

// Value is the evidence against the null, a likelihood ratio: 1 before any
// event, growing while the canary's events come more often than tolerated,
// shrinking towards 1−Used while they do not.
func (t *Test) Value() float64 {
	v := 1 - t.Used
	for k := range alternatives {
		v += t.S[k] / float64(nAlt)
	}
	return min(v, maxEvidence)
}

// Strongest is the run of the alternative that carries the most evidence:
// the stretch of ticks the evidence comes from, for the reason. It is the
// whole test when no alternative has evidence (every run is empty).
func (t *Test) Strongest() Run {
	best, k := 0.0, -1
	for i := range alternatives {
		if t.S[i] > best && t.Runs[i].Events() > 0 {
			best, k = t.S[i], i
		}
	}
	if k < 0 {
		return t.Total
	}
	return t.Runs[k]
}

// Valid reports whether t could have been made by NewTest and Observe: a
// persisted test read back must be, or it is not used.
func (t *Test) Valid() bool {
	if !(t.Tolerance >= 1) || !(t.Used >= 0 && t.Used <= 1) {
		return false
	}
	for _, s := range t.S {
		if !(s >= 0 && s <= maxEvidence) {
			return false
		}
	}
	return true
}
