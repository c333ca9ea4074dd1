package web_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// rolledBack is a daemon after a bad canary: v2 answered 500s, the button
// rolled back, and one reload was rejected since.
func rolledBack() web.Snapshot {
	return web.Snapshot{
		State:            "rolled_back",
		CanaryVersion:    "v2",
		CanaryPercent:    0,
		Verdict:          analysis.Bad,
		HasVerdict:       true,
		ConfigGeneration: 3,
		ConfigErrors:     1,
		ConfigValid:      false,
		Rollbacks:        map[state.Cause]uint64{"button": 1, "auto": 2, "dbus": 4},
		Upstreams: []web.UpstreamSnapshot{
			{
				Name: "w1", Role: "stable", Weight: 10, Healthy: true, InFlight: 2,
				Responses:      [route.NumClasses]uint64{route.Class2xx: 600, route.Class4xx: 3},
				LatencyBounds:  []float64{0.005, 0.05, 0.5, math.Inf(+1)},
				LatencyBuckets: []uint64{500, 600, 603, 603},
				LatencyCount:   603, LatencySum: 4.5,
			},
			{
				Name: "w2", Role: "canary", Weight: 5, Healthy: false,
				Responses:      [route.NumClasses]uint64{route.Class2xx: 40, route.Class5xx: 45, route.Failed: 5},
				Errors:         50,
				LatencyBounds:  []float64{0.005, 0.05, 0.5},
				LatencyBuckets: []uint64{10, 80, 85},
				LatencyCount:   90, LatencySum: 9.25,
			},
		},
	}
}

func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, *http.Response) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", res.StatusCode, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET /metrics: not Prometheus text: %v", err)
	}
	return families, res
}

// series returns the value of the series of name whose labels are exactly
// labels ("k=v" pairs), and whether there is one.
func series(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := families[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(labels))
		if !slices.Equal(got, want) {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsExportTheSnapshot(t *testing.T) {
	families, _ := scrape(t, web.Metrics(rolledBack))
	for _, tc := range []struct {
		name   string
		labels []string
		typ    dto.MetricType
		want   float64
	}{
		{"canaryd_state", []string{"state=rolled_back"}, dto.MetricType_GAUGE, 1},
		{"canaryd_state", []string{"state=canary"}, dto.MetricType_GAUGE, 0},
		{"canaryd_state", []string{"state=stable"}, dto.MetricType_GAUGE, 0},
		{"canaryd_state", []string{"state=promoted"}, dto.MetricType_GAUGE, 0},
		{"canaryd_canary_info", []string{"version=v2"}, dto.MetricType_GAUGE, 1},
		{"canaryd_canary_percent", nil, dto.MetricType_GAUGE, 0},
		{"canaryd_canary_verdict", []string{"verdict=bad"}, dto.MetricType_GAUGE, 1},
		{"canaryd_canary_verdict", []string{"verdict=good"}, dto.MetricType_GAUGE, 0},
		{"canaryd_canary_verdict", []string{"verdict=not_enough_traffic"}, dto.MetricType_GAUGE, 0},
		{"canaryd_canary_verdict", []string{"verdict=shared_failure"}, dto.MetricType_GAUGE, 0},
		{"canaryd_rollbacks_total", []string{"cause=button"}, dto.MetricType_COUNTER, 1},
		{"canaryd_rollbacks_total", []string{"cause=auto"}, dto.MetricType_COUNTER, 2},
		{"canaryd_rollbacks_total", []string{"cause=command"}, dto.MetricType_COUNTER, 0},
		{"canaryd_rollbacks_total", []string{"cause=api"}, dto.MetricType_COUNTER, 0},
		{"canaryd_rollbacks_total", []string{"cause=dbus"}, dto.MetricType_COUNTER, 4},
		{"canaryd_config_generation", nil, dto.MetricType_GAUGE, 3},
		{"canaryd_config_errors_total", nil, dto.MetricType_COUNTER, 1},
		{"canaryd_config_valid", nil, dto.MetricType_GAUGE, 0},

		{"canaryd_upstream_responses_total", []string{"upstream=w1", "role=stable", "class=2xx"}, dto.MetricType_COUNTER, 600},
		{"canaryd_upstream_responses_total", []string{"upstream=w1", "role=stable", "class=4xx"}, dto.MetricType_COUNTER, 3},
		{"canaryd_upstream_responses_total", []string{"upstream=w1", "role=stable", "class=5xx"}, dto.MetricType_COUNTER, 0},
		{"canaryd_upstream_responses_total", []string{"upstream=w1", "role=stable", "class=failed"}, dto.MetricType_COUNTER, 0},
		{"canaryd_upstream_responses_total", []string{"upstream=w2", "role=canary", "class=5xx"}, dto.MetricType_COUNTER, 45},
		{"canaryd_upstream_responses_total", []string{"upstream=w2", "role=canary", "class=failed"}, dto.MetricType_COUNTER, 5},
		{"canaryd_upstream_responses_total", []string{"upstream=w2", "role=canary", "class=1xx"}, dto.MetricType_COUNTER, 0},
		{"canaryd_upstream_errors_total", []string{"upstream=w1", "role=stable"}, dto.MetricType_COUNTER, 0},
		{"canaryd_upstream_errors_total", []string{"upstream=w2", "role=canary"}, dto.MetricType_COUNTER, 50},
		{"canaryd_upstream_healthy", []string{"upstream=w1", "role=stable"}, dto.MetricType_GAUGE, 1},
		{"canaryd_upstream_healthy", []string{"upstream=w2", "role=canary"}, dto.MetricType_GAUGE, 0},
		{"canaryd_upstream_in_flight", []string{"upstream=w1", "role=stable"}, dto.MetricType_GAUGE, 2},
		{"canaryd_upstream_weight", []string{"upstream=w1", "role=stable"}, dto.MetricType_GAUGE, 10},
		{"canaryd_upstream_weight", []string{"upstream=w2", "role=canary"}, dto.MetricType_GAUGE, 5},
		{"canaryd_upstream_request_duration_seconds", []string{"upstream=w2", "role=canary"}, dto.MetricType_HISTOGRAM, 90},
	} {
		if mf := families[tc.name]; mf == nil {
			t.Errorf("%s: missing", tc.name)
			continue
		} else if mf.GetType() != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, mf.GetType(), tc.typ)
		}
		got, ok := series(families, tc.name, tc.labels...)
		if !ok {
			t.Errorf("%s%v: no such series", tc.name, tc.labels)
		} else if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := len(families["canaryd_upstream_responses_total"].GetMetric()); n != 12 {
		t.Errorf("canaryd_upstream_responses_total has %d series, want 6 classes for each of 2 upstreams", n)
	}
}

func TestMetricsLatencyHistogram(t *testing.T) {
	families, _ := scrape(t, web.Metrics(rolledBack))
	mf := families["canaryd_upstream_request_duration_seconds"]
	if mf == nil {
		t.Fatal("canaryd_upstream_request_duration_seconds: missing")
	}
	want := map[string]struct {
		count uint64
		sum   float64
		le    []float64
		cum   []uint64
	}{
		// A +Inf bound in the snapshot is Prometheus's own +Inf bucket, not a second one.
		"w1": {603, 4.5, []float64{0.005, 0.05, 0.5, math.Inf(+1)}, []uint64{500, 600, 603, 603}},
		"w2": {90, 9.25, []float64{0.005, 0.05, 0.5, math.Inf(+1)}, []uint64{10, 80, 85, 90}},
	}
	for _, m := range mf.GetMetric() {
		var name string
		for _, l := range m.GetLabel() {
			if l.GetName() == "upstream" {
				name = l.GetValue()
			}
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("histogram for unknown upstream %q", name)
			continue
		}
		delete(want, name)
		h := m.GetHistogram()
		if h.GetSampleCount() != w.count || h.GetSampleSum() != w.sum {
			t.Errorf("%s: count %d sum %v, want %d and %v", name, h.GetSampleCount(), h.GetSampleSum(), w.count, w.sum)
		}
		var le []float64
		var cum []uint64
		for _, b := range h.GetBucket() {
			le = append(le, b.GetUpperBound())
			cum = append(cum, b.GetCumulativeCount())
		}
		if !slices.Equal(le, w.le) || !slices.Equal(cum, w.cum) {
			t.Errorf("%s: buckets le=%v count=%v, want le=%v count=%v", name, le, cum, w.le, w.cum)
		}
	}
	for name := range want {
		t.Errorf("no histogram for %s", name)
	}
}

// TestMetricsBeforeAnything: a daemon without a canary, just started,
// exports every family a dashboard needs, with zeros.
func TestMetricsBeforeAnything(t *testing.T) {
	families, _ := scrape(t, web.Metrics(func() web.Snapshot {
		return web.Snapshot{State: "stable", ConfigGeneration: 1, ConfigValid: true}
	}))
	if v, _ := series(families, "canaryd_state", "state=stable"); v != 1 {
		t.Errorf(`canaryd_state{state="stable"} = %v, want 1`, v)
	}
	for _, verdict := range []string{"good", "bad", "not_enough_traffic", "shared_failure"} {
		if v, ok := series(families, "canaryd_canary_verdict", "verdict="+verdict); !ok || v != 0 {
			t.Errorf(`canaryd_canary_verdict{verdict=%q} = %v (present: %v), want 0`, verdict, v, ok)
		}
	}
	for _, cause := range []string{"command", "button", "auto", "api"} {
		if v, ok := series(families, "canaryd_rollbacks_total", "cause="+cause); !ok || v != 0 {
			t.Errorf(`canaryd_rollbacks_total{cause=%q} = %v (present: %v), want 0`, cause, v, ok)
		}
	}
	if _, ok := families["canaryd_canary_info"]; ok {
		t.Error("canaryd_canary_info present without a canary")
	}
	if v, _ := series(families, "canaryd_config_valid"); v != 1 {
		t.Errorf("canaryd_config_valid = %v, want 1", v)
	}
}

// TestMetricsIncludeRuntimeAndProcess: the Go runtime's and the process's
// families, under the names Prometheus's client gives them, with values
// that are this process's.
func TestMetricsIncludeRuntimeAndProcess(t *testing.T) {
	families, res := scrape(t, web.Metrics(rolledBack))
	for _, name := range []string{
		"go_goroutines", "go_threads", "go_info", "go_build_info", "go_gc_duration_seconds", "go_gc_gogc_percent",
		"go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes",
		"go_memstats_alloc_bytes_total", "go_memstats_next_gc_bytes", "go_memstats_last_gc_time_seconds",
		"process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_resident_memory_bytes",
		"process_virtual_memory_bytes", "process_virtual_memory_max_bytes", "process_start_time_seconds",
		"process_network_receive_bytes_total", "process_network_transmit_bytes_total",
	} {
		if families[name] == nil {
			t.Errorf("%s: missing", name)
		}
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want Prometheus text", ct)
	}
	if v, _ := series(families, "go_goroutines"); v < 1 || v > float64(runtime.NumGoroutine()+100) {
		t.Errorf("go_goroutines = %v", v)
	}
	if v, _ := series(families, "process_resident_memory_bytes"); v < 1<<20 || v > 4<<30 {
		t.Errorf("process_resident_memory_bytes = %v", v)
	}
	if v, _ := series(families, "process_open_fds"); v < 3 {
		t.Errorf("process_open_fds = %v, want stdin, stdout and stderr at least", v)
	}
	if v, _ := series(families, "process_start_time_seconds"); math.Abs(v-float64(time.Now().Unix())) > 24*3600 {
		t.Errorf("process_start_time_seconds = %v, not today", v)
	}
	if v, _ := series(families, "go_sched_gomaxprocs_threads"); v != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_sched_gomaxprocs_threads = %v, want %d", v, runtime.GOMAXPROCS(0))
	}
	if v, _ := series(families, "go_info", "version="+runtime.Version()); v != 1 {
		t.Errorf("go_info{version=%q} = %v", runtime.Version(), v)
	}
}

// TestMetricsEscapeOddNames: an upstream named with quotes, backslashes,
// a line feed or bytes that are not UTF-8 costs no scrape, and comes back
// as it was, but for the bytes that cannot be said.
func TestMetricsEscapeOddNames(t *testing.T) {
	names := map[string]string{
		`say "hi"`:    `say "hi"`,
		`C:\upload`:   `C:\upload`,
		"two\nlines":  "two\nlines",
		"bad\xffbyte": "bad\uFFFDbyte",
	}
	h := web.Metrics(func() web.Snapshot {
		s := web.Snapshot{State: "stable"}
		for name := range names {
			s.Upstreams = append(s.Upstreams, web.UpstreamSnapshot{Name: name, Role: "stable", Weight: 1})
		}
		return s
	})
	families, _ := scrape(t, h)
	for name, want := range names {
		if v, ok := series(families, "canaryd_upstream_weight", "upstream="+want, "role=stable"); !ok || v != 1 {
			t.Errorf("upstream %q: weight %v (present %v) under %q", name, v, ok, want)
		}
	}
}

// TestMetricsReadTheSnapshotAtScrapeTime: nothing is cached between scrapes,
// and each scrape reads the snapshot once.
func TestMetricsReadTheSnapshotAtScrapeTime(t *testing.T) {
	var calls atomic.Int64
	h := web.Metrics(func() web.Snapshot {
		n := calls.Add(1)
		return web.Snapshot{State: "canary", ConfigGeneration: uint64(n)}
	})
	for want := 1.0; want <= 3; want++ {
		families, _ := scrape(t, h)
		if v, _ := series(families, "canaryd_config_generation"); v != want {
			t.Errorf("scrape %v: canaryd_config_generation = %v", want, v)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("snapshot called %d times for 3 scrapes", n)
	}
}

// TestMetricsKeepGoingPastABrokenHistogram: one upstream's inconsistent
// histogram costs that series, not the scrape.
func TestMetricsKeepGoingPastABrokenHistogram(t *testing.T) {
	h := web.Metrics(func() web.Snapshot {
		s := rolledBack()
		s.Upstreams[1].LatencyBuckets = s.Upstreams[1].LatencyBuckets[:1]
		return s
	})
	families, _ := scrape(t, h)
	if _, ok := series(families, "canaryd_upstream_request_duration_seconds", "upstream=w1", "role=stable"); !ok {
		t.Error("w1's histogram is gone with w2's")
	}
	if _, ok := series(families, "canaryd_upstream_request_duration_seconds", "upstream=w2", "role=canary"); ok {
		t.Error("w2's broken histogram exported")
	}
	if v, _ := series(families, "canaryd_upstream_errors_total", "upstream=w2", "role=canary"); v != 50 {
		t.Errorf("canaryd_upstream_errors_total for w2 = %v, want 50", v)
	}
}

// TestMetricsCountClientConnections: the connections held, the limit, and
// those closed at the limit, by reason.
func TestMetricsCountClientConnections(t *testing.T) {
	families, _ := scrape(t, web.Metrics(func() web.Snapshot {
		return web.Snapshot{ClientConns: 12, ClientConnsMax: 1024, ClientEvicted: 7, ClientRefused: 2}
	}))
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"canaryd_client_connections", nil, 12},
		{"canaryd_client_connections_max", nil, 1024},
		{"canaryd_client_connections_closed_total", []string{"reason=evicted"}, 7},
		{"canaryd_client_connections_closed_total", []string{"reason=refused"}, 2},
	} {
		if v, ok := series(families, tt.name, tt.labels...); !ok || v != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, v, ok, tt.want)
		}
	}
}
