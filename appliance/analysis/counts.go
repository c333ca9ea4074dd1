package analysis

import (
	"math"
	"time"
)

// Counts is what a window saw: the requests, how many failed, and their
// latencies. Counts of several upstreams add up to their role's.
type Counts struct {
	Requests uint64
	Errors   uint64
	// Hist counts the latencies of the answers that were no error, per
	// log-linear bucket (see WindowBuckets).
	Hist [WindowBuckets]uint64
}

// Add returns the sum of c and o, as for all the upstreams of one role.
func (c Counts) Add(o Counts) Counts {
	c.Requests += o.Requests
	c.Errors += o.Errors
	for i := range c.Hist {
		c.Hist[i] += o.Hist[i]
	}
	return c
}

// answers is how many of the requests got an answer that was no error:
// those whose latency the histogram holds.
func (c Counts) answers() uint64 {
	var n uint64
	for _, h := range c.Hist {
		n += h
	}
	return n
}

// ErrorRate returns the share of requests that failed, from 0 to 1; 0 when
// there were none.
func (c Counts) ErrorRate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Requests)
}

// PerMinute returns the request rate, for counts taken over span.
func (c Counts) PerMinute(span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return float64(c.Requests) * float64(time.Minute) / float64(span)
}

// Quantile returns the latency below which a share q (0 to 1) of the
// requests answered, as the upper bound of the histogram bucket it falls
// in: a bound the true quantile does not exceed, and at most 12.5% above it,
// except beyond the highest bucket (about 67 s), which it returns then. It
// is 0 when there were no requests.
func (c Counts) Quantile(q float64) time.Duration {
	total := c.answers()
	if total == 0 {
		return 0
	}
	// The rank of the request at quantile q, counting from 1; NaN and
	// values outside [0, 1] are clamped so that they still name a request.
	rank := uint64(1)
	if q >= 1 {
		rank = total
	} else if q > 0 {
		rank = min(max(uint64(math.Ceil(q*float64(total))), 1), total)
	}
	var seen uint64
	for i, n := range c.Hist {
		seen += n
		if seen >= rank {
			return windowBound(i)
		}
	}
	return windowBound(WindowBuckets - 1)
}
