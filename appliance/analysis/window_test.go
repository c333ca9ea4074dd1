package analysis

import (
	"sync"
	"testing"
	"time"
)

// t0 is on a whole second, so the buckets of a 30 s window start at t0.
var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func TestWindowCutsSpanIntoBuckets(t *testing.T) {
	tests := []struct {
		span      time.Duration
		wantWidth time.Duration
		wantN     int64
	}{
		{30 * time.Second, time.Second, 30},
		{90 * time.Second, 3 * time.Second, 30},
		{10 * time.Second, 333333333, 30},
		{3 * time.Second, 100 * time.Millisecond, 30},
		{time.Second, 100 * time.Millisecond, 10},
		{250 * time.Millisecond, 100 * time.Millisecond, 3},
		{time.Millisecond, 100 * time.Millisecond, 1},
		{0, 100 * time.Millisecond, 1},
		{-time.Second, 100 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		w := NewWindow(tt.span)
		if time.Duration(w.width) != tt.wantWidth || w.n != tt.wantN {
			t.Errorf("NewWindow(%v): %d buckets of %v, want %d of %v",
				tt.span, w.n, time.Duration(w.width), tt.wantN, tt.wantWidth)
		}
		if got, want := w.Span(), tt.wantWidth*time.Duration(tt.wantN); got != want {
			t.Errorf("NewWindow(%v).Span() = %v, want %v", tt.span, got, want)
		}
	}
}

func TestWindowCountsRequestsWithinTheSpan(t *testing.T) {
	type rec struct {
		at     time.Duration // after t0
		failed bool
	}
	type check struct {
		at               time.Duration
		requests, errors uint64
	}
	ms := time.Millisecond
	tests := []struct {
		name   string
		span   time.Duration
		recs   []rec
		checks []check
	}{
		{
			name:   "requests in one bucket",
			span:   30 * time.Second,
			recs:   []rec{{0, false}, {200 * ms, true}, {900 * ms, false}},
			checks: []check{{900 * ms, 3, 1}},
		},
		{
			name:   "requests across a bucket boundary",
			span:   30 * time.Second,
			recs:   []rec{{999 * ms, true}, {1000 * ms, true}, {1001 * ms, false}},
			checks: []check{{1001 * ms, 3, 2}, {30999 * ms, 2, 1}, {31 * time.Second, 0, 0}},
		},
		{
			name: "a request leaves the window one span after its bucket began",
			span: 30 * time.Second,
			recs: []rec{{0, true}},
			checks: []check{
				{0, 1, 1},
				{29999 * ms, 1, 1},
				{30 * time.Second, 0, 0},
			},
		},
		{
			name: "a request late in its bucket leaves less than one bucket early",
			span: 30 * time.Second,
			recs: []rec{{900 * ms, false}},
			checks: []check{
				{29999 * ms, 1, 0},
				{30 * time.Second, 0, 0},
			},
		},
		{
			name:   "idle for longer than the window",
			span:   30 * time.Second,
			recs:   []rec{{0, true}, {time.Second, true}, {100 * time.Second, false}},
			checks: []check{{100 * time.Second, 1, 0}, {131 * time.Second, 0, 0}},
		},
		{
			name:   "a snapshot before the requests sees none of them",
			span:   30 * time.Second,
			recs:   []rec{{10 * time.Second, true}},
			checks: []check{{9 * time.Second, 0, 0}, {10 * time.Second, 1, 1}},
		},
		{
			name: "a clock stepping back drops requests older than the window",
			span: 30 * time.Second,
			recs: []rec{
				{40 * time.Second, false},
				{10 * time.Second, true}, // the bucket of 10 s already counts 40 s
				{5 * time.Second, true},  // a fresh bucket, but out of the window
			},
			checks: []check{{40 * time.Second, 1, 0}},
		},
		{
			name:   "a short window with 100 ms buckets",
			span:   time.Second,
			recs:   []rec{{0, true}, {950 * ms, false}, {1050 * ms, false}},
			checks: []check{{1050 * ms, 2, 0}, {1950 * ms, 1, 0}, {2 * time.Second, 0, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.span)
			for _, r := range tt.recs {
				w.Record(t0.Add(r.at), r.failed, time.Millisecond)
			}
			for _, c := range tt.checks {
				got := w.Snapshot(t0.Add(c.at))
				if got.Requests != c.requests || got.Errors != c.errors {
					t.Errorf("at t0+%v: %d requests, %d errors; want %d, %d",
						c.at, got.Requests, got.Errors, c.requests, c.errors)
				}
			}
		})
	}
}

func TestWindowKeepsOneSpanOfSteadyTraffic(t *testing.T) {
	w := NewWindow(30 * time.Second)
	// Ten requests a second for ten minutes, every third one failed: the
	// window always holds its last 30 whole seconds, 300 requests.
	var now time.Time
	for i := range 6000 {
		now = t0.Add(time.Duration(i) * 100 * time.Millisecond)
		w.Record(now, i%3 == 0, 5*time.Millisecond)
	}
	got := w.Snapshot(now)
	if got.Requests != 300 || got.Errors != 100 {
		t.Errorf("after 10 minutes at 10/s: %d requests, %d errors; want 300, 100", got.Requests, got.Errors)
	}
	if got.Hist[windowBucket(5*time.Millisecond)] != 200 {
		t.Errorf("histogram %v, want the 200 answers that were no error in the 5 ms bucket", got.Hist)
	}
	if rate := got.PerMinute(w.Span()); rate != 600 {
		t.Errorf("%v requests a minute, want 600", rate)
	}
}

func TestWindowMemoryIsBoundedWhateverTheTraffic(t *testing.T) {
	w := NewWindow(30 * time.Second)
	var i int
	// A thousand requests a second for the length of the test, recycling
	// every bucket many times over: no allocation at all.
	allocs := testing.AllocsPerRun(100_000, func() {
		w.Record(t0.Add(time.Duration(i)*time.Millisecond), i%2 == 0, time.Duration(i)*time.Microsecond)
		i++
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
	// AllocsPerRun also made one warm-up call, so the last request came
	// at t0+100s, the first of its bucket: the window holds 29 whole
	// seconds before it, and it.
	got := w.Snapshot(t0.Add(time.Duration(i-1) * time.Millisecond))
	if got.Requests != 29_001 {
		t.Errorf("%d requests in the window, want 29 s at 1000/s and one: 29001", got.Requests)
	}
}

func TestSnapshotDoesNotAllocate(t *testing.T) {
	w := NewWindow(30 * time.Second)
	w.Record(t0, true, time.Millisecond)
	if allocs := testing.AllocsPerRun(1000, func() { w.Snapshot(t0) }); allocs != 0 {
		t.Errorf("Snapshot allocates %v times per call, want 0", allocs)
	}
}

func TestConcurrentRecordsInOneBucketAreExact(t *testing.T) {
	const goroutines, each = 8, 10_000
	w := NewWindow(30 * time.Second)
	now := t0.Add(500 * time.Millisecond)
	// The first request claims the bucket; the exactness promised is for
	// requests while the bucket stays on its slot.
	w.Record(now, false, 0)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				w.Record(now, i%4 == 0, time.Duration(g+1)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	got := w.Snapshot(now)
	wantRequests := uint64(1 + goroutines*each)
	if got.Requests != wantRequests || got.Errors != goroutines*each/4 {
		t.Errorf("%d requests, %d errors; want %d, %d", got.Requests, got.Errors, wantRequests, goroutines*each/4)
	}
	// Goroutine g recorded each request with g+1 ms, the first request
	// 0 ms: each latency in a bucket of its own, but for the errors'.
	var want [WindowBuckets]uint64
	want[windowBucket(0)] = 1
	for g := range goroutines {
		want[windowBucket(time.Duration(g+1)*time.Millisecond)] += each - each/4
	}
	if got.Hist != want {
		t.Errorf("histogram %v, want %v", got.Hist, want)
	}
}

func TestConcurrentRecordsAndSnapshotsAcrossBuckets(t *testing.T) {
	// Recycling buckets under concurrent Records may lose a request at
	// the boundary or count it in the next slot, but a snapshot never
	// shows more errors than requests; -race checks the rest.
	const goroutines, each = 8, 5000
	w := NewWindow(time.Second)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range each {
				w.Record(t0.Add(time.Duration(i)*time.Millisecond), true, time.Millisecond)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			c := w.Snapshot(t0.Add(time.Duration(i) * time.Millisecond))
			if c.Errors > c.Requests || c.Requests > goroutines*each {
				t.Errorf("snapshot with %d errors of %d requests", c.Errors, c.Requests)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	// The last second, 1000 requests from each goroutine, give or take a
	// few that raced with the recycling of their bucket.
	got := w.Snapshot(t0.Add((each - 1) * time.Millisecond))
	if got.Requests > goroutines*1000*11/10 || got.Requests < goroutines*1000*9/10 {
		t.Errorf("%d requests in the last second, want about %d", got.Requests, goroutines*1000)
	}
}
