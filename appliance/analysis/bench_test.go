package analysis

import (
	"testing"
	"time"
)

// The proxy calls Record once per upstream attempt, so it must cost far
// less than the proxying itself.

func BenchmarkRecord(b *testing.B) {
	w := NewWindow(30 * time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// A request every 10 µs: buckets recycle as in steady traffic.
		w.Record(t0.Add(time.Duration(i)*10*time.Microsecond), i%16 == 0, time.Duration(i%4096)*time.Microsecond)
		i++
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	w := NewWindow(30 * time.Second)
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Record(start.Add(time.Duration(i)*10*time.Microsecond), i%16 == 0, time.Duration(i%4096)*time.Microsecond)
			i++
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	w := NewWindow(30 * time.Second)
	for i := range 30_000 {
		w.Record(t0.Add(time.Duration(i)*time.Millisecond), false, time.Millisecond)
	}
	now := t0.Add(30 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		w.Snapshot(now)
	}
}

// BenchmarkEvidenceObserve is one tick of the verdict with errors and slow
// answers on both sides: four times a second on a Pi.
func BenchmarkEvidenceObserve(b *testing.B) {
	e := NewEvidence("v2", t0, policy)
	tick := Tick{Traffic: Tally{Canary: 17, Stable: 33, CanaryEvents: 1, StableEvents: 1},
		Slow: Tally{Canary: 16, Stable: 32, CanaryEvents: 2, StableEvents: 3}}
	now := t0
	for b.Loop() {
		now = now.Add(250 * time.Millisecond)
		e.Observe(now, tick, policy)
	}
}

// BenchmarkSafetyFor is what a rollout step needs, at 200 requests a second
// and a 50% share: the widest sums it makes.
func BenchmarkSafetyFor(b *testing.B) {
	for b.Loop() {
		SafetyFor(policy, 0.5, 40, 10000, 200)
	}
}

// BenchmarkSafetyForFewRequests is the same at 30 requests a second, where
// the share within a tick is summed over.
func BenchmarkSafetyForFewRequests(b *testing.B) {
	for b.Loop() {
		SafetyFor(policy, 0.5, 40, 10000, 30)
	}
}
