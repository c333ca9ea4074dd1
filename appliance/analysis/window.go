package analysis

import (
	"sync/atomic"
	"time"
)

const (
	// slots is how many buckets a window is cut into: enough that a
	// request leaves the window within a thirtieth of the span of the
	// moment it should, few enough that a window, with its fine latency buckets,
	// takes about 40 KB and a Snapshot a few microseconds.
	slots = 30
	// minWidth bounds how often a bucket is recycled, which costs a reset
	// and is the only moment counts can be off (see Window). Finer slots
	// would buy nothing: the verdict is read about once a second.
	minWidth = 100 * time.Millisecond
)

// Window counts one upstream's requests, errors and latencies over the last
// span of time. It is a ring of fixed buckets, each counting one time slot of
// span/30 (at least 100 ms), so its memory is the same whatever the traffic.
//
// Record and Snapshot are lock-free and safe for concurrent use. The price is
// a small inaccuracy when a bucket is recycled for a new slot: the Record that
// recycles it empties the counters one after the other, after claiming the
// slot, so a concurrent Record for the same new slot that lands in between is
// lost, and a concurrent Snapshot may still see some of the old slot's counts.
// Likewise a Record stalled between finding its bucket and counting (a
// preempted goroutine) may count in the slot that recycled the bucket
// meanwhile. Either happens at most once per bucket per slot, only to the few
// requests finishing in that instant, and never while the bucket stays on its
// slot: requests within one slot are counted exactly.
type Window struct {
	width   int64 // nanoseconds per bucket
	n       int64 // buckets in use, at most slots
	buckets [slots]bucket
}

// bucket counts the requests of one time slot.
type bucket struct {
	// epoch is the slot (time since the Unix epoch divided by the
	// bucket width) the counts belong to.
	epoch    atomic.Int64
	requests atomic.Uint64
	errors   atomic.Uint64
	latency  latencies
}

// NewWindow returns an empty window over span, which is cut into 30 buckets,
// or into fewer buckets of 100 ms when span is shorter than 3 s. A span of
// less than 100 ms counts as 100 ms.
func NewWindow(span time.Duration) *Window {
	width := max(span/slots, minWidth)
	n := min(max((span+width-1)/width, 1), slots)
	return &Window{width: int64(width), n: int64(n)}
}

// Span returns the time the window covers: the span it was made with,
// rounded to whole buckets.
func (w *Window) Span() time.Duration { return time.Duration(w.width * w.n) }

// slot returns the number of the time slot now falls in, rounding down also
// before 1970, so that every slot has the same width.
func (w *Window) slot(now time.Time) int64 {
	ns := now.UnixNano()
	s := ns / w.width
	if ns%w.width < 0 {
		s--
	}
	return s
}

// bucket returns the bucket that counts slot s.
func (w *Window) bucket(s int64) *bucket {
	i := s % w.n
	if i < 0 {
		i += w.n
	}
	return &w.buckets[i]
}

// Record counts one request (one attempt at an upstream) that finished at
// now, whether it failed, and how long it took; the latencies are those of
// the answers that were no error: a refused connection is quick, a timeout
// slow, and neither says how fast the upstream answers. Failed means what the verdict
// blames an upstream for: a 5xx answer, a refused or reset connection, a
// timeout; a client that went away is nobody's failure and is best not
// recorded at all. Record does not allocate. A request older than the window
// (a clock that stepped back) is not counted: its bucket already counts a
// newer slot.
func (w *Window) Record(now time.Time, failed bool, latency time.Duration) {
	s := w.slot(now)
	b := w.bucket(s)
	for {
		e := b.epoch.Load()
		if e == s {
			break
		}
		if e > s {
			return
		}
		// The bucket still counts a slot that has left the window: the
		// Record that claims it empties it, the others count into it.
		if b.epoch.CompareAndSwap(e, s) {
			b.requests.Store(0)
			b.errors.Store(0)
			b.latency.reset()
			break
		}
	}
	// Requests before errors, and Snapshot reads them the other way
	// round, so that a Snapshot never sees more errors than requests.
	b.requests.Add(1)
	if failed {
		b.errors.Add(1)
		return
	}
	b.latency.observe(latency)
}

// Snapshot sums the buckets of the window that ends at now: the current,
// partly filled slot and the full ones before it, so that a request counts
// for between Span minus one bucket and Span after it finished.
func (w *Window) Snapshot(now time.Time) Counts {
	s := w.slot(now)
	var c Counts
	for i := range w.n {
		b := &w.buckets[i]
		e := b.epoch.Load()
		if e > s || e <= s-w.n {
			continue
		}
		c.Errors += b.errors.Load()
		c.Requests += b.requests.Load()
		for j := range b.latency {
			c.Hist[j] += b.latency[j].Load()
		}
	}
	// A bucket being recycled under the Snapshot may break the order
	// Record keeps; a rate above one would be nonsense to show.
	c.Errors = min(c.Errors, c.Requests)
	return c
}
