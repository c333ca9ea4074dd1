package web

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// memstat is one go_memstats_ family, read from runtime.MemStats, under
// the names Prometheus's Go client gives them, so that dashboards made for
// any Go program work.
type memstat struct {
	name, typ, help string
	value           func(*runtime.MemStats) float64
}

var memstats = []memstat{
	{"alloc_bytes", "gauge", "Bytes of allocated heap objects.", func(m *runtime.MemStats) float64 { return float64(m.Alloc) }},
	{"alloc_bytes_total", "counter", "Bytes allocated for heap objects, in all.", func(m *runtime.MemStats) float64 { return float64(m.TotalAlloc) }},
	{"sys_bytes", "gauge", "Bytes of memory obtained from the system.", func(m *runtime.MemStats) float64 { return float64(m.Sys) }},
	{"mallocs_total", "counter", "Heap objects allocated, in all.", func(m *runtime.MemStats) float64 { return float64(m.Mallocs) }},
	{"frees_total", "counter", "Heap objects freed, in all.", func(m *runtime.MemStats) float64 { return float64(m.Frees) }},
	{"heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.", func(m *runtime.MemStats) float64 { return float64(m.HeapAlloc) }},
	{"heap_sys_bytes", "gauge", "Bytes of heap memory obtained from the system.", func(m *runtime.MemStats) float64 { return float64(m.HeapSys) }},
	{"heap_idle_bytes", "gauge", "Bytes in idle (unused) spans.", func(m *runtime.MemStats) float64 { return float64(m.HeapIdle) }},
	{"heap_inuse_bytes", "gauge", "Bytes in in-use spans.", func(m *runtime.MemStats) float64 { return float64(m.HeapInuse) }},
	{"heap_released_bytes", "gauge", "Bytes of physical memory returned to the system.", func(m *runtime.MemStats) float64 { return float64(m.HeapReleased) }},
	{"heap_objects", "gauge", "Allocated heap objects.", func(m *runtime.MemStats) float64 { return float64(m.HeapObjects) }},
	{"stack_inuse_bytes", "gauge", "Bytes in stack spans.", func(m *runtime.MemStats) float64 { return float64(m.StackInuse) }},
	{"stack_sys_bytes", "gauge", "Bytes of stack memory obtained from the system.", func(m *runtime.MemStats) float64 { return float64(m.StackSys) }},
	{"mspan_inuse_bytes", "gauge", "Bytes of allocated mspan structures.", func(m *runtime.MemStats) float64 { return float64(m.MSpanInuse) }},
	{"mspan_sys_bytes", "gauge", "Bytes of memory obtained from the system for mspan structures.", func(m *runtime.MemStats) float64 { return float64(m.MSpanSys) }},
	{"mcache_inuse_bytes", "gauge", "Bytes of allocated mcache structures.", func(m *runtime.MemStats) float64 { return float64(m.MCacheInuse) }},
	{"mcache_sys_bytes", "gauge", "Bytes of memory obtained from the system for mcache structures.", func(m *runtime.MemStats) float64 { return float64(m.MCacheSys) }},
	{"buck_hash_sys_bytes", "gauge", "Bytes of memory in profiling bucket hash tables.", func(m *runtime.MemStats) float64 { return float64(m.BuckHashSys) }},
	{"gc_sys_bytes", "gauge", "Bytes of memory in garbage collection metadata.", func(m *runtime.MemStats) float64 { return float64(m.GCSys) }},
	{"other_sys_bytes", "gauge", "Bytes of memory in miscellaneous off-heap runtime allocations.", func(m *runtime.MemStats) float64 { return float64(m.OtherSys) }},
	{"next_gc_bytes", "gauge", "Heap size at which the next garbage collection will run.", func(m *runtime.MemStats) float64 { return float64(m.NextGC) }},
	{"last_gc_time_seconds", "gauge", "Time of the last garbage collection, in seconds since 1970.", func(m *runtime.MemStats) float64 { return float64(m.LastGC) / 1e9 }},
}

// runtimeSamples are the runtime/metrics the families below read.
var runtimeSamples = []string{"/gc/gogc:percent", "/gc/gomemlimit:bytes", "/sched/gomaxprocs:threads"}

// writeRuntime writes the Go runtime's families: goroutines, threads, the
// garbage collector's pauses, the memory statistics, the build.
func writeRuntime(e *expo) {
	e.one("go_goroutines", "gauge", "Goroutines that currently exist.", float64(runtime.NumGoroutine()))
	e.one("go_threads", "gauge", "OS threads created.", float64(pprof.Lookup("threadcreate").Count()))
	e.one("go_info", "gauge", "Information about the Go environment.", 1, "version", runtime.Version())

	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&gc)
	e.family("go_gc_duration_seconds", "summary", "Stop-the-world pauses of the garbage collector, recent ones.")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		e.sample("go_gc_duration_seconds", gc.PauseQuantiles[i].Seconds(), "quantile", q)
	}
	e.sample("go_gc_duration_seconds_sum", gc.PauseTotal.Seconds())
	e.sample("go_gc_duration_seconds_count", float64(gc.NumGC))

	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		samples[i].Name = name
	}
	metrics.Read(samples)
	e.one("go_gc_gogc_percent", "gauge", "GOGC: heap growth, in percent, that starts a garbage collection.", sampleValue(samples[0]))
	e.one("go_gc_gomemlimit_bytes", "gauge", "GOMEMLIMIT: the Go runtime's soft memory limit.", sampleValue(samples[1]))
	e.one("go_sched_gomaxprocs_threads", "gauge", "GOMAXPROCS: threads that may run Go code at once.", sampleValue(samples[2]))

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	for _, s := range memstats {
		e.one("go_memstats_"+s.name, s.typ, s.help, s.value(&m))
	}

	path, version, sum := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		path, version, sum = bi.Main.Path, bi.Main.Version, bi.Main.Sum
	}
	e.one("go_build_info", "gauge", "Build information about the main Go module.", 1,
		"checksum", sum, "path", path, "version", version)
}

func sampleValue(s metrics.Sample) float64 {
	switch s.Value.Kind() {
	case metrics.KindUint64:
		return float64(s.Value.Uint64())
	case metrics.KindFloat64:
		return s.Value.Float64()
	}
	return 0
}
