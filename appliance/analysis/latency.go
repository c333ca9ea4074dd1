package analysis

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The analysis window's latency buckets are log-linear, as HDR histograms
// are: eight buckets per doubling from 64 µs, so every bucket is at most an
// eighth (12.5%) wider than its lower bound. That resolves the p99 of a LAN
// service answering in a few milliseconds (the Prometheus histogram's round
// 1-2.5-5 buckets put 2.6 ms and 5 ms in one), and its quantiles can be
// compared as a ratio. Latencies below 64 µs share the first bucket; those
// above 2^26 µs (about 67 s) the last.
const (
	subBuckets = 8  // per doubling; a power of two
	subBits    = 3  // log2(subBuckets)
	minExp     = 6  // 2^6 µs = 64 µs: the first doubling counted
	maxExp     = 26 // 2^26 µs, about 67 s: the last doubling counted
	// WindowBuckets is the number of buckets of a window's histogram.
	WindowBuckets = 2 + (maxExp-minExp)*subBuckets
)

// windowBucket returns the bucket that counts d.
func windowBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 1<<minExp {
		return 0
	}
	e := bits.Len64(us) - 1 // 2^e ≤ us < 2^(e+1)
	if e >= maxExp {
		return WindowBuckets - 1
	}
	sub := int(us>>(e-subBits)) & (subBuckets - 1)
	return 1 + (e-minExp)*subBuckets + sub
}

// windowBound returns the upper bound of bucket i: no latency it counts
// exceeds it. The last bucket's is its lower bound, the most that can be
// said of it.
func windowBound(i int) time.Duration {
	switch {
	case i <= 0:
		return 1 << minExp * time.Microsecond
	case i >= WindowBuckets-1:
		return 1 << maxExp * time.Microsecond
	}
	e, sub := minExp+(i-1)/subBuckets, (i-1)%subBuckets
	return time.Duration((subBuckets+sub+1)<<(e-subBits)) * time.Microsecond
}

// latencies counts one window slot's latencies. Its counters are
// independent atomics: see Window on what that costs at a recycle.
type latencies [WindowBuckets]atomic.Uint64

func (l *latencies) observe(d time.Duration) { l[windowBucket(d)].Add(1) }

func (l *latencies) reset() {
	for i := range l {
		l[i].Store(0)
	}
}
