package analysis

import (
	"sync/atomic"
	"time"
)

// boundsNS are the upper bounds (inclusive, as Prometheus' "le") of the
// latency buckets in nanoseconds. They follow the 1-2.5-5 series from 0.5 ms
// to 60 s: a proxy on a Pi answers in milliseconds when healthy, and an
// answer slower than nginx's default proxy_read_timeout of 60 s is a timeout
// whatever its exact length, so the buckets spend their resolution where
// answers actually fall, and the round numbers read well on a dashboard.
var boundsNS = [HistBuckets - 1]int64{
	int64(500 * time.Microsecond),
	int64(1 * time.Millisecond),
	int64(2500 * time.Microsecond),
	int64(5 * time.Millisecond),
	int64(10 * time.Millisecond),
	int64(25 * time.Millisecond),
	int64(50 * time.Millisecond),
	int64(100 * time.Millisecond),
	int64(250 * time.Millisecond),
	int64(500 * time.Millisecond),
	int64(1 * time.Second),
	int64(2500 * time.Millisecond),
	int64(5 * time.Second),
	int64(10 * time.Second),
	int64(25 * time.Second),
	int64(60 * time.Second),
}

// HistBuckets is the number of latency buckets: one per bound, and a last
// one for latencies above the highest bound (Prometheus' "+Inf").
const HistBuckets = 17

// Bounds returns the upper bounds of the first HistBuckets-1 latency buckets
// in seconds, in increasing order; the last bucket has no upper bound. The
// slice is the caller's to keep.
func Bounds() []float64 {
	b := make([]float64, len(boundsNS))
	for i, ns := range boundsNS {
		b[i] = time.Duration(ns).Seconds()
	}
	return b
}

// bucketOf returns the index of the latency bucket that counts d. A linear
// scan beats a binary search at this size: the branches are predictable and
// most latencies stop in the first few buckets.
func bucketOf(d time.Duration) int {
	for i, b := range boundsNS {
		if int64(d) <= b {
			return i
		}
	}
	return HistBuckets - 1
}

// Histogram is a cumulative latency histogram that is never reset, for the
// Prometheus exporter: Prometheus computes rates from the growth of its
// counters itself. The zero value is ready to use; Observe is lock-free and
// safe for concurrent use.
type Histogram struct {
	counts [HistBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe counts one latency. A negative latency (a clock that stepped back)
// counts as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d)].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the count of each bucket (not cumulative; see Cumulative),
// the sum of all latencies and the upper bounds of the buckets in seconds,
// as Prometheus' classic histogram wants them. The counts and the sum are
// read one after the other, not as one, so under concurrent Observe calls
// the sum may lag the counts by the observations in flight; the total count
// is the sum of the bucket counts, so the buckets always agree with it.
func (h *Histogram) Snapshot() (counts [HistBuckets]uint64, sum time.Duration, bounds []float64) {
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sum.Load()), Bounds()
}

// Cumulative turns per-bucket counts into Prometheus' cumulative ones: entry
// i counts the latencies up to bound i, and the last entry is the total.
func Cumulative(counts [HistBuckets]uint64) [HistBuckets]uint64 {
	var total uint64
	for i, c := range counts {
		total += c
		counts[i] = total
	}
	return counts
}
