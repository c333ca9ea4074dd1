package analysis

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestLatencyBucketBoundsAreInclusive(t *testing.T) {
	tests := []struct {
		latency time.Duration
		want    time.Duration // the upper bound of its bucket; 0: above all
	}{
		{-time.Second, 500 * time.Microsecond},
		{0, 500 * time.Microsecond},
		{500 * time.Microsecond, 500 * time.Microsecond},
		{500*time.Microsecond + 1, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{40 * time.Millisecond, 50 * time.Millisecond},
		{2 * time.Second, 2500 * time.Millisecond},
		{60 * time.Second, 60 * time.Second},
		{60*time.Second + 1, 0},
		{time.Hour, 0},
	}
	for _, tt := range tests {
		var h Histogram
		h.Observe(tt.latency)
		counts, _, bounds := h.Snapshot()
		i := slices.Index(counts[:], 1)
		var got time.Duration
		if i < len(bounds) {
			got = time.Duration(bounds[i] * float64(time.Second))
		}
		if got != tt.want {
			t.Errorf("%v counts in the bucket up to %v, want %v", tt.latency, got, tt.want)
		}
	}
}

func TestQuantileIsTheUpperBoundOfItsBucket(t *testing.T) {
	w := NewWindow(30 * time.Second)
	// 90 fast answers, 9 slow ones and one very slow; a timeout after 60 s
	// is no answer, and no latency.
	for range 90 {
		w.Record(t0, false, 800*time.Microsecond)
	}
	for range 9 {
		w.Record(t0, false, 40*time.Millisecond)
	}
	w.Record(t0, false, 2*time.Second)
	w.Record(t0, true, 60*time.Second)
	c := w.Snapshot(t0)
	// The buckets holding 0.8 ms, 40 ms and 2 s end at 832 µs, 40.96 ms
	// and 2.097152 s.
	fast, slow, slowest := 832*time.Microsecond, 40960*time.Microsecond, 2097152*time.Microsecond
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, fast},
		{0.5, fast},
		{0.9, fast},
		{0.91, slow},
		{0.99, slow},
		{0.995, slowest},
		{1, slowest},
		{-1, fast},
		{2, slowest},
		{math.NaN(), fast},
	}
	for _, tt := range tests {
		if got := c.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestWindowBucketsAreAtMostAnEighthWide(t *testing.T) {
	for d := time.Duration(0); d < 70*time.Second; d = d*17/16 + time.Microsecond {
		i := windowBucket(d)
		bound := windowBound(i)
		if i < WindowBuckets-1 && bound < d {
			t.Fatalf("%v counts in bucket %d, which ends at %v, below it", d, i, bound)
		}
		if d >= 64*time.Microsecond && i < WindowBuckets-1 && float64(bound) > 1.125*float64(d)+float64(time.Microsecond) {
			t.Fatalf("%v counts in bucket %d ending at %v: more than 12.5%% above it", d, i, bound)
		}
		if i > 0 && windowBound(i-1) > d && d >= 64*time.Microsecond {
			t.Fatalf("%v counts in bucket %d, but bucket %d already ends at %v", d, i, i-1, windowBound(i-1))
		}
	}
	if windowBucket(-time.Second) != 0 || windowBucket(time.Hour) != WindowBuckets-1 {
		t.Error("a negative latency or one of an hour is not in the first or last bucket")
	}
}

func TestQuantileEdges(t *testing.T) {
	if got := (Counts{}).Quantile(0.99); got != 0 {
		t.Errorf("Quantile of no requests = %v, want 0", got)
	}
	var c Counts
	c.Hist[WindowBuckets-1] = 3 // all slower than the highest bucket
	if got, want := c.Quantile(0.5), 67108864*time.Microsecond; got != want {
		t.Errorf("Quantile of requests above all buckets = %v, want the highest bound, %v", got, want)
	}
}

func TestCountsOfARoleAddUp(t *testing.T) {
	a, b := NewWindow(30*time.Second), NewWindow(30*time.Second)
	for i := range 10 {
		a.Record(t0, i < 2, 10*time.Millisecond)
	}
	for i := range 30 {
		b.Record(t0, i < 1, 30*time.Millisecond)
	}
	role := a.Snapshot(t0).Add(b.Snapshot(t0))
	if role.Requests != 40 || role.Errors != 3 {
		t.Errorf("role: %d requests, %d errors; want 40, 3", role.Requests, role.Errors)
	}
	if got := role.ErrorRate(); got != 3.0/40 {
		t.Errorf("role error rate %v, want %v", got, 3.0/40)
	}
	// The 37 answers that were no error: 8 of 10 ms and 29 of 30 ms, in
	// the buckets up to 10.24 ms and 30.72 ms.
	if got := role.Quantile(8.0 / 37); got != 10240*time.Microsecond {
		t.Errorf("role p21.6 %v, want 10.24ms", got)
	}
	if got := role.Quantile(9.0 / 37); got != 30720*time.Microsecond {
		t.Errorf("role p24.3 %v, want 30.72ms", got)
	}
	if got := role.PerMinute(30 * time.Second); got != 80 {
		t.Errorf("role rate %v a minute, want 80", got)
	}
}

func TestEmptyCountsHaveZeroRates(t *testing.T) {
	var c Counts
	if c.ErrorRate() != 0 || c.Quantile(0.5) != 0 || c.PerMinute(time.Minute) != 0 {
		t.Errorf("empty counts: error rate %v, p50 %v, rate %v; want zeros", c.ErrorRate(), c.Quantile(0.5), c.PerMinute(time.Minute))
	}
	c.Requests = 5
	if got := c.PerMinute(0); got != 0 {
		t.Errorf("PerMinute over no time = %v, want 0", got)
	}
}

func TestHistogramExportsAsPrometheusClassicHistogram(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{300 * time.Microsecond, 800 * time.Microsecond, 800 * time.Microsecond, 3 * time.Second, 2 * time.Minute} {
		h.Observe(d)
	}
	counts, sum, bounds := h.Snapshot()
	if len(bounds) != HistBuckets-1 || bounds[0] != 0.0005 || bounds[len(bounds)-1] != 60 {
		t.Fatalf("bounds %v, want %d from 0.0005 to 60 seconds", bounds, HistBuckets-1)
	}
	if !slices.IsSorted(bounds) {
		t.Errorf("bounds %v are not increasing", bounds)
	}
	if want := 300*time.Microsecond + 1600*time.Microsecond + 3*time.Second + 2*time.Minute; sum != want {
		t.Errorf("sum %v, want %v", sum, want)
	}
	cum := Cumulative(counts)
	want := map[int]uint64{0: 1, 1: 3, 11: 3, 12: 4, 15: 4, 16: 5}
	for i, n := range want {
		if cum[i] != n {
			t.Errorf("cumulative count up to bucket %d = %d, want %d (all: %v)", i, cum[i], n, cum)
		}
	}
	// A snapshot is a copy: observing more leaves it as it was.
	h.Observe(time.Millisecond)
	if again, _, _ := h.Snapshot(); again == counts {
		t.Errorf("a later snapshot did not see the new observation")
	}
	bounds[0] = 99
	if Bounds()[0] != 0.0005 {
		t.Errorf("changing a returned bounds slice changed the bounds")
	}
}

func TestHistogramObserveDoesNotAllocate(t *testing.T) {
	var h Histogram
	if allocs := testing.AllocsPerRun(1000, func() { h.Observe(time.Millisecond) }); allocs != 0 {
		t.Errorf("Observe allocates %v times per call, want 0", allocs)
	}
}
