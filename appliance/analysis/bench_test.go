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
