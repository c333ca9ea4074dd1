// Package history keeps the last fifteen minutes of the canary's and the
// stable's traffic, one sample per five seconds, and the rollout's marks
// (steps, rollbacks, promotions), for the status page's charts. It is pure:
// the caller passes the clock and the cumulative counters, and reads a
// Snapshot; nothing here runs by itself.
package history

import (
	"math"
	"sync"
	"time"
)

const (
	// Interval is how often the daemon records a sample.
	Interval = 5 * time.Second
	// Span is how far back a Snapshot reaches.
	Span = 15 * time.Minute
	// Size is the number of samples kept: Span at one per Interval.
	Size = int(Span / Interval)
	// MaxMarks is the number of marks kept; older ones are dropped.
	MaxMarks = 64
)

// Kind is what a mark records.
type Kind string

// The kinds of marks.
const (
	Step     Kind = "step"     // a progressive rollout moved to its next step
	Rollback Kind = "rollback" // all new requests went to stable
	Resume   Kind = "resume"   // a rollback or a pause was cleared
	Promote  Kind = "promote"  // the canary took all traffic
	Pause    Kind = "pause"    // a progressive rollout was held
	Version  Kind = "version"  // canary.version changed
)

// Kinds returns every Kind, in the order above.
func Kinds() []Kind { return []Kind{Step, Rollback, Resume, Promote, Pause, Version} }

// Totals are one role's cumulative counters, summed over its upstreams, and
// its p99 latency over the analysis window, as of one moment.
type Totals struct {
	Requests uint64
	Errors   uint64
	P99      time.Duration
}

// Role is one role's traffic in one sample's interval.
type Role struct {
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	P99Ms    float64 `json:"p99_ms"` // over the analysis window ending at the sample; 0 without requests
}

// Sample is the traffic between the previous sample (or the start) and T,
// and the verdict's evidence against the canary at T.
type Sample struct {
	T        time.Time `json:"t"`
	Canary   Role      `json:"canary"`
	Stable   Role      `json:"stable"`
	Evidence Evidence  `json:"evidence"`
}

// Evidence is each of the verdict's tests' evidence against the canary, a
// likelihood ratio (see analysis.Test); 0 for a test that is off, or
// without a canary.
type Evidence struct {
	Errors  float64 `json:"errors"`
	Latency float64 `json:"latency"`
}

// Mark is something that changed the canary's share, at T.
type Mark struct {
	T       time.Time `json:"t"`
	Kind    Kind      `json:"kind"`
	Percent float64   `json:"percent"` // the canary's share after it
	Text    string    `json:"text"`    // one line for humans
}

// Snapshot is the history as of Now, oldest first: the body of
// GET /v1/history. Times are the daemon's, so a page draws them against
// Now rather than against its own clock.
type Snapshot struct {
	IntervalS int       `json:"interval_s"`
	Now       time.Time `json:"now"`
	Samples   []Sample  `json:"samples"`
	Marks     []Mark    `json:"marks"`
}

// History is the ring of samples and the list of marks. It is safe for
// concurrent use.
type History struct {
	mu      sync.Mutex
	ring    [Size]Sample
	n, next int // samples held; where the next one goes
	last    struct{ canary, stable Totals }
	marks   []Mark
}

// New returns an empty History whose counters start at zero, as a
// starting daemon's do.
func New() *History { return &History{} }

// Record adds the sample at now from the roles' cumulative counters and the
// evidence then: the sample holds what the counters grew by since the
// previous call. A counter that
// went down (an upstream a reload removed took its count with it) is taken
// as restarted from zero, never as a negative rate. A clock that went back
// (a Pi without a real-time clock setting it from NTP) makes the samples
// held meaningless, and they are dropped.
func (h *History) Record(now time.Time, canary, stable Totals, ev Evidence) {
	now = now.UTC().Truncate(time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n > 0 && now.Before(h.ring[(h.next+Size-1)%Size].T) {
		h.n, h.next = 0, 0
	}
	h.ring[h.next] = Sample{T: now, Canary: delta(h.last.canary, canary), Stable: delta(h.last.stable, stable), Evidence: ev}
	h.next = (h.next + 1) % Size
	h.n = min(h.n+1, Size)
	h.last.canary, h.last.stable = canary, stable
}

func delta(prev, cur Totals) Role {
	r := Role{Requests: grown(prev.Requests, cur.Requests), Errors: grown(prev.Errors, cur.Errors),
		P99Ms: math.Round(float64(cur.P99)/float64(time.Millisecond)*10) / 10}
	// Two counters restarted apart can disagree; a sample never has more
	// failures than requests.
	r.Errors = min(r.Errors, r.Requests)
	return r
}

func grown(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// Mark records what happened at now; percent is the canary's share after
// it, and text says it in one line.
func (h *History) Mark(now time.Time, kind Kind, percent float64, text string) {
	if math.IsNaN(percent) || math.IsInf(percent, 0) {
		percent = 0
	}
	m := Mark{T: now.UTC().Truncate(time.Second), Kind: kind, Percent: math.Round(percent*10) / 10, Text: text}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.marks) == MaxMarks {
		h.marks = append(h.marks[:0], h.marks[1:]...)
	}
	h.marks = append(h.marks, m)
}

// Snapshot returns the samples of the Span before now and every mark held,
// oldest first. Its slices are the caller's.
func (h *History) Snapshot(now time.Time) Snapshot {
	now = now.UTC().Truncate(time.Second)
	from := now.Add(-Span)
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Snapshot{IntervalS: int(Interval / time.Second), Now: now,
		Samples: make([]Sample, 0, h.n), Marks: append([]Mark{}, h.marks...)}
	for i := range h.n {
		sm := h.ring[(h.next-h.n+i+Size)%Size]
		if sm.T.After(from) && !sm.T.After(now) {
			s.Samples = append(s.Samples, sm)
		}
	}
	return s
}
